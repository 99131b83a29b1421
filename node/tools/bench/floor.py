"""Benchmark: how far one cross-region redemption is from the floor this machine allows.

    python -m node.tools.bench.floor --requests 1000 --rounds 3

The one-client target (case 1, p50 ≤ 3 ms) is a latency: the sum of every step of one
redemption, one after the other, on a machine whose speed drifts by ±20–40% within minutes.
This puts three things side by side, one client sending one-step cross-region redemptions to
each in turn, request by request (the order rotated every request, as ``node.tools.bench.pair``
does), so that all three see the same machine at the same moments:

* ``floor``: the bare flow, with nothing of Suanli in it: aiohttp takes the POST and parses
  its JSON; the acquirer commits the request to SQLite; signs it (Ed25519) and writes it on one
  long-lived gRPC stream; the issuer verifies it, commits it, signs a reply and writes it
  back; the acquirer verifies the reply, commits it and answers 201 with a JSON body. The same
  three durable commits (``synchronous=FULL``) and four signature operations as a real
  redemption, and the same load generator (``node.tools.bench.load``'s client), but no checks, no
  ledger, no audit, no metrics and no logs: no node can be faster than this here.
* ``FULL``: this tree's two-node federation, as shipped (``synchronous=FULL``).
* ``NORMAL``: the same federation with ``synchronous=NORMAL``: no fsync at each commit (the
  issue forbids it; it is here to show what durability costs at one client).

Each round starts all three afresh (the order of the starts rotated) and reports each one's
p50 and p90, FULL and NORMAL over the floor, and the CPU each one's two processes used per
redemption (warm-up included): the work each does for one redemption. The result is the median of the rounds. Both
federations' books are checked at the end of each round (a round whose books do not balance is
void; exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import nacl.signing
from aiohttp import web

from node.tools.bench.load import percentile
from node.tools.bench.pair import WARMUP, alternate, federation
from node.tools.processes import ROOT, cpu_seconds, die_with_parent, free_port

ACQUIRER_KEY = nacl.signing.SigningKey(b"a" * 32)
ISSUER_KEY = nacl.signing.SigningKey(b"i" * 32)
METHOD = "/suanli.bench.Floor/Stream"
SIDES = ("floor", "FULL", "NORMAL")


def _same(b: bytes) -> bytes:
    return b


def _database(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


def _commit(conn: sqlite3.Connection, body: bytes) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO records (body) VALUES (?)", (body,))
    conn.execute("COMMIT")


async def issuer(port: int, path: str) -> None:
    """Verify each message, commit it, sign a reply, write it back on the same stream."""
    conn = _database(path)
    acquirer = ACQUIRER_KEY.verify_key

    async def stream(_: Any, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        while isinstance(message := await context.read(), bytes):  # else grpc.aio.EOF
            request_id, body = message[:8], acquirer.verify(message[8:])
            _commit(conn, body)
            await context.write(request_id + ISSUER_KEY.sign(body + b"|receipt"))

    handler = grpc.method_handlers_generic_handler(
        "suanli.bench.Floor",
        {"Stream": grpc.stream_stream_rpc_method_handler(stream, _same, _same)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def acquirer(port: int, issuer_port: int, path: str) -> None:
    """POST /v1/redemptions: commit, sign, send, verify the reply, commit, answer 201."""
    conn = _database(path)
    issuer_key = ISSUER_KEY.verify_key
    waiting: dict[bytes, asyncio.Future[bytes]] = {}
    state: dict[str, Any] = {"next": 0}

    async def read_replies(call: Any) -> None:
        while isinstance(reply := await call.read(), bytes):  # else grpc.aio.EOF
            future = waiting.pop(reply[:8], None)
            if future is not None and not future.done():
                future.set_result(reply[8:])

    async def redeem(request: web.Request) -> web.Response:
        body = await request.read()
        order = json.loads(body)
        _commit(conn, body)
        state["next"] += 1
        request_id = state["next"].to_bytes(8, "big")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        waiting[request_id] = future
        async with state["writing"]:
            await state["call"].write(request_id + ACQUIRER_KEY.sign(body))
        reply = issuer_key.verify(await future)
        _commit(conn, reply)
        return web.json_response({"order_id": order["order_id"], "state": "captured"}, status=201)

    async def start(app: web.Application) -> AsyncIterator[None]:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{issuer_port}")
        state["call"] = channel.stream_stream(METHOD, _same, _same)(wait_for_ready=True)
        state["writing"] = asyncio.Lock()
        reader = asyncio.create_task(read_replies(state["call"]))
        yield
        reader.cancel()
        await channel.close()

    app = web.Application()
    app.router.add_post("/v1/redemptions", redeem)
    app.cleanup_ctx.append(start)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def floor(root: Path, codes: int) -> Iterator[dict[str, Any]]:
    """The bare pair of processes, for the length of the block, shaped like
    ``node.tools.bench.pair.federation``'s answer (its books are ``ok`` when every request was
    committed three times)."""
    root.mkdir(parents=True, exist_ok=True)
    http, grpc_port = free_port(), free_port()
    me = [sys.executable, "-m", "node.tools.bench.floor"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [
        subprocess.Popen(
            [*me, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        for args in (
            ["issuer", str(grpc_port), str(root / "issuer.db")],
            ["acquirer", str(http), str(grpc_port), str(root / "acquirer.db")],
        )
    ]
    try:
        _wait_for((grpc_port, http), procs)
        info: dict[str, Any] = {
            "url": f"http://127.0.0.1:{http}",
            "token": "none",
            "codes": [f"floor-{i}" for i in range(codes)],
            "pids": [proc.pid for proc in procs],
        }
        yield info
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    sent = codes - len(info["codes"])
    counts = [_count(root / name) for name in ("acquirer.db", "issuer.db")]
    info["books"] = "ok" if counts == [2 * sent, sent] else f"VOID: records {counts}, sent {sent}"


def _wait_for(ports: tuple[int, ...], procs: list[subprocess.Popen[bytes]]) -> None:
    """Until every port accepts a connection (30 s at most)."""
    deadline = time.monotonic() + 30
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("the floor's processes exited at start (see above)")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", waiting[0]), timeout=1),
        ):
            waiting.pop(0)
            continue
        time.sleep(0.05)
    if waiting:
        raise SystemExit("the floor's processes did not start within 30 s")


def _count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])


def run(requests: int, rounds: int) -> dict[str, Any]:
    codes = WARMUP + requests + 50
    out: dict[str, Any] = {"clients": 1, "requests": requests, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="suanli-floor-") as tmp:
        for r in range(rounds):
            order = [*SIDES[r % 3 :], *SIDES[: r % 3]]
            with contextlib.ExitStack() as stack:
                started = {
                    side: stack.enter_context(
                        floor(Path(tmp) / f"r{r}-floor", codes)
                        if side == "floor"
                        else federation(ROOT, Path(tmp) / f"r{r}-{side}", codes, ".", side)
                    )
                    for side in order
                }
                before = {s: cpu_seconds(started[s]["pids"]) for s in SIDES}
                lat = asyncio.run(alternate([started[s] for s in order], 1, requests))
                used = {s: cpu_seconds(started[s]["pids"]) - before[s] for s in SIDES}
            by_side = dict(zip(order, lat, strict=True))
            p50 = {s: statistics.median(by_side[s]) * 1000 for s in SIDES}
            out["rounds"].append(
                {
                    "first": order[0],
                    "p50_ms": {s: round(p50[s], 2) for s in SIDES},
                    "p90_ms": {
                        s: round(percentile(sorted(by_side[s]), 0.9) * 1000, 2) for s in SIDES
                    },
                    "FULL_over_floor": round(p50["FULL"] / p50["floor"], 3),
                    "NORMAL_over_floor": round(p50["NORMAL"] / p50["floor"], 3),
                    "cpu_ms_per_request": {
                        s: round(used[s] * 1000 / (WARMUP + requests), 2) for s in SIDES
                    },
                    "books": {s: started[s]["books"] for s in SIDES},
                }
            )
    rounds_ = out["rounds"]
    out["p50_ms_median"] = {
        s: round(statistics.median(x["p50_ms"][s] for x in rounds_), 2) for s in SIDES
    }
    for key in ("FULL_over_floor", "NORMAL_over_floor"):
        out[f"{key}_median"] = round(statistics.median(x[key] for x in rounds_), 3)
    out["void"] = any(v != "ok" for x in rounds_ for v in x["books"].values())
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["issuer"]:
        asyncio.run(issuer(int(args[1]), args[2]))
        return 0
    if args[:1] == ["acquirer"]:
        acquirer(int(args[1]), int(args[2]), args[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="timed, per side and round")
    ap.add_argument("--rounds", type=int, default=3)
    parsed = ap.parse_args(args)
    if parsed.requests < 1 or parsed.rounds < 1:
        ap.error("--requests and --rounds must be at least 1")
    result = run(parsed.requests, parsed.rounds)
    print(json.dumps(result, indent=1))
    return 1 if result["void"] else 0


if __name__ == "__main__":
    sys.exit(main())
