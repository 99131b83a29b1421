"""What the services need from the federation, as values and three ports (docs/architecture.md).
Services know no protobuf: the federation converts its messages to these values
(``federation/convert.py``) and implements the ports.

Exactly-once needs wire bytes written inside money transactions, twice. The issuer's signed
reply commits in the same transaction as the money it answers for (so that a retried request
gets the very same bytes): the service calls ``ReplySealer.seal`` inside that transaction and
stores what it returns. The acquirer's message (its exact payload) commits in the same
transaction as the pending remote hold: the service calls ``OutboxWriter.put_txn`` there, and
hands the row it returns to ``Sender.send_now``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from node.domain.clearing import Advice, Confirmation
from node.domain.orders import OrderAnswer, OrderRequest

# What a peer (the acquirer) asks this node (the issuer) ----------------------------------------


@dataclass(frozen=True)
class PeerProvider:
    """The provider as its home node vouches for it."""

    region: str
    id: str
    uscc: str
    name: str
    kind: str


@dataclass(frozen=True)
class Place:
    """AUTHORIZE (hold) or REDEEM (hold and capture at once)."""

    code: str
    provider: PeerProvider
    order_id: str
    order_amount_fen: int
    compute_class: str
    capture: bool


@dataclass(frozen=True)
class Settle:
    """CAPTURE (with an amount) or VOID (without) of one of this node's holds."""

    hold_id: str
    amount_fen: int | None


@dataclass(frozen=True)
class Status:
    """What became of an earlier request of the same origin."""

    request_message_id: str


@dataclass(frozen=True)
class Unreadable:
    """A verified message whose payload is not the request its type names: refused, and the
    refusal stored like any answer."""


Ask = Place | Settle | Status | Unreadable


@dataclass(frozen=True)
class PeerRequest:
    """A request that passed the door: who sent it, its id, its type (the wire's number and its
    name, opaque here) and the SHA-256 of its payload, for the inbox; and what it asks."""

    origin: str
    message_id: str
    type_code: int
    type_name: str
    payload_sha256: str
    ask: Ask


# What this node answers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """The issuer's account of a hold (docs/protocol.md §4.5); ``request_type`` is the wire's
    number of the request type it answers."""

    request_message_id: str
    request_type: int
    decided_at_ms: int
    hold_id: str = ""
    voucher_id: str = ""
    state: str = ""
    amount_fen: int = 0
    captured_fen: int = 0
    ratio_bp: int = 0
    expires_at_ms: int = 0
    order_id: str = ""
    provider_id: str = ""
    settlement_window: str = ""
    unknown: bool = False
    holder_uscc: str = ""


@dataclass(frozen=True)
class Refusal:
    request_message_id: str
    code: str
    message: str


# The acquirer's outbox ------------------------------------------------------------------------

# an outbox row: message_id, peer, type, payload, remote_hold_id, attempts
Row = Mapping[str, Any] | sqlite3.Row


@dataclass(frozen=True)
class Applied:
    """What applying an answer did: the result for whoever waits on that message (None when it
    had been applied already), and the messages the answer made due, sent at once."""

    result: Any = None
    then: tuple[Row, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """An issuer's signed answer as it was received, kept for settlement."""

    message_id: str
    type_code: int
    envelope: bytes


class OutboxWriter(Protocol):
    """Writes a message to a peer into the outbox, inside the caller's transaction."""

    def put_txn(
        self,
        conn: sqlite3.Connection,
        peer: str,
        message_id: str,
        ask: Place | Settle,
        remote_hold_id: str,
        now: int,
    ) -> Row: ...


class Sender(Protocol):
    """Sends an outbox message at once; what applying its answer returned, or None."""

    async def send_now(self, row: Row) -> Applied | None: ...


class ReplySealer(Protocol):
    """Turns an answer into the signed reply envelope for ``origin`` (the federation's)."""

    def seal(
        self, origin: str, in_reply_to: str, answer: Receipt | Refusal, now_ms: int
    ) -> bytes: ...


# Settling between cities (node/services/clearing.py) -------------------------------------------


@dataclass(frozen=True)
class Acknowledged:
    """A peer's signed ACK: it applied (or had applied) the message."""

    request_message_id: str


@dataclass(frozen=True)
class Inbound:
    """A TRANSFER_ADVICE or RECEIPT_CONFIRMATION that passed the door: who sent it, its id,
    type and payload (exact bytes and SHA-256, for the inbox and the evidence), the signed
    envelope as received, and what it says."""

    origin: str
    message_id: str
    type_code: int
    payload_sha256: str
    payload: bytes
    envelope: bytes
    body: Advice | Confirmation | OrderRequest | OrderAnswer


class ClearingWriter(Protocol):
    """Writes a TRANSFER_ADVICE or a RECEIPT_CONFIRMATION into the outbox, inside the
    caller's transaction; returns the row for ``Sender.send_now``."""

    def advice_txn(
        self, conn: sqlite3.Connection, advice: Advice, message_id: str, now: int
    ) -> Row: ...

    def confirmation_txn(
        self, conn: sqlite3.Connection, confirmation: Confirmation, message_id: str, now: int
    ) -> Row: ...


class OrderWriter(Protocol):
    """Writes an ORDER_REQUEST or an ORDER_ANSWER to ``peer`` into the outbox, inside the
    caller's transaction; returns the row for ``Sender.send_now``."""

    def order_request_txn(
        self, conn: sqlite3.Connection, peer: str, request: OrderRequest, message_id: str, now: int
    ) -> Row: ...

    def order_answer_txn(
        self, conn: sqlite3.Connection, peer: str, answer: OrderAnswer, message_id: str, now: int
    ) -> Row: ...


class AckSealer(ReplySealer, Protocol):
    """Also seals a signed ACK to ``origin``'s message ``in_reply_to``."""

    def ack(self, origin: str, in_reply_to: str, now_ms: int) -> bytes: ...
