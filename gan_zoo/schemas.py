"""Typed schemas for the training config, checked before anything is built.

Each config group has a dataclass whose fields give the type and the valid range of the keys
gan_zoo knows; :func:`validate_config` checks the resolved config against them and raises one
:class:`~gan_zoo.errors.ConfigValueError` (``key=value is invalid: expected ...``) for the first
bad value. Keys of a ``_target_`` node that the schema does not list are checked against the
target's signature instead (name and type hint), so a new constructor argument is validated
without touching this file, and a misspelt one is refused. Constructors keep their own checks
for what depends on other values (e.g. image sizes a net supports).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_zoo.callbacks.fidelity import FidelityCallback
from gan_zoo.errors import ConfigValueError, check
from gan_zoo.hints import (
    allows_none,
    check_by_signature,
    dataclass_in,
    describe,
    dict_in,
    locate,
    matches,
    signature_hints,
)

META_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")
MISSING = "???"


def spec(*, also: tuple[Any, ...] = (), valid: str = "", **bounds: float) -> Any:
    """A schema field (None: "not set") with bounds ``ge``/``gt``/``le``/``lt``.

    ``also`` lists extra valid values (e.g. -1 for "no limit"); ``valid`` overrides the
    generated description in error messages.
    """
    return field(default=None, metadata={"bounds": bounds, "also": also, "valid": valid})


@dataclass
class OptimizerSchema:
    """``model.*_optimizer``: a ``torch.optim`` class with ``_partial_: true``."""

    lr: float = spec(gt=0)
    betas: tuple[float, float] = spec(ge=0, lt=1, valid="two numbers in [0, 1)")
    eps: float = spec(gt=0)
    weight_decay: float = spec(ge=0)
    momentum: float = spec(ge=0)
    alpha: float = spec(ge=0, le=1)


@dataclass
class ModelSchema:
    """``model``: the GAN variant's arguments (gan_zoo.models.GAN and its subclasses)."""

    n_critic: int | None = spec(ge=1)
    latent_dim: int = spec(ge=1)
    replay_size: int = spec(ge=0)
    replay_ratio: float = spec(ge=0, le=1)
    clip_value: float = spec(gt=0)
    gp_weight: float = spec(ge=0)
    ema_decay: float = spec(ge=0, lt=1)
    penalty_every: int = spec(ge=1)
    lr_decay_steps: int | None = spec(ge=1)
    compile: bool = spec()
    loss: str = spec()
    generator_optimizer: OptimizerSchema | None = None
    discriminator_optimizer: OptimizerSchema | None = None


@dataclass
class NetModuleSchema:
    """``net.generator`` / ``net.discriminator``: the arguments of gan_zoo.nets classes."""

    latent_dim: int = spec(ge=1)
    in_dim: int = spec(ge=1)
    out_dim: int = spec(ge=1)
    hidden: int = spec(ge=1)
    depth: int = spec(ge=1)
    width: int = spec(ge=1)
    channels: int = spec(ge=1)
    image_size: int = spec(ge=1)
    norm: Literal["batch", "layer", "none"] = spec()


@dataclass
class NetSchema:
    """``net``: the latent size and the two nets."""

    latent_dim: int = spec(ge=1)
    generator: NetModuleSchema | None = None
    discriminator: NetModuleSchema | None = None


@dataclass
class DataSchema:
    """``data``: the arguments of the gan_zoo.data modules."""

    batch_size: int = spec(ge=1)
    num_workers: int = spec(ge=0)
    data_dir: str = spec()
    download: bool = spec()
    verify: bool = spec()
    root: str = spec()
    image_size: int = spec(ge=1)
    channels: Literal[1, 3] = spec()
    strict: bool = spec()
    name: str = spec()
    num_samples: int = spec(ge=1)
    seed: int = spec(ge=0)
    means: list[float] = spec()
    std: float = spec(gt=0)


@dataclass
class TrainerSchema:
    """``trainer``: Lightning ``Trainer`` arguments; gan_zoo counts steps in generator steps."""

    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"] = spec()
    devices: int | str | list[int] = spec(ge=1, also=(-1,), valid="an integer >= 1, -1 or 'auto'")
    strategy: str = spec()
    num_nodes: int = spec(ge=1)
    max_steps: int = spec(ge=1, also=(-1,), valid="an integer >= 1 (generator steps), or -1")
    max_epochs: int | None = spec(ge=1, also=(-1,))
    log_every_n_steps: int = spec(ge=1)
    limit_val_batches: int | float = spec(ge=0)
    num_sanity_val_steps: int = spec(ge=-1)
    enable_model_summary: bool = spec()
    enable_progress_bar: bool = spec()
    enable_checkpointing: bool = spec()
    default_root_dir: str = spec()


@dataclass
class CallbackSchema:
    """``callbacks.<name>``: checkpointing, sample grids, FID/IS and friends."""

    dirpath: str | None = spec()
    filename: str = spec()
    every_n_train_steps: int | None = spec(ge=0)
    save_top_k: int = spec(ge=-1)
    save_last: bool | Literal["link"] = spec()
    every_n_steps: int = spec(ge=0, also=("auto",))
    num_samples: int = spec(ge=1, also=("auto",))
    num_real: int = spec(ge=1, also=("auto",))
    seed: int = spec(ge=0)
    batch_size: int = spec(ge=1)
    refresh_rate: int = spec(ge=0)
    splits: int = spec(ge=1)


