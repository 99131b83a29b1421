"""The issuer's inbox: every (origin, message id) received, its payload hash and the exact signed reply,
written in the same transaction as the request's effect (docs/protocol.md §4.1)."""

from __future__ import annotations

import sqlite3

from node import errors
from node.store.rows import ahead

INBOX_GET = (
    "SELECT type, payload_sha256, reply, hold_id FROM inbox WHERE origin = ? AND message_id = ?"
)


def inbox_get(conn: sqlite3.Connection, origin: str, message_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(INBOX_GET, (origin, message_id)).fetchone()
    return row


def inbox_get_ahead(conn: sqlite3.Connection, origin: str, message_id: str) -> None:
    ahead(conn, INBOX_GET, (origin, message_id))


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


def replayed(
    conn: sqlite3.Connection, origin: str, message_id: str, kind: int, payload_sha256: str
) -> sqlite3.Row | None:
    """The stored entry when this message was received before (its reply is answered again);
    ``ModifiedReplay`` when it came with another payload or type; None when it is new."""
    seen = inbox_get(conn, origin, message_id)
    if seen is not None and (seen["payload_sha256"] != payload_sha256 or seen["type"] != kind):
        raise errors.ModifiedReplay(
            f"message {message_id} from {origin} was already received with another payload"
        )
    return seen
