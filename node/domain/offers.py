"""Compute offers and the price a holder pays after its own voucher (issue 20), pure.

A provider's city publishes its offers: what is sold (class, accelerator, cards), at what price
per card-hour, when, where, with which certifications. Every change, whether a publication,
a new version or a withdrawal, takes the origin city's next sequence number, and the version
with the highest number is the offer (docs/protocol.md §5d). An offer lapses by itself at its
expiry: no message is needed for that, every city drops it from searches at the same moment.

The price after the voucher is what a holder of city A would pay for one card-hour of an
offer in city B: the price less the subsidy of A's best voucher for that class, when A lets
its vouchers travel to B and has room left under its exposure cap to B. Like every subsidy it
truncates toward zero (BRIEF R2); for a whole order it is computed again on the order's amount,
and the voucher's balance then limits it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from node import errors
from node.domain.fields import CONTROL, MAX_FEN, is_region
from node.domain.model import Voucher
from node.domain.money import apply_ratio

OFFER_ID = re.compile(r"of_[a-z0-9]{1,60}")
ACCELERATOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,39}")
MAX_CARDS = 1_000_000
MAX_CARD_HOURS = 100_000_000
MAX_CONTACT = 200
MAX_SECURITY_LEVEL = 4  # MLPS (等保) levels 1-4; 0: none stated
# How far ahead an offer may run: a year, so that a forgotten offer does not linger.
MAX_OFFER_LIFE_MS = 366 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Terms:
    """What a provider sells, as it publishes or changes it."""

    compute_class: str
    accelerator: str
    cards: int
    price_fen: int  # per card-hour
    min_card_hours: int
    available_from: int  # ms
    available_until: int  # ms
    expires_at: int  # ms: the offer lapses then
    data_centre_region: str
    domestic_chips: bool = False
    security_level: int = 0
    contact: str = ""


@dataclass(frozen=True)
class Offer:
    """One version of an offer, as every city's catalog holds it."""

    origin: str
    offer_id: str
    seq: int
    version: int
    withdrawn: bool
    provider_id: str
    provider_name: str
    provider_kind: str
    terms: Terms
    published_at: int

    def live(self, now_ms: int) -> bool:
        return not self.withdrawn and now_ms < self.terms.expires_at

    def changed(self, terms: Terms, seq: int, now_ms: int) -> Offer:
        return replace(self, terms=terms, seq=seq, version=self.version + 1, published_at=now_ms)

    def withdrawal(self, seq: int, now_ms: int) -> Offer:
        return replace(self, withdrawn=True, seq=seq, version=self.version + 1, published_at=now_ms)


@dataclass(frozen=True)
class Signed:
    """An offer with the exact signed record it travels as (docs/protocol.md §5d): the
    origin's signature over the record's bytes, which every city keeps and hands on as they
    came."""

    offer: Offer
    record: bytes
    key_id: str
    signature: bytes


def check_terms(terms: Terms, classes: Iterable[str], now_ms: int) -> None:
    """Refuse terms a city must not publish, naming the field (the same for the API, the
    pages and an offer received from a peer)."""
    problem = terms_problem(terms, now_ms)
    if problem:
        raise errors.InvalidRequest(problem)
    if terms.compute_class not in set(classes):
        raise errors.UnknownComputeClass(
            f"compute_class: {terms.compute_class!r} is not a class of this year's policy"
        )


def terms_problem(terms: Terms, now_ms: int | None) -> str | None:
    """What is wrong with the terms, or None. ``now_ms`` None: a received offer, whose times
    are checked for order only (it may have lapsed since it was signed)."""
    if (
        not terms.compute_class
        or len(terms.compute_class) > 60
        or CONTROL.search(terms.compute_class)
    ):
        return "compute_class: 1-60 characters, no control characters"
    if not ACCELERATOR.fullmatch(terms.accelerator):
        return "accelerator: 1-40 of letters, digits, space and . _ + - (e.g. Ascend 910B)"
    if not 1 <= terms.cards <= MAX_CARDS:
        return f"cards: 1 to {MAX_CARDS:,}"
    if not 1 <= terms.price_fen <= MAX_FEN:
        return "price_fen: a positive number of fen per card-hour"
    if not 1 <= terms.min_card_hours <= MAX_CARD_HOURS:
        return f"min_card_hours: 1 to {MAX_CARD_HOURS:,}"
    if terms.min_card_hours * terms.price_fen > MAX_FEN:
        return "min_card_hours: the smallest order would cost more than any amount this node keeps"
    if terms.available_until <= terms.available_from:
        return "available_until: must be after available_from"
    if not terms.available_from < terms.expires_at <= terms.available_until:
        return "expires_at: after available_from, at the latest available_until"
    if now_ms is not None:
        if terms.expires_at <= now_ms:
            return "expires_at: must be in the future"
        if terms.expires_at > now_ms + MAX_OFFER_LIFE_MS:
            return "expires_at: at most a year ahead"
    if not is_region(terms.data_centre_region):
        return "data_centre_region: a six-digit GB/T 2260 code"
    if not 0 <= terms.security_level <= MAX_SECURITY_LEVEL:
        return f"security_level: 0 (none stated) to {MAX_SECURITY_LEVEL}"
    if len(terms.contact) > MAX_CONTACT or CONTROL.search(terms.contact):
        return f"contact: at most {MAX_CONTACT} characters, no control characters"
    return None


