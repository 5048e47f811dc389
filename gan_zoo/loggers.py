"""Logger factories with the defaults gan_zoo users rely on, and W&B runs that survive restarts."""

from __future__ import annotations

import json
import netrc
import os
import re
import socket
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from gan_zoo.errors import check
from gan_zoo.resume import WANDB_STATE_FILE, last_logged_step, read_json

_MODES = ("online", "offline", "disabled")


class ResumableWandbLogger(WandbLogger):
    """A :class:`WandbLogger` that a resumed run continues: same run id, no step logged twice.

    The run id and the last logged step are kept in ``<save_dir>/wandb/gan_zoo_run.json``
    (rewritten atomically whenever metrics are logged; offline runs too). :meth:`continue_run`
    reopens a run id (``resume="allow"``) and drops metrics of steps up to the last one that run
    already logged: an exact resume recomputes the same values, and logging them again would
    send the step axis backwards.
    """

    STATE_FILE = WANDB_STATE_FILE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replayed_up_to = -1  # steps <= this were logged before the restart

    @property
    def state_path(self) -> Path:
        return Path(self._save_dir or ".") / "wandb" / self.STATE_FILE

    def continue_run(
        self, run_id: str | None = None, checkpoint_path: str | Path | None = None
    ) -> None:
        """Continue W&B run ``run_id`` (the checkpoint's; default: the one of ``save_dir``).

        What that run logged, also after the checkpoint was written, is read from its local
        records (:func:`last_logged_step`) in ``<save_dir>/wandb`` and in the ``wandb`` folder
        of the checkpoint's run directory (``<run dir>/checkpoints/x.ckpt``). Without any record
        of it (wandb folder deleted, checkpoint copied alone) the logged steps are unknown, so a
        new run id is started instead, with a one-line warning: reopening could send the run's
        step axis backwards.
        """
        run_id = run_id or read_json(self.state_path).get("id")
        if not run_id:
            return
        folders = [self.state_path.parent]
        if checkpoint_path is not None:
            folders.append(Path(checkpoint_path).resolve().parent.parent / "wandb")
        last = last_logged_step(run_id, folders)
        if last is None:
            new_id = uuid.uuid4().hex[:8]
            rank_zero_warn(
                f"W&B run {run_id} of the checkpoint is not continued: no record of the steps it "
                f"logged under {' or '.join(str(f) for f in folders)}, so its step axis could go "
                f"backwards; logging to a new run {new_id} instead"
            )
            run_id, last = new_id, -1
        self._wandb_init.update(id=run_id, resume="allow")
        self._id = run_id
        self._replayed_up_to = last

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

    def _write_state(self, last_step: int) -> None:
        if self._experiment is None or not getattr(self._experiment, "id", None):
            return
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"id": self._experiment.id, "last_step": last_step}))
        os.replace(temp, path)


# Environment variables whose values must never reach a log, config or checkpoint, and config
# keys that hold such values (any name containing key, token, secret, password or credential).
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_SECRET_KEY = re.compile(r"(key|token|secret|passw(or)?d|credential)", re.IGNORECASE)
REDACTED = "<redacted>"
# A command-line override inside a string: ``[+~]a.b.name=value``, value quoted or up to , or space.
_OVERRIDE = re.compile(r"(?P<key>[\w.@/+~-]+)=(?P<value>'[^']*'|\"[^\"]*\"|[^,\s]*)")
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # in <run dir>/.hydra


def redact_secrets(config: Any, environ: Mapping[str, str] | None = None) -> Any:
    """``config`` (plain dicts/lists) with secrets replaced by ``<redacted>``.

    A secret is a value under a key whose name contains key/token/secret/password/credential,
    or any string equal to the value of an environment variable named so (``WANDB_API_KEY``,
    ``HF_TOKEN``, ...): e.g. what ``${oc.env:WANDB_API_KEY}`` resolved to.
    """
    return _redact(config, _env_secrets(environ), secret_key=False)


def _env_secrets(environ: Mapping[str, str] | None) -> set[str]:
    environ = os.environ if environ is None else environ
    return {v for k, v in environ.items() if _SECRET_ENV.search(k) and len(v) >= 8}


def _redact(node: Any, secrets: set[str], secret_key: bool) -> Any:
    if isinstance(node, Mapping):
        return {
            k: _redact(v, secrets, secret_key or bool(_SECRET_KEY.search(str(k))))
            for k, v in node.items()
        }
    if isinstance(node, (list, tuple)):
        return [_redact(v, secrets, secret_key) for v in node]
    if isinstance(node, str) and (node in secrets or (secret_key and node)):
        return REDACTED
    return node


