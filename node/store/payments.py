"""Payments to providers against their payout statements, and reversals: append-only rows
(schema V12; triggers refuse any update or delete)."""

from __future__ import annotations

import sqlite3
from typing import Any

from node.store.rows import limit_of
from node.store.settlement import PAID_SQL

# A payment with the date the bank confirmed it (NULL until then).
SHOWN = (
    "m.*, b.bank_date AS bank_confirmed FROM payments m "
    "LEFT JOIN bank_confirmations b ON b.payment_id = m.id"
)


def payout(conn: sqlite3.Connection, window_id: str, provider_id: str) -> sqlite3.Row | None:
    """A signed payout statement with what was paid against it so far (``paid_fen``)."""
    row: sqlite3.Row | None = conn.execute(
        f"SELECT p.*, ({PAID_SQL}) AS paid_fen FROM payouts p "
        "WHERE p.window_id = ? AND p.provider_id = ?",
        (window_id, provider_id),
    ).fetchone()
    return row


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    """One row; ``table`` and the column names are this module's own, never a caller's text."""
    conn.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
        tuple(row.values()),
    )


def put(conn: sqlite3.Connection, **row: Any) -> None:
    _insert(conn, "payments", row)


def get(conn: sqlite3.Connection, payment_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {SHOWN} WHERE m.id = ?", (payment_id,)
    ).fetchone()
    return row


def reversal_of(conn: sqlite3.Connection, payment_id: str) -> str | None:
    row = conn.execute("SELECT id FROM payments WHERE reverses = ?", (payment_id,)).fetchone()
    return str(row[0]) if row else None


def reference_used(conn: sqlite3.Connection, provider_id: str, reference: str) -> str | None:
    row = conn.execute(
        "SELECT id FROM payments WHERE provider_id = ? AND bank_reference = ? AND kind = 'payment'",
        (provider_id, reference),
    ).fetchone()
    return str(row[0]) if row else None


def listing(
    conn: sqlite3.Connection,
    window_id: str | None,
    provider_id: str | None,
    limit: int,
    after: str,
) -> list[sqlite3.Row]:
    """Payments and reversals in the order they were recorded (ids sort by time), after
    ``after``, at most ``limit`` (-1: all)."""
    clauses, args = ["m.id > ?"], [after]
    if window_id is not None:
        clauses.append("m.window_id = ?")
        args.append(window_id)
    if provider_id is not None:
        clauses.append("m.provider_id = ?")
        args.append(provider_id)
    return conn.execute(
        f"SELECT {SHOWN} WHERE {' AND '.join(clauses)} ORDER BY m.id LIMIT ?",
        [*args, limit_of(limit)],
    ).fetchall()


def awaiting_bank(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Payments (not reversed) that the bank's statement has not confirmed yet."""
    return conn.execute(
        "SELECT m.* FROM payments m WHERE m.kind = 'payment' "
        "AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = m.id) "
        "AND NOT EXISTS (SELECT 1 FROM bank_confirmations b WHERE b.payment_id = m.id) "
        "ORDER BY m.id"
    ).fetchall()


def confirm(conn: sqlite3.Connection, **row: Any) -> None:
    _insert(conn, "bank_confirmations", row)


def confirmation(conn: sqlite3.Connection, payment_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM bank_confirmations WHERE payment_id = ?", (payment_id,)
    ).fetchone()
    return row
