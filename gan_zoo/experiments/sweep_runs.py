"""The runs of a Hydra sweep, read back from their run directories.

``train.py`` (one run, or each job of ``train.py -m``) leaves in its run directory:

- ``.hydra/overrides.yaml``: the run's own overrides (``model=ns_gan``, ``seed=1``, ...);
- ``.hydra/config.yaml``: the composed config (``seed``, ``trainer.max_steps``, ...);
- with ``logger=csv``, ``csv/version_<k>/metrics.csv``: Lightning's CSVLogger, one row per
  logging call, a ``step`` column (the generator step) and one column per metric, empty where
  the row did not log it. A run resumed with ``ckpt_path=last`` appends a new version.

Every launcher (basic, joblib, submitit) and sweeper (basic, Optuna) writes this same layout
under ``hydra.sweep.dir``, so one reader serves them all.

    >>> override_key("+model.ema_decay=0.999"), override_value("model=ns_gan")
    ('model.ema_decay', 'ns_gan')
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

OVERRIDES = ".hydra/overrides.yaml"
CONFIG = ".hydra/config.yaml"
METRICS = "csv/version_*/metrics.csv"
# Columns of Lightning's CSVLogger that index rows rather than hold a metric.
INDEX_COLUMNS = frozenset({"step", "epoch"})


@dataclass
class RunRecord:
    """One run as its directory records it."""

    run_dir: Path
    overrides: list[str]
    seed: int | None
    max_steps: int | None  # trainer.max_steps (generator steps); None when not an integer
    final: dict[str, float] = field(default_factory=dict)  # metric -> its last logged value
    final_step: dict[str, int] = field(default_factory=dict)  # metric -> step of that value

    def complete(self, metric: str) -> bool:
        """Whether ``metric``'s last value was logged at ``trainer.max_steps``, i.e. by the
        evaluation at the end of training (a diverged or stopped run has none there)."""
        if metric not in self.final:
            return False
        if self.max_steps is None or self.max_steps < 0:  # a budget in epochs: no step to check
            return True
        return self.final_step[metric] >= self.max_steps


def override_key(override: str) -> str:
    """The key of a Hydra override, without ``+``/``++``/``~`` (``+a.b=1`` -> ``a.b``)."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    """The value of a Hydra override as written (``model=ns_gan`` -> ``ns_gan``)."""
    return override.split("=", 1)[1] if "=" in override else ""


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Every run directory under ``sweep_dir`` (itself included), in natural order
    (``2-...`` before ``10-...``)."""
    found = {path.parent.parent for path in sweep_dir.rglob(OVERRIDES)}
    return sorted(found, key=_natural_key)


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def logged_values(run_dir: Path) -> Iterator[tuple[int, str, float]]:
    """``(step, metric, value)`` for every value ``run_dir``'s CSV logs hold, in logging order
    (versions in order, so a resumed run's values come after the ones it resumed from); step
    -1 where the row has none."""
    versions = sorted(run_dir.glob(METRICS), key=lambda p: _natural_key(p.parent))
    for path in versions:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                step = _to_float(row.get("step"))
                for name, text in row.items():
                    value = _to_float(text)
                    if name is None or name in INDEX_COLUMNS or value is None:
                        continue
                    yield (-1 if step is None or math.isnan(step) else int(step)), name, value


def final_metrics(run_dir: Path) -> tuple[dict[str, float], dict[str, int]]:
    """The last logged value of every metric of ``run_dir``'s CSV logs, and the step it was
    logged at. Versions are read in order, so a resumed run ends with its resumed values."""
    values: dict[str, float] = {}
    steps: dict[str, int] = {}
    for step, name, value in logged_values(run_dir):
        values[name], steps[name] = value, step
    return values, steps


def metric_history(run_dir: Path, metric: str) -> dict[int, float]:
    """``metric``'s logged values by step; where a resumed run logged a step again, its
    later value."""
    return {step: value for step, name, value in logged_values(run_dir) if name == metric}


def _to_float(text: str | None) -> float | None:
    """A CSV cell as a float; None when empty (the row did not log that metric)."""
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def read_run(run_dir: Path) -> RunRecord:
    """The overrides, seed, budget and final metrics of one run directory."""
    overrides = yaml.safe_load((run_dir / OVERRIDES).read_text()) or []
    config_path = run_dir / CONFIG
    config = yaml.safe_load(config_path.read_text()) if config_path.exists() else None
    config = config if isinstance(config, dict) else {}
    trainer = config.get("trainer")
    seed = config.get("seed")
    max_steps = trainer.get("max_steps") if isinstance(trainer, dict) else None
    final, final_step = final_metrics(run_dir)
    return RunRecord(
        run_dir=run_dir,
        overrides=[str(o) for o in overrides],
        seed=seed if isinstance(seed, int) else None,
        max_steps=max_steps if isinstance(max_steps, int) else None,
        final=final,
        final_step=final_step,
    )


def read_sweeps(sweep_dirs: Iterable[Path]) -> list[RunRecord]:
    """Every run of every sweep directory, in order."""
    return [read_run(run_dir) for sweep in sweep_dirs for run_dir in find_run_dirs(sweep)]
