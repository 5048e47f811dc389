"""The warm CLI runner behaves as ``subprocess.run([python, script, ...])`` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import warm_cli
from tests.warm_cli import run_python

SCRIPT = """
import atexit, os, sys
atexit.register(lambda: print("atexit ran"))
print("argv", sys.argv[1:], "main", __name__, "path0", os.path.basename(sys.path[0]))
print("cwd", os.path.basename(os.getcwd()), "env", os.environ.get("PROBE"))
print("to stderr", file=sys.stderr)
mode = sys.argv[1]
if mode == "exit":
    sys.exit(7)
if mode == "raise":
    raise ValueError("boom")
if mode == "sleep":
    import time
    time.sleep(60)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "app" / "probe.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(SCRIPT))
    return path


@pytest.mark.parametrize("mode", ["ok", "exit", "raise"])
def test_status_output_argv_cwd_and_env_match_a_real_process(
    mode: str, script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAN_ZOO_REAL_CLI", raising=False)
    argv = [sys.executable, str(script), mode, "x=1"]
    env = {**warm_cli.os.environ, **warm_cli.SERVER_ENV, "PROBE": "p"}
    real = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
    warm = run_python(argv, env=env, cwd=tmp_path, timeout=60)
    assert warm_cli._server is not None and warm_cli._server.alive()  # it did run warm
    assert (warm.returncode, warm.stdout) == (real.returncode, real.stdout)
    assert warm.stderr.splitlines()[0] == real.stderr.splitlines()[0] == "to stderr"
    assert warm.stderr.splitlines()[-1] == real.stderr.splitlines()[-1]  # the traceback's end
    assert "argv ['" + mode + "', 'x=1'] main __main__ path0 app" in warm.stdout


def test_a_timeout_kills_the_run_and_the_server_serves_on(script: Path, tmp_path: Path) -> None:
    argv = [sys.executable, str(script), "sleep"]
    env = {**warm_cli.os.environ, **warm_cli.SERVER_ENV}
    with pytest.raises(subprocess.TimeoutExpired):
        run_python(argv, env=env, cwd=tmp_path, timeout=3)
    after = run_python([sys.executable, str(script), "ok"], env=env, cwd=tmp_path, timeout=60)
    assert after.returncode == 0 and "atexit ran" in after.stdout


def test_a_hash_seed_the_fork_cannot_change_gets_a_real_process(tmp_path: Path) -> None:
    script = tmp_path / "hash.py"
    script.write_text("print(hash('gan_zoo'))")
    argv = [sys.executable, str(script)]
    for seed in ("0", "123"):  # the server's own seed runs warm, another one cannot
        env = {**warm_cli.os.environ, "PYTHONHASHSEED": seed}
        real = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert run_python(argv, env=env, timeout=60).stdout == real.stdout


SIGNALLED = """
import signal, sys, time
def stop(signum, frame):
    print("stopped by", signum, file=sys.stderr)
    sys.exit(int(sys.argv[1]))
signal.signal(signal.SIGTERM, stop)
print("ready", file=sys.stderr, flush=True)
open(sys.argv[2], "w").close()
time.sleep(60)
"""


@pytest.mark.parametrize("warm", [True, False])
def test_a_started_run_is_polled_signalled_and_waited_for_as_a_popen(
    warm: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_python's fork and subprocess.Popen behave alike: poll while it runs, SIGTERM to
    its pid, its exit status and stderr from communicate, and its own process group."""
    monkeypatch.setenv("GAN_ZOO_REAL_CLI", "0" if warm else "1")
    script = tmp_path / "signalled.py"
    script.write_text(textwrap.dedent(SIGNALLED))
    flag = tmp_path / "started"
    env = {**warm_cli.os.environ, **warm_cli.SERVER_ENV}
    process = warm_cli.start_python(
        [sys.executable, str(script), "9", str(flag)], env=env, cwd=tmp_path
    )
    assert isinstance(process, warm_cli.WarmProcess) == warm
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 9 and process.poll() == 9
    assert err.splitlines() == ["ready", f"stopped by {int(signal.SIGTERM)}"]


def test_a_killed_group_reports_the_signal_and_the_server_serves_on(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAN_ZOO_REAL_CLI", raising=False)
    env = {**warm_cli.os.environ, **warm_cli.SERVER_ENV}
    process = warm_cli.start_python([sys.executable, str(script), "sleep"], env=env, cwd=tmp_path)
    assert isinstance(process, warm_cli.WarmProcess)
    busy = run_python([sys.executable, str(script), "ok"], env=env, cwd=tmp_path, timeout=60)
    assert busy.returncode == 0  # the server is busy: a real process ran it
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    after = run_python([sys.executable, str(script), "ok"], env=env, cwd=tmp_path, timeout=60)
    assert after.returncode == 0 and "atexit ran" in after.stdout
    assert warm_cli._server is not None and not warm_cli._server.busy
