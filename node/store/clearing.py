"""Transfers between cities and which agreed statements each settles (schema v15)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

Key = tuple[str, str, str]  # issuer, acquirer, window


def open_statements(
    conn: sqlite3.Connection, own: str, peer: str, until_ms: int
) -> list[sqlite3.Row]:
    """Agreed statements between the two cities (either direction) that no live transfer
    holds, whose window ended at or before ``until_ms`` (0: any), in (issuer, acquirer,
    window) order."""
    return conn.execute(
        "SELECT s.issuer, s.acquirer, s.window_id, s.total_fen, s.digest, s.window_end "
        "FROM statements s LEFT JOIN statement_coverage c ON c.issuer = s.issuer "
        "AND c.acquirer = s.acquirer AND c.window_id = s.window_id "
        "WHERE s.state = 'agreed' AND c.transfer_id IS NULL "
        "AND ((s.issuer = ? AND s.acquirer = ?) OR (s.issuer = ? AND s.acquirer = ?)) "
        "AND (? = 0 OR s.window_end <= ?) "
        "ORDER BY s.issuer, s.acquirer, s.window_id",
        (own, peer, peer, own, until_ms, until_ms),
    ).fetchall()


def unsettled_peers(conn: sqlite3.Connection, own: str) -> list[str]:
    """Peers with agreed statements no live transfer holds."""
    rows = conn.execute(
        "SELECT DISTINCT CASE WHEN s.issuer = ? THEN s.acquirer ELSE s.issuer END "
        "FROM statements s LEFT JOIN statement_coverage c ON c.issuer = s.issuer "
        "AND c.acquirer = s.acquirer AND c.window_id = s.window_id "
        "WHERE s.state = 'agreed' AND c.transfer_id IS NULL ORDER BY 1",
        (own,),
    ).fetchall()
    return [r[0] for r in rows]


def holders(conn: sqlite3.Connection, keys: Iterable[Key]) -> dict[Key, str]:
    """The live transfer holding each of these statements, where one does."""
    found: dict[Key, str] = {}
    for key in keys:
        row = conn.execute(
            "SELECT transfer_id FROM statement_coverage WHERE issuer = ? AND acquirer = ? "
            "AND window_id = ?",
            key,
        ).fetchone()
        if row is not None:
            found[key] = row[0]
    return found


def cover(conn: sqlite3.Connection, transfer_id: str, keys: Iterable[Key]) -> None:
    conn.executemany(
        "INSERT INTO statement_coverage (issuer, acquirer, window_id, transfer_id) "
        "VALUES (?, ?, ?, ?)",
        [(*k, transfer_id) for k in keys],
    )


def release(conn: sqlite3.Connection, transfer_id: str) -> None:
    conn.execute("DELETE FROM statement_coverage WHERE transfer_id = ?", (transfer_id,))


def put_transfer(conn: sqlite3.Connection, **fields: Any) -> None:
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    conn.execute(f"INSERT INTO city_transfers ({names}) VALUES ({marks})", tuple(fields.values()))


def get_transfer(conn: sqlite3.Connection, transfer_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM city_transfers WHERE id = ?", (transfer_id,)
    ).fetchone()
    return row


def update_transfer(conn: sqlite3.Connection, transfer_id: str, expect: str, **fields: Any) -> bool:
    """Move a transfer on from state ``expect``; False if it was not in it."""
    sets = ", ".join(f"{k} = ?" for k in fields)
    cur = conn.execute(
        f"UPDATE city_transfers SET {sets} WHERE id = ? AND state = ?",
        (*fields.values(), transfer_id, expect),
    )
    return cur.rowcount == 1


def by_message(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row | None:
    """The transfer an outbox message (its advice or its confirmation) belongs to."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM city_transfers WHERE advice_message_id = ? OR confirmation_message_id = ?",
        (message_id, message_id),
    ).fetchone()
    return row


def covered(conn: sqlite3.Connection, transfer_id: str) -> list[sqlite3.Row]:
    """The statements a live transfer holds, with their totals."""
    return conn.execute(
        "SELECT s.issuer, s.acquirer, s.window_id, s.total_fen, s.digest FROM statement_coverage c "
        "JOIN statements s ON s.issuer = c.issuer AND s.acquirer = c.acquirer "
        "AND s.window_id = c.window_id WHERE c.transfer_id = ? "
        "ORDER BY s.issuer, s.acquirer, s.window_id",
        (transfer_id,),
    ).fetchall()


def keep_reply(conn: sqlite3.Connection, transfer_id: str, advice: bool, envelope: bytes) -> None:
    """The peer's signed answer to this node's advice (or confirmation), kept as evidence."""
    column = "advice_reply" if advice else "confirmation_reply"
    conn.execute(f"UPDATE city_transfers SET {column} = ? WHERE id = ?", (envelope, transfer_id))


def reference_used(
    conn: sqlite3.Connection, peer: str, direction: str, reference: str
) -> str | None:
    row = conn.execute(
        "SELECT id FROM city_transfers WHERE peer = ? AND direction = ? AND reference = ? "
        "AND state != 'refused'",
        (peer, direction, reference),
    ).fetchone()
    return None if row is None else str(row[0])


def transfers(
    conn: sqlite3.Connection, peer: str | None = None, state: str | None = None
) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM city_transfers WHERE (CAST(? AS TEXT) IS NULL OR peer = ?) AND (CAST(? AS TEXT) IS NULL OR state = ?) "
        "ORDER BY recorded_at, id",
        (peer, peer, state, state),
    ).fetchall()


def confirmed_net(conn: sqlite3.Connection) -> dict[str, int]:
    """Per peer: what confirmed transfers moved, out less in (the audit's ``cleared:`` check)."""
    rows = conn.execute(
        "SELECT peer, SUM(CASE direction WHEN 'out' THEN amount_fen ELSE -amount_fen END) "
        "FROM city_transfers WHERE state = 'confirmed' GROUP BY peer"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def window_coverage(conn: sqlite3.Connection, own: str, window_id: str) -> list[sqlite3.Row]:
    """The pair statements of one of this node's windows (this node the issuer), each with
    the state of the live transfer holding it, if any."""
    return conn.execute(
        "SELECT s.acquirer, s.state, s.total_fen, t.state AS transfer_state FROM statements s "
        "LEFT JOIN statement_coverage c ON c.issuer = s.issuer AND c.acquirer = s.acquirer "
        "AND c.window_id = s.window_id LEFT JOIN city_transfers t ON t.id = c.transfer_id "
        "WHERE s.issuer = ? AND s.window_id = ? ORDER BY s.acquirer",
        (own, window_id),
    ).fetchall()
