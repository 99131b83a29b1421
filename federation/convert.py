"""Every conversion between the protocol's protobuf messages and the services' values, in one
place (Flower's ``flwr.common.serde``): the services know no protobuf, the wire knows no money.
"""

from __future__ import annotations

import dataclasses

from google.protobuf.message import DecodeError

from federation.envelope import Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.keys import NodeKey
from node.services.common import new_id
from node.services.ports import (
    Ask,
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


def answer(opened: Opened) -> Receipt | Refusal:
    """An issuer's verified RECEIPT or REFUSAL as the acquirer's service takes it."""
    try:
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
