"""Real node processes for tests: start, wait until serving, kill -9, stop, restart.

Conditions are waited on, never slept for; one TIMEOUT_FACTOR scales every timeout.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from node.tools.processes import serving, spawn

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_FACTOR = float(os.environ.get("TIMEOUT_FACTOR", "1"))

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.02
) -> T:
    """Poll ``condition`` until it returns something truthy; fail saying what was awaited."""
    deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout * TIMEOUT_FACTOR:.1f}s waiting for {what}; last value {last!r}"
    )


# Commands that serve, or start nodes of their own, run as processes; the others run in the
# test's process through the same entry point (``node.cli.main``: argument parsing, the command,
# its exit status, its stdout and stderr), without paying a Python start-up per call.
IN_PROCESS_NEVER = ("serve", "demo", "bench")


def suanli(
    *args: str, check: bool = True, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """``suanli ARGS``: a subprocess when ``process`` or when the command serves, else
    ``node.cli.main`` here (the process's umask restored after it)."""
    if process or not args or args[0] in IN_PROCESS_NEVER:
        result = subprocess.run(
            [sys.executable, "-m", "node.cli", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60 * TIMEOUT_FACTOR,
        )
    else:
        result = _in_process(list(args))
    if check and result.returncode != 0:
        raise AssertionError(f"suanli {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def _in_process(argv: list[str]) -> subprocess.CompletedProcess[str]:
    from node.cli import main

    out, err = io.StringIO(), io.StringIO()
    umask = os.umask(0o022)  # read it: the command sets its own (0o077), as a process would
    os.umask(umask)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.umask(umask)
    return subprocess.CompletedProcess(["suanli", *argv], code, out.getvalue(), err.getvalue())


class NodeProcess:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None, *args: str) -> NodeProcess:
        self.spawn(env, *args)
        return self.wait_serving()

    def spawn(self, env: dict[str, str] | None = None, *args: str) -> NodeProcess:
        """Start the process and return at once (``wait_serving`` waits for it): a cluster
        starts all its nodes, then waits for them, as Bitcoin's ``start_nodes`` does."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = spawn(self.data, "--port", "0", *args, env=env)
        return self

    def wait_serving(self) -> NodeProcess:
        def ready() -> int:
            assert self.proc is not None
            try:
                state = serving(self.data, self.proc)
            except RuntimeError as exc:
                raise AssertionError(f"{exc}:\n{self.log()}") from None
            return int(state["http_port"]) if state else 0

        self.port = wait_until(ready, f"node in {self.data} to serve")
        return self

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to end by itself (a crash point); returns its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout * TIMEOUT_FACTOR)

    def kill(self) -> None:
        """kill -9: no cleanup, no flush, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=10 * TIMEOUT_FACTOR) == -9

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not stop in time. Returns the exit code."""
        self.terminate()
        return self.wait_stopped()

    def terminate(self) -> None:
        """The first phase of a stop: ask the process to end (``wait_stopped`` waits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait_stopped(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            return self.proc.wait(timeout=10 * TIMEOUT_FACTOR)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("node did not stop on SIGTERM") from None

    def log(self) -> str:
        path = self.data / "node.log"
        return path.read_text() if path.exists() else ""
