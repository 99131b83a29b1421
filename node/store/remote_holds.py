"""The acquirer's remote holds (another city's vouchers redeemed here) and the issuers' signed receipts for them."""

from __future__ import annotations

import sqlite3

from node import errors
from node.domain.model import RemoteHold
from node.store.rows import ahead, from_row, insert, limit_of


def insert_remote_hold(conn: sqlite3.Connection, hold: RemoteHold) -> None:
    insert(conn, "remote_holds", hold)


REMOTE_HOLD = "SELECT * FROM remote_holds WHERE id = ?"


def get_remote_hold_ahead(conn: sqlite3.Connection, hold_id: str) -> None:
    ahead(conn, REMOTE_HOLD, (hold_id,))


def get_remote_hold(conn: sqlite3.Connection, hold_id: str) -> RemoteHold:
    row = conn.execute(REMOTE_HOLD, (hold_id,)).fetchone()
    if row is None:
        raise errors.HoldNotFound(f"no hold {hold_id}")
    return from_row(RemoteHold, row)


REMOTE_FOR_ORDER = (
    "SELECT * FROM remote_holds WHERE provider_id = ? AND order_id = ? AND state != 'refused'"
)


def remote_hold_for_order_ahead(conn: sqlite3.Connection, provider_id: str, order_id: str) -> None:
    ahead(conn, REMOTE_FOR_ORDER, (provider_id, order_id))


def remote_hold_for_order(
    conn: sqlite3.Connection, provider_id: str, order_id: str
) -> RemoteHold | None:
    row = conn.execute(REMOTE_FOR_ORDER, (provider_id, order_id)).fetchone()
    return None if row is None else from_row(RemoteHold, row)


def list_remote_holds(
    conn: sqlite3.Connection, provider_id: str | None, limit: int, after: str
) -> list[RemoteHold]:
    if provider_id is None:
        rows = conn.execute(
            "SELECT * FROM remote_holds WHERE id > ? ORDER BY id LIMIT ?", (after, limit_of(limit))
        )
    else:
        rows = conn.execute(
            "SELECT * FROM remote_holds WHERE provider_id = ? AND id > ? ORDER BY id LIMIT ?",
            (provider_id, after, limit_of(limit)),
        )
    return [from_row(RemoteHold, r) for r in rows.fetchall()]


def unanswered_remote_holds(
    conn: sqlite3.Connection, provider_id: str | None, limit: int
) -> list[RemoteHold]:
    """Redemptions still waiting for the issuing city's answer: a hold not yet answered, or a
    capture or void asked for and not yet confirmed (index ``remote_holds_unanswered``)."""
    where = "(state = 'pending' OR wanted IS NOT NULL)"
    if provider_id is None:
        rows = conn.execute(
            f"SELECT * FROM remote_holds WHERE {where} ORDER BY id LIMIT ?", (limit_of(limit),)
        )
    else:
        rows = conn.execute(
            f"SELECT * FROM remote_holds WHERE provider_id = ? AND {where} ORDER BY id LIMIT ?",
            (provider_id, limit_of(limit)),
        )
    return [from_row(RemoteHold, r) for r in rows.fetchall()]


def update_remote_hold(conn: sqlite3.Connection, hold_id: str, **columns: object) -> None:
    allowed = {
        "state",
        "amount_fen",
        "captured_fen",
        "issuer_hold_id",
        "voucher_id",
        "expires_at",
        "settlement_window",
        "refusal_code",
        "refusal_message",
        "wanted",
        "wanted_fen",
        "closed_at",
        "payout_window",
        "holder_uscc",
    }
    if not columns or set(columns) - allowed:
        raise ValueError(f"bad remote hold columns {sorted(columns)}")
    sets = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE remote_holds SET {sets} WHERE id = ?", (*columns.values(), hold_id))


def put_receipt(
    conn: sqlite3.Connection,
    message_id: str,
    remote_hold_id: str,
    kind: int,
    envelope: bytes,
    at: int,
) -> None:
    conn.execute(
        "INSERT INTO receipts (message_id, remote_hold_id, type, envelope, received_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (message_id, remote_hold_id, kind, envelope, at),
    )


def expire_remote_holds(conn: sqlite3.Connection, now: int) -> int:
    cur = conn.execute(
        "UPDATE remote_holds SET state = 'expired', closed_at = ? "
        "WHERE state = 'held' AND wanted IS NULL AND expires_at <= ?",
        (now, now),
    )
    return cur.rowcount


def receipts_for(conn: sqlite3.Connection, issuer_hold_id: str) -> list[bytes]:
    """The issuer's signed answers this node holds for one of the issuer's holds, in order:
    a dispute's evidence."""
    return [
        bytes(r[0])
        for r in conn.execute(
            "SELECT c.envelope FROM receipts c JOIN remote_holds h ON h.id = c.remote_hold_id "
            "WHERE h.issuer_hold_id = ? ORDER BY c.received_at",
            (issuer_hold_id,),
        )
    ]
