"""The acquirer side: this node's providers redeem other cities' vouchers through it.

A provider talks only to its own node. When the code it presents names another city, this node
checks the provider (registered, approved), its inbound policy (whose vouchers it accepts) and
that the order was never subsidised here, writes a pending remote hold and the message to the
outbox in one transaction, sends, and applies the issuer's signed answer (also kept as
evidence in ``receipts``). If no answer comes in time, the provider gets 202 and the hold stays
``pending`` while the outbox keeps asking; GET the hold to follow it.

A capture or void is recorded as ``wanted`` on the hold and sent the same way; a void asked for
while the hold is still pending is sent as soon as the issuer's hold is known. Money moves in
this node's ledger only on a capture receipt: the issuer's city owes this city
(``issuer:<region>``) what this city owes its provider (``payable:<provider>``).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable
from typing import Protocol

from node import errors
from node.clock import Clock
from node.domain.model import RemoteHold, RemoteHoldKind
from node.domain.spending import REMOTE_HOLD
from node.faults import crash_point
from node.services.common import new_id, sha256_hex
from node.services.ports import (
    Applied,
    Evidence,
    OutboxWriter,
    PeerProvider,
    Place,
    Receipt,
    Refusal,
    Row,
    Sender,
    Settle,
)
from node.services.spending import HoldResult, Order
from node.store import ledger, peers, registry, remote_holds, settlement, vouchers
from node.store import outbox as outbox_rows
from node.store.engine import Books

logger = logging.getLogger(__name__)

FlowObserver = Callable[[str, str, str, int], None]  # issuer region, outcome, compute class, fen


def enqueue_txn(
    conn: sqlite3.Connection,
    hold: RemoteHold,
    action: str,
    amount: int | None,
    now: int,
    writer: OutboxWriter,
) -> Row:
    """Write a capture or void of ``hold`` to the outbox (and mark it wanted on the hold);
    returns the outbox row, for the first attempt."""
    assert hold.issuer_hold_id is not None
    assert action == "void" or amount is not None
    remote_holds.update_remote_hold(conn, hold.id, wanted=action, wanted_fen=amount)
    ask = Settle(hold.issuer_hold_id, amount if action == "capture" else None)
    return writer.put_txn(conn, hold.issuer_region, new_id("m"), ask, hold.id, now)


class Acquirer:
    def __init__(
        self, db: Books, clock: Clock, region: str, writer: OutboxWriter, sender: Sender
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._writer = writer
        self._sender = sender

    # Requests from this node's providers (RemoteSpending) ---------------------------------

    async def hold(self, provider_id: str, order: Order, issuer: str, redeem: bool) -> HoldResult:
        now = self._clock.now_ms()
        kind: RemoteHoldKind = "redeem" if redeem else "hold"
        code_sha256 = sha256_hex(order.code)

        def txn(conn: sqlite3.Connection) -> tuple[RemoteHold, Row | None]:
            # The four reads below, sent together (one round trip on PostgreSQL).
            registry.get_provider_ahead(conn, provider_id)
            peers.peer_inbound_ahead(conn, issuer)
            remote_holds.remote_hold_for_order_ahead(conn, provider_id, order.order_id)
            vouchers.hold_for_order_ahead(conn, self.region, provider_id, order.order_id)
            provider = registry.get_provider(conn, provider_id)
            if not provider.approved:
                raise errors.ProviderNotApproved(
                    f"provider {provider.id} is {provider.state}, not approved"
                )
            if not peers.peer_inbound(conn, issuer):
                raise errors.InboundNotAllowed(
                    f"this city's providers do not accept vouchers of {issuer}"
                )
            existing = remote_holds.remote_hold_for_order(
                conn, provider_id, order.order_id
            )  # not refused
            if existing is not None:
                same = (
                    existing.kind == kind
                    and existing.code_sha256 == code_sha256
                    and existing.issuer_region == issuer
                    and existing.order_amount_fen == order.order_amount_fen
                    and existing.compute_class == order.compute_class
                )
                if same:
                    return existing, None
                raise errors.OrderAlreadySubsidised(
                    f"order {order.order_id} already has a subsidy (hold {existing.id})"
                )
            if vouchers.hold_for_order(conn, self.region, provider_id, order.order_id) is not None:
                raise errors.OrderAlreadySubsidised(
                    f"order {order.order_id} already has a local subsidy"
                )
            remote = RemoteHold(
                id=new_id(REMOTE_HOLD),
                provider_id=provider_id,
                issuer_region=issuer,
                kind=kind,
                code_sha256=code_sha256,
                order_id=order.order_id,
                order_amount_fen=order.order_amount_fen,
                compute_class=order.compute_class,
                state="pending",
                amount_fen=0,
                captured_fen=0,
                issuer_hold_id=None,
                voucher_id=None,
                expires_at=None,
                settlement_window=None,
                refusal_code=None,
                refusal_message=None,
                wanted=None,
                wanted_fen=None,
                created_at=now,
                closed_at=None,
            )
            remote_holds.insert_remote_hold(conn, remote)
            message_id = new_id("m")
            ask = Place(
                code=order.code,
                provider=PeerProvider(
                    self.region, provider.id, provider.uscc, provider.name, provider.kind
                ),
                order_id=order.order_id,
                order_amount_fen=order.order_amount_fen,
                compute_class=order.compute_class,
                capture=redeem,
            )
            row = self._writer.put_txn(conn, issuer, message_id, ask, remote.id, now)
            ledger.event(
                conn,
                now,
                "remote_hold",
                remote.id,
                "requested",
                f"provider:{provider_id}",
                None,
                issuer=issuer,
                order_id=order.order_id,
                message_id=message_id,
            )
            return remote, row

        remote, row = await self._db.run("remote_hold_request", txn)
        if row is None:
            return HoldResult(remote, replayed=True)
        logger.info(
            "remote hold %s for order %s of %s: %s %s to %s",
            remote.id,
            order.order_id,
            provider_id,
            "REDEEM" if redeem else "AUTHORIZE",
            row["message_id"],
            issuer,
        )
        crash_point(f"acquirer.before_send.{kind if redeem else 'authorize'}")
        answered = await self._answer(remote.id, row)
        if answered.state == "refused":
            raise refusal_error(answered)
        return HoldResult(answered, replayed=False)

    async def capture(self, provider_id: str, hold_id: str, amount_fen: int) -> HoldResult:
        return await self._want(provider_id, hold_id, "capture", amount_fen)

    async def void(self, provider_id: str, hold_id: str) -> HoldResult:
        return await self._want(provider_id, hold_id, "void", None)

    async def _want(
        self, provider_id: str, hold_id: str, action: str, amount: int | None
    ) -> HoldResult:
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> tuple[RemoteHold, Row | None]:
            hold = remote_holds.get_remote_hold(conn, hold_id)
            if hold.provider_id != provider_id:
                raise errors.Forbidden(f"a provider may {action} only its own holds")
            final = "captured" if action == "capture" else "voided"
            if hold.state == final and (action == "void" or hold.captured_fen == amount):
                return hold, None
            if hold.wanted is not None:
                if hold.wanted == action and hold.wanted_fen == amount:
                    return hold, None  # already asked; the outbox is on it
                raise errors.HoldNotOpen(f"a {hold.wanted} of hold {hold.id} is already in flight")
            if hold.state == "pending":
                if action == "capture":
                    raise errors.HoldPending(f"the issuer has not answered for hold {hold.id} yet")
                remote_holds.update_remote_hold(conn, hold.id, wanted="void")
                return remote_holds.get_remote_hold(conn, hold.id), None
            if hold.state != "held":
                raise errors.HoldNotOpen(f"hold {hold.id} is already {hold.state}")
            assert hold.expires_at is not None and hold.issuer_hold_id is not None
            if now >= hold.expires_at:
                raise errors.HoldExpired(f"hold {hold.id} expired")
            if amount is not None and amount > hold.amount_fen:
                raise errors.CaptureExceedsHold(
                    f"capture of {amount} fen exceeds the hold of {hold.amount_fen} fen"
                )
            return hold, enqueue_txn(conn, hold, action, amount, now, self._writer)

        hold, row = await self._db.run(f"remote_{action}", txn)
        if row is None:
            return HoldResult(hold, replayed=hold.wanted is None)
        logger.info(
            "remote hold %s: %s %s to %s",
            hold.id,
            action.upper(),
            row["message_id"],
            hold.issuer_region,
        )
        crash_point(f"acquirer.before_send.{action}")
        answered = await self._answer(hold.id, row)
        final = "captured" if action == "capture" else "voided"
        if answered.wanted is None and answered.state != final:
            raise refusal_error(answered)
        return HoldResult(answered, replayed=False)

    async def _answer(self, hold_id: str, row: Row) -> RemoteHold:
        """Send now; the hold as the answer left it, or as it is if none came this time."""
        applied = await self._sender.send_now(row)
        if applied is not None and applied.result is not None:
            result: RemoteHold = applied.result
            return result
        return await self._get(hold_id)

    async def _get(self, hold_id: str) -> RemoteHold:
        return await self._db.read(
            "remote_hold_get", lambda c: remote_holds.get_remote_hold(c, hold_id)
        )

    # Sweeper ------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Holds the issuer has expired by now, with nothing in flight, are expired here too."""
        now = self._clock.now_ms()
        return await self._db.run(
            "remote_sweep", lambda c: remote_holds.expire_remote_holds(c, now)
        )


