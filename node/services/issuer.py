"""The issuer side: this node answers peers that redeem this city's vouchers.

This node is authoritative for its vouchers and balances. A peer (the acquirer) vouches for
its provider and asks to place, capture or void a hold, to redeem, or what became of an earlier
request (``node/services/ports.py`` has the requests as values; the federation converts its
messages to them). The answer is a signed RECEIPT or a signed REFUSAL, which the acquirer
keeps as evidence for settlement.

Idempotency: the inbox remembers every (origin, message id) with its payload's SHA-256 and the
exact signed reply, written in the same transaction as the request's effect. The same id with
the same payload gets that reply again, however often; the same id with another payload is a
``modified_replay``. A business refusal (insufficient balance, expired code…) is itself a
definitive, stored reply: the effect is rolled back to a savepoint, the refusal committed.
The money code is the same as a local redemption's (``Spending.place`` and friends).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from node import errors
from node.clock import Clock
from node.domain.fields import CONTROL, MAX_FEN
from node.domain.model import Hold, Provider
from node.faults import crash_point
from node.services.common import sha256_hex
from node.services.ports import (
    PeerProvider,
    PeerRequest,
    Place,
    Receipt,
    Refusal,
    ReplySealer,
    Settle,
    Status,
)
from node.services.spending import HoldResult, Order, Redeemer, Spending
from node.store import inbox, registry, vouchers
from node.store.db import savepoint
from node.store.engine import Books

logger = logging.getLogger(__name__)

# (peer region, request type name, outcome): outcome is receipt | refusal | replay
IssuerObserver = Callable[[str, str, str], None]


def hold_receipt(
    request_message_id: str, request_type: int, hold: Hold, ratio_bp: int, at: int, holder_uscc: str
) -> Receipt:
    return Receipt(
        request_message_id=request_message_id,
        request_type=request_type,
        decided_at_ms=at,
        hold_id=hold.id,
        voucher_id=hold.voucher_id,
        state=hold.state,
        amount_fen=hold.amount_fen,
        captured_fen=hold.captured_fen,
        ratio_bp=ratio_bp,
        expires_at_ms=hold.expires_at,
        order_id=hold.order_id,
        provider_id=hold.provider_id,
        settlement_window=hold.settlement_window or "",
        holder_uscc=holder_uscc,
    )


def _printable(value: str, limit: int = 100) -> bool:
    return bool(value) and len(value) <= limit and not CONTROL.search(value)


def _text(value: str, field: str, limit: int = 100) -> str:
    if not _printable(value, limit):
        raise errors.InvalidRequest(f"{field}: required, at most {limit} printable characters")
    return value


def _holder_uscc_txn(conn: sqlite3.Connection, hold: Hold) -> str:
    voucher = vouchers.get_voucher(conn, hold.voucher_id)
    return registry.get_holder(conn, voucher.holder_id).uscc


class IssuerDesk:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        spending: Spending,
        sealer: ReplySealer,
        status_type: int,
        observer: IssuerObserver | None = None,
    ) -> None:
        """``status_type``: the wire's number for a STATUS request (its receipts name it)."""
        self._db = db
        self._clock = clock
        self._spending = spending
        self._sealer = sealer
        self._status_type = status_type
        self._observer = observer

    async def handle(self, request: PeerRequest) -> bytes:
        """Apply a verified request once and return the signed reply (the stored one on replays)."""
        origin = request.origin
        now = self._clock.now_ms()
        outcome: list[str] = []
        told: list[str] = []  # what the log line says of the answer
        observed: list[tuple[HoldResult, str]] = []

        def txn(conn: sqlite3.Connection) -> bytes:
            # The first reads of the request, sent together (one round trip on PostgreSQL).
            inbox.inbox_get_ahead(conn, origin, request.message_id)
            ask = request.ask
            if (  # (a malformed one is refused below, before any read of it)
                isinstance(ask, Place)
                and _printable(ask.code)
                and _printable(ask.order_id)
                and _printable(ask.provider.id, 60)
            ):
                self._spending.place_ahead_txn(
                    conn,
                    origin,
                    ask.provider.id,
                    ask.order_id,
                    sha256_hex(ask.code),
                    ask.capture,
                )
            seen = inbox.replayed(
                conn, origin, request.message_id, request.type_code, request.payload_sha256
            )
            if seen is not None:
                outcome.append("replay")
                told.append(f"the stored reply, hold {seen['hold_id'] or '-'}")
                return bytes(seen["reply"])
            answer: Receipt | Refusal
            hold_id: str | None
            try:
                with savepoint(conn, "request"):  # a refusal undoes the request's effect only
                    answer, hold_id = self._apply_txn(conn, request, now, observed)
                outcome.append("receipt")
                told.append(
                    f"{answer.state or 'status'} {answer.captured_fen or answer.amount_fen} fen, "
                    f"hold {answer.hold_id or '-'}"
                )
            except errors.SuanliError as refusal:
                observed.clear()
                answer = Refusal(request.message_id, refusal.code, refusal.message)
                hold_id = None
                outcome.append("refusal")
                told.append(f"refused {refusal.code}")
            reply = self._sealer.seal(origin, request.message_id, answer, now)
            inbox.inbox_put(
                conn,
                origin,
                request.message_id,
                request.type_code,
                request.payload_sha256,
                reply,
                hold_id,
                now,
            )
            return reply

        reply = await self._db.run(f"issuer_{request.type_name}", txn)
        # Every accepted message, once committed: with the acquirer's request id as this
        # line's request_id (node.logs), one grep follows a redemption through both cities.
        logger.info(
            "accepted %s %s from %s: %s %s",
            request.type_name.upper(),
            request.message_id,
            origin,
            outcome[0],
            told[0],
        )
        crash_point(f"issuer.after_commit.{request.type_name}")
        for result, flow in observed:
            self._spending.observe(result, flow)
        if self._observer is not None:
            self._observer(origin, request.type_name, outcome[0])
        return reply

    def _apply_txn(
        self,
        conn: sqlite3.Connection,
        request: PeerRequest,
        now: int,
        observed: list[tuple[HoldResult, str]],
    ) -> tuple[Receipt, str | None]:
        ask, origin = request.ask, request.origin
        actor = f"peer:{origin}"
        spending = self._spending
        result: HoldResult
        if isinstance(ask, Place):
            redeemer = self._redeemer(origin, ask.provider)
            order = Order(
                code=_text(ask.code, "code"),
                order_id=_text(ask.order_id, "order.order_id"),
                order_amount_fen=ask.order_amount_fen,
                compute_class=_text(ask.compute_class, "order.compute_class", 60),
            )
            if not 0 < order.order_amount_fen <= MAX_FEN:
                raise errors.InvalidRequest(f"order.order_amount_fen: must be 1..{MAX_FEN}")
            if ask.capture:
                result = spending.place_and_capture_txn(conn, redeemer, order, now, actor)
                observed.append((result, "captured"))
            else:
                result = spending.place_txn(conn, redeemer, order, now, actor)
                observed.append((result, "held"))
        elif isinstance(ask, Settle) and ask.amount_fen is not None:
            if not 0 < ask.amount_fen <= MAX_FEN:
                raise errors.InvalidRequest(f"amount_fen: must be 1..{MAX_FEN}")
            owner = self._owner_txn(conn, origin, ask.hold_id)
            result = spending.capture_txn(conn, owner, ask.hold_id, ask.amount_fen, now, actor)
            observed.append((result, "captured"))
        elif isinstance(ask, Settle):
            owner = self._owner_txn(conn, origin, ask.hold_id)
            result = spending.void_txn(conn, owner, ask.hold_id, now, actor)
            observed.append((result, "voided"))
        elif isinstance(ask, Status):
            return self._status_txn(
                conn, origin, ask.request_message_id, request.message_id, now
            ), None
        else:
            raise errors.InvalidRequest("the payload is not a valid request of its type")
        hold = result.hold
        assert isinstance(hold, Hold)
        voucher = result.voucher or vouchers.get_voucher(conn, hold.voucher_id)
        uscc = result.holder_uscc or registry.get_holder(conn, voucher.holder_id).uscc
        receipt = hold_receipt(
            request.message_id, request.type_code, hold, voucher.ratio_bp, now, uscc
        )
        return receipt, hold.id

    @staticmethod
    def _redeemer(origin: str, provider: PeerProvider) -> Redeemer:
        if provider.region != origin:
            raise errors.Forbidden(
                f"{origin} may only vouch for its own providers, not {provider.region!r}"
            )
        return Redeemer(
            origin,
            Provider(
                id=_text(provider.id, "provider.id", 60),
                uscc=_text(provider.uscc, "provider.uscc", 40),
                name=provider.name,
                kind=provider.kind,
                region=origin,
                state="approved",  # the acquirer is authoritative for its providers
                related_uscc=(),
                created_at=0,
            ),
        )

    @staticmethod
    def _owner_txn(conn: sqlite3.Connection, origin: str, hold_id: str) -> Redeemer:
        hold = vouchers.get_hold(conn, _text(hold_id, "hold_id", 60))
        if hold.acquirer_region != origin:
            raise errors.Forbidden("this hold was not placed by your node")
        provider = Provider(hold.provider_id, "", "", "", origin, "approved", (), 0)
        return Redeemer(origin, provider)

    def _status_txn(
        self, conn: sqlite3.Connection, origin: str, asked: str, message_id: str, now: int
    ) -> Receipt:
        seen = inbox.inbox_get(conn, origin, asked)
        if seen is None:
            return Receipt(message_id, self._status_type, now, unknown=True)
        if seen["hold_id"] is None:
            return Receipt(message_id, self._status_type, now, state="refused")
        hold = vouchers.get_hold(conn, seen["hold_id"])
        ratio = vouchers.get_voucher(conn, hold.voucher_id).ratio_bp
        return hold_receipt(
            message_id, self._status_type, hold, ratio, now, _holder_uscc_txn(conn, hold)
        )
