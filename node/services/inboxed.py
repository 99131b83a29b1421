"""Requests with an effect between cities, exactly once, on both sides (docs/protocol.md §4.1).

Receiving: the effect and the signed answer commit together with the inbox row, so that a
resend of the same message gets the very same answer, and the same id with another payload is
``modified_replay`` (``receive_once_txn``). Sending: the peer's answer is applied in the
transaction that marks the outbox row done, so an answer that arrives twice (a first attempt's
racing a retry's) is applied once (``apply_answer_once``)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from node import errors
from node.services.ports import Acknowledged, AckSealer, Applied, Inbound, Refusal, Row
from node.store import inbox, outbox
from node.store.db import savepoint
from node.store.engine import Books

logger = logging.getLogger(__name__)


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


async def apply_answer_once(
    db: Books,
    name: str,
    row: Row,
    answer: Acknowledged | Refusal,
    effect: Callable[[sqlite3.Connection], str],
    now: int,
    refused_level: int = logging.WARNING,
) -> Applied:
    """Apply a peer's signed answer to an outbox message with ``effect`` (which returns a
    line for the log), unless the row was done already; log the line (an ACK at INFO, a
    refusal at ``refused_level``)."""

    def txn(conn: sqlite3.Connection) -> str | None:
        if not outbox.outbox_done(conn, row["message_id"], now):
            return None
        return effect(conn)

    told = await db.run(name, txn)
    if told is not None:
        level = logging.INFO if isinstance(answer, Acknowledged) else refused_level
        logger.log(level, "%s: %s", row["peer"], told)
    return Applied(told)
