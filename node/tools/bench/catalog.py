"""Benchmark: a holder's catalog search at national scale (issue 20: p99 < 50 ms at 300,000
live offers).

    python -m node.tools.bench.catalog --origins 300 --per-origin 1000 --searches 2000

Builds a real node (SQLite, this tree's schema and indexes) in a temporary folder, with
``origins - 1`` peer cities (two in three of them allowed outbound, each with an exposure cap)
and ``origins × per-origin`` offers written through the catalog's own store function, then a
holder of this city with vouchers of two classes. It then runs ``searches`` searches through
the catalog service, as the REST handler calls it (the reader thread included), cycling
through a mix of filters and both sorts, and reports p50, p99 and the slowest per kind and
overall. Prices, classes, accelerators, cities and windows are drawn from a seeded generator,
so runs are comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from node.app import build_node
from node.clock import ManualClock
from node.domain.issuance import Demand
from node.domain.model import Peer, PeerKey
from node.domain.offers import Filters, Offer, Signed, Terms
from node.provision import init_node
from node.services.common import SYSTEM, Principal
from node.store import catalog, peers
from node.tools.bench.load import percentile
from node.tools.processes import ROOT

DAY = 86_400_000
CLASSES = ("model_services", "domestic_chips", "other_compute")
ACCELERATORS = ("Ascend 910B", "Ascend 910C", "A800", "H20", "H800", "MLU590", "BR100", "K100")
HERE = "330100"
START = 1_788_000_000_000  # 2026-08-30, inside fiscal year 2026


def regions(n: int) -> list[str]:
    """``n`` distinct six-digit codes, this city first."""
    out = [HERE]
    code = 110100
    while len(out) < n:
        if str(code) != HERE:
            out.append(str(code))
        code += 100
    return out


def fill(node_db: object, origins: list[str], per_origin: int, seed: int) -> int:
    rng = random.Random(seed)

    def txn(conn: object) -> int:
        for i, region in enumerate(origins[1:]):
            key = bytes([i % 251 + 1]) * 32
            peers.upsert_peer(
                conn,  # type: ignore[arg-type]
                Peer(
                    region,
                    f"City {region}",
                    "127.0.0.1:1",
                    "",
                    rng.random() < 2 / 3,
                    True,
                    rng.choice((0, 10**6, 10**9, 10**11)),
                    (PeerKey(f"k{i:015d}", key, 0, 0, False),),
                ),
                b"card",
                START,
            )
        n = 0
        for origin in origins:
            for j in range(per_origin):
                start = START - rng.randrange(30) * DAY
                until = start + rng.randrange(20, 200) * DAY
                offer = Offer(
                    origin,
                    f"of_{j:016x}",
                    j + 1,
                    1,
                    rng.random() < 0.05,
                    f"p_{rng.randrange(100):016x}",
                    "Provider",
                    "computing_centre",
                    Terms(
                        rng.choice(CLASSES),
                        rng.choice(ACCELERATORS),
                        rng.choice((8, 16, 64, 128, 512, 1024)),
                        rng.randrange(500, 6_000),
                        rng.choice((1, 10, 100, 1000)),
                        start,
                        until,
                        until,
                        origin,
                        rng.random() < 0.5,
                        rng.randrange(5),
                        "sales@example.cn",
                    ),
                    START - DAY,
                )
                catalog.put_offer(conn, Signed(offer, b"r" * 200, "k", b"s" * 64), START)  # type: ignore[arg-type]
                n += 1
        return n

    return node_db.run_sync("bench_fill", txn)  # type: ignore[attr-defined,no-any-return]


SEARCHES: list[tuple[str, Filters, str]] = [
    ("everything, after the voucher", Filters(), "effective"),
    ("everything, by list price", Filters(), "price"),
    ("one class", Filters(compute_class="domestic_chips"), "effective"),
    ("one accelerator", Filters(accelerator="H20"), "effective"),
    ("one city", Filters(region="110500"), "effective"),
    ("price at most 1,000 fen", Filters(max_price_fen=1_000), "effective"),
    ("at least 512 cards, domestic", Filters(min_cards=512, domestic_chips=True), "effective"),
    (
        "available over two months",
        Filters(available_from=START + 10 * DAY, available_until=START + 70 * DAY),
        "effective",
    ),
    (
        "MLPS level 4, one class",
        Filters(compute_class="model_services", min_security_level=4),
        "effective",
    ),
    ("rare: one accelerator, one city", Filters(accelerator="BR100", region="111000"), "effective"),
]


async def check(node: object, holder: Principal) -> int:
    """Each kind of search against a brute force over every live offer: the same offers in
    the same order (the service reads slices by list price and merges them)."""
    from node.domain.offers import price_after
    from node.services.catalog import _effective_key

    cat = node.catalog  # type: ignore[attr-defined]
    checked = 0
    for name, filters, sort in SEARCHES:
        found = await cat.search(holder, filters, sort, 50)
        every = await node.db.read(  # type: ignore[attr-defined]
            "all", lambda c, f=filters: catalog.cheapest(c, f, START, 10**9)
        )
        priced = [price_after(o, found.purses, found.reach) for o in every]
        if sort == "effective":
            priced.sort(key=_effective_key)
        want = [(p.offer.origin, p.offer.offer_id, p.effective_fen) for p in priced[:50]]
        got = [(p.offer.origin, p.offer.offer_id, p.effective_fen) for p in found.items]
        if got != want:
            raise SystemExit(f"search {name!r} differs from the brute force")
        checked += 1
    return checked


async def searches(node: object, holder: Principal, count: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name, _, _ in SEARCHES}
    cat = node.catalog  # type: ignore[attr-defined]
    for i in range(count):
        name, filters, sort = SEARCHES[i % len(SEARCHES)]
        started = time.perf_counter()
        found = await cat.search(holder, filters, sort, 50)
        out[name].append((time.perf_counter() - started) * 1000)
        if i < len(SEARCHES) and not found.items and not name.startswith("rare"):
            raise SystemExit(f"search {name!r} found nothing")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--origins", type=int, default=300)
    ap.add_argument("--per-origin", type=int, default=1000)
    ap.add_argument("--searches", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument(
        "--engine",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the node's books: its SQLite file, or a PostgreSQL cluster of its own on this "
        "machine (reached through its Unix socket)",
    )
    args = ap.parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="suanli-catalog-"))
        storage = None
        if args.engine == "postgresql":
            from node.files import write_private
            from node.tools.pgcluster import PASSWORD, PgCluster

            pg = PgCluster.create()
            stack.callback(pg.close)
            secret = Path(tmp) / "pg.password"
            write_private(secret, PASSWORD)
            dsn = pg.create_database("bench_catalog", local=True)
            storage = {"backend": "postgresql", "dsn": dsn, "password_file": str(secret)}
        return _run(args, Path(tmp), storage)


def _run(args: argparse.Namespace, tmp: Path, storage: dict[str, str] | None) -> int:
    data = tmp / "node"
    policy = (ROOT / "ops" / "policies" / "hangzhou-2026.toml").read_text()
    init_node(data, HERE, "Hangzhou", policy, 0, storage=storage)
    clock = ManualClock(START)
    node = build_node(data, clock)
    try:
        started = time.perf_counter()
        n = fill(node.db, regions(args.origins), args.per_origin, args.seed)
        node.db.run_sync("analyze", catalog.analyze)
        filled = time.perf_counter() - started
        live = node.db.run_sync(
            "count",
            lambda c: c.execute(
                "SELECT COUNT(*) FROM catalog_offers WHERE withdrawn = 0 AND expires_at > ?",
                (START,),
            ).fetchone()[0],
        )

        async def run() -> dict[str, list[float]]:
            holder, _ = await node.registry.register_holder(
                SYSTEM, "91330100716105852F", "bench", "enterprise", None, None
            )
            who = Principal("holder", holder.id, "t")
            for cls in ("model_services", "domestic_chips"):
                await node.issuance.submit(
                    who, Demand(holder.id, cls, 100_000_000, None, "2026-09-01", "2026-12-31")
                )
            checks.append(await check(node, who))
            await searches(node, who, len(SEARCHES))  # warm the caches
            return await searches(node, who, args.searches)

        checks: list[int] = []
        times = asyncio.run(run())
    finally:
        node.close()
    every = sorted(t for ts in times.values() for t in ts)
    report = {
        "engine": args.engine,
        "offers": n,
        "live": live,
        "fill_seconds": round(filled, 1),
        "searches": len(every),
        "checked_against_brute_force": checks[0],
        "p50_ms": round(statistics.median(every), 2),
        "p99_ms": round(percentile(every, 0.99), 2),
        "max_ms": round(max(every), 2),
        "by_kind": {
            name: {
                "p50_ms": round(statistics.median(ts), 2),
                "p99_ms": round(percentile(sorted(ts), 0.99), 2),
            }
            for name, ts in times.items()
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{n:,} offers ({live:,} live), filled in {filled:.1f} s; {len(every)} searches")
        print(
            f"all: p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, max {report['max_ms']} ms"
        )
        for name, fig in report["by_kind"].items():
            print(f"  {name:38s} p50 {fig['p50_ms']:7.2f} ms  p99 {fig['p99_ms']:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
