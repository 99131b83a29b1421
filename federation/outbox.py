"""The acquirer's outbox: intent is written before sending, and resent until answered.

Why: a redemption through another city crosses two databases and a network. The acquirer
writes the message (its id and exact payload) in the same transaction as the provider's
pending redemption, then sends. Whatever happens next (a timeout, the issuer crashing after
committing, this node crashing before reading the reply), the message is still in the outbox
and is sent again, with the same id and payload, until a definitive answer comes back: a
signed RECEIPT or REFUSAL. The issuer's inbox makes the repeats harmless: it answers a known
id with the reply it stored the first time.

Per peer, one worker sends what is due, oldest first. After a failed attempt a message waits
``base × 2^attempts`` seconds, capped, times a random factor in [0.5, 1.5) (jitter, so a
healed peer is not hit by every node at once). Each call has the peer's deadline. A dead or
slow peer only delays its own queue: other peers' workers and local redemptions never wait
for it.

Each outbox row is marked done in the same transaction that applies its reply, so a reply is
applied exactly once even if it arrives twice (the first attempt's answer racing a retry's).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from federation import convert
from federation.client import Clients, PeerRefused, PeerUnreachable
from federation.envelope import Door, seal
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.clock import Clock
from node.domain.clearing import Advice, Confirmation
from node.domain.orders import OrderAnswer, OrderRequest
from node.faults import crash_point
from node.keys import NodeKey
from node.logs import current_request_id
from node.services.directory import Directory
from node.services.ports import (
    Acknowledged,
    Applied,
    Evidence,
    Place,
    Receipt,
    Refusal,
    Row,
    Settle,
)
from node.store import outbox as outbox_rows
from node.store.engine import Books

logger = logging.getLogger(__name__)

# How an answer is applied: the row, its request's type name, the answer, and the evidence.
Apply = Callable[[Row, str, Receipt | Refusal | Acknowledged, Evidence], Awaitable[Applied]]
CallObserver = Callable[[str, str, str, float], None]  # peer, method, outcome, seconds


@dataclass(frozen=True)
class Backoff:
    timeout_seconds: float = 2.0
    base_seconds: float = 0.2
    cap_seconds: float = 30.0

    def first_attempt_at(self, now: int) -> int:
        """When the worker may first pick up a new message: after the caller's own attempt."""
        return now + int(self.timeout_seconds * 1000) + 500

    def delay_ms(self, attempts: int) -> int:
        raw = min(self.cap_seconds, self.base_seconds * (2 ** min(attempts, 30)))
        return int(raw * random.uniform(0.5, 1.5) * 1000)


def _due(conn: sqlite3.Connection, region: str, now: int) -> list[sqlite3.Row]:
    return outbox_rows.outbox_due(conn, region, now, 100)


class Writer:
    """The services' ``OutboxWriter``: a message to a peer, its exact payload, into the outbox
    inside the caller's transaction (docs/protocol.md §5)."""

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff

    def put_txn(
        self,
        conn: sqlite3.Connection,
        peer: str,
        message_id: str,
        ask: Place | Settle,
        remote_hold_id: str,
        now: int,
    ) -> Row:
        kind, payload = convert.request_message(ask)
        return self._put(conn, peer, message_id, kind, payload, now, remote_hold_id)

    def advice_txn(
        self, conn: sqlite3.Connection, advice: Advice, message_id: str, now: int
    ) -> Row:
        payload = convert.advice_payload(advice)
        return self._put(conn, advice.payee, message_id, pb.TRANSFER_ADVICE, payload, now)

    def confirmation_txn(
        self, conn: sqlite3.Connection, confirmation: Confirmation, message_id: str, now: int
    ) -> Row:
        payload = convert.confirmation_payload(confirmation)
        return self._put(
            conn, confirmation.payer, message_id, pb.RECEIPT_CONFIRMATION, payload, now
        )

    def order_request_txn(
        self, conn: sqlite3.Connection, peer: str, request: OrderRequest, message_id: str, now: int
    ) -> Row:
        payload = convert.order_request_payload(request)
        return self._put(conn, peer, message_id, pb.ORDER_REQUEST, payload, now)

    def order_answer_txn(
        self, conn: sqlite3.Connection, peer: str, answer: OrderAnswer, message_id: str, now: int
    ) -> Row:
        payload = convert.order_answer_payload(answer)
        return self._put(conn, peer, message_id, pb.ORDER_ANSWER, payload, now)

    def _put(
        self,
        conn: sqlite3.Connection,
        peer: str,
        message_id: str,
        kind: int,
        payload: bytes,
        now: int,
        remote_hold_id: str | None = None,
    ) -> Row:
        return outbox_rows.outbox_put(
            conn,
            message_id,
            peer,
            kind,
            payload,
            remote_hold_id,
            now,
            self._backoff.first_attempt_at(now),
            trace=current_request_id(),
        )


