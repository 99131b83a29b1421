"""Benchmark: a settlement window's provider payouts, signed at close.

    python -m node.tools.bench.payout --captures 1000000 --providers 10

Seeds a Hangzhou node's books with that many captured subsidies in its current window (two
thirds on its own vouchers, one third on other cities'), spread over the providers, then signs
the window's payouts twice while a ticker on the same event loop (every 1 ms) measures how long
the loop was kept from it, and how far the process's peak resident memory rose:

* ``inline``: how the node did it before schema v7 — every line read, grouped and written into
  each provider's signed statement (``suanli.payout.v1``), in one call on the loop (there:
  inside the closing transaction);
* ``streamed``: ``LocalSettlement.close`` now — the close, then the lines in chunks, one loop
  turn each, and statements of count, total and digest (``suanli.payout.v2``).

Both must give every provider the same count and total. Prints one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from node.app import build_node
from node.clock import SystemClock, year_of
from node.keys import canonical_json
from node.services.common import SYSTEM
from node.services.payouts import PAYOUT_TAG_V1
from node.store import settlement as store
from node.store.db import Database
from node.tools.bench.statement import measured
from node.tools.processes import free_port

HZ = "330100"
POLICY = Path(__file__).resolve().parents[1] / "policies" / "hangzhou-2026.toml"


def seed(path: Path, window: str, captures: int, providers: int) -> None:
    """Bare captured holds (no authorizations or ledger behind them) with the rows the payout
    lines join: providers, one holder and one voucher."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO providers (id, uscc, name, kind, region, state, created_at) "
        "VALUES (?, ?, ?, 'computing_centre', ?, 'approved', 0)",
        ((f"p_{i:016x}", f"9133010000000{i:05d}", f"Centre {i}", HZ) for i in range(providers)),
    )
    conn.execute(
        "INSERT INTO holders (id, uscc, name, category, region, created_at) "
        "VALUES ('h_0', '91330100000000001X', 'Holder', 'sme', ?, 0)",
        (HZ,),
    )
    conn.execute(
        "INSERT INTO vouchers (id, holder_id, fiscal_year, compute_class, ratio_bp, face_fen, "
        "available_fen, held_fen, captured_fen, reclaimed_fen, state, issued_at, expires_at, "
        "decision_id, record, signature, key_id) VALUES ('v_0', 'h_0', 2026, 'model_services', "
        "3000, 1, 1, 0, 0, 0, 'active', 0, 1, 'd', x'', x'', 'k')"
    )
    local = captures * 2 // 3
    conn.executemany(
        "INSERT INTO holds (id, voucher_id, acquirer_region, provider_id, authorization_id, "
        "order_id, order_amount_fen, compute_class, amount_fen, captured_fen, state, "
        "created_at, expires_at, settlement_window) VALUES "
        "(?, 'v_0', ?, ?, ?, ?, 1000, 'model_services', 300, 300, 'captured', 0, 1, ?)",
        (
            (f"h_{i:016x}", HZ, f"p_{i % providers:016x}", f"a_{i:016x}", f"order-{i}", window)
            for i in range(local)
        ),
    )
    conn.executemany(
        "INSERT INTO remote_holds (id, provider_id, issuer_region, kind, code_sha256, order_id, "
        "order_amount_fen, compute_class, state, amount_fen, captured_fen, created_at, "
        "payout_window, holder_uscc) VALUES (?, ?, '520100', 'redeem', '', ?, 1000, "
        "'model_services', 'captured', 300, 300, 0, ?, '91520100000000001X')",
        (
            (f"rh_{i:016x}", f"p_{i % providers:016x}", f"r-order-{i}", window)
            for i in range(captures - local)
        ),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as the node's checkpointer would have
    conn.close()


async def run(captures: int, providers: int) -> dict[str, Any]:
    from node.provision import init_node

    year = year_of(SystemClock().now_ms())
    policy = POLICY.read_text().replace("fiscal_year = 2026", f"fiscal_year = {year}")
    with tempfile.TemporaryDirectory(prefix="suanli-payout-") as tmp:
        data = Path(tmp) / "hangzhou"
        init_node(data, HZ, "hangzhou", policy, free_port())
        node = build_node(data)
        try:
            settlement = node.settlement
            db = node.db
            assert isinstance(db, Database), "this benchmark seeds a SQLite file"
            window = next(w for w in await settlement.windows(SYSTEM) if w["state"] == "open")
            window_id = window["window_id"]
            started = time.perf_counter()
            seed(db.path, window_id, captures, providers)
            seeded = time.perf_counter() - started
            key = node.key

            async def inline() -> dict[str, Any]:
                conn = db._reader
                lines = [
                    dict(r)
                    for r in conn.execute(
                        "SELECT h.provider_id, h.id AS hold_id, h.order_id, ho.uscc AS holder_uscc, "
                        "? AS issuer_region, h.compute_class, h.captured_fen FROM holds h "
                        "JOIN vouchers v ON v.id = h.voucher_id JOIN holders ho ON ho.id = v.holder_id "
                        "WHERE h.acquirer_region = ? AND h.state = 'captured' AND h.settlement_window = ?",
                        (HZ, HZ, window_id),
                    )
                ]
                lines += [
                    dict(r)
                    for r in conn.execute(
                        "SELECT provider_id, id AS hold_id, order_id, holder_uscc, issuer_region, "
                        "compute_class, captured_fen FROM remote_holds WHERE state = 'captured' "
                        "AND payout_window = ?",
                        (window_id,),
                    )
                ]
                lines.sort(key=lambda r: (r["provider_id"], r["hold_id"]))
                by_provider: dict[str, list[dict[str, Any]]] = {}
                for line in lines:
                    by_provider.setdefault(line.pop("provider_id"), []).append(line)
                out = {}
                for provider_id, items in sorted(by_provider.items()):
                    total = sum(int(i["captured_fen"]) for i in items)
                    statement = canonical_json(
                        {
                            "type": "suanli.payout.v1",
                            "provider_id": provider_id,
                            "count": len(items),
                            "total_fen": total,
                            "lines": items,
                        }
                    )
                    key.sign(PAYOUT_TAG_V1, statement)
                    out[provider_id] = [len(items), total]
                return out

            async def streamed() -> dict[str, Any]:
                await settlement.close(SYSTEM, window_id)
                rows = await node.db.read("bench", lambda c: store.payouts(c, window_id, None))
                return {r["provider_id"]: [r["count"], r["total_fen"]] for r in rows}

            out: dict[str, Any] = {
                "captures": captures,
                "providers": providers,
                "seed_seconds": round(seeded, 1),
            }
            out["streamed"] = await measured(streamed)
            out["inline"] = await measured(inline)
            if out["inline"]["summary"] != out["streamed"]["summary"]:
                raise AssertionError("the two ways disagree")
            for way in ("streamed", "inline"):
                out[way]["summary"] = {
                    "statements": len(out[way]["summary"]),
                    "total_fen": sum(t for _, t in out[way]["summary"].values()),
                }
            return out
        finally:
            node.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captures", type=int, default=1_000_000)
    ap.add_argument("--providers", type=int, default=10)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.captures, args.providers)), indent=1))


if __name__ == "__main__":
    main()
