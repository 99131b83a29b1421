"""The issuer's inbox: every (origin, message id) received, its payload hash and the exact signed reply,
written in the same transaction as the request's effect (docs/protocol.md §4.1)."""

from __future__ import annotations

import sqlite3


def inbox_get(conn: sqlite3.Connection, origin: str, message_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT type, payload_sha256, reply, hold_id FROM inbox WHERE origin = ? AND message_id = ?",
        (origin, message_id),
    ).fetchone()
    return row


def inbox_put(
    conn: sqlite3.Connection,
    origin: str,
    message_id: str,
    kind: int,
    payload_sha256: str,
    reply: bytes,
    hold_id: str | None,
    at: int,
) -> None:
    conn.execute(
        "INSERT INTO inbox (origin, message_id, type, payload_sha256, reply, hold_id, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (origin, message_id, kind, payload_sha256, reply, hold_id, at),
    )
