"""Logger factories with the defaults gan_zoo users rely on, and W&B runs that survive restarts."""

from __future__ import annotations

import json
import netrc
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from gan_zoo.errors import check

_MODES = ("online", "offline", "disabled")


class ResumableWandbLogger(WandbLogger):
    """A :class:`WandbLogger` that a resumed run continues: same run id, no step logged twice.

    The run id and the last logged step are kept in ``<save_dir>/wandb/gan_zoo_run.json``
    (rewritten atomically whenever metrics are logged; offline runs too). After
    :meth:`continue_run`, W&B reopens that id (``resume="allow"``) and metrics of steps up to the
    last one already logged are dropped: an exact resume recomputes the same values, and
    logging them again would send the step axis backwards.
    """

    STATE_FILE = "gan_zoo_run.json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replayed_up_to = -1  # steps <= this were logged before the restart

    @property
    def state_path(self) -> Path:
        return Path(self._save_dir or ".") / "wandb" / self.STATE_FILE

    def continue_run(self, run_id: str | None = None) -> None:
        """Reopen the W&B run ``run_id`` (default: the one recorded under ``save_dir``)."""
        state = self._read_state()
        run_id = run_id or state.get("id")
        if not run_id:
            return
        self._wandb_init.update(id=run_id, resume="allow")
        self._id = run_id
        if state.get("id") == run_id:
            self._replayed_up_to = int(state.get("last_step", -1))

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:  # type: ignore[override]
        super().log_hyperparams(params)
        self._write_state(self._replayed_up_to)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None and step <= self._replayed_up_to:
            return
        super().log_metrics(metrics, step)
        if step is not None:
            self._write_state(int(step))

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, last_step: int) -> None:
        if self._experiment is None or not getattr(self._experiment, "id", None):
            return
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"id": self._experiment.id, "last_step": last_step}))
        os.replace(temp, path)


# Environment variables whose values must never reach a log, config or checkpoint, and config
# keys that hold such values.
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_SECRET_KEY = re.compile(r"(^|_)(api_?key|token|secret|password|passwd|credentials?)$", re.I)
REDACTED = "<redacted>"


def redact_secrets(config: Any, environ: Mapping[str, str] | None = None) -> Any:
    """``config`` (plain dicts/lists) with secrets replaced by ``<redacted>``.

    A secret is a value under a key named like ``api_key``/``token``/``password``, or any string
    equal to the value of such an environment variable (``WANDB_API_KEY``, ``HF_TOKEN``, ...):
    e.g. what ``${oc.env:WANDB_API_KEY}`` resolved to.
    """
    environ = os.environ if environ is None else environ
    secrets = {v for k, v in environ.items() if _SECRET_ENV.search(k) and len(v) >= 8}
    return _redact(config, secrets, secret_key=False)


def _redact(node: Any, secrets: set[str], secret_key: bool) -> Any:
    if isinstance(node, Mapping):
        return {k: _redact(v, secrets, bool(_SECRET_KEY.search(str(k)))) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_redact(v, secrets, secret_key) for v in node]
    if isinstance(node, str) and (node in secrets or (secret_key and node)):
        return REDACTED
    return node


def wandb_logger(
    project: str = "gan_zoo",
    name: str | None = None,
    save_dir: str = ".",
    mode: str | None = None,
    **kwargs: Any,
) -> ResumableWandbLogger:
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
    return ResumableWandbLogger(project=project, name=name, save_dir=save_dir, mode=mode, **kwargs)


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
