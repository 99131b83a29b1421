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