def offer_problem(offer: Offer) -> str | None:
    """What is wrong with a received offer's own fields, or None."""
    if not is_region(offer.origin):
        return "origin: not a region code"
    if not OFFER_ID.fullmatch(offer.offer_id):
        return "offer_id: 'of_' and 1-60 of a-z 0-9"
    if offer.seq < 1 or offer.version < 1:
        return "seq and version start at 1"
    if not offer.provider_id or len(offer.provider_id) > 100 or CONTROL.search(offer.provider_id):
        return "provider.id: 1-100 characters"
    if len(offer.provider_name) > 200 or CONTROL.search(offer.provider_name):
        return "provider.name: at most 200 characters"
    if offer.provider_kind not in ("computing_centre", "matchmaking_partner"):
        return "provider.kind: computing_centre or matchmaking_partner"
    return terms_problem(offer.terms, None)


def newer(incoming: Offer, current: Offer | None) -> bool:
    """Whether ``incoming`` replaces ``current``: only a higher sequence number does, so an
    old version, however often it is replayed, never replaces a newer one."""
    return current is None or incoming.seq > current.seq


@dataclass(frozen=True)
class Filters:
    """A holder's search, every field optional."""

    compute_class: str | None = None
    accelerator: str | None = None
    region: str | None = None  # the data centre's city
    max_price_fen: int | None = None
    min_cards: int | None = None
    available_from: int | None = None  # the cards must be available from then...
    available_until: int | None = None  # ... until then
    domestic_chips: bool = False
    min_security_level: int | None = None


# The price after the voucher ------------------------------------------------------------------


@dataclass(frozen=True)
class Purse:
    """What a holder's vouchers can pay for one compute class: its best voucher there (the
    highest ratio, then the most left), since one order is subsidised by one voucher."""

    voucher_id: str
    ratio_bp: int
    available_fen: int


def purses(vouchers: Iterable[Voucher], now_ms: int) -> dict[str, Purse]:
    """The best spendable voucher of each class."""
    best: dict[str, Purse] = {}
    for v in vouchers:
        if v.state != "active" or now_ms >= v.expires_at or v.available_fen <= 0:
            continue
        purse = Purse(v.id, v.ratio_bp, v.available_fen)
        held = best.get(v.compute_class)
        if held is None or (purse.ratio_bp, purse.available_fen) > (
            held.ratio_bp,
            held.available_fen,
        ):
            best[v.compute_class] = purse
    return best


@dataclass(frozen=True)
class Reach:
    """Where the holder's city lets its vouchers be spent (BRIEF R10): at home, and in the
    peers it allows outbound, each within the room left under its exposure cap."""

    home: str
    room_fen: dict[str, int]  # peers allowed outbound: the cap less what is owed this window

    def room(self, region: str) -> int | None:
        """The most this city may still owe ``region`` now; None: not allowed there at all;
        at home there is no such limit (MAX_FEN)."""
        if region == self.home:
            return MAX_FEN
        return self.room_fen.get(region)


# Why an offer gets no subsidy, as codes the API and the pages both say.
NO_VOUCHER = "no_voucher_for_class"
NOT_ALLOWED = "outbound_not_allowed"
NO_ROOM = "exposure_cap_reached"


@dataclass(frozen=True)
class Priced:
    """An offer and what this holder would pay there."""

    offer: Offer
    ratio_bp: int  # 0 when no voucher applies
    subsidy_fen: int  # per card-hour
    effective_fen: int  # per card-hour, after the subsidy
    min_order_fen: int  # the smallest order, before the subsidy
    min_order_subsidy_fen: int  # its subsidy: ratio, truncated, within balance and room
    voucher_id: str | None
    why_not: str | None  # NO_VOUCHER | NOT_ALLOWED | NO_ROOM when no voucher applies


def price_after(offer: Offer, purse: dict[str, Purse], reach: Reach) -> Priced:
    """What the holder whose vouchers are ``purse`` and whose city is ``reach`` would pay."""
    terms = offer.terms
    min_order = terms.price_fen * terms.min_card_hours
    best = purse.get(terms.compute_class)
    room = reach.room(offer.origin)
    why_not = NO_VOUCHER if best is None else NOT_ALLOWED if room is None else None
    if why_not is None and room is not None and room <= 0:
        why_not = NO_ROOM
    if best is None or why_not is not None or room is None:
        return Priced(offer, 0, 0, terms.price_fen, min_order, 0, None, why_not)
    subsidy = apply_ratio(terms.price_fen, best.ratio_bp)
    min_subsidy = min(apply_ratio(min_order, best.ratio_bp), best.available_fen, room)
    return Priced(
        offer,
        best.ratio_bp,
        subsidy,
        terms.price_fen - subsidy,
        min_order,
        min_subsidy,
        best.voucher_id,
        None,
    )
