"""Simulation: compute offers across a national federation (issue 20), in one process.

    python -m node.tools.bench.offers --nodes 300 --offers 10 --rtt-ms 30

Each of ``nodes`` cities is a real catalog: its own SQLite books (this tree's schema), policy,
signing key and provider, the catalog service, the door, the offer desk and the publisher,
the very code a node runs. Only the network is simulated: a call seals the request with the
sender's key, waits half of ``rtt-ms``, opens it at the receiver's door (signature, origin,
destination, type and clock checks), lets the receiver's offer desk answer it, seals the
answer with the receiver's key, waits the other half, and opens the answer at the sender's
door. Every city peers with every other (a full mesh, as the federation's card exchange
makes it). The books run with ``synchronous=OFF``: what is measured is messages and time,
not the disk.

Phases, each reported with its messages (requests and answers), bytes and wall time:

1. **Bootstrap**: every city publishes ``offers`` offers, which every other city takes
   (with ``--push-everything``, by real pushes: N × (N − 1) messages; by default through the
   catalog's own ``apply`` without messages, since this phase is not what is measured).
2. **One update**: one city changes one offer; how long until every other city holds the new
   version, and what it costs.
3. **Down for an hour**: one city is unreachable while ``changing`` other cities each change
   ``changes`` offers (an hour of changes), which every other city takes (pushed with
   ``--push-everything``, else applied directly); it then comes back and catches up
   by asking (OFFER_QUERY to each peer about that peer's own offers), and its catalog is
   compared with another city's, origin by origin.
4. **Anti-entropy**: one round (one OFFER_QUERY about every origin) at a city that misses
   nothing.

The figures are upper bounds for a real federation: all cities share this process's one core
for their signatures, checks and commits, which real cities do in parallel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.client import PeerUnreachable
from federation.envelope import Door, Opened, seal
from federation.offers import OfferDesk, OfferSigner, Publisher
from federation.proto.v1 import federation_pb2 as pb
from node.clock import SystemClock
from node.config import load as load_config
from node.domain.model import Peer, PeerKey
from node.domain.offers import Terms
from node.domain.uscc import check_character
from node.keys import NodeKey
from node.provision import init_node
from node.services.catalog import Catalog, Mark
from node.services.common import SYSTEM, Principal, new_id
from node.services.policies import PolicyBook
from node.services.registry import Registry
from node.store import catalog as catalog_rows
from node.store.engine import Books, open_database
from node.tools.processes import ROOT

DAY = 86_400_000
OFFERS = (pb.OFFERS, pb.OFFER_QUERY)


@dataclass
class Counter:
    requests: int = 0
    answers: int = 0
    bytes: int = 0
    unreachable: int = 0

    def snapshot(self) -> tuple[int, int, int, int]:
        return (self.requests, self.answers, self.bytes, self.unreachable)


@dataclass
class City:
    region: str
    key: NodeKey
    db: Books
    catalog: Catalog
    door: Door
    desk: OfferDesk
    publisher: Publisher
    provider: Principal
    offers: list[str] = field(default_factory=list)


class Directory:
    """The peers as the federation's directory shows them (every other city)."""

    def __init__(self, own: str, peers: dict[str, Peer]) -> None:
        self._peers = {r: p for r, p in peers.items() if r != own}
        self._sorted = sorted(self._peers.values(), key=lambda p: p.region)

    def get(self, region: str) -> Peer | None:
        return self._peers.get(region)

    def all(self) -> list[Peer]:
        return self._sorted


class Net:
    def __init__(self, rtt_ms: float) -> None:
        self.half = rtt_ms / 2000
        self.cities: dict[str, City] = {}
        self.down: set[str] = set()
        self.count = Counter()


class NoClients:
    async def close(self) -> None:
        return None


@dataclass
class SimWire:
    """``federation.wire.Wire``'s ``ask``, over the simulated network."""

    net: Net
    region: str
    key: NodeKey
    directory: Directory
    door: Door
    clock: SystemClock = field(default_factory=SystemClock)
    clients: NoClients = field(default_factory=NoClients)

    async def ask(
        self, peer: str, kind: int, payload: bytes, expect: int, key: NodeKey | None = None
    ) -> Opened:
        net = self.net
        if peer in net.down or self.region in net.down:
            net.count.unreachable += 1
            raise PeerUnreachable(f"{peer}: down")
        message_id = new_id("m")
        envelope = seal(self.key, self.region, peer, message_id, kind, payload, self.clock.now_ms())
        net.count.requests += 1
        net.count.bytes += len(envelope)
        await asyncio.sleep(net.half)
        there = net.cities[peer]
        opened = there.door.open(envelope, OFFERS, self.clock.now_ms())
        answer = there.desk.offers if kind == pb.OFFERS else there.desk.query
        body, _ = await answer(opened)
        reply = seal(
            there.key,
            peer,
            self.region,
            new_id("m"),
            pb.OFFERS_REPLY,
            body,
            self.clock.now_ms(),
            in_reply_to=message_id,
        )
        net.count.answers += 1
        net.count.bytes += len(reply)
        await asyncio.sleep(net.half)
        back = self.door.open(reply, (expect,), self.clock.now_ms(), check_skew=False)
        if back.header.in_reply_to != message_id:
            raise SystemExit("an answer to another message")
        return back


