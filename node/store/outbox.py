"""The acquirer's outbox: each message's exact payload, written with the intent, resent until answered."""

from __future__ import annotations

import sqlite3
from typing import Any

from node import errors
from node.store.rows import limit_of


def outbox_put(
    conn: sqlite3.Connection,
    message_id: str,
    peer: str,
    kind: int,
    payload: bytes,
    remote_hold_id: str | None,
    at: int,
    first_attempt_at: int,
    trace: str = "",
) -> dict[str, Any]:
    """Write a message's intent; returns the row as written (for an immediate first attempt).
    ``trace``: the request id it serves, for the logs of both cities."""
    conn.execute(
        "INSERT INTO outbox (message_id, peer, type, payload, remote_hold_id, state, next_attempt_at, created_at, trace) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (message_id, peer, kind, payload, remote_hold_id, first_attempt_at, at, trace),
    )
    return {
        "message_id": message_id,
        "peer": peer,
        "type": kind,
        "payload": payload,
        "remote_hold_id": remote_hold_id,
        "state": "pending",
        "attempts": 0,
        "trace": trace,
    }


def outbox_get(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM outbox WHERE message_id = ?", (message_id,)
    ).fetchone()
    if row is None:
        raise errors.NotFound(f"no outbox message {message_id}")
    return row


def outbox_due(conn: sqlite3.Connection, peer: str, now: int, limit: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM outbox WHERE state = 'pending' AND peer = ? AND next_attempt_at <= ? "
        "ORDER BY created_at, message_id LIMIT ?",
        (peer, now, limit_of(limit)),
    ).fetchall()


def outbox_next_due(conn: sqlite3.Connection, peer: str) -> int | None:
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND peer = ?", (peer,)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def outbox_retry_later(conn: sqlite3.Connection, message_id: str, at: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
        "WHERE message_id = ? AND state = 'pending'",
        (at, error[:500], message_id),
    )


def outbox_done(conn: sqlite3.Connection, message_id: str, at: int) -> bool:
    """Mark a message answered. Its payload goes: an AUTHORIZE or REDEEM carries the
    provider's one-time code, which a refusal leaves valid, and nothing reads an answered
    message again (the hold keeps the code's SHA-256, the receipt is kept as evidence)."""
    cur = conn.execute(
        "UPDATE outbox SET state = 'done', done_at = ?, attempts = attempts + 1, payload = ? "
        "WHERE message_id = ? AND state = 'pending'",
        (at, b"", message_id),
    )
    return cur.rowcount == 1


def redemptions_pending(conn: sqlite3.Connection) -> set[str]:
    """Peers with a redemption message (one for a remote hold) still awaiting its answer."""
    rows = conn.execute(
        "SELECT DISTINCT peer FROM outbox WHERE state = 'pending' AND remote_hold_id IS NOT NULL"
    ).fetchall()
    return {str(r[0]) for r in rows}


def outbox_depth(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """(peer, pending messages, oldest created_at) per peer with anything pending."""
    rows = conn.execute(
        "SELECT peer, COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending' GROUP BY peer"
    ).fetchall()
    return [(r[0], int(r[1]), int(r[2])) for r in rows]