class Outbox:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        region: str,
        key: NodeKey,
        directory: Directory,
        door: Door,
        clients: Clients,
        backoff: Backoff,
        apply: Apply,
        observer: CallObserver | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._key = key
        self._directory = directory
        self._door = door
        self._clients = clients
        self.backoff = backoff
        self._observer = observer
        self._apply = apply
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[str] = set()

    async def send_now(self, row: Row) -> Applied | None:
        """One attempt, right away (the REST caller's, with the row it just wrote). What the
        answer's application returned, or None without a definitive answer this time (the
        workers keep trying)."""
        return await self._attempt(row)

    async def _attempt(self, row: Row) -> Applied | None:
        message_id = row["message_id"]
        if message_id in self._inflight:
            return None
        self._inflight.add(message_id)
        try:
            applied = await self._attempt_once(row)
        finally:
            self._inflight.discard(message_id)
        for follow in applied.then if applied is not None else ():
            await self._attempt(follow)
        return applied

    async def _attempt_once(self, row: Row) -> Applied | None:
        region, message_id, kind = row["peer"], row["message_id"], row["type"]
        peer = self._directory.get(region)
        method = convert.type_name(kind)
        if peer is None:
            await self._later(row, f"{region} is not a peer")
            return None
        now = self._clock.now_ms()
        envelope = seal(
            self._key,
            self.region,
            region,
            message_id,
            kind,
            bytes(row["payload"]),
            now,
            trace=row["trace"],
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            raw = await self._clients.call(
                region, peer.dial, kind, envelope, self.backoff.timeout_seconds
            )
        except PeerUnreachable as exc:
            self._observe(region, method, "unreachable", loop.time() - started)
            await self._later(row, str(exc))
            return None
        except PeerRefused as exc:
            # The peer's door refused the envelope (a key not yet imported, clocks apart…).
            # That may be fixed by an operator: keep the intent, retry with backoff, say so.
            self._observe(region, method, exc.code, loop.time() - started)
            logger.warning("%s refused %s %s: %s", region, method, message_id, exc)
            await self._later(row, str(exc))
            return None
        try:
            opened = self._door.open(
                raw, convert.ANSWERS[kind], self._clock.now_ms(), check_skew=False
            )
            if opened.header.origin != region or opened.header.in_reply_to != message_id:
                raise errors.MalformedMessage(
                    f"reply from {opened.header.origin} to {opened.header.in_reply_to}"
                )
            answered = convert.answer(opened)  # a payload that does not parse: a bad reply too
        except errors.SuanliError as exc:
            self._observe(region, method, exc.code, loop.time() - started)
            logger.error("bad reply from %s to %s: %s", region, message_id, exc.message)
            await self._later(row, f"bad reply: {exc.message}")
            return None
        self._observe(region, method, "answered", loop.time() - started)
        crash_point(f"acquirer.before_apply.{method}")
        evidence = Evidence(opened.header.message_id, int(opened.header.type), opened.raw)
        return await self._apply(row, method, answered, evidence)

    def _observe(self, peer: str, method: str, outcome: str, seconds: float) -> None:
        if self._observer is not None:
            self._observer(peer, method, outcome, seconds)

    async def _later(self, row: Row, error: str) -> None:
        at = self._clock.now_ms() + self.backoff.delay_ms(int(row["attempts"]))
        await self._db.run(
            "outbox_retry",
            lambda c: outbox_rows.outbox_retry_later(c, row["message_id"], at, error),
        )
        self.wake(row["peer"])

    # Workers ----------------------------------------------------------------------------------

    def wake(self, region: str) -> None:
        event = self._wake.get(region)
        if event is not None:
            event.set()

    def ensure_workers(self) -> None:
        for peer in self._directory.all():
            if peer.region not in self._workers:
                self._wake[peer.region] = asyncio.Event()
                self._workers[peer.region] = asyncio.create_task(
                    self._work(peer.region), name=f"outbox-{peer.region}"
                )

    async def _work(self, region: str) -> None:
        event = self._wake[region]
        while True:
            try:
                due = await self._db.read(
                    "outbox_due", functools.partial(_due, region=region, now=self._clock.now_ms())
                )
                await asyncio.gather(*(self._attempt(row) for row in due))
                next_at = await self._db.read(
                    "outbox_next", lambda c: outbox_rows.outbox_next_due(c, region)
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox worker for %s failed; retrying", region)
                next_at = None
            wait = (
                1.0
                if next_at is None
                else max(0.0, min(1.0, (next_at - self._clock.now_ms()) / 1000))
            )
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=wait)

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
