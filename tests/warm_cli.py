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

:func:`run_python` stands for ``subprocess.run`` and :func:`start_python` for
``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``communicate``, ``returncode``), for the
tests that signal a run while it trains. Each fork leads its own process group, like a process
started with ``start_new_session=True``.
"""

from __future__ import annotations

import atexit
import contextlib
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
            bufsize=0,  # unbuffered: select() on the pipe then tells whether a line is there
        )
        self.busy = False
        self.child = 0  # the pid of the last run started

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fits(self, env: dict[str, str]) -> bool:
        return all(env.get(key) == self.env.get(key) for key in STARTUP_VARIABLES)

    def line(self, timeout: float | None = None) -> str | None:
        """The server's next line, or None if none came within ``timeout`` seconds."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        data = b""
        while not data.endswith(b"\n"):  # byte by byte: never read past the line
            byte = os.read(self.proc.stdout.fileno(), 1)
            if not byte:
                raise RuntimeError("the warm interpreter died")
            data += byte
        return data.decode()

    def start(self, argv: list[str], env: dict[str, str], cwd: str, text: bool) -> WarmProcess:
        """Fork the server into ``argv``; the child leads its own process group."""
        folder = tempfile.TemporaryDirectory()
        out, err = Path(folder.name, "stdout"), Path(folder.name, "stderr")
        request = {"argv": argv[1:], "env": env, "cwd": cwd, "out": str(out), "err": str(err)}
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.busy = True
        pid = self.line()
        assert pid is not None
        self.child = int(pid)
        return WarmProcess(self, argv, self.child, folder, text)

    def run(
        self, argv: list[str], env: dict[str, str], cwd: str, timeout: float | None, text: bool
    ) -> subprocess.CompletedProcess[Any]:
        process = self.start(argv, env, cwd, text)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # the whole group: DDP ranks go with the run
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise subprocess.TimeoutExpired(argv, timeout or 0.0, *process.output()) from None
        return subprocess.CompletedProcess(argv, process.wait(), stdout, stderr)

    def close(self) -> None:
        if self.alive():
            assert self.proc.stdin is not None
            if self.busy:  # a test left its run going: stop it, or the server waits for it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.child, signal.SIGKILL)
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


class WarmProcess:
    """One forked run, with the part of :class:`subprocess.Popen` the signal tests use: ``pid``
    (signal it, or its group), ``poll``, ``wait``, ``communicate`` and ``returncode``. Its
    stdout and stderr go to files, read once it has exited."""

    def __init__(
        self,
        server: WarmInterpreter,
        args: list[str],
        pid: int,
        folder: tempfile.TemporaryDirectory[str],
        text: bool,
    ) -> None:
        self.server, self.args, self.pid, self.folder, self.text = server, args, pid, folder, text
        self.returncode: int | None = None
        self._output: tuple[Any, Any] | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._collect(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        self.wait(timeout)
        return self.output()

    def output(self) -> tuple[Any, Any]:
        if self._output is not None:
            return self._output
        folder = Path(self.folder.name)
        found = (_read(folder / "stdout", self.text), _read(folder / "stderr", self.text))
        if self.returncode is not None:
            self._output = found
            self.folder.cleanup()
        return found

    def _collect(self, timeout: float | None) -> bool:
        status = self.server.line(timeout)
        if status is None:
            return False
        self.returncode = int(status)
        self.server.busy = False
        return True


def _read(path: Path, text: bool = True) -> Any:
    data = path.read_bytes() if path.exists() else b""
    return data.decode(errors="replace") if text else data


_server: WarmInterpreter | None = None


def _warm_server(argv: list[str], env: dict[str, str]) -> WarmInterpreter | None:
    """The worker's idle warm interpreter if ``argv`` and ``env`` can run in a fork of it."""
    global _server
    warm = len(argv) > 1 and argv[0] == sys.executable and argv[1].endswith(".py")
    if not warm or os.environ.get("GAN_ZOO_REAL_CLI") == "1":
        return None
    if _server is None or not _server.alive():
        _server = WarmInterpreter()
        atexit.register(_server.close)
    return _server if _server.fits(env) and not _server.busy else None


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
    env = dict(os.environ if env is None else env)
    cwd = str(cwd or os.getcwd())
    server = _warm_server(argv, env)
    if server is not None:
        return server.run(argv, env, cwd, timeout, text)
    return subprocess.run(
        argv, capture_output=True, text=text, timeout=timeout, env=env, cwd=cwd, check=False
    )


def start_python(
    argv: list[str], *, env: dict[str, str], cwd: str | os.PathLike[str]
) -> WarmProcess | subprocess.Popen[str]:
    """``subprocess.Popen(argv, start_new_session=True, stderr=PIPE, text=True)`` for a
    ``[sys.executable, script, ...]`` that is signalled while it runs: a fork of the warm
    interpreter when the request allows, leading its own process group as the session leader of
    ``start_new_session`` does."""
    server = _warm_server(argv, env)
    if server is not None:
        return server.start(argv, env, str(cwd), text=True)
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
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
