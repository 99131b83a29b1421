"""Records → JSON for the API. Times are ISO 8601 UTC; money is integer fen."""

from __future__ import annotations

from typing import Any

from node.clock import iso
from node.domain.model import (
    Authorization,
    Hold,
    Holder,
    Provider,
    RemoteHold,
    Voucher,
    field_names,
)
from node.domain.offers import Offer, Priced, Purse


def record(value: Any) -> dict[str, Any]:
    """A record as JSON: every ``*_at`` time as ISO 8601, tuples as lists."""
    out: dict[str, Any] = {}
    for key in field_names(type(value)):
        item = getattr(value, key)
        if key.endswith("_at"):
            item = iso(item) if item is not None else None
        elif isinstance(item, tuple):
            item = list(item)
        out[key] = item
    return out


def holder(h: Holder) -> dict[str, Any]:
    return record(h)


def provider(p: Provider) -> dict[str, Any]:
    return record(p)


def voucher(v: Voucher) -> dict[str, Any]:
    return record(v)


def authorization(a: Authorization) -> dict[str, Any]:
    return record(a)


def hold(h: Hold | RemoteHold) -> dict[str, Any]:
    """A hold: local (``hd_…``, on this city's voucher) or remote (``rh_…``, a peer's voucher)."""
    out = record(h)
    out.pop("code_sha256", None)
    return out


def decision(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["created_at"] = iso(row["created_at"])
    return out


def offer(o: Offer, now_ms: int) -> dict[str, Any]:
    """An offer, flat: its terms beside its identity; ``state`` live, withdrawn or expired."""
    t = o.terms
    return {
        "origin": o.origin,
        "id": o.offer_id,
        "seq": o.seq,
        "version": o.version,
        "state": "withdrawn" if o.withdrawn else "live" if o.live(now_ms) else "expired",
        "provider_id": o.provider_id,
        "provider_name": o.provider_name,
        "provider_kind": o.provider_kind,
        "compute_class": t.compute_class,
        "accelerator": t.accelerator,
        "cards": t.cards,
        "price_fen": t.price_fen,
        "min_card_hours": t.min_card_hours,
        "available_from": iso(t.available_from),
        "available_until": iso(t.available_until),
        "expires_at": iso(t.expires_at),
        "data_centre_region": t.data_centre_region,
        "domestic_chips": t.domestic_chips,
        "security_level": t.security_level,
        "contact": t.contact,
        "published_at": iso(o.published_at),
    }


def priced(p: Priced, now_ms: int) -> dict[str, Any]:
    """A search result: the offer and what the asking holder would pay there."""
    return {
        "offer": offer(p.offer, now_ms),
        "ratio_bp": p.ratio_bp,
        "subsidy_fen": p.subsidy_fen,
        "effective_price_fen": p.effective_fen,
        "min_order_fen": p.min_order_fen,
        "min_order_subsidy_fen": p.min_order_subsidy_fen,
        "voucher_id": p.voucher_id,
        "no_subsidy_reason": p.why_not,
    }


def purse(compute_class: str, p: Purse) -> dict[str, Any]:
    return {
        "compute_class": compute_class,
        "voucher_id": p.voucher_id,
        "ratio_bp": p.ratio_bp,
        "available_fen": p.available_fen,
    }
