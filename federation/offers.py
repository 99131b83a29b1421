"""Compute offers across the federation (docs/protocol.md §5d): signed records, pushed by their
origin, caught up by anti-entropy.

An offer travels as a ``SignedOffer``: the exact bytes of an ``Offer`` and the origin city's
Ed25519 signature over ``"suanli/offer/v1\\0" || bytes``. The signature is the origin's own,
not the sender's, so an offer can be handed on by any city and verified by every city that
knows the origin's keys. That is what lets a node that was away catch up from any peer, and it
is why only the origin can publish, change or withdraw its offers: nobody else can sign them.

Every change of a city's offers takes the city's next sequence number. Per origin, a node
keeps the highest-numbered version of each offer and ``complete_through``, the number through
which it holds every change. Three exchanges keep catalogs current:

* **Push.** The origin sends OFFERS to each peer with its changes after what the peer last
  acknowledged, as soon as they happen and again at each tick until acknowledged; the reply
  says through which number the peer now holds the origin's changes.
* **Catch-up.** At start, and whenever a push shows a gap (a change numbered past
  ``complete_through`` + what the push covers), a node asks each origin, with OFFER_QUERY,
  for its changes after ``complete_through``: one message per peer, however long it was away.
* **Anti-entropy.** Every ``anti_entropy_seconds`` a node asks one peer, in turn, about every
  origin it knows: that also carries offers of origins it cannot reach directly.

A version numbered at or below what is held is never applied, however often it is replayed;
a record whose signature does not verify refuses the whole message (``offer_invalid``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError

from federation import convert
from federation.client import PeerRefused, PeerUnreachable
from federation.envelope import Opened
from federation.proto.v1 import federation_pb2 as pb
from federation.wire import Wire
from node import errors
from node.domain.model import Peer
from node.domain.offers import Offer, Signed, offer_problem
from node.keys import NodeKey, verify
from node.services.catalog import MAX_BATCH_OFFERS, Applied, Catalog

logger = logging.getLogger(__name__)

OFFER_TAG = b"suanli/offer/v1\x00"
MAX_QUERY_ORIGINS = 5_000
PUSH_CONCURRENCY = 32  # peers pushed to at once
# After a push a peer did not answer, wait this long (doubling per failure, capped, with
# jitter) before pushing to it again; a change does not wait for it: the peer catches up by
# asking when it is back.
RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 300.0
MAX_ROUNDS = 200  # batches one push or one catch-up sends to a peer before the next tick


class OfferSigner:
    """The catalog's ``OfferSigner``: this city's offers, signed with its current key."""

    def __init__(self, key: NodeKey) -> None:
        self._key = key

    def sign(self, offer: Offer) -> Signed:
        record = convert.offer_message(offer).SerializeToString(deterministic=True)
        return Signed(offer, record, self._key.key_id, self._key.sign(OFFER_TAG, record))


def open_offer(m: pb.SignedOffer, peer: Peer) -> Signed:
    """Verify a signed offer of ``peer`` (its origin), then parse it. Raises OfferInvalid."""
    key = next((k for k in peer.keys if k.key_id == m.key_id), None)
    if key is None or not verify(key.public_key, OFFER_TAG, m.offer, m.signature):
        raise errors.OfferInvalid(
            f"an offer of {peer.region} is not signed by one of its keys known here"
        )
    if key.revoked:
        raise errors.OfferInvalid(f"an offer of {peer.region} is signed by a revoked key")
    try:
        offer = convert.offer_value(pb.Offer.FromString(m.offer))
    except DecodeError:
        raise errors.OfferInvalid(f"a signed offer of {peer.region} does not parse") from None
    if offer.origin != peer.region:
        raise errors.OfferInvalid(f"an offer signed by {peer.region} names {offer.origin!r}")
    if not key.valid_at(offer.published_at):
        raise errors.OfferInvalid(
            f"offer {offer.offer_id} of {peer.region}: key {key.key_id} was not valid when "
            "it was published"
        )
    problem = offer_problem(offer)
    if problem:
        raise errors.OfferInvalid(f"offer {offer.offer_id[:70]} of {peer.region}: {problem}")
    return Signed(offer, bytes(m.offer), m.key_id, bytes(m.signature))


class OfferDesk:
    """The receiving side, behind the door: OFFERS from their origin, OFFER_QUERY from any
    peer. Answers OFFERS_REPLY. ``behind`` is told of origins this node holds with a gap, so
    that it asks them for what it missed."""

    def __init__(
        self,
        catalog: Catalog,
        peers: Callable[[str], Peer | None],
        region: str,
        behind: Callable[[list[str]], None] = lambda origins: None,
    ) -> None:
        self._catalog = catalog
        self._peers = peers
        self.region = region
        self._behind = behind

    def _verifiable(self, origin: str) -> bool:
        return origin != self.region and self._peers(origin) is not None

    async def take(self, batch: pb.OfferBatch, sender: str) -> Applied:
        """Verify every offer of an origin this node takes, then keep them (and the marks,
        ``sender``'s own as they are, a relay's within what it brought signed)."""
        if len(batch.offers) > MAX_BATCH_OFFERS:
            raise errors.MalformedMessage(f"at most {MAX_BATCH_OFFERS} offers in one message")
        signed = []
        for m in batch.offers:
            peer = self._peers(m.origin) if m.origin != self.region else None
            if peer is not None:  # others: origins this node cannot verify (or itself)
                signed.append(open_offer(m, peer))
        applied = await self._catalog.apply(
            signed, convert.offer_marks(batch), self._verifiable, sender
        )
        if applied.behind:
            self._behind(applied.behind)
        return applied

    async def offers(self, opened: Opened) -> tuple[bytes, str]:
        """An origin's push; returns the OFFERS_REPLY payload and a line for the log."""
        origin = opened.header.origin
        try:
            batch = pb.OfferBatch.FromString(opened.payload)
        except DecodeError:
            raise errors.MalformedMessage("the payload is not an OfferBatch") from None
        if any(m.origin != origin for m in batch.offers) or any(
            m.origin != origin for m in batch.marks
        ):
            raise errors.MalformedMessage(
                "OFFERS carries its sender's own offers only; others travel by OFFER_QUERY"
            )
        applied = await self.take(batch, origin)
        return convert.batch_payload([], applied.marks), _line(applied)

    async def query(self, opened: Opened) -> tuple[bytes, str]:
        try:
            query = pb.OfferQuery.FromString(opened.payload)
        except DecodeError:
            raise errors.MalformedMessage("the payload is not an OfferQuery") from None
        if len(query.have) > MAX_QUERY_ORIGINS:
            raise errors.MalformedMessage(f"at most {MAX_QUERY_ORIGINS} origins in one query")
        have = {m.origin: m.after for m in query.have}
        known = {o for o in have if o == self.region or self._peers(o) is not None}
        limit = min(query.limit or MAX_BATCH_OFFERS, MAX_BATCH_OFFERS)
        signed, marks, more = await self._catalog.since(have, limit, known)
        return convert.batch_payload(
            signed, marks, more
        ), f"{len(signed)} offers{' (more)' if more else ''}"