def redact_hydra_files(
    run_dir: str | Path, environ: Mapping[str, str] | None = None, subdir: str = ".hydra"
) -> list[Path]:
    """Rewrite Hydra's record of the run (``<run_dir>/.hydra/*.yaml``) with secrets redacted.

    Hydra writes the command-line overrides (``overrides.yaml``, ``hydra.yaml``, and for a
    sweep ``multirun.yaml`` one level up) and the config (``config.yaml``) before any gan_zoo
    code runs, so ``logger.wandb.api_key=...`` on the command line would stay on disk.
    Redacted: values of overrides and config keys named like secrets, values equal to secret
    environment variables (:func:`redact_secrets`), and every other occurrence of those values.
    Files are replaced atomically; the ones rewritten are returned. Idempotent, so every DDP
    rank may call it.
    """
    folder = Path(run_dir) / subdir
    paths = [folder / name for name in HYDRA_FILES] + [Path(run_dir).parent / "multirun.yaml"]
    docs = {path: _load_yaml(path) for path in paths}
    secrets = _env_secrets(environ) | override_secrets(_strings(list(docs.values())))
    rewritten = []
    for path, doc in docs.items():
        redacted = _redact_strings(redact_secrets(doc, environ), secrets)
        if doc is not None and redacted != doc:
            temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temp.write_text(yaml.safe_dump(redacted, sort_keys=False, allow_unicode=True))
            os.replace(temp, path)
            rewritten.append(path)
    return rewritten


def override_secrets(overrides: Iterable[str]) -> set[str]:
    """Values given to keys named like secrets in command-line overrides (``a.api_key=v``)."""
    return {
        match["value"].strip("'\"")
        for override in overrides
        for match in _OVERRIDE.finditer(override)
        if _SECRET_KEY.search(match["key"].rsplit(".", 1)[-1]) and match["value"]
    }


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _strings(node: Any) -> list[str]:
    if isinstance(node, Mapping):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _redact_strings(node: Any, secrets: set[str]) -> Any:
    """Every string of ``node`` with overrides of secret-named keys and ``secrets`` redacted."""
    if isinstance(node, Mapping):
        return {k: _redact_strings(v, secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact_strings(v, secrets) for v in node]
    if not isinstance(node, str):
        return node

    def value(match: re.Match[str]) -> str:
        secret = _SECRET_KEY.search(match["key"].rsplit(".", 1)[-1])
        return f"{match['key']}={REDACTED}" if secret and match["value"] else match[0]

    node = _OVERRIDE.sub(value, node)
    for secret in sorted((s for s in secrets if len(s) >= 6), key=len, reverse=True):
        node = node.replace(secret, REDACTED)
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
    ``WANDB_MODE`` in the environment wins over both. The API key is never put into the config,
    and a secret on the command line never into W&B's run metadata.
    """
    if os.environ.get("WANDB_MODE") == "":
        del os.environ["WANDB_MODE"]  # wandb itself rejects an empty mode
    mode = mode or os.environ.get("WANDB_MODE") or _auto_mode()
    check(mode in _MODES, "mode", mode, "one of " + ", ".join(_MODES))
    os.environ.setdefault("WANDB_SILENT", "true")
    kwargs["settings"] = _metadata_settings(kwargs.get("settings"), sys.argv[1:])
    return ResumableWandbLogger(project=project, name=name, save_dir=save_dir, mode=mode, **kwargs)


def _metadata_settings(settings: Any, argv: list[str]) -> Any:
    """W&B settings that keep a secret on the command line out of W&B's run metadata.

    W&B records ``sys.argv`` in every run's metadata (its run file, and the run page online).
    When an argument holds a secret (an override of a key named like one, or the value of a
    secret environment variable), the metadata is not collected (``x_disable_meta``).
    """
    env = _env_secrets(None)
    if not override_secrets(argv) and not any(s in arg for s in env for arg in argv):
        return settings
    rank_zero_warn(
        "W&B run metadata (command line, git, host) not recorded: the command line holds a secret"
    )
    if settings is None or isinstance(settings, Mapping):
        return {**(settings or {}), "x_disable_meta": True}
    settings.x_disable_meta = True  # a wandb.Settings
    return settings


def _auto_mode() -> str:
    if not _has_api_key():
        return "offline"
    base = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    if _reachable(base.hostname or "api.wandb.ai", base.port or 443):
        return "online"
    rank_zero_warn(f"W&B host {base.hostname} unreachable: logging offline (wandb sync later).")
    return "offline"


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether a TCP connection opens within ``timeout`` seconds, name lookup included.

    ``create_connection``'s timeout does not cover the DNS lookup, which can hang on a machine
    without network; a daemon thread bounds the whole probe.
    """
    opened: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout).close()
            opened.append(True)
        except OSError:
            opened.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened and opened[0])


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
