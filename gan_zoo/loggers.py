"""Logger factories with the defaults gan_zoo users rely on."""

from __future__ import annotations

import netrc
import os
import socket
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from gan_zoo.errors import check

_MODES = ("online", "offline", "disabled")


def wandb_logger(
    project: str = "gan_zoo",
    name: str | None = None,
    save_dir: str = ".",
    mode: str | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` that never prompts and never hangs.

    ``mode=None`` (the default) picks ``online`` only when an API key is configured
    (``WANDB_API_KEY`` or ``wandb login``) *and* the W&B host answers within 3 s; otherwise the
    run is recorded offline under ``<save_dir>/wandb`` and can be uploaded with ``wandb sync``.
    ``WANDB_MODE`` in the environment wins over both. The API key is never put into the config.
    """
    if os.environ.get("WANDB_MODE") == "":
        del os.environ["WANDB_MODE"]  # wandb itself rejects an empty mode
    mode = mode or os.environ.get("WANDB_MODE") or _auto_mode()
    check(mode in _MODES, "mode", mode, "one of " + ", ".join(_MODES))
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(project=project, name=name, save_dir=save_dir, mode=mode, **kwargs)


def _auto_mode() -> str:
    if not _has_api_key():
        return "offline"
    base = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        with socket.create_connection((base.hostname or "api.wandb.ai", base.port or 443), 3):
            return "online"
    except OSError:
        rank_zero_warn(f"W&B host {base.hostname} unreachable: logging offline (wandb sync later).")
        return "offline"


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
