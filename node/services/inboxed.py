"""A peer's request with an effect, applied exactly once (docs/protocol.md §4.1): its effect
and its signed answer commit together with the inbox row, so that a resend of the same message
gets the very same answer, and the same id with another payload is ``modified_replay``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from node import errors
from node.services.ports import AckSealer, Inbound, Refusal
from node.store import inbox
from node.store.db import savepoint


def receive_once_txn(
    conn: sqlite3.Connection,
    message: Inbound,
    effect: Callable[[sqlite3.Connection], str],
    sealer: AckSealer,
    now: int,
    told: list[str],
) -> bytes:
    """Apply ``effect`` (which returns a line for the log, or raises the refusal) unless the
    message was answered before; return the signed ACK or REFUSAL, stored with the effect."""
    origin, message_id = message.origin, message.message_id
    seen = inbox.replayed(conn, origin, message_id, message.type_code, message.payload_sha256)
    if seen is not None:
        told.append("the stored answer")
        return bytes(seen["reply"])
    try:
        with savepoint(conn, "inboxed"):
            told.append(effect(conn))
        reply = sealer.ack(origin, message_id, now)
    except errors.SuanliError as refusal:
        told.append(f"refused {refusal.code}: {refusal.message}")
        reply = sealer.seal(
            origin, message_id, Refusal(message_id, refusal.code, refusal.message), now
        )
    inbox.inbox_put(
        conn, origin, message_id, message.type_code, message.payload_sha256, reply, None, now
    )
    return reply
