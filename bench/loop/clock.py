"""Measuring inside a worker: the ``Clock`` that times chunks of steps, and memory readings.

Per chunk: wall-clock and process CPU time and minor page faults. Memory: RSS from
``/proc/self/status``, the bytes of tensor state, and the transient peak of one profiled cycle
(the CPU allocator's events).
"""

from __future__ import annotations

import itertools
import json
import re
import resource
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile, record_function

if TYPE_CHECKING:  # only a hint here: jobs imports this module (``endless`` feeds a Clock)
    from bench.loop.jobs import Job

_MARK = "bench_loop/profiled_cycle"


def proc_status_kib(key: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in KiB (Linux), else None."""
    try:
        match = re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def state_bytes(modules: list[nn.Module], optimizers: list[torch.optim.Optimizer]) -> int:
    """Bytes of parameters, buffers, gradients and optimizer state (unique storages)."""
    params = [p for m in modules for p in m.parameters()]
    tensors = params + [b for m in modules for b in m.buffers()]
    tensors += [p.grad for p in params if p.grad is not None]
    tensors += [v for o in optimizers for s in o.state.values() for v in s.values()]
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in tensors
        if isinstance(t, Tensor)
    }
    return sum(storages.values())


def transient_peak_bytes(prof: profile) -> int:
    """Peak CPU tensor bytes above the level at the ``_MARK`` annotation (allocator events)."""
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(f"{tmp}/trace.json")
        events = json.loads(Path(f"{tmp}/trace.json").read_text())["traceEvents"]
    mark = min(e["ts"] for e in events if e.get("name") == _MARK)
    memory = sorted(
        (e["ts"], e["args"]["Total Allocated"])
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0
    )
    before = [total for ts, total in memory if ts < mark]
    after = [total for ts, total in memory if ts >= mark]
    base = before[-1] if before else 0
    return max([base, *after]) - base


class Clock:
    """Ticked after every generator step; talks to the parent over a pipe.

    After ``warmup`` steps it resets the peak-memory counters, sends ``ready`` and waits. Each
    ``go`` times the next chunk of steps and answers ``chunk``: wall and process CPU seconds,
    and those spent in the runner's ``inner`` part. A final ``go`` runs two untimed cycles, the
    second under the memory profiler (CPU), and answers ``done``.
    """

    def __init__(self, conn: Connection, job: Job) -> None:
        self.conn, self.cuda = conn, job.device == "cuda"
        self.boundaries = list(itertools.accumulate((job.warmup, *job.chunks)))
        self.total_steps = self.boundaries[-1] + 2
        self.step, self.inner, self.started = 0, [0.0, 0.0], self.now()
        self.faults_at_go = 0
        self.memory: dict[str, Any] = {"rss_start_kib": proc_status_kib("VmRSS")}
        self.state: Callable[[], int] = lambda: 0  # set by the runner
        self.profiler: profile | None = None

    def tick(self) -> None:
        self.step += 1
        if self.step in self.boundaries:
            if self.cuda:
                torch.cuda.synchronize()
            if self.step == self.boundaries[0]:
                self._reset_peaks()
                self.conn.send(("ready", {"threads": torch.get_num_threads()}))
            else:
                (wall, cpu), (wall0, cpu0) = self.now(), self.started
                chunk = {"seconds": wall - wall0, "cpu_seconds": cpu - cpu0}
                chunk["faults"] = self.faults() - self.faults_at_go
                chunk.update(inner=self.inner[0], inner_cpu=self.inner[1])
                self.conn.send(("chunk", chunk))
            if self.step == self.boundaries[-1]:
                self._read_peaks()
            self._wait_for_go()
            if self.step == self.boundaries[-1] and not self.cuda:
                self.profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
                self.profiler.__enter__()
        elif self.step == self.total_steps - 1 and self.profiler is not None:
            self.memory["tensor_state_bytes"] = self.state()
            with record_function(_MARK):
                pass
        elif self.step == self.total_steps:
            if self.profiler is not None:
                self.profiler.__exit__(None, None, None)
                self.memory["tensor_transient_bytes"] = transient_peak_bytes(self.profiler)
            self.conn.send(("done", self.memory))

    @staticmethod
    def now() -> tuple[float, float]:
        """Wall-clock and process CPU time (all threads) in seconds."""
        return time.perf_counter(), time.process_time()

    @staticmethod
    def faults() -> int:
        """Minor page faults of this process so far (the kernel zero-filling fresh pages)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def add_inner(self, since: tuple[float, float]) -> None:
        wall, cpu = self.now()
        self.inner[0] += wall - since[0]
        self.inner[1] += cpu - since[1]

    def _wait_for_go(self) -> None:
        message = self.conn.recv()
        assert message == "go", message
        self.inner, self.started, self.faults_at_go = [0.0, 0.0], self.now(), self.faults()

    def _reset_peaks(self) -> None:
        self.memory["rss_ready_kib"] = proc_status_kib("VmRSS")
        try:  # Linux: resets VmHWM (peak RSS) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
            self.memory["rss_peak_reset"] = True
        except OSError:
            self.memory["rss_peak_reset"] = False
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def _read_peaks(self) -> None:
        self.memory["rss_peak_kib"] = proc_status_kib("VmHWM")
        if self.cuda:
            self.memory["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