class PayoutWindows(Protocol):
    """This node's own settlement windows, as captures of other cities' vouchers need them."""

    def payout_window_txn(self, conn: sqlite3.Connection, now: int) -> str: ...

    def payout_window_ahead_txn(self, conn: sqlite3.Connection, now: int) -> None: ...


class Answers:
    """Applies the issuers' signed answers to this node's remote holds, exactly once (the
    outbox row is marked done in the same transaction), and books the captures."""

    def __init__(
        self,
        db: Books,
        clock: Clock,
        writer: OutboxWriter,
        windows: PayoutWindows,
        observer: FlowObserver | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._writer = writer
        self._windows = windows
        self._observer = observer

    async def apply(
        self, row: Row, request_type: str, answer: Receipt | Refusal, evidence: Evidence
    ) -> Applied:
        """Apply an issuer's signed answer to the outbox message ``row`` (a request of
        ``request_type``: authorize, redeem, capture or void), exactly once; ``evidence`` is the
        signed answer as received, kept for settlement."""
        now = self._clock.now_ms()
        flows: list[tuple[str, str, int]] = []
        queued: list[Row] = []

        def txn(conn: sqlite3.Connection) -> RemoteHold | None:
            # the reads it makes, in one round trip on PostgreSQL
            remote_holds.get_remote_hold_ahead(conn, row["remote_hold_id"])
            self._windows.payout_window_ahead_txn(conn, now)
            if not outbox_rows.outbox_done(conn, row["message_id"], now):
                return None  # already applied (a retry's answer raced the first one)
            hold = remote_holds.get_remote_hold(conn, row["remote_hold_id"])
            remote_holds.put_receipt(
                conn, evidence.message_id, hold.id, evidence.type_code, evidence.envelope, now
            )
            first = request_type in ("authorize", "redeem")
            applied: RemoteHold | None
            if isinstance(answer, Refusal):
                applied = self._refused_txn(conn, hold, first, answer, now)
            else:
                flow, applied = self._receipt_txn(conn, hold, first, answer, now, queued)
                if flow is not None:
                    flows.append(flow)
            return applied or remote_holds.get_remote_hold(conn, hold.id)

        result = await self._db.run("remote_apply", txn)
        for outcome, compute_class, amount in flows:
            if self._observer is not None:
                self._observer(row["peer"], outcome, compute_class, amount)
        return Applied(result, tuple(queued))

    def _receipt_txn(
        self,
        conn: sqlite3.Connection,
        hold: RemoteHold,
        first: bool,
        r: Receipt,
        now: int,
        queued: list[Row],
    ) -> tuple[tuple[str, str, int] | None, RemoteHold | None]:
        """Apply the issuer's receipt to the hold, in one update; book a capture. Returns the
        flow to count, and the hold as it now is (None when it was changed again since)."""
        columns: dict[str, object] = {
            "state": r.state,
            "captured_fen": r.captured_fen,
            "settlement_window": r.settlement_window or None,
        }
        if first:
            columns.update(
                amount_fen=r.amount_fen,
                issuer_hold_id=r.hold_id,
                voucher_id=r.voucher_id,
                expires_at=r.expires_at_ms,
                closed_at=now if r.state != "held" else None,
            )
        else:
            columns.update(wanted=None, wanted_fen=None, closed_at=now)
        if r.state == "captured":
            columns.update(self._book_capture_txn(conn, hold, r, now))
        remote_holds.update_remote_hold(conn, hold.id, **columns)
        current = dataclasses.replace(hold, **columns)  # type: ignore[arg-type]
        applied: RemoteHold | None = current
        amount = r.amount_fen if first else r.captured_fen
        ledger.event(
            conn,
            now,
            "remote_hold",
            hold.id,
            r.state,
            f"peer:{hold.issuer_region}",
            amount,
            issuer_hold_id=r.hold_id,
        )
        if r.state == "captured":
            return ("captured", hold.compute_class, r.captured_fen), applied
        if not first:
            return (r.state, hold.compute_class, hold.amount_fen), applied
        if r.state == "held" and hold.wanted == "void":
            remote_holds.update_remote_hold(conn, hold.id, wanted=None)
            queued.append(enqueue_txn(conn, current, "void", None, now, self._writer))
            applied = None
        return (("held", hold.compute_class, r.amount_fen) if r.state == "held" else None), applied

    def _book_capture_txn(
        self, conn: sqlite3.Connection, hold: RemoteHold, r: Receipt, now: int
    ) -> dict[str, object]:
        """Book a captured subsidy (the issuer's city owes ours, we owe the provider); returns the
        hold's columns that record where it is paid from."""
        payout_window = self._windows.payout_window_txn(conn, now)
        settlement.window_active(conn, payout_window)
        if r.settlement_window:
            settlement.window_acquired(conn, hold.issuer_region, r.settlement_window)
        ledger.transfer(
            conn,
            now,
            "remote_capture",
            hold.id,
            ledger.issuer(hold.issuer_region),
            ledger.payable(hold.provider_id),
            r.captured_fen,
        )
        return {"payout_window": payout_window, "holder_uscc": r.holder_uscc or None}

    def _refused_txn(
        self, conn: sqlite3.Connection, hold: RemoteHold, first: bool, r: Refusal, now: int
    ) -> RemoteHold:
        """Record the issuer's refusal; returns the hold as it now is."""
        actor = f"peer:{hold.issuer_region}"
        columns: dict[str, object] = {
            "refusal_code": r.code,
            "refusal_message": r.message,
            "wanted": None,
            "wanted_fen": None,
        }
        if first:
            columns.update(state="refused", closed_at=now)
        elif r.code == errors.HoldExpired.code:
            columns.update(state="expired", closed_at=now)
        remote_holds.update_remote_hold(conn, hold.id, **columns)
        ledger.event(
            conn,
            now,
            "remote_hold",
            hold.id,
            "refused",
            actor,
            None,
            code=r.code,
            message=r.message,
        )
        return dataclasses.replace(hold, **columns)  # type: ignore[arg-type]


def refusal_error(hold: RemoteHold) -> errors.SuanliError:
    """The issuer's refusal, as the same error a local redemption would raise."""
    cls = errors.BY_CODE.get(hold.refusal_code or "")
    if cls is not None:
        return cls(f"the issuing city refused: {hold.refusal_message}", hold_id=hold.id)
    return errors.SuanliError(
        f"the issuing city refused ({hold.refusal_code}): {hold.refusal_message}"
    )
