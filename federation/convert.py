"""Every conversion between the protocol's protobuf messages and the services' values, in one
place (Flower's ``flwr.common.serde``): the services know no protobuf, the wire knows no money.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

from google.protobuf.message import DecodeError

from federation.envelope import Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.domain.clearing import Advice, Confirmation, Covered
from node.domain.offers import Offer, Signed, Terms
from node.domain.orders import OrderAnswer, OrderRequest
from node.domain.statements import Record, SignedStatement, StatementAnswer, StatementClaim
from node.keys import NodeKey
from node.services.catalog import Mark
from node.services.common import new_id
from node.services.ports import (
    Acknowledged,
    Ask,
    Inbound,
    PeerProvider,
    PeerRequest,
    Place,
    Receipt,
    Refusal,
    Settle,
    Status,
    Unreadable,
)

STATUS = int(pb.STATUS)


def type_name(kind: int) -> str:
    """A message type's name as the services and the metrics say it: ``authorize``…"""
    return pb.MessageType.Name(kind).lower()


def request_message(ask: Place | Settle) -> tuple[int, bytes]:
    """The acquirer's request: its message type and exact payload."""
    if isinstance(ask, Place):
        request = (pb.RedeemRequest if ask.capture else pb.AuthorizeRequest)(
            code=ask.code,
            provider=pb.Provider(
                region=ask.provider.region,
                id=ask.provider.id,
                uscc=ask.provider.uscc,
                name=ask.provider.name,
                kind=ask.provider.kind,
            ),
            order=pb.Order(
                order_id=ask.order_id,
                order_amount_fen=ask.order_amount_fen,
                compute_class=ask.compute_class,
            ),
        )
        return (pb.REDEEM if ask.capture else pb.AUTHORIZE), request.SerializeToString(
            deterministic=True
        )
    if ask.amount_fen is not None:
        capture = pb.CaptureRequest(hold_id=ask.hold_id, amount_fen=ask.amount_fen)
        return pb.CAPTURE, capture.SerializeToString(deterministic=True)
    return pb.VOID, pb.VoidRequest(hold_id=ask.hold_id).SerializeToString(deterministic=True)


# What each request the outbox sends may be answered with.
ANSWERS: dict[int, tuple[int, ...]] = {
    pb.AUTHORIZE: (pb.RECEIPT, pb.REFUSAL),
    pb.CAPTURE: (pb.RECEIPT, pb.REFUSAL),
    pb.VOID: (pb.RECEIPT, pb.REFUSAL),
    pb.REDEEM: (pb.RECEIPT, pb.REFUSAL),
    pb.STATUS: (pb.RECEIPT, pb.REFUSAL),
    pb.TRANSFER_ADVICE: (pb.ACK, pb.REFUSAL),
    pb.RECEIPT_CONFIRMATION: (pb.ACK, pb.REFUSAL),
    pb.ORDER_REQUEST: (pb.ACK, pb.REFUSAL),
    pb.ORDER_ANSWER: (pb.ACK, pb.REFUSAL),
}
CLEARING = (int(pb.TRANSFER_ADVICE), int(pb.RECEIPT_CONFIRMATION))
ORDERS = (int(pb.ORDER_REQUEST), int(pb.ORDER_ANSWER))


def answer(opened: Opened) -> Receipt | Refusal | Acknowledged:
    """A peer's verified RECEIPT, REFUSAL or ACK as the services take it."""
    try:
        if opened.header.type == pb.ACK:
            return Acknowledged(pb.Ack.FromString(opened.payload).request_message_id)
        if opened.header.type == pb.REFUSAL:
            refusal = pb.Refusal.FromString(opened.payload)
            return Refusal(refusal.request_message_id, refusal.code, refusal.message)
        r = pb.Receipt.FromString(opened.payload)
    except DecodeError:
        raise errors.MalformedMessage("an answer's payload does not parse") from None
    return Receipt(**{name: getattr(r, name) for name in RECEIPT_FIELDS})


def _ask(kind: int, payload: bytes) -> Ask:
    try:
        if kind in (pb.AUTHORIZE, pb.REDEEM):
            place = (pb.AuthorizeRequest if kind == pb.AUTHORIZE else pb.RedeemRequest).FromString(
                payload
            )
            p = place.provider
            return Place(
                code=place.code,
                provider=PeerProvider(p.region, p.id, p.uscc, p.name, p.kind),
                order_id=place.order.order_id,
                order_amount_fen=place.order.order_amount_fen,
                compute_class=place.order.compute_class,
                capture=kind == pb.REDEEM,
            )
        if kind == pb.CAPTURE:
            capture = pb.CaptureRequest.FromString(payload)
            return Settle(capture.hold_id, capture.amount_fen)
        if kind == pb.VOID:
            return Settle(pb.VoidRequest.FromString(payload).hold_id, None)
        if kind == pb.STATUS:
            return Status(pb.StatusRequest.FromString(payload).request_message_id)
    except DecodeError:
        pass
    return Unreadable()


