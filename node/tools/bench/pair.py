"""Benchmark: two versions of the code side by side, on the same machine at the same moments.

    python -m node.tools.bench.pair 4d8fdbd HEAD --clients 1 --requests 600 --rounds 2

This machine's speed drifts by ±20–40% within minutes (docs/benchmarks.md), more than most
changes are worth, so two full benchmark runs an hour apart cannot tell whether a change made
cross-region redemption faster. Here each version (a git revision of this repository, or
``.`` for the working tree) gets its own two-node federation (Hangzhou issues, Guiyang
acquires, ``synchronous=FULL``), started at the same time, and every client alternates its
one-step cross-region redemptions between them, request by request, the order swapped on every
request. Both versions see the same machine. Each round reports both medians (p50) and their
ratio, B over A; the rounds swap which version is started first and holds the first ports.
The result is the median of the rounds' ratios: below 1, B is faster. Beside the latencies,
each round gives the CPU seconds both nodes of each version used per redemption (warm-up
included, the same for both), and their ratio: at many clients, where the machine is saturated
and latency is mostly queueing, the CPU a redemption costs is the steadier measure. Both federations' books
are checked at the end (a run whose books do not balance is void), as in ``suanli bench``.

Each version must have ``node.tools.bench.run.Federation`` (``node.bench.run`` before
issue 15) as of the benchmark's ``Stream`` change
(2026-11-27); older revisions fail to start with an error naming the revision."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from node.tools.bench.load import Client, percentile
from node.tools.processes import ROOT, cpu_seconds

# Runs in a child process inside one version's tree: start its federation, say where it is,
# serve until stdin closes, then check the books and stop.
CHILD = """
import json, sys
from pathlib import Path
if Path("node/tools/bench/run.py").exists():  # this tree's own, never the installed one's
    from node.tools.bench.run import GY, HZ, Federation
else:  # trees before the tools moved out of the product (issue 15)
    from node.bench.run import GY, HZ, Federation
more = {"synchronous": sys.argv[3]} if len(sys.argv) > 3 else {}  # trees since 2026-11-28
fed = Federation(Path(sys.argv[1]) / "f", 100, {GY: int(sys.argv[2]), HZ: 10}, **more)
fed.start()
try:
    print(json.dumps({"url": fed.url(GY), "token": fed.provider_tokens[GY],
                      "codes": fed.codes[GY], "pids": [p.pid for p in fed.procs.values()]}),
          flush=True)
    sys.stdin.read()
    print(json.dumps({"books": fed.check()}), flush=True)
finally:
    fed.stop()
"""
WARMUP = 100  # requests per client and version before the timed ones


def tree(revision: str, into: Path) -> Path:
    """The source of ``revision`` in the folder ``into`` (``.``: this working tree as it is,
    where it is)."""
    if revision == ".":
        return ROOT
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
    folder = into
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(folder, filter="data")
        else:  # our own repository's archive
            tar.extractall(folder)
    return folder


@contextlib.contextmanager
def federation(
    source: Path, root: Path, codes: int, revision: str, synchronous: str | None = None
) -> Iterator[dict[str, Any]]:
    """One version's federation, for the length of the block; its books' check goes into the
    yielded dict as ``books`` when the block ends. ``synchronous``: its nodes' setting, where
    not FULL (only trees from 2026-11-28 on take it)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(root),
            str(codes),
            *([synchronous] if synchronous else []),
        ],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source), "PYTHONDONTWRITEBYTECODE": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        first = child.stdout.readline()
        if not first:
            raise SystemExit(f"{revision}: its federation did not start (see above)")
        info: dict[str, Any] = json.loads(first)
        yield info
        child.stdin.close()
        info["books"] = json.loads(child.stdout.readline() or '{"books": "no answer"}')["books"]
    finally:
        _end(child, child.stdin)