def _line(applied: Applied) -> str:
    return f"{applied.kept} kept, {applied.stale} stale, {applied.ignored} ignored"


class Publisher:
    """This node's side of the three exchanges (the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        wire: Wire,
        anti_entropy_seconds: float,
        observe: Callable[[str, str], None] = lambda kind, outcome: None,
        retry_base_seconds: float = RETRY_BASE_SECONDS,
    ) -> None:
        self._catalog = catalog
        self._wire = wire
        # Replies to this node's queries are taken as an origin's push is (gaps: not re-asked
        # from here, the next anti-entropy round covers them).
        self._desk = OfferDesk(catalog, wire.directory.get, wire.region)
        self._anti_entropy = anti_entropy_seconds
        self._observe = observe
        self._changed = asyncio.Event()
        self._wanted: set[str] = set()  # origins to catch up on
        self._retry_base = retry_base_seconds
        self._failures: dict[str, int] = {}  # per peer: pushes not taken in a row
        self._retry_at: dict[str, float] = {}  # per peer: not pushed to before (loop time)
        self._turn = 0

    async def close(self) -> None:
        await self._wire.clients.close()

    def changed(self) -> None:
        """This city's offers changed: push now (the catalog calls this)."""
        self._changed.set()

    def behind(self, origins: list[str]) -> None:
        self._wanted.update(origins)
        self._changed.set()

    async def _ask(self, peer: str, kind: int, payload: bytes) -> pb.OfferBatch | None:
        name = pb.MessageType.Name(kind).lower()
        try:
            opened = await self._wire.ask(peer, kind, payload, pb.OFFERS_REPLY)
            reply = pb.OfferBatch.FromString(opened.payload)
        except (PeerUnreachable, PeerRefused, errors.SuanliError, DecodeError) as exc:
            self._observe(name, "failed")
            logger.info("%s to %s not answered: %s", name, peer, exc)
            return None
        self._observe(name, "ok")
        return reply

    async def push(self) -> int:
        """Send this city's changes to every peer that lacks some; how many peers are current."""
        own = (await self._catalog.marks()).get(self._wire.region, 0)
        if own == 0:
            return 0
        acked = await self._catalog.pushes()
        now = asyncio.get_running_loop().time()
        lagging = [
            p.region
            for p in self._wire.directory.all()
            if acked.get(p.region, 0) < own and self._retry_at.get(p.region, 0.0) <= now
        ]
        room = asyncio.Semaphore(PUSH_CONCURRENCY)

        async def one(peer: str) -> bool:
            async with room:
                done = await self._push_to(peer, acked.get(peer, 0), own)
            self._after_push(peer, done)
            return done

        done = await asyncio.gather(*(one(p) for p in lagging))
        return sum(done)

    def _after_push(self, peer: str, done: bool) -> None:
        """Back off from a peer that did not take a push; forget it once one goes through."""
        if done:
            self._failures.pop(peer, None)
            self._retry_at.pop(peer, None)
            return
        failures = self._failures.get(peer, 0) + 1
        self._failures[peer] = failures
        delay = min(RETRY_CAP_SECONDS, self._retry_base * 2 ** min(failures - 1, 16))
        self._retry_at[peer] = asyncio.get_running_loop().time() + delay * random.uniform(0.5, 1.5)

    async def _push_to(self, peer: str, after: int, own: int) -> bool:
        for _ in range(MAX_ROUNDS):
            signed, mark = await self._catalog.own_since(after, MAX_BATCH_OFFERS)
            if mark is None:
                return True
            reply = await self._ask(peer, pb.OFFERS, convert.batch_payload(signed, [mark]))
            if reply is None:
                return False
            held = next((m.through for m in reply.marks if m.origin == self._wire.region), 0)
            await self._catalog.pushed(peer, held)
            if held >= own:
                return True
            if held == after:  # no progress: try again at the next tick
                return False
            after = held  # below ``after``: the peer lost changes (a restore); resend them
        return False

    async def pull(self, peer: str, origins: list[str] | None = None) -> int:
        """Ask ``peer`` for what this node misses of ``origins`` (all it knows: None); how
        many offers were kept."""
        region = self._wire.region
        known = [p.region for p in self._wire.directory.all()]
        names = [o for o in (origins if origins is not None else known) if o != region]
        if not names:
            return 0
        kept = 0
        for _ in range(MAX_ROUNDS):
            marks = await self._catalog.marks()
            query = pb.OfferQuery(
                have=[pb.OriginMark(origin=o, after=marks.get(o, 0)) for o in sorted(names)],
                limit=MAX_BATCH_OFFERS,
            )
            reply = await self._ask(
                peer, pb.OFFER_QUERY, query.SerializeToString(deterministic=True)
            )
            if reply is None:
                return kept
            try:
                applied = await self._desk.take(reply, peer)
            except errors.SuanliError as exc:
                logger.warning("offers from %s not taken: %s", peer, exc.for_log())
                return kept
            kept += applied.kept
            if not reply.more:
                break
        if kept:
            logger.info("offers caught up from %s: %d kept", peer, kept)
        return kept

    async def catch_up(self, origins: list[str] | None = None) -> int:
        """Ask each origin (every peer: None) for its own changes this node misses."""
        peers = origins if origins is not None else [p.region for p in self._wire.directory.all()]
        room = asyncio.Semaphore(PUSH_CONCURRENCY)

        async def one(origin: str) -> int:
            async with room:
                return await self.pull(origin, [origin])

        return sum(await asyncio.gather(*(one(o) for o in peers)))

    async def gossip(self) -> int:
        """One anti-entropy round: ask the next peer, in turn, about every origin."""
        peers = self._wire.directory.all()
        if not peers:
            return 0
        self._turn = (self._turn + 1) % len(peers)
        return await self.pull(peers[self._turn].region)

    async def run(self, tick_seconds: float) -> None:
        """Catch up at start, then push on every change and at every tick, and run an
        anti-entropy round every ``anti_entropy_seconds``."""
        self._turn = random.randrange(1 << 16)
        await self._guarded(self.catch_up)
        loop = asyncio.get_running_loop()
        next_round = loop.time() + self._anti_entropy
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), tick_seconds)
            self._changed.clear()
            await self._guarded(self.push)
            if self._wanted:
                wanted, self._wanted = sorted(self._wanted), set()
                await self._guarded(functools.partial(self.catch_up, wanted))
            if loop.time() >= next_round:
                next_round = loop.time() + self._anti_entropy
                await self._guarded(self.gossip)

    @staticmethod
    async def _guarded(work: Callable[[], Awaitable[object]]) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("offer exchange failed; will retry")