def peer_request(opened: Opened) -> PeerRequest:
    """A redemption request that passed the door, as the issuer's service takes it."""
    header = opened.header
    return PeerRequest(
        origin=header.origin,
        message_id=header.message_id,
        type_code=int(header.type),
        type_name=type_name(header.type),
        payload_sha256=opened.payload_sha256,
        ask=_ask(header.type, opened.payload),
    )


# A Receipt value and the protocol's Receipt message have the same fields (docs/protocol.md §4.5).
RECEIPT_FIELDS = tuple(f.name for f in dataclasses.fields(Receipt))


def receipt_message(r: Receipt) -> pb.Receipt:
    return pb.Receipt(**{name: getattr(r, name) for name in RECEIPT_FIELDS})


class Sealer:
    """The issuer's ``ReplySealer``: an answer as the signed RECEIPT or REFUSAL envelope."""

    def __init__(self, key: NodeKey, region: str) -> None:
        self._key = key
        self._region = region

    def seal(self, origin: str, in_reply_to: str, answer: Receipt | Refusal, now_ms: int) -> bytes:
        if isinstance(answer, Refusal):
            kind = pb.REFUSAL
            payload = pb.Refusal(
                request_message_id=answer.request_message_id,
                code=answer.code,
                message=answer.message,
            ).SerializeToString(deterministic=True)
        else:
            kind = pb.RECEIPT
            payload = receipt_message(answer).SerializeToString(deterministic=True)
        return self.reply(origin, in_reply_to, kind, payload, now_ms)

    def ack(self, origin: str, in_reply_to: str, now_ms: int) -> bytes:
        payload = pb.Ack(request_message_id=in_reply_to).SerializeToString(deterministic=True)
        return self.reply(origin, in_reply_to, pb.ACK, payload, now_ms)

    def reply(self, origin: str, in_reply_to: str, kind: int, payload: bytes, now_ms: int) -> bytes:
        """Any reply to ``origin``'s message ``in_reply_to``, signed by this node."""
        return seal(
            self._key,
            self._region,
            origin,
            new_id("m"),
            kind,
            payload,
            now_ms,
            in_reply_to=in_reply_to,
        )


# Pair statements (docs/settlement.md) ------------------------------------------------------------


def _records(msgs: Iterable[pb.StatementRecord]) -> list[Record]:
    return sorted((m.issuer_hold_id, m.provider_id, m.order_id, m.captured_fen) for m in msgs)


def _record_messages(records: Sequence[Record] | None) -> list[pb.StatementRecord]:
    return [
        pb.StatementRecord(issuer_hold_id=h, provider_id=p, order_id=o, captured_fen=f)
        for h, p, o, f in records or ()
    ]


def statement_request(claim: StatementClaim) -> bytes:
    """The acquirer's STATEMENT payload."""
    return pb.StatementRequest(
        statement=claim.statement,
        acquirer_signature=claim.acquirer_signature,
        acquirer_key_id=claim.acquirer_key_id,
        records=_record_messages(claim.records),
        records_omitted=claim.records is None,
    ).SerializeToString(deterministic=True)


def window_closed(payload: bytes) -> str:
    """A WINDOW_CLOSED payload: the window's name."""
    try:
        return pb.WindowClosed.FromString(payload).window
    except DecodeError:
        raise errors.MalformedMessage("the payload is not a WindowClosed message") from None


def window_closed_payload(window_id: str, closed_at_ms: int) -> bytes:
    return pb.WindowClosed(window=window_id, closed_at_ms=closed_at_ms).SerializeToString(
        deterministic=True
    )


def statement_claim(payload: bytes) -> StatementClaim:
    """A STATEMENT payload as the issuer's desk takes it."""
    try:
        request = pb.StatementRequest.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the statement does not parse") from None
    if request.records_omitted and request.records:
        raise errors.MalformedMessage("records sent and said to be omitted")
    return StatementClaim(
        statement=request.statement,
        acquirer_signature=request.acquirer_signature,
        acquirer_key_id=request.acquirer_key_id,
        records=None if request.records_omitted else _records(request.records),
    )


def signed_message(s: SignedStatement) -> pb.SignedStatement:
    return pb.SignedStatement(
        statement=s.statement,
        acquirer_signature=s.acquirer_signature,
        acquirer_key_id=s.acquirer_key_id,
        issuer_signature=s.issuer_signature,
        issuer_key_id=s.issuer_key_id,
    )


