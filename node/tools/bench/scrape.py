"""What a Prometheus scrape costs as the books grow: ``python -m node.tools.bench.scrape``.

Two Hangzhou nodes side by side, one with ``--small`` vouchers and one with ``--large`` (bulk
seeded, real signatures, balanced ledger, a peer city so that the federation's series are
there too). The scrapes alternate between them, so that a slow spell of the shared machine
costs both; the answer is the median time of each and their ratio. A scrape is the whole
exposition, ``generate_latest`` of the node's registry, as /metrics serves it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prometheus_client import generate_latest

from node.app import build_node
from node.tools.bench.run import HZ, Federation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.tools.bench.scrape")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=21)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="suanli-scrape-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        feds = {n: Federation(root / str(n), n, {}) for n in (args.small, args.large)}
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        nodes = {n: build_node(fed.data[HZ]) for n, fed in feds.items()}
        times: dict[int, list[float]] = {n: [] for n in nodes}
        try:
            for _ in range(args.scrapes):
                for n, node in nodes.items():
                    t0 = time.perf_counter()
                    body = generate_latest(node.metrics.registry)
                    times[n].append(time.perf_counter() - t0)
            for n, node in nodes.items():
                count = node.db.run_sync(
                    "count", lambda c: c.execute("SELECT COUNT(*) FROM vouchers").fetchone()[0]
                )
                print(
                    f"{count:>9} vouchers: scrape median {statistics.median(times[n]) * 1000:.2f} ms "
                    f"(min {min(times[n]) * 1000:.2f}, max {max(times[n]) * 1000:.2f}), "
                    f"{len(body)} bytes"
                )
        finally:
            for node in nodes.values():
                node.close()
        small, large = (statistics.median(times[n]) for n in (args.small, args.large))
        print(f"large / small: {large / small:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
