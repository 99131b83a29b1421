"""Records → JSON for the API. Times are ISO 8601 UTC; money is integer fen."""

from __future__ import annotations

from typing import Any

from node.clock import iso
from node.domain.model import Authorization, Hold, Holder, Provider, Voucher


def holder(h: Holder) -> dict[str, Any]:
    return {
        "id": h.id,
        "uscc": h.uscc,
        "name": h.name,
        "category": h.category,
        "region": h.region,
        "uscc_override": h.uscc_override,
        "created_at": iso(h.created_at),
    }


def provider(p: Provider) -> dict[str, Any]:
    return {
        "id": p.id,
        "uscc": p.uscc,
        "name": p.name,
        "kind": p.kind,
        "region": p.region,
        "state": p.state,
        "related_uscc": list(p.related_uscc),
        "created_at": iso(p.created_at),
    }


def voucher(v: Voucher) -> dict[str, Any]:
    return {
        "id": v.id,
        "holder_id": v.holder_id,
        "fiscal_year": v.fiscal_year,
        "compute_class": v.compute_class,
        "ratio_bp": v.ratio_bp,
        "face_fen": v.face_fen,
        "available_fen": v.available_fen,
        "held_fen": v.held_fen,
        "captured_fen": v.captured_fen,
        "reclaimed_fen": v.reclaimed_fen,
        "state": v.state,
        "issued_at": iso(v.issued_at),
        "expires_at": iso(v.expires_at),
        "decision_id": v.decision_id,
    }


def authorization(a: Authorization) -> dict[str, Any]:
    return {
        "id": a.id,
        "voucher_id": a.voucher_id,
        "provider_id": a.provider_id,
        "max_fen": a.max_fen,
        "expires_at": iso(a.expires_at),
        "state": a.state,
        "hold_id": a.hold_id,
        "created_at": iso(a.created_at),
    }


def hold(h: Hold) -> dict[str, Any]:
    return {
        "id": h.id,
        "voucher_id": h.voucher_id,
        "provider_id": h.provider_id,
        "order_id": h.order_id,
        "order_amount_fen": h.order_amount_fen,
        "compute_class": h.compute_class,
        "amount_fen": h.amount_fen,
        "captured_fen": h.captured_fen,
        "state": h.state,
        "created_at": iso(h.created_at),
        "expires_at": iso(h.expires_at),
        "closed_at": iso(h.closed_at) if h.closed_at is not None else None,
    }


def decision(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["created_at"] = iso(row["created_at"])
    return out
