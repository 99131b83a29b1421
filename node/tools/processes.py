"""Node processes on this machine, for the demo, the benchmark and the tests: start
``suanli serve`` with its log in its data folder, and know when it serves (its ``serve.json``)."""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the folder holding node/: a checkout, or site-packages


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (for gRPC endpoints that go in cards).

    It is taken below the kernel's ephemeral range when it can: a node restarted on its port
    must find it free, and a port from that range can meanwhile become the local end of any
    outgoing connection on the machine (seen: a test node failed to bind its gRPC port again
    after a kill -9). A port is handed out once per process, and each pytest-xdist worker
    draws from its own slice of the range: two tests running side by side were once given the
    same port a moment apart, and the second node could not bind it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    start, end = 10_000, low
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    if worker.startswith("gw") and worker[2:].isdigit() and workers > 1 and end > start:
        span = (end - start) // workers
        start += int(worker[2:]) % workers * span
        end = start + span
    rng = random.SystemRandom()
    for _ in range(200 if end - start > 1_000 else 0):
        port = rng.randrange(start, end)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(
    data: Path, *args: str, env: dict[str, str] | None = None, tied: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``suanli serve --data DATA ARGS…``; ``tied``: it dies with this process."""
    (data / "serve.json").unlink(missing_ok=True)
    with open(data / "node.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "node.cli", "serve", "--data", str(data), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            preexec_fn=die_with_parent if tied else None,
        )


def serving(data: Path, proc: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    """What ``serve.json`` says once the node serves; None before. Raises if it exited."""
    if proc.poll() is not None:
        raise RuntimeError(
            f"the node in {data} exited with {proc.returncode}; see {data / 'node.log'}"
        )
    state = data / "serve.json"
    if not state.exists():
        return None
    found: dict[str, Any] = json.loads(state.read_text())
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds these processes (all their threads) have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
