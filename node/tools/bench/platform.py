"""What the platform's pages cost as the books grow: ``python -m node.tools.bench.platform``.

Two Hangzhou nodes side by side, one with ``--small`` vouchers and one with ``--large`` (bulk
seeded like the scrape benchmark's), each serving its pages in this process. Each page is
fetched by a signed-in operator, holder or provider, alternating between the two nodes so that
a slow spell of the shared machine costs both; the answer is each page's median time at each
size (the whole request on loopback: routing, session, services, SQL, template) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from node.api.routes import make_web_app
from node.app import build_node
from node.node import Node
from node.tools.bench.run import HZ, Federation
from node.web.frame import COOKIE
from node.web.site import make_pages

PAGES = (
    ("operator", "/ui/operator"),
    ("operator", "/ui/operator/decisions"),
    ("operator", "/ui/operator/settlement"),
    ("operator", "/ui/operator/holders"),
    ("operator", "/ui/operator/providers"),
    ("operator", "/ui/operator/peers"),
    ("operator", "/ui/operator/audit"),
    ("operator", "/ui/operator/policy"),
    ("holder", "/ui/holder"),
    ("provider", "/ui/provider"),
    # not a page: the overview charts' data, fetched after the page (running totals)
    ("operator", "/ui/operator/flows.json"),
)


async def _measure(
    nodes: dict[int, Node], feds: dict[int, Federation], rounds: int
) -> dict[tuple[int, str], list[float]]:
    clients: dict[int, TestClient[Any, Any]] = {}
    cookies: dict[tuple[int, str], str] = {}
    times: dict[tuple[int, str], list[float]] = {}
    try:
        for n, node in nodes.items():
            app = make_web_app(node)
            app.add_subapp("/ui", make_pages(node))
            clients[n] = TestClient(TestServer(app))
            await clients[n].start_server()
            fed = feds[n]
            tokens = {
                "operator": fed.tokens[HZ],
                "holder": fed.holder_tokens[0],
                "provider": fed.provider_tokens[HZ],
            }
            for role, token in tokens.items():
                session_id, _ = await node.sessions.sign_in(token, f"bench-{role}")
                cookies[(n, role)] = session_id
        for _ in range(rounds):
            for role, path in PAGES:
                for n, client in clients.items():
                    headers = {"Cookie": f"{COOKIE}={cookies[(n, role)]}"}
                    t0 = time.perf_counter()
                    resp = await client.get(path, headers=headers)
                    await resp.read()
                    times.setdefault((n, path), []).append(time.perf_counter() - t0)
                    assert resp.status == 200, (path, resp.status)
    finally:
        for client in clients.values():
            await client.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.tools.bench.platform")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="suanli-pages-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        feds = {n: Federation(root / str(n), n, {}) for n in (args.small, args.large)}
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        nodes = {n: build_node(fed.data[HZ]) for n, fed in feds.items()}
        try:
            times = asyncio.run(_measure(nodes, feds, args.rounds))
        finally:
            for node in nodes.values():
                node.close()
        print(f"{'page':<28} {args.small:>10} {args.large:>10}  ratio   (median ms)")
        for _, path in PAGES:
            small = statistics.median(times[(args.small, path)]) * 1000
            large = statistics.median(times[(args.large, path)]) * 1000
            print(f"{path:<28} {small:>10.1f} {large:>10.1f}  {large / small:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
