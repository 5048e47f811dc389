"""Run ``python <script> <args>`` without paying for the imports each time.

Importing Lightning, torch, torchvision and Hydra takes ~11 s of CPU here, more than most CLI
tests spend running; the suite starts ~70 CLI processes. So each test worker keeps one *warm*
interpreter (``python tests/warm_cli.py --serve``) that has done those imports and nothing else
(no torch op, no thread), and forks it once per run. The child then becomes the command: it
takes the request's working directory, environment, ``sys.argv`` and ``sys.path[0]``, writes
fds 1 and 2 to files, runs the script as ``__main__`` with :func:`runpy.run_path`, and exits
through the interpreter's normal shutdown (atexit handlers, exit status from ``SystemExit``, a
traceback and status 1 for an uncaught exception), as ``python script.py`` does. Lightning's DDP
launcher re-runs ``sys.argv`` with ``sys.executable``, so its other ranks are real processes.

What a fork cannot change: settings read when the interpreter or torch start. The server is
started with the worker's environment plus ``PYTHONHASHSEED=0``, what every CLI test sets;
:func:`run_python` starts a real process instead when a request's ``PYTHONHASHSEED``,
``OMP_NUM_THREADS`` or ``PYTHONPATH`` differ from the server's, or ``GAN_ZOO_REAL_CLI=1`` is set
(which runs the whole suite on real processes).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

# Read before the interpreter or torch's thread pool start: a fork keeps the server's.
STARTUP_VARIABLES = ("PYTHONHASHSEED", "OMP_NUM_THREADS", "PYTHONPATH")
SERVER_ENV = {"PYTHONHASHSEED": "0"}


class WarmInterpreter:
    """A ``--serve`` process of this file, and the one request it handles at a time."""

    def __init__(self) -> None:
        self.env = {**os.environ, **SERVER_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            text=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fits(self, env: dict[str, str]) -> bool:
        return all(env.get(key) == self.env.get(key) for key in STARTUP_VARIABLES)

    def run(
        self, argv: list[str], env: dict[str, str], cwd: str, timeout: float | None, text: bool
    ) -> subprocess.CompletedProcess[Any]:
        with tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"argv": argv[1:], "env": env, "cwd": cwd, "out": str(out), "err": str(err)}
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            pid = int(self.proc.stdout.readline())
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:  # the child leads its own process group: DDP ranks go with it
                os.killpg(pid, signal.SIGKILL)
                self.proc.stdout.readline()
                raise subprocess.TimeoutExpired(argv, timeout or 0.0, _read(out), _read(err))
            status = int(self.proc.stdout.readline())
            stdout, stderr = _read(out, text), _read(err, text)
        return subprocess.CompletedProcess(argv, status, stdout, stderr)

    def close(self) -> None:
        if self.alive():
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _read(path: Path, text: bool = True) -> Any:
    data = path.read_bytes() if path.exists() else b""
    return data.decode(errors="replace") if text else data


_server: WarmInterpreter | None = None


def run_python(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(argv, capture_output=True, ...)`` for ``[sys.executable, script, ...]``,
    in a fork of the warm interpreter when the request allows (see the module docstring)."""
    global _server
    env = dict(os.environ if env is None else env)
    cwd = str(cwd or os.getcwd())
    warm = len(argv) > 1 and argv[0] == sys.executable and argv[1].endswith(".py")
    if warm and os.environ.get("GAN_ZOO_REAL_CLI") != "1":
        if _server is None or not _server.alive():
            _server = WarmInterpreter()
            atexit.register(_server.close)
        if _server.fits(env):
            return _server.run(argv, env, cwd, timeout, text)
    return subprocess.run(
        argv, capture_output=True, text=text, timeout=timeout, env=env, cwd=cwd, check=False
    )


def _serve(requests: IO[str]) -> dict[str, Any] | None:
    """Fork once per request line; the parent reports the child's pid, then its exit status.
    Returns the request in the child, None in the server once its input closes."""
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            return request
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
    return None


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    # What train.py, generate.py and evaluate.py import: the slow part of their start.
    import hydra  # noqa: F401
    import lightning.pytorch  # noqa: F401

    import gan_zoo.callbacks  # noqa: F401
    import gan_zoo.cli  # noqa: F401
    import gan_zoo.evaluation  # noqa: F401
    import gan_zoo.generation  # noqa: F401
    import gan_zoo.training  # noqa: F401

    job = _serve(sys.stdin)
    if job is None:
        sys.exit(0)
    os.setpgrp()  # so that a timeout kills the run and the processes it started
    for fd, path in ((1, job["out"]), (2, job["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    script = os.path.abspath(job["argv"][0])
    sys.argv = [script, *job["argv"][1:]]
    sys.path[0] = os.path.dirname(script)  # as `python script.py` sets it
    import runpy

    runpy.run_path(script, run_name="__main__")