def signed_statement(m: pb.SignedStatement) -> SignedStatement:
    return SignedStatement(
        m.statement, m.acquirer_signature, m.acquirer_key_id, m.issuer_signature, m.issuer_key_id
    )


def statement_reply(answer: StatementAnswer) -> bytes:
    """The issuer's STATEMENT_REPLY payload."""
    reply = pb.StatementReply(
        agreed=answer.agreed,
        code=answer.code,
        issuer_signature=answer.issuer_signature,
        issuer_key_id=answer.issuer_key_id,
        closes_at_ms=answer.closes_at_ms,
        issuer_statement=answer.issuer_statement,
        issuer_records=_record_messages(answer.issuer_records),
        records_omitted=answer.issuer_records is None,
    )
    if answer.agreed_statement is not None:
        reply.agreed_statement.CopyFrom(signed_message(answer.agreed_statement))
    return reply.SerializeToString(deterministic=True)


def statement_answer(payload: bytes) -> StatementAnswer:
    """A STATEMENT_REPLY payload as the acquirer's service takes it."""
    try:
        r = pb.StatementReply.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the statement reply does not parse") from None
    return StatementAnswer(
        agreed=r.agreed,
        code=r.code,
        issuer_signature=r.issuer_signature,
        issuer_key_id=r.issuer_key_id,
        closes_at_ms=r.closes_at_ms,
        issuer_statement=r.issuer_statement,
        issuer_records=None if r.records_omitted else _records(r.issuer_records),
        agreed_statement=signed_statement(r.agreed_statement)
        if r.HasField("agreed_statement")
        else None,
    )


def statements_request(until_ms: int, after: str, limit: int) -> bytes:
    return pb.StatementsRequest(until_ms=until_ms, after=after, limit=limit).SerializeToString()


def statements_query(payload: bytes) -> tuple[int, str, int]:
    """A STATEMENTS payload: until, after, limit."""
    try:
        r = pb.StatementsRequest.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the request does not parse") from None
    return r.until_ms, r.after, r.limit


def statements_reply(statements: Sequence[SignedStatement], following: str) -> bytes:
    return pb.StatementsReply(
        statements=[signed_message(s) for s in statements], next=following
    ).SerializeToString(deterministic=True)


def statements_page(payload: bytes) -> tuple[list[SignedStatement], str]:
    try:
        r = pb.StatementsReply.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the statements reply does not parse") from None
    return [signed_statement(s) for s in r.statements], r.next


# Settling between cities (docs/settlement.md) ------------------------------------------------------


def advice_payload(a: Advice) -> bytes:
    return pb.TransferAdvice(
        transfer_id=a.transfer_id,
        payer=a.payer,
        payee=a.payee,
        amount_fen=a.amount_fen,
        value_date=a.value_date,
        reference=a.reference,
        netting_id=a.netting_id,
        statements=[
            pb.CoveredStatement(
                issuer=c.issuer,
                acquirer=c.acquirer,
                window=c.window,
                total_fen=c.total_fen,
                digest=c.digest,
            )
            for c in a.statements
        ],
    ).SerializeToString(deterministic=True)


def transfer_advice(payload: bytes) -> Advice:
    try:
        m = pb.TransferAdvice.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the payload is not a TransferAdvice message") from None
    return Advice(
        m.transfer_id,
        m.payer,
        m.payee,
        m.amount_fen,
        m.value_date,
        m.reference,
        m.netting_id,
        tuple(Covered(c.issuer, c.acquirer, c.window, c.total_fen, c.digest) for c in m.statements),
    )


INBOUND: dict[int, Callable[[bytes], Advice | Confirmation | OrderRequest | OrderAnswer]] = {}


def inbound(opened: Opened) -> Inbound:
    """A request with an effect (TRANSFER_ADVICE, RECEIPT_CONFIRMATION, ORDER_REQUEST,
    ORDER_ANSWER) that passed the door, as its service takes it (a payload that does not
    parse is ``malformed_message``)."""
    header = opened.header
    body = INBOUND[header.type](opened.payload)
    return Inbound(
        header.origin,
        header.message_id,
        int(header.type),
        opened.payload_sha256,
        opened.payload,
        opened.raw,
        body,
    )


def confirmation_payload(c: Confirmation) -> bytes:
    return pb.ReceiptConfirmation(
        transfer_id=c.transfer_id,
        payer=c.payer,
        payee=c.payee,
        amount_fen=c.amount_fen,
        netting_id=c.netting_id,
        confirmed=c.confirmed,
        reason=c.reason,
    ).SerializeToString(deterministic=True)