def regions(n: int) -> list[str]:
    return [str(110100 + 100 * i) for i in range(n)]


def terms(rng: random.Random, now: int) -> Terms:
    return Terms(
        rng.choice(("model_services", "domestic_chips", "other_compute")),
        rng.choice(("Ascend 910B", "A800", "H20", "MLU590")),
        rng.choice((8, 64, 256)),
        rng.randrange(800, 4000),
        rng.choice((1, 10, 100)),
        now - DAY,
        now + 60 * DAY,
        now + 60 * DAY,
        "110100",
        rng.random() < 0.5,
        rng.randrange(5),
        "",
    )


async def build(root: Path, n: int, rtt_ms: float, retry_base_seconds: float = 5.0) -> Net:
    net = Net(rtt_ms)
    clock = SystemClock()
    policy = (ROOT / "ops" / "policies" / "hangzhou-2026.toml").read_text()
    keys: dict[str, NodeKey] = {}
    dbs: dict[str, Books] = {}
    for region in regions(n):
        data = root / region
        text = policy.replace('region = "330100"', f'region = "{region}"')
        init_node(data, region, f"City {region}", text, 0, "OFF")
        config = load_config(data)
        keys[region] = NodeKey.load(config.key_path)
        dbs[region] = open_database(config)
    peers = {
        r: Peer(
            r,
            f"City {r}",
            "sim",
            "",
            True,
            True,
            10**12,
            (PeerKey(k.key_id, k.public_key, 0, 0, False),),
        )
        for r, k in keys.items()
    }
    for i, (region, db) in enumerate(dbs.items()):
        policies = PolicyBook(db, clock, region)
        policies.reload_sync()
        catalog = Catalog(db, clock, region, policies, OfferSigner(keys[region]))
        directory = Directory(region, peers)
        door = Door(region, directory.get, 300_000)
        wire = SimWire(net, region, keys[region], directory, door)
        publisher = Publisher(
            catalog,
            wire,  # type: ignore[arg-type]  # Wire's ask, over the simulated network
            60.0,
            retry_base_seconds=retry_base_seconds,
        )
        desk = OfferDesk(catalog, directory.get, region, publisher.behind)
        body = f"91110000MA{i:07d}"
        provider, _ = await Registry(db, clock, policies).register_provider(
            SYSTEM,
            body + check_character(body),
            f"Centre {region}",
            "computing_centre",
            None,
            (),
            True,
        )
        net.cities[region] = City(
            region,
            keys[region],
            db,
            catalog,
            door,
            desk,
            publisher,
            Principal("provider", provider.id, "sim"),
        )
    return net


async def held(city: City) -> dict[str, dict[str, int]]:
    """Per origin: offer id → sequence number held."""
    rows = await city.db.read(
        "sim_held",
        lambda c: c.execute("SELECT origin, offer_id, seq FROM catalog_offers").fetchall(),
    )
    out: dict[str, dict[str, int]] = {}
    for origin, offer_id, seq in rows:
        out.setdefault(origin, {})[offer_id] = int(seq)
    return out


async def measured(net: Net, work: Any) -> dict[str, Any]:
    before = net.count.snapshot()
    started = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - started
    after = net.count.snapshot()
    requests, answers, sent, unreachable = (a - b for a, b in zip(after, before, strict=True))
    return {
        "seconds": round(seconds, 3),
        "requests": requests,
        "answers": answers,
        "bytes": sent,
        "unreachable_attempts": unreachable,
        "result": result,
    }


async def seed(origins: list[City], targets: list[City]) -> int:
    """Bring ``origins``' current offers to ``targets`` without messages, through the
    catalog's own ``apply`` (what a push applies, minus the envelope): for a phase that is
    not the one being measured."""
    signed: list[Any] = []
    marks: list[Mark] = []
    for origin in origins:
        batch, mark = await origin.catalog.own_since(0, 10**9)
        signed.extend(batch)
        if mark is not None:
            marks.append(mark)
    kept = 0
    for target in targets:
        mine = [s for s in signed if s.offer.origin != target.region]
        theirs = [m for m in marks if m.origin != target.region]
        applied = await target.catalog.apply(mine, theirs, Other(target.region))
        kept += applied.kept
    # ... and each origin knows they have them, as the pushes' answers would have told it.
    now = SystemClock().now_ms()
    for origin, mark in zip(origins, marks, strict=True):
        regions_ = [t.region for t in targets if t is not origin]

        def acked(conn: Any, peers: list[str] = regions_, through: int = mark.through) -> None:
            for peer in peers:
                catalog_rows.set_pushed(conn, peer, through, now)

        await origin.db.run("sim_pushed", acked)
    return kept


