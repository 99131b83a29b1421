"""The issuer side: this node answers peers that redeem this city's vouchers.

This node is authoritative for its vouchers and balances. A peer (the acquirer) vouches for
its provider and sends AUTHORIZE, CAPTURE, VOID, REDEEM or STATUS; the answer is a signed
RECEIPT or a signed REFUSAL, which the acquirer keeps as evidence for settlement.

Idempotency: the inbox remembers every (origin, message id) with its payload's SHA-256 and the
exact signed reply, written in the same transaction as the request's effect. The same id with
the same payload gets that reply again, however often; the same id with another payload is a
``modified_replay``. A business refusal (insufficient balance, expired code…) is itself a
definitive, stored reply: the effect is rolled back to a savepoint, the refusal committed.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from google.protobuf.message import DecodeError, Message

from federation.envelope import Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.clock import Clock
from node.domain.fields import MAX_FEN
from node.domain.model import Hold, Provider
from node.faults import crash_point
from node.keys import NodeKey
from node.services.common import CONTROL, new_id
from node.services.spending import HoldResult, Order, Redeemer, Spending
from node.store import inbox, registry, vouchers
from node.store.db import Database, savepoint

logger = logging.getLogger(__name__)

REQUESTS: dict[int, type[Message]] = {
    pb.AUTHORIZE: pb.AuthorizeRequest,
    pb.CAPTURE: pb.CaptureRequest,
    pb.VOID: pb.VoidRequest,
    pb.REDEEM: pb.RedeemRequest,
    pb.STATUS: pb.StatusRequest,
}

# (peer region, request type, outcome): outcome is receipt | refusal | replay
IssuerObserver = Callable[[str, int, str], None]


def receipt(
    request_message_id: str, request_type: int, hold: Hold, ratio_bp: int, at: int, holder_uscc: str
) -> pb.Receipt:
    return pb.Receipt(
        request_message_id=request_message_id,
        request_type=request_type,  # type: ignore[arg-type]
        hold_id=hold.id,
        voucher_id=hold.voucher_id,
        state=hold.state,
        amount_fen=hold.amount_fen,
        captured_fen=hold.captured_fen,
        ratio_bp=ratio_bp,
        expires_at_ms=hold.expires_at,
        order_id=hold.order_id,
        provider_id=hold.provider_id,
        decided_at_ms=at,
        settlement_window=hold.settlement_window or "",
        holder_uscc=holder_uscc,
    )


def _text(value: str, field: str, limit: int = 100) -> str:
    if not value or len(value) > limit or CONTROL.search(value):
        raise errors.InvalidRequest(f"{field}: required, at most {limit} printable characters")
    return value


def _holder_uscc(conn: sqlite3.Connection, hold: Hold) -> str:
    voucher = vouchers.get_voucher(conn, hold.voucher_id)
    return registry.get_holder(conn, voucher.holder_id).uscc


class Issuer:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        region: str,
        key: NodeKey,
        spending: Spending,
        observer: IssuerObserver | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._key = key
        self._spending = spending
        self._observer = observer

    async def handle(self, opened: Opened) -> bytes:
        """Apply a verified request once and return the signed reply (the stored one on replays)."""
        header = opened.header
        origin = header.origin
        now = self._clock.now_ms()
        outcome: list[str] = []
        observed: list[tuple[HoldResult, str]] = []

        def txn(conn: sqlite3.Connection) -> bytes:
            seen = inbox.inbox_get(conn, origin, header.message_id)
            if seen is not None:
                if seen["payload_sha256"] != opened.payload_sha256 or seen["type"] != header.type:
                    raise errors.ModifiedReplay(
                        f"message {header.message_id} from {origin} was already received with another payload"
                    )
                outcome.append("replay")
                return bytes(seen["reply"])
            try:
                answer: Message
                with savepoint(conn, "request"):  # a refusal undoes the request's effect only
                    answer, hold_id = self._apply(
                        conn, origin, header, opened.payload, now, observed
                    )
                kind = pb.RECEIPT
                outcome.append("receipt")
            except errors.SuanliError as refusal:
                observed.clear()
                answer = pb.Refusal(
                    request_message_id=header.message_id, code=refusal.code, message=refusal.message
                )
                hold_id = None
                kind = pb.REFUSAL
                outcome.append("refusal")
            reply = seal(
                self._key,
                self.region,
                origin,
                new_id("m"),
                kind,
                answer.SerializeToString(deterministic=True),
                now,
                in_reply_to=header.message_id,
            )
            inbox.inbox_put(
                conn,
                origin,
                header.message_id,
                header.type,
                opened.payload_sha256,
                reply,
                hold_id,
                now,
            )
            return reply

        reply = await self._db.run(f"issuer_{pb.MessageType.Name(header.type).lower()}", txn)
        crash_point(f"issuer.after_commit.{pb.MessageType.Name(header.type).lower()}")
        for result, flow in observed:
            self._spending.observe(result, flow)
        if self._observer is not None:
            self._observer(origin, header.type, outcome[0])
        return reply

    def _apply(
        self,
        conn: sqlite3.Connection,
        origin: str,
        header: pb.Header,
        payload: bytes,
        now: int,
        observed: list[tuple[HoldResult, str]],
    ) -> tuple[pb.Receipt, str | None]:
        try:
            request = REQUESTS[header.type].FromString(payload)
        except (DecodeError, KeyError):
            raise errors.InvalidRequest("the payload is not a valid request of its type") from None
        actor = f"peer:{origin}"
        spending = self._spending
        result: HoldResult
        if isinstance(request, (pb.AuthorizeRequest, pb.RedeemRequest)):
            redeemer = self._redeemer(origin, request.provider)
            order = Order(
                code=_text(request.code, "code"),
                order_id=_text(request.order.order_id, "order.order_id"),
                order_amount_fen=request.order.order_amount_fen,
                compute_class=_text(request.order.compute_class, "order.compute_class", 60),
            )
            if not 0 < order.order_amount_fen <= MAX_FEN:
                raise errors.InvalidRequest(f"order.order_amount_fen: must be 1..{MAX_FEN}")
            if isinstance(request, pb.AuthorizeRequest):
                result = spending.place(conn, redeemer, order, now, actor)
                observed.append((result, "held"))
            else:
                result = spending.place_and_capture(conn, redeemer, order, now, actor)
                observed.append((result, "captured"))
        elif isinstance(request, pb.CaptureRequest):
            if not 0 < request.amount_fen <= MAX_FEN:
                raise errors.InvalidRequest(f"amount_fen: must be 1..{MAX_FEN}")
            result = spending.capture_txn(
                conn,
                self._owner(conn, origin, request.hold_id),
                request.hold_id,
                request.amount_fen,
                now,
                actor,
            )
            observed.append((result, "captured"))
        elif isinstance(request, pb.VoidRequest):
            result = spending.void_txn(
                conn, self._owner(conn, origin, request.hold_id), request.hold_id, now, actor
            )
            observed.append((result, "voided"))
        else:
            assert isinstance(request, pb.StatusRequest)
            return self._status(
                conn, origin, request.request_message_id, header.message_id, now
            ), None
        hold = result.hold
        assert isinstance(hold, Hold)
        voucher = result.voucher or vouchers.get_voucher(conn, hold.voucher_id)
        uscc = result.holder_uscc or registry.get_holder(conn, voucher.holder_id).uscc
        return receipt(header.message_id, header.type, hold, voucher.ratio_bp, now, uscc), hold.id

    def _redeemer(self, origin: str, provider: pb.Provider) -> Redeemer:
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
    def _owner(conn: sqlite3.Connection, origin: str, hold_id: str) -> Redeemer:
        hold = vouchers.get_hold(conn, _text(hold_id, "hold_id", 60))
        if hold.acquirer_region != origin:
            raise errors.Forbidden("this hold was not placed by your node")
        provider = Provider(hold.provider_id, "", "", "", origin, "approved", (), 0)
        return Redeemer(origin, provider)

    def _status(
        self, conn: sqlite3.Connection, origin: str, asked: str, message_id: str, now: int
    ) -> pb.Receipt:
        seen = inbox.inbox_get(conn, origin, asked)
        if seen is None:
            return pb.Receipt(
                request_message_id=message_id,
                request_type=pb.STATUS,
                unknown=True,
                decided_at_ms=now,
            )
        if seen["hold_id"] is None:
            return pb.Receipt(
                request_message_id=message_id,
                request_type=pb.STATUS,
                state="refused",
                decided_at_ms=now,
            )
        hold = vouchers.get_hold(conn, seen["hold_id"])
        ratio = vouchers.get_voucher(conn, hold.voucher_id).ratio_bp
        return receipt(message_id, pb.STATUS, hold, ratio, now, _holder_uscc(conn, hold))
