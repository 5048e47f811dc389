"""Run a metric check on 2 gloo processes with a deadline, so that a deadlock fails the test."""

from __future__ import annotations

import json
import multiprocessing
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch.multiprocessing as mp

# Ranks start as forks of one forkserver per test worker that has imported these once (~10 s
# of imports each spawned rank used to pay); the server never runs a torch op or a thread, so
# its forks are as clean as spawned processes.
START_METHOD = "forkserver"
multiprocessing.set_forkserver_preload(
    ["torch", "lightning.pytorch", "torch_fidelity", "gan_zoo.training", "gan_zoo.metrics"]
)


def run_two_processes(
    worker: Callable[..., None], weights: Path, out: Path, deadline_s: float, what: str
) -> list[dict[str, Any]]:
    """Spawn ``worker(rank, port, weights, out)`` on ranks 0 and 1; each writes
    ``<out>/rank<r>.json``. Returns the two results, or fails the test (naming ``what``) when
    they are not done within ``deadline_s``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = mp.start_processes(
        worker, args=(port, str(weights), str(out)), nprocs=2, join=False, start_method=START_METHOD
    )
    deadline = time.monotonic() + deadline_s
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:  # only the two processes started above
                process.kill()
            pytest.fail(f"2-process {what} did not finish within {deadline_s} s: deadlock")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
