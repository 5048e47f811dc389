"""The run-level settings of the CLIs' configs: the keys that are not a ``_target_`` node.

A ``_target_`` node is checked by the signature of what it builds (:mod:`gan_zoo.validation`);
the other keys by the pydantic models here, through :func:`validate_settings`, which turns
pydantic's error into the same one-line ``ConfigValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gan_zoo.errors import ConfigValueError
from gan_zoo.validation import PositiveInt, Seed, describe, known_names, union_arms


class StrictSettings(BaseModel):
    """A settings model that refuses unknown keys and converts nothing."""

    model_config = ConfigDict(extra="forbid", strict=True)


class MetricsSettings(StrictSettings):
    """``metrics``: settings shared by the metric callbacks (docs/metrics.md)."""

    inception_weights: str | None = None


class PathsSettings(StrictSettings):
    """``paths``: where runs and data live."""

    output_dir: str
    data_dir: str


class NetSettings(StrictSettings):
    """``net``: the latent size both nets and the model share, and the two nets."""

    latent_dim: PositiveInt
    generator: dict[str, Any]
    discriminator: dict[str, Any]


class RunSettings(StrictSettings):
    """The keys of ``configs/train.yaml`` that are not a ``_target_`` node of their own."""

    seed: Seed
    ckpt_path: str | None = None
    run_name: str
    metrics: MetricsSettings = MetricsSettings()
    paths: PathsSettings
    net: NetSettings
    data: dict[str, Any]
    model: dict[str, Any]
    trainer: dict[str, Any]
    logger: dict[str, Any] | None = None
    callbacks: dict[str, Any] | None = None
    nan_guard: dict[str, Any] | None = None
    preemption: dict[str, Any] | None = None
    checkpoint_io: dict[str, Any] | None = None
    # The logged metric whose final value train.py returns to a Hydra sweeper (Optuna):
    # set by configs/hparams_search/*.yaml.
    optimized_metric: str | None = None


def validate_settings(model: type[BaseModel], values: Mapping[str, Any], prefix: str = "") -> Any:
    """``model(**values)`` for a pydantic settings model, with one-line errors naming the key."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = _field_path(model, [str(part) for part in first["loc"]])
        key = ".".join([prefix, *loc] if prefix else loc)
        owner, field = _field_owner(model, loc)
        if first["type"] == "extra_forbidden":
            known = owner.model_fields if owner is not None else {}
            valid = f"a known key ({known_names(loc[-1], known)})"
            raise ConfigValueError(key, first["input"], valid) from None
        annotation = field.annotation if field is not None else Any
        metadata = list(field.metadata) if field is not None else []
        if metadata:
            annotation = Annotated[(annotation, *metadata)]  # type: ignore[valid-type]
        if first["type"] == "missing":  # pydantic's input is then the parent node
            raise ConfigValueError(key, None, f"{describe(annotation)} (a mandatory key)") from None
        raise ConfigValueError(key, first.get("input"), describe(annotation)) from None


def _field_path(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The config keys of an error location, without pydantic's union-arm tags after them."""
    path: list[str] = []
    owner: Any = model
    for part in loc:
        if owner is None or part not in owner.model_fields:
            return path + [part] if not path or owner is not None else path
        path.append(part)
        annotation = owner.model_fields[part].annotation
        owner = _nested_model(annotation)
    return path


def _field_owner(model: type[BaseModel], loc: list[str]) -> tuple[Any, Any]:
    """The model holding the last key of ``loc``, and that key's field (None when unknown)."""
    owner: Any = model
    for part in loc[:-1]:
        field = owner.model_fields.get(part) if owner is not None else None
        annotation = field.annotation if field is not None else None
        owner = _nested_model(annotation)
    field = owner.model_fields.get(loc[-1]) if owner is not None and loc else None
    return owner, field


def _nested_model(annotation: Any) -> Any:
    """The settings model among the arms of ``annotation`` (``X | None``), or None."""
    nested = [a for a in union_arms(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return nested[0] if nested else None
