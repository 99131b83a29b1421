"""Orders against offers (node/domain/orders.py): one row per request, on each side that
keeps it (the holder's city, the provider's city, or both at once for a local offer), and the
redemption an accepted order led to, found by its order id."""

from __future__ import annotations

import sqlite3
from typing import Any

from node import errors
from node.domain.orders import ORDER_FIELDS
from node.store.rows import limit_of

FIELDS = ORDER_FIELDS


def _row(row: Any) -> dict[str, Any]:
    return dict(zip(FIELDS, row, strict=True))


def put_order(conn: sqlite3.Connection, **values: Any) -> None:
    names = [f for f in FIELDS if f in values]
    conn.execute(
        f"INSERT INTO offer_orders ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        tuple(values[n] for n in names),
    )


def get_order(conn: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {', '.join(FIELDS)} FROM offer_orders WHERE id = ?", (request_id,)
    ).fetchone()
    return None if row is None else _row(row)


def by_message(conn: sqlite3.Connection, message_id: str) -> dict[str, Any] | None:
    """The order an outgoing message (its request or its answer) belongs to."""
    row = conn.execute(
        f"SELECT {', '.join(FIELDS)} FROM offer_orders "
        "WHERE request_message_id = ? OR answer_message_id = ?",
        (message_id, message_id),
    ).fetchone()
    return None if row is None else _row(row)


def decide(
    conn: sqlite3.Connection,
    request_id: str,
    state: str,
    order_id: str | None,
    reason: str | None,
    now: int,
    answer_message_id: str | None = None,
) -> bool:
    """Move a requested order to ``state``; False if it was no longer requested."""
    cur = conn.execute(
        "UPDATE offer_orders SET state = ?, order_id = ?, reason = ?, decided_at = ?, "
        "updated_at = ?, answer_message_id = COALESCE(?, answer_message_id) "
        "WHERE id = ? AND state = 'requested'",
        (state, order_id, reason, now, now, answer_message_id, request_id),
    )
    return cur.rowcount == 1


def order_id_taken(conn: sqlite3.Connection, origin: str, provider_id: str, order_id: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM offer_orders WHERE offer_origin = ? AND provider_id = ? "
            "AND order_id = ?",
            (origin, provider_id, order_id),
        ).fetchone()
        is not None
    )


def list_orders(
    conn: sqlite3.Connection, column: str | None, subject: str | None, limit: int, after: str
) -> list[dict[str, Any]]:
    """Orders by id; ``column`` (holder_id or provider_id) narrows to one subject's."""
    if column not in (None, "holder_id", "provider_id"):
        raise errors.Invariant(f"no such order column {column!r}")
    where, args = (
        ("id > ?", [after]) if column is None else (f"{column} = ? AND id > ?", [subject, after])
    )
    rows = conn.execute(
        f"SELECT {', '.join(FIELDS)} FROM offer_orders WHERE {where} ORDER BY id LIMIT ?",
        (*args, limit_of(limit)),
    ).fetchall()
    return [_row(r) for r in rows]


def redemption(
    conn: sqlite3.Connection, own_region: str, origin: str, provider_id: str, order_id: str
) -> dict[str, Any] | None:
    """What the order's redemption came to, as this city's books know it: its hold here (a
    voucher of this city) or, for a provider of this city, its remote hold (a peer's voucher)."""
    row = conn.execute(
        "SELECT id, state, amount_fen, captured_fen FROM holds "
        "WHERE acquirer_region = ? AND provider_id = ? AND order_id = ?",
        (origin, provider_id, order_id),
    ).fetchone()
    if row is None and origin == own_region:
        row = conn.execute(
            "SELECT id, state, amount_fen, captured_fen FROM remote_holds "
            "WHERE provider_id = ? AND order_id = ?",
            (provider_id, order_id),
        ).fetchone()
    if row is None:
        return None
    return {
        "hold_id": row[0],
        "state": row[1],
        "subsidy_fen": int(row[2]),
        "captured_fen": int(row[3]),
    }