def receipt_confirmation(payload: bytes) -> Confirmation:
    try:
        m = pb.ReceiptConfirmation.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the payload is not a ReceiptConfirmation message") from None
    return Confirmation(
        m.transfer_id, m.payer, m.payee, m.amount_fen, m.netting_id, m.confirmed, m.reason
    )


def order_request_payload(r: OrderRequest) -> bytes:
    return pb.OrderRequest(
        request_id=r.request_id,
        offer_id=r.offer_id,
        offer_version=r.offer_version,
        card_hours=r.card_hours,
        amount_fen=r.amount_fen,
        holder_id=r.holder_id,
        holder_name=r.holder_name,
        holder_uscc=r.holder_uscc,
        note=r.note,
    ).SerializeToString(deterministic=True)


def order_request(payload: bytes) -> OrderRequest:
    try:
        m = pb.OrderRequest.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the payload is not an OrderRequest message") from None
    return OrderRequest(
        m.request_id,
        m.offer_id,
        m.offer_version,
        m.card_hours,
        m.amount_fen,
        m.holder_id,
        m.holder_name,
        m.holder_uscc,
        m.note,
    )


def order_answer_payload(a: OrderAnswer) -> bytes:
    return pb.OrderAnswer(
        request_id=a.request_id, accepted=a.accepted, order_id=a.order_id, reason=a.reason
    ).SerializeToString(deterministic=True)


def order_answer(payload: bytes) -> OrderAnswer:
    try:
        m = pb.OrderAnswer.FromString(payload)
    except DecodeError:
        raise errors.MalformedMessage("the payload is not an OrderAnswer message") from None
    return OrderAnswer(m.request_id, m.accepted, m.order_id, m.reason)


INBOUND.update(
    {
        pb.TRANSFER_ADVICE: transfer_advice,
        pb.RECEIPT_CONFIRMATION: receipt_confirmation,
        pb.ORDER_REQUEST: order_request,
        pb.ORDER_ANSWER: order_answer,
    }
)


# Compute offers (docs/protocol.md §5d) --------------------------------------------------------


def offer_message(offer: Offer) -> pb.Offer:
    t = offer.terms
    return pb.Offer(
        origin=offer.origin,
        offer_id=offer.offer_id,
        seq=offer.seq,
        version=offer.version,
        withdrawn=offer.withdrawn,
        provider=pb.Provider(
            region=offer.origin,
            id=offer.provider_id,
            name=offer.provider_name,
            kind=offer.provider_kind,
        ),
        compute_class=t.compute_class,
        accelerator=t.accelerator,
        cards=t.cards,
        price_fen=t.price_fen,
        min_card_hours=t.min_card_hours,
        available_from_ms=t.available_from,
        available_until_ms=t.available_until,
        expires_at_ms=t.expires_at,
        data_centre_region=t.data_centre_region,
        domestic_chips=t.domestic_chips,
        security_level=t.security_level,
        contact=t.contact,
        published_at_ms=offer.published_at,
    )


def offer_value(m: pb.Offer) -> Offer:
    return Offer(
        origin=m.origin,
        offer_id=m.offer_id,
        seq=m.seq,
        version=m.version,
        withdrawn=m.withdrawn,
        provider_id=m.provider.id,
        provider_name=m.provider.name,
        provider_kind=m.provider.kind,
        terms=Terms(
            compute_class=m.compute_class,
            accelerator=m.accelerator,
            cards=m.cards,
            price_fen=m.price_fen,
            min_card_hours=m.min_card_hours,
            available_from=m.available_from_ms,
            available_until=m.available_until_ms,
            expires_at=m.expires_at_ms,
            data_centre_region=m.data_centre_region,
            domestic_chips=m.domestic_chips,
            security_level=m.security_level,
            contact=m.contact,
        ),
        published_at=m.published_at_ms,
    )


def signed_offer_message(s: Signed) -> pb.SignedOffer:
    return pb.SignedOffer(
        offer=s.record, key_id=s.key_id, signature=s.signature, origin=s.offer.origin
    )


def offer_marks(batch: pb.OfferBatch) -> list[Mark]:
    out = []
    for m in batch.marks:
        if m.through and m.through < m.after:
            raise errors.MalformedMessage(f"mark of {m.origin[:10]!r}: through before after")
        out.append(Mark(m.origin, m.after, m.through))
    return out


def batch_payload(signed: list[Signed], marks: list[Mark], more: bool = False) -> bytes:
    return pb.OfferBatch(
        offers=[signed_offer_message(s) for s in signed],
        marks=[pb.OriginMark(origin=m.origin, after=m.after, through=m.through) for m in marks],
        more=more,
    ).SerializeToString(deterministic=True)
