"""Orders against offers (issue 20, item 4), pure: a holder asks an offer's provider for an
order, the provider accepts it with its own order id or declines it, and the accepted order is
then redeemed by the usual flow (a spend code, a hold, a capture) under that order id, which
is what links the offer, the order and the capture in both cities' books.

    requested ──accept(order id)──▶ accepted
        ├──decline(reason)──────────▶ declined
        └──refused by the provider's city (offer gone, changed…)──▶ refused

Accepted, declined and refused are final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from node import errors
from node.domain.fields import CONTROL, MAX_FEN
from node.domain.offers import Offer

OrderState = Literal["requested", "accepted", "declined", "refused"]
ORDER_STATES = ("requested", "accepted", "declined", "refused")
REQUEST_ID = re.compile(r"or_[0-9a-f]{16}")
ORDER_ID_MAX = 100  # as a redemption's order_id (docs/protocol.md §4.7)
NOTE_MAX = 500
# An order as both sides keep it (node/store/orders.py); the API shows all but the message ids.
ORDER_FIELDS = (
    "id",
    "side",
    "peer",
    "holder_id",
    "holder_name",
    "holder_uscc",
    "offer_origin",
    "offer_id",
    "offer_version",
    "provider_id",
    "provider_name",
    "compute_class",
    "card_hours",
    "price_fen",
    "amount_fen",
    "note",
    "state",
    "order_id",
    "reason",
    "request_message_id",
    "answer_message_id",
    "created_at",
    "decided_at",
    "updated_at",
)
SHOWN_FIELDS = tuple(f for f in ORDER_FIELDS if not f.endswith("message_id"))


@dataclass(frozen=True)
class OrderRequest:
    """What the holder's city sends the provider's city (ORDER_REQUEST)."""

    request_id: str
    offer_id: str
    offer_version: int
    card_hours: int
    amount_fen: int
    holder_id: str
    holder_name: str
    holder_uscc: str
    note: str


@dataclass(frozen=True)
class OrderAnswer:
    """What the provider's city answers, once its provider has decided (ORDER_ANSWER)."""

    request_id: str
    accepted: bool
    order_id: str
    reason: str


def order_amount(offer: Offer, card_hours: int) -> int:
    """The order's amount before any subsidy, checked against the offer's smallest order."""
    if card_hours < offer.terms.min_card_hours:
        raise errors.InvalidRequest(
            f"card_hours: this offer's smallest order is {offer.terms.min_card_hours} card-hours"
        )
    amount = card_hours * offer.terms.price_fen
    if amount > MAX_FEN:
        raise errors.InvalidRequest("card_hours: the order would cost more than 10^15 fen")
    return amount


def check_orderable(offer: Offer, now_ms: int) -> None:
    if offer.withdrawn:
        raise errors.OfferWithdrawn(f"offer {offer.offer_id} was withdrawn")
    if not offer.live(now_ms):
        raise errors.OfferExpired(f"offer {offer.offer_id} has expired")


def check_request(request: OrderRequest, offer: Offer, now_ms: int) -> None:
    """The provider's city checks a request against its offer as it is now."""
    check_orderable(offer, now_ms)
    if request.offer_version != offer.version:
        raise errors.OfferChanged(
            f"offer {offer.offer_id} is at version {offer.version}, not {request.offer_version}: "
            "ask again at its current terms"
        )
    if order_amount(offer, request.card_hours) != request.amount_fen:
        raise errors.InvalidRequest("amount_fen: must be card_hours × the offer's price_fen")


def request_problem(r: OrderRequest) -> str | None:
    """What is wrong with a received request's fields, or None."""
    if not REQUEST_ID.fullmatch(r.request_id):
        return "request_id: 'or_' and 16 lowercase hex digits"
    for name, value, most in (
        ("holder_id", r.holder_id, 100),
        ("holder_name", r.holder_name, 200),
        ("holder_uscc", r.holder_uscc, 40),
    ):
        if not value or len(value) > most or CONTROL.search(value):
            return f"{name}: 1-{most} characters, no control characters"
    if len(r.note) > NOTE_MAX or CONTROL.search(r.note):
        return f"note: at most {NOTE_MAX} characters, no control characters"
    if not r.card_hours >= 1 or not 1 <= r.amount_fen <= MAX_FEN:
        return "card_hours and amount_fen: positive, the amount at most 10^15 fen"
    return None


def check_answer(answer: OrderAnswer) -> None:
    """A provider's decision: an order id to accept, a reason to decline."""
    if answer.accepted:
        if (
            not answer.order_id
            or len(answer.order_id) > ORDER_ID_MAX
            or CONTROL.search(answer.order_id)
        ):
            raise errors.InvalidRequest(f"order_id: 1-{ORDER_ID_MAX} characters")
    elif not answer.reason or len(answer.reason) > NOTE_MAX or CONTROL.search(answer.reason):
        raise errors.InvalidRequest(f"reason: 1-{NOTE_MAX} characters")
