"""Loading trained models back from checkpoints without unpickling code."""

from __future__ import annotations

import importlib
import inspect
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from gan_zoo.checkpointing.run_config import CONFIG_KEY
from gan_zoo.models.base import GAN


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, unsafe or not a gan_zoo checkpoint."""


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on CPU, with one-line errors naming the file.

    Only tensors and plain containers are read: a pickled object (code) is refused before it
    is built, so its payload never runs. ``mmap=True`` maps tensors lazily (a cheap look).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {path} refused: it holds pickled objects, not only tensors and plain "
            f"containers ({_refusal_reason(err)}); gan_zoo never unpickles code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {reason}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path} is not a checkpoint (a {type(checkpoint)})")
    return checkpoint


def _refusal_reason(err: Exception) -> str:
    """The line of torch's weights-only error that names the refused global."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (named or lines or [type(err).__name__])[0]


def locate(path: Any) -> Any:
    """The object a dotted ``path`` names (as Hydra's ``_target_``), or None; never calls it."""
    if not isinstance(path, str) or not path:
        return None
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            obj = getattr(obj, name, None)
        return obj
    return None


# What a checkpoint's config may name as ``_target_``: nets and models (nn.Module) and
# optimizers, from gan_zoo, torch or the user's own modules (variants defined outside gan_zoo,
# as in the README). Functions (``os.system``, ``builtins.open``, ...) are refused, not called.
_SAFE_BASES: tuple[type, ...] = (torch.nn.Module, torch.optim.Optimizer)


def check_targets(node: Any, path: Path, key: str = "") -> None:
    """Refuse a config whose ``_target_`` is not an nn.Module or optimizer class.

    Locating a target imports its module (installed code), but calls nothing.
    """
    if isinstance(node, list):
        for i, item in enumerate(node):
            check_targets(item, path, f"{key}[{i}]")
        return
    if not isinstance(node, dict):
        return
    target = node.get("_target_")
    if target is not None:
        obj = locate(target)
        if not (isinstance(obj, type) and issubclass(obj, _SAFE_BASES)):
            raise CheckpointError(
                f"checkpoint {path} refused: {key}._target_={target!r} is not an nn.Module or "
                "optimizer class"
            )
    for name, child in node.items():
        check_targets(child, path, f"{key}.{name}" if key else str(name))


def build_model(config: dict[str, Any], path: str | Path = "<config>") -> GAN:
    """Instantiate nets and model from a resolved run config (the ``net`` and ``model`` nodes).

    Every ``_target_`` is checked first (:func:`check_targets`): a checkpoint's config is data
    from a file, and Hydra would otherwise call whatever it names.
    """
    check_targets({"net": config["net"], "model": config["model"]}, Path(path))
    generator = instantiate(config["net"]["generator"])
    discriminator = instantiate(config["net"]["discriminator"])
    return instantiate(config["model"], generator=generator, discriminator=discriminator)


def load_model(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    model_class: type[GAN] | None = None,
    generator: torch.nn.Module | None = None,
    discriminator: torch.nn.Module | None = None,
    **model_kwargs: Any,
) -> GAN:
    """Rebuild the trained LightningModule, of the right class, from a checkpoint.

    A checkpoint written by gan_zoo's ``train.py`` stores its run config, which rebuilds nets
    and model. For one written by a plain ``lightning.Trainer`` (no stored config), pass the
    class and fresh nets of the trained architecture, plus the constructor arguments that
    shape the model (``latent_dim``; ``ema_decay > 0`` if it kept an EMA generator;
    ``replay_size`` to get its replay buffer back); given nets also override a stored config.

    Only tensors and plain containers are read (``weights_only=True``): a checkpoint carrying
    pickled code is refused, never executed. The model is returned in eval mode.

    >>> model = load_model("outputs/.../checkpoints/last.ckpt")  # doctest: +SKIP
    >>> images = model.sample(64)  # (64, C, H, W) in [-1, 1]  # doctest: +SKIP
    >>> model = load_model(  # a checkpoint of a plain lightning.Trainer  # doctest: +SKIP
    ...     "lightning_logs/version_0/checkpoints/last.ckpt",
    ...     model_class=WGANGP, generator=G, discriminator=D, latent_dim=128,
    ... )
    """
    checkpoint = read_checkpoint(path)
    nets = (model_class, generator, discriminator)
    from_arguments = any(x is not None for x in nets) or bool(model_kwargs)
    if from_arguments:
        model = _model_from_arguments(checkpoint, Path(path), *nets, **model_kwargs)
    else:
        model = build_model(_stored_config(checkpoint, Path(path)), path)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        source = "the nets and arguments given" if from_arguments else "its own config"
        raise CheckpointError(f"checkpoint {path} does not fit {source}: {reason}") from None
    model.on_load_checkpoint(checkpoint)
    return model.to(map_location).eval()


def _stored_config(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """The run config ``train.py`` stored, or a one-line error saying how to load without it."""
    config = checkpoint.get(CONFIG_KEY)
    if not isinstance(config, dict) or "model" not in config or "net" not in config:
        raise CheckpointError(
            f"checkpoint {path} has no '{CONFIG_KEY}' (not written by gan_zoo's train.py): "
            "pass the trained nets, e.g. load_model(path, model_class=NonSaturatingGAN, "
            "generator=G, discriminator=D, latent_dim=...), or use "
            "NonSaturatingGAN.load_from_checkpoint(path, generator=G, discriminator=D, "
            "latent_dim=..., weights_only=True)"
        )
    return config


def _model_from_arguments(
    checkpoint: dict[str, Any],
    path: Path,
    model_class: type[GAN] | None,
    generator: torch.nn.Module | None,
    discriminator: torch.nn.Module | None,
    **model_kwargs: Any,
) -> GAN:
    """``model_class(generator, discriminator, **model_kwargs)`` for the checkpoint's weights.

    Hyperparameters the checkpoint saved (``save_hyperparameters`` in a subclass) fill in
    constructor arguments not given, as in Lightning's ``load_from_checkpoint``.
    """
    if model_class is None or generator is None or discriminator is None:
        given = {"model_class": model_class, "generator": generator, "discriminator": discriminator}
        missing = [name for name, value in given.items() if value is None]
        raise CheckpointError(
            f"checkpoint {path}: load_model needs model_class, generator and discriminator "
            f"together; missing {', '.join(missing)}"
        )
    if not (isinstance(model_class, type) and issubclass(model_class, GAN)):
        raise CheckpointError(f"model_class={model_class!r} is not a gan_zoo.GAN subclass")
    params = inspect.signature(model_class.__init__).parameters
    saved = checkpoint.get("hyper_parameters") or {}
    nets = ("generator", "discriminator")
    kwargs = {k: v for k, v in dict(saved).items() if k in params and k not in nets}
    kwargs |= model_kwargs
    if "latent_dim" not in kwargs and hasattr(generator, "latent_dim"):
        kwargs["latent_dim"] = generator.latent_dim
    has_ema = any(k.startswith("generator_ema.") for k in checkpoint.get("state_dict", {}))
    if has_ema and not kwargs.get("ema_decay"):
        raise CheckpointError(
            f"checkpoint {path} holds an EMA generator (generator_ema.*): pass ema_decay= "
            "(the run's value, > 0) to load_model"
        )
    return model_class(generator=generator, discriminator=discriminator, **kwargs)