@dataclass(frozen=True)
class Other:
    """Whether an origin is one ``region`` takes offers of (every city but itself)."""

    region: str

    def __call__(self, origin: str) -> bool:
        return origin != self.region


async def push_all(cities: list[City]) -> int:
    done = await asyncio.gather(*(c.publisher.push() for c in cities))
    return sum(done)


async def simulate(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    net = await build(root, args.nodes, args.rtt_ms)
    built = time.perf_counter() - started
    cities = list(net.cities.values())
    now = SystemClock().now_ms()
    for city in cities:
        for _ in range(args.offers):
            offer = await city.catalog.publish(city.provider, terms(rng, now))
            city.offers.append(offer.offer_id)
    report: dict[str, Any] = {
        "nodes": args.nodes,
        "offers_per_city": args.offers,
        "rtt_ms": args.rtt_ms,
        "build_seconds": round(built, 1),
    }
    # 1. Bootstrap.
    if args.push_everything:
        report["bootstrap"] = await measured(net, push_all(cities))
    else:
        report["bootstrap"] = {"seeded_without_messages": await seed(cities, cities)}
    reference = await held(cities[1])
    if sum(len(v) for v in reference.values()) != args.nodes * args.offers:
        raise SystemExit("the bootstrap did not bring every offer to every city")
    # 2. One update, from the first city.
    origin = cities[0]
    await origin.catalog.change(origin.provider, origin.offers[0], terms(rng, now))
    one = await measured(net, origin.publisher.push())
    want = (await held(origin))[origin.region][origin.offers[0]]
    everywhere = [
        (await held(c)).get(origin.region, {}).get(origin.offers[0]) == want for c in cities[1:]
    ]
    if not all(everywhere):
        raise SystemExit("an update did not reach every city")
    report["one_update"] = one
    # 3. One city down for an hour of changes elsewhere.
    away = cities[-1]
    net.down.add(away.region)
    changing = cities[: args.changing]
    for city in changing:
        for offer_id in rng.sample(city.offers, args.changes):
            await city.catalog.change(city.provider, offer_id, terms(rng, now))
    if args.push_everything:
        report["hour_of_changes"] = await measured(net, push_all(changing))
    else:
        others = [c for c in cities if c is not away]
        report["hour_of_changes"] = {"seeded_without_messages": await seed(changing, others)}
    report["hour_of_changes"]["changes"] = args.changing * args.changes
    net.down.discard(away.region)
    report["catch_up"] = await measured(net, away.publisher.catch_up())
    mine, theirs = await held(away), await held(cities[0])
    mine.pop(cities[0].region, None)
    theirs.pop(away.region, None)
    mine.pop(away.region, None)
    theirs.pop(cities[0].region, None)
    report["catch_up"]["catalog_equal"] = mine == theirs
    if mine != theirs:
        raise SystemExit("the city that was down did not catch up")
    # 4. Anti-entropy at a city that misses nothing.
    report["anti_entropy_round"] = await measured(net, cities[2].publisher.gossip())
    live = await cities[2].db.read(
        "sim_count", lambda c: catalog_rows.capacity(c, SystemClock().now_ms())
    )
    report["catalog_offers_live"] = sum(r[2] for r in live)
    for city in cities:
        city.db.close()
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--offers", type=int, default=10, help="offers each city publishes")
    ap.add_argument(
        "--changing", type=int, default=100, help="cities changing offers during the hour"
    )
    ap.add_argument("--changes", type=int, default=3, help="offers each of them changes")
    ap.add_argument(
        "--rtt-ms", type=float, default=30.0, help="simulated round trip between cities"
    )
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument(
        "--push-everything",
        action="store_true",
        help="bootstrap and the hour's changes by real pushes too (N x (N-1) messages: slow)",
    )
    args = ap.parse_args(argv)
    if args.nodes < 4 or args.changing >= args.nodes or args.changes > args.offers:
        ap.error("need at least 4 nodes, fewer changing cities than nodes, changes <= offers")
    with tempfile.TemporaryDirectory(prefix="suanli-offers-") as tmp:
        report = asyncio.run(simulate(args, Path(tmp)))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
