"""``python -m node.tools.bench.engines``: the PostgreSQL engine beside SQLite, in one run.

Two federations of two real node processes each (Hangzhou the issuer, Guiyang the acquirer),
one with both nodes' books in SQLite files (``synchronous=FULL``), one with both in PostgreSQL
(a cluster started here, on this machine, ``fsync`` and ``synchronous_commit`` on: durability is
not traded for speed on either side). Both serve at once and their runs alternate (the
benchmark's ``run_cases``), so every ratio compares runs made side by side. The cases are the
benchmark's case 1, a cross-region redemption (REST in at Guiyang, durable commits at both
nodes), at 64 clients and at one; the targets are issue 19's: PostgreSQL's throughput at 64
clients at least half of SQLite's, its one-client p50 at most twice SQLite's. The books are
checked after every run (``suanli check`` on each node and the pair's records compared).

The nodes reach the database through its Unix socket, as a node reaches a database on its own
machine (libpq's default when the connection string names a folder as its host); ``--tcp``
goes over loopback TCP instead, as to a database on another machine, but with the database's
CPU still on this one (docs/benchmarks.md reports both).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from node.files import write_private
from node.tools.bench.run import GY, RUNS, Case, Federation, _median, machine, run_cases, table
from node.tools.pgcluster import PASSWORD, PgCluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.tools.bench.engines")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--requests", type=int, default=3000, help="per run at 64 clients")
    parser.add_argument("--out", help="append the results (markdown) here")
    parser.add_argument(
        "--tcp",
        action="store_true",
        help="reach the database over TCP on loopback, as one on another machine is reached "
        "(default: its Unix socket, as one on the node's own machine is)",
    )
    args = parser.parse_args(argv)
    started = time.time()
    pg = PgCluster.create()
    try:
        with tempfile.TemporaryDirectory(prefix="suanli-engines-") as tmp:
            root = Path(tmp)
            secret = root / "pg.password"
            write_private(secret, PASSWORD)

            def postgresql(region: str) -> dict[str, str]:
                dsn = pg.create_database(f"bench_{region}", local=not args.tcp)
                return {"backend": "postgresql", "dsn": dsn, "password_file": str(secret)}

            codes = {GY: 3 * args.requests * (args.runs + 1)}
            feds = {
                "SQLite": Federation(root / "sqlite", 6_400, codes),
                "PostgreSQL": Federation(root / "postgresql", 6_400, codes, storage=postgresql),
            }
            cases = {
                (engine, clients): Case(
                    f"1 cross-region redeem, {engine}",
                    "redeem",
                    GY,
                    clients,
                    args.requests if clients > 1 else max(100, args.requests // 10),
                    args.runs,
                    "",
                )
                for clients in (64, 1)
                for engine in feds
            }
            for fed in feds.values():
                fed.start()
            try:
                run_cases(
                    [(feds[engine], case) for (engine, _), case in cases.items()],
                    root,
                    warmup=300,
                )
            finally:
                for fed in feds.values():
                    fed.stop()
    finally:
        pg.close()
    rate = _median(cases["PostgreSQL", 64], "rate") / _median(cases["SQLite", 64], "rate")
    p50 = _median(cases["PostgreSQL", 1], "p50_ms") / _median(cases["SQLite", 1], "p50_ms")
    cases["PostgreSQL", 64].target = f"≥ 0.5 × SQLite's throughput: {rate:.2f} ×"
    cases["PostgreSQL", 64].met = lambda c, r=rate: r >= 0.5
    cases["PostgreSQL", 1].target = f"p50 ≤ 2 × SQLite's: {p50:.2f} ×"
    cases["PostgreSQL", 1].met = lambda c, r=p50: r <= 2.0
    text = table(list(cases.values()))
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as out:
            out.write(
                f"\n<!-- python -m node.tools.bench.engines, "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
                f"{(time.time() - started) / 60:.0f} min -->\n\nMachine: {machine()}.\n\n{text}\n"
            )
    return 0 if rate >= 0.5 and p50 <= 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
