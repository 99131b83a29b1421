"""Benchmark: one pair statement over a large settlement window, as the issuer computes it.

    python -m node.tools.bench.statement --records 1000000

Seeds a node's database with that many captured holds of one acquirer in one window, then
computes the statement twice while a ticker on the same event loop (every 1 ms) measures how
long the loop was kept from it, and how far the process's peak resident memory rose:

* ``whole``: every record read and summed in one call on the loop (how the issuer did it
  before ``Database.scan``: inside its write transaction);
* ``chunked``: ``tally_rows``, what the node does now (a chunk per loop turn).

Both must give the same count, total and digest. Prints one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from node.domain.statements import Tally
from node.services.statements import tally_rows
from node.store import settlement as store
from node.store.db import Database

ACQUIRER, WINDOW = "520100", "2026-Q4"


def memory_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith(field)).split()[1]) / 1024


def reset_peak() -> None:
    """Start VmHWM (the peak resident memory) again from the current VmRSS (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def seed(path: Path, records: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")  # bare captured holds: no vouchers behind them
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO holds (id, voucher_id, acquirer_region, provider_id, authorization_id, "
        "order_id, order_amount_fen, compute_class, amount_fen, captured_fen, state, "
        "created_at, expires_at, settlement_window) VALUES "
        "(?, 'v', ?, 'p_0000000000000001', ?, ?, 1000, 'model_services', 300, 300, "
        "'captured', 0, 1, ?)",
        ((f"hd_{i:016x}", ACQUIRER, f"a_{i:016x}", f"order-{i}", WINDOW) for i in range(records)),
    )
    conn.execute("COMMIT")
    conn.close()


async def measured(work: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    reset_peak()
    base = memory_mb("VmRSS:")
    started = time.perf_counter()
    summary = await work()
    seconds = time.perf_counter() - started
    done = True
    await tick
    gaps.sort()
    return {
        "seconds": round(seconds, 2),
        "loop_stall_max_ms": round(gaps[-1] * 1000, 1),
        "loop_stall_p99_ms": round(gaps[int(len(gaps) * 0.99)] * 1000, 1),
        "loop_gap_median_ms": round(statistics.median(gaps) * 1000, 2),
        "peak_rss_growth_mb": round(memory_mb("VmHWM:") - base, 1),
        "summary": summary,
    }


async def run(records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="suanli-statement-") as tmp:
        db = Database(Path(tmp) / "suanli.db")
        try:
            started = time.perf_counter()
            seed(db.path, records)
            seeded = time.perf_counter() - started
            params = (ACQUIRER, WINDOW)

            async def whole() -> dict[str, Any]:
                rows = db._reader.execute(store.ISSUER_RECORDS, params).fetchall()
                counted = Tally()
                counted.add([(r[0], r[1], r[2], int(r[3])) for r in rows])
                return counted.summary()

            async def chunked() -> dict[str, Any]:
                return (await tally_rows(db, store.ISSUER_RECORDS, params, keep=2_000)).summary()

            out: dict[str, Any] = {"records": records, "seed_seconds": round(seeded, 1)}
            out["chunked"] = await measured(chunked)
            out["whole"] = await measured(whole)
            if out["whole"]["summary"] != out["chunked"]["summary"]:
                raise AssertionError("the two ways disagree")
            return out
        finally:
            db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.records)), indent=1))


if __name__ == "__main__":
    main()
