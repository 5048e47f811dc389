"""A variant's paper defaults as a Hydra config node, read off the class itself.

The defaults of a variant (its optimizer, ``n_critic``, ``gp_weight``, ...) live in one place: the
class, as class attributes and constructor defaults, where Python users get them too. Each
``configs/model/<name>.yaml`` pulls them in through Hydra's ConfigStore:

    defaults:
      - paper@model: WGANGP

so ``python train.py model=wgan_gp --cfg job`` shows every value, and
``model.generator_optimizer.lr=2e-4`` or ``model.n_critic=3`` override them as usual.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from hydra.core.config_store import ConfigStore

from gan_zoo.models.base import GAN
from gan_zoo.optim import OptimizerFactory

GROUP = "model/paper"


def public_path(obj: Any) -> str:
    """The shortest dotted path importing ``obj`` (``torch.optim.Adam``, not ``...adam.Adam``)."""
    name, parts = str(obj.__qualname__), str(obj.__module__).split(".")
    for end in range(1, len(parts) + 1):
        module = importlib.import_module(".".join(parts[:end]))
        if getattr(module, name, None) is obj:
            return f"{module.__name__}.{name}"
    return f"{obj.__module__}.{name}"


def optimizer_node(factory: OptimizerFactory) -> dict[str, Any]:
    """A ``functools.partial(torch.optim.X, **kw)`` as a Hydra ``_partial_`` node."""
    func = getattr(factory, "func", factory)
    keywords = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in (getattr(factory, "keywords", {}) or {}).items()
    }
    return {"_target_": public_path(func), "_partial_": True, **keywords}


def constructor_defaults(cls: type) -> dict[str, Any]:
    """Keyword defaults of ``cls.__init__`` and of its bases' while each passes ``**kwargs``."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        for p in parameters:
            if p.default is not p.empty and p.name not in found:
                found[p.name] = p.default
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return found


def paper_defaults(cls: type[GAN]) -> dict[str, Any]:
    """The config node of ``cls``: ``_target_``, the shared latent size and every default.

    >>> from gan_zoo.models import WGANGP
    >>> node = paper_defaults(WGANGP)
    >>> node["n_critic"], node["gp_weight"], node["generator_optimizer"]["lr"]
    (5, 10.0, 0.0001)
    """
    node: dict[str, Any] = {
        "_target_": public_path(cls),
        "latent_dim": "${net.latent_dim}",
    }
    for name, default in constructor_defaults(cls).items():
        node[name] = list(default) if isinstance(default, tuple) else default
    node["n_critic"] = cls.default_n_critic
    node["generator_optimizer"] = optimizer_node(cls.default_optimizer)
    node["discriminator_optimizer"] = optimizer_node(cls.default_optimizer)
    return node


def register(classes: list[type[GAN]]) -> None:
    """Store :func:`paper_defaults` of each class as ``model/paper/<ClassName>``."""
    store = ConfigStore.instance()
    for cls in classes:
        store.store(group=GROUP, name=cls.__name__, node=paper_defaults(cls))