@dataclass
class FidelityCallbackSchema(CallbackSchema):
    """``callbacks.fid`` / ``callbacks.is``: FID and IS need at least 2 samples on each side."""

    num_samples: int = spec(ge=2, also=("auto",))
    num_real: int = spec(ge=2, also=("auto",))


@dataclass
class MetricsSchema:
    """``metrics``: settings shared by ``callbacks.fid`` and ``callbacks.is``."""

    inception_weights: str | None = spec(
        valid="a path to torch-fidelity InceptionV3 weights, or null"
    )


@dataclass
class LoggerSchema:
    """``logger.<name>``: CSV, TensorBoard or W&B."""

    project: str = spec()
    name: str | None = spec()
    save_dir: str = spec()
    mode: Literal["online", "offline", "disabled"] | None = spec()


@dataclass
class NaNGuardSchema:
    """``nan_guard``: :class:`gan_zoo.callbacks.NaNGuard`."""

    skip_nonfinite_steps: bool = spec()


@dataclass
class PreemptionSchema:
    """``preemption``: :class:`gan_zoo.callbacks.Preemption`."""

    dirpath: str | None = spec()
    filename: str = spec()
    exit_code: int = spec(ge=0, le=255)
    signals: list[str] = spec()


@dataclass
class TargetOnlySchema:
    """A ``_target_`` node whose keys are checked against the target's signature only."""


@dataclass
class PathsSchema:
    """``paths``: where runs and data live."""

    output_dir: str = spec()
    data_dir: str = spec()


@dataclass
class TrainSchema:
    """The whole of ``configs/train.yaml`` after composition."""

    seed: int = spec(ge=0, le=2**32 - 1)
    ckpt_path: str | None = spec(valid="a checkpoint path, 'last', or null")
    run_name: str = spec()
    data: DataSchema | None = None
    net: NetSchema | None = None
    model: ModelSchema | None = None
    trainer: TrainerSchema | None = None
    logger: dict[str, LoggerSchema] | None = None
    callbacks: dict[str, CallbackSchema] | None = None
    metrics: MetricsSchema | None = None
    paths: PathsSchema | None = None
    nan_guard: NaNGuardSchema | None = None
    preemption: PreemptionSchema | None = None
    checkpoint_io: TargetOnlySchema | None = None


# Narrower schemas for nodes whose _target_ subclasses a given class, where a key's valid range
# depends on the class: (general schema, target base class, narrower schema).
TARGET_SCHEMAS: tuple[tuple[type, type, type], ...] = (
    (CallbackSchema, FidelityCallback, FidelityCallbackSchema),  # a sample grid of 1 is fine
)


def validate_config(cfg: DictConfig) -> dict[str, Any]:
    """Check every value of a training config; return it resolved, as plain containers."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        reason = str(err).strip().splitlines()[0]
        raise ConfigValueError(key, "(unresolvable)", f"a resolvable value: {reason}") from None
    assert isinstance(resolved, dict)
    config = {str(k): v for k, v in resolved.items()}
    validate_node(TrainSchema, config, "")
    return config


def validate_node(schema: type, node: Mapping[str, Any], prefix: str) -> None:
    """Check the mapping ``node`` (at config key ``prefix``) against the dataclass ``schema``."""
    schema = _narrowed(schema, node)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    signature = signature_hints(node, prefix) if "_target_" in node else None
    for name, value in node.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        check(value != MISSING, key, value, "a value: the key is mandatory")
        if name in META_KEYS:
            continue
        if name in fields:
            if signature is not None and name not in signature:  # e.g. clip_value on WGANGP
                check_by_signature(signature, name, value, key)
            _check_field(hints[name], fields[name].metadata, value, key)
        elif signature is not None:
            check_by_signature(signature, name, value, key)
        else:
            close = difflib.get_close_matches(str(name), fields, n=1)
            known = f"did you mean {close[0]!r}?" if close else ", ".join(sorted(fields))
            raise ConfigValueError(key, value, f"a known key ({known})")


def _narrowed(schema: type, node: Mapping[str, Any]) -> type:
    target = locate(node.get("_target_"))
    for general, base, narrow in TARGET_SCHEMAS:
        if schema is general and isinstance(target, type) and issubclass(target, base):
            return narrow
    return schema


def _check_field(hint: Any, meta: Mapping[str, Any], value: Any, key: str) -> None:
    nested = dataclass_in(hint)
    if nested is not None and isinstance(value, Mapping):
        validate_node(nested, value, key)
        return
    mapping = dict_in(hint)
    if mapping is not None and isinstance(value, Mapping):
        item_schema = typing.get_args(mapping)[1]
        for name, child in value.items():
            if child is not None:
                validate_node(item_schema, child, f"{key}.{name}")
        return
    if value is None or value in meta.get("also", ()):
        check(value is not None or allows_none(hint), key, value, describe(hint, meta))
        return
    items = value if isinstance(value, list) else [value]
    ok = matches(value, hint) and all(_in_bounds(v, meta.get("bounds", {})) for v in items)
    check(ok, key, value, describe(hint, meta))


def _in_bounds(value: Any, bounds: Mapping[str, float | None]) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    ge, gt, le, lt = (bounds.get(k) for k in ("ge", "gt", "le", "lt"))
    return not (
        (ge is not None and value < ge)
        or (gt is not None and value <= gt)
        or (le is not None and value > le)
        or (lt is not None and value >= lt)
    )
