"""Logger factories with the defaults gan_zoo users rely on, and W&B runs that survive restarts."""

from __future__ import annotations

import json
import netrc
import os
import re
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from gan_zoo.errors import check

_MODES = ("online", "offline", "disabled")


STATE_FILE = "gan_zoo_run.json"  # <save_dir>/wandb/<this>: the run id and the last step sent


class ResumableWandbLogger(WandbLogger):
    """A :class:`WandbLogger` that a resumed run continues without logging a step twice.

    The run id and the last logged step are kept in ``<save_dir>/wandb/gan_zoo_run.json``
    (rewritten atomically whenever metrics are logged; offline runs too). A run resumed from a
    checkpoint passes the same ``id`` with ``resume="allow"`` (W&B's own continuation, see
    :func:`continuation`) and ``logged_up_to``: metrics of steps up to it are dropped, since an
    exact resume recomputes the same values and logging them again would repeat steps.

    Args:
        logged_up_to: the highest step the continued run already logged (-1: none).
        Other arguments as :class:`lightning.pytorch.loggers.WandbLogger` (and ``wandb.init``).
    """

    def __init__(self, *args: Any, logged_up_to: int = -1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logged_up_to = logged_up_to

    @property
    def state_path(self) -> Path:
        return Path(self.save_dir or ".") / "wandb" / STATE_FILE

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:  # type: ignore[override]
        super().log_hyperparams(params)
        self._write_state(self.logged_up_to)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None and step <= self.logged_up_to:
            return
        super().log_metrics(metrics, step)
        if step is not None:
            self._write_state(int(step))

    def _write_state(self, last_step: int) -> None:
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"id": self.experiment.id, "last_step": last_step}))
        os.replace(temp, path)


def continuation(save_dir: str | Path, ckpt_path: str | Path) -> dict[str, Any]:
    """Arguments that make :func:`wandb_logger` continue the W&B run of a resumed checkpoint.

    The run and how far it logged (also after the checkpoint was written) come from gan_zoo's
    record ``gan_zoo_run.json`` in the checkpoint's own run directory
    (``<run dir>/checkpoints/x.ckpt``), else in ``<save_dir>/wandb``; the highest step either
    records for that run counts. Without a record (the wandb folder deleted, the checkpoint
    copied alone) there is nothing to continue: ``{}``, a new run.
    """
    # The checkpoint's own run first: resumed elsewhere, it continues its run, not the folder's.
    folders = [Path(ckpt_path).resolve().parent.parent / "wandb", Path(save_dir) / "wandb"]
    records = [_read_json(folder.resolve() / STATE_FILE) for folder in dict.fromkeys(folders)]
    records = [r for r in records if r.get("id")]
    if not records:
        return {}
    run_id = records[0]["id"]
    last = max(int(r.get("last_step", -1)) for r in records if r["id"] == run_id)
    return {"id": run_id, "resume": "allow", "logged_up_to": last}


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


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
    mode = choose_mode(mode)
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


def choose_mode(mode: str | None = None) -> str:
    """``mode``, else ``WANDB_MODE``, else ``online`` when a key is configured and the W&B host
    answers within 3 s, else ``offline``; refuses anything but online, offline or disabled."""
    mode = mode or os.environ.get("WANDB_MODE") or _auto_mode()
    check(mode in _MODES, "mode", mode, "one of " + ", ".join(_MODES))
    return mode


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