def _end(child: subprocess.Popen[str], stdin: IO[str]) -> None:
    with contextlib.suppress(OSError):
        stdin.close()
    try:
        child.wait(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()


async def alternate(feds: list[dict[str, Any]], clients: int, requests: int) -> list[list[float]]:
    """Each client sends ``requests`` redemptions to each federation in turn, the order rotated
    on every request; returns the latencies (s) of each federation after the warm-up."""
    latencies: list[list[float]] = [[] for _ in feds]
    conns = [
        [Client(urlsplit(f["url"]).hostname or "", urlsplit(f["url"]).port or 0) for f in feds]
        for _ in range(clients)
    ]

    async def one(c: int, k: int, i: int) -> float:
        fed = feds[k]
        body = {
            "code": fed["codes"].pop(),
            "order_id": f"pair-{c}-{i}",
            "order_amount_fen": 1000,
            "compute_class": "model_services",
        }
        started = time.perf_counter()
        status, data = await conns[c][k].post("/v1/redemptions", fed["token"], body)
        elapsed = time.perf_counter() - started
        if status not in (200, 201):
            raise RuntimeError(f"redemption answered {status}: {data[:200]!r}")
        return elapsed

    async def client(c: int) -> None:
        for i in range(WARMUP + requests):
            turn = (i + c) % len(feds)
            for k in [*range(turn, len(feds)), *range(turn)]:
                elapsed = await one(c, k, i)
                if i >= WARMUP:
                    latencies[k].append(elapsed)

    try:
        await asyncio.gather(*(client(c) for c in range(clients)))
    finally:
        for row in conns:
            for conn in row:
                conn.close()
    return latencies


def run(a: str, b: str, clients: int, requests: int, rounds: int) -> dict[str, Any]:
    codes = clients * (WARMUP + requests) + 50
    out: dict[str, Any] = {"a": a, "b": b, "clients": clients, "requests": requests, "rounds": []}
    revisions = {"a": a, "b": b}  # keyed by side: a version may be compared with itself
    with tempfile.TemporaryDirectory(prefix="suanli-pair-") as tmp:
        sources = {side: tree(rev, Path(tmp) / "src" / side) for side, rev in revisions.items()}
        for r in range(rounds):
            order = ["a", "b"] if r % 2 == 0 else ["b", "a"]
            with contextlib.ExitStack() as stack:
                feds = [
                    stack.enter_context(
                        federation(
                            sources[side], Path(tmp) / f"r{r}-{side}", codes, revisions[side]
                        )
                    )
                    for side in order
                ]
                before = {side: cpu_seconds(f["pids"]) for side, f in zip(order, feds, strict=True)}
                lat = asyncio.run(alternate(feds, clients, requests))
                by_side = dict(zip(order, lat, strict=True))
                cpu = {
                    side: (cpu_seconds(f["pids"]) - before[side]) / (clients * (WARMUP + requests))
                    for side, f in zip(order, feds, strict=True)
                }
            p50 = {side: statistics.median(by_side[side]) * 1000 for side in revisions}
            p90 = {side: percentile(sorted(by_side[side]), 0.9) * 1000 for side in revisions}
            out["rounds"].append(
                {
                    "first": order[0],
                    "p50_ms": {k: round(v, 2) for k, v in p50.items()},
                    "p90_ms": {k: round(v, 2) for k, v in p90.items()},
                    "b_over_a": round(p50["b"] / p50["a"], 3),
                    "cpu_ms_per_request": {k: round(v * 1000, 3) for k, v in cpu.items()},
                    "cpu_b_over_a": round(cpu["b"] / cpu["a"], 3),
                    "books": {side: f["books"] for side, f in zip(order, feds, strict=True)},
                }
            )
            for path in Path(tmp).glob(f"r{r}-*"):
                shutil.rmtree(path, ignore_errors=True)
    ratios = [x["b_over_a"] for x in out["rounds"]]
    out["b_over_a_median"] = round(statistics.median(ratios), 3)
    out["cpu_b_over_a_median"] = round(
        statistics.median(x["cpu_b_over_a"] for x in out["rounds"]), 3
    )
    out["void"] = any(v != "ok" for x in out["rounds"] for v in x["books"].values())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="git revision, or . for the working tree")
    ap.add_argument("b", help="git revision, or . for the working tree")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=600, help="timed, per client and version")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.rounds < 1:
        ap.error("--clients, --requests and --rounds must be at least 1")
    result = run(args.a, args.b, args.clients, args.requests, args.rounds)
    print(json.dumps(result, indent=1))
    return 1 if result["void"] else 0


if __name__ == "__main__":
    sys.exit(main())
