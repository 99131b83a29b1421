"""The platform's sign-in sessions (schema v16)."""

from __future__ import annotations

import sqlite3


def put_session(
    conn: sqlite3.Connection, id_sha256: str, token_id: str, csrf: str, at: int, expires_at: int
) -> None:
    conn.execute(
        "INSERT INTO web_sessions (id_sha256, token_id, csrf, created_at, last_seen, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (id_sha256, token_id, csrf, at, at, expires_at),
    )


def find_session(conn: sqlite3.Connection, id_sha256: str) -> sqlite3.Row | None:
    """The session with its token's principal, if the token is not revoked."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT s.id_sha256, s.csrf, s.created_at, s.last_seen, s.expires_at, t.id AS token_id, "
        "t.role, t.subject_id, t.label FROM web_sessions s JOIN tokens t ON t.id = s.token_id "
        "WHERE s.id_sha256 = ? AND t.revoked_at IS NULL",
        (id_sha256,),
    ).fetchone()
    return row


def touch_session(conn: sqlite3.Connection, id_sha256: str, at: int) -> None:
    conn.execute("UPDATE web_sessions SET last_seen = ? WHERE id_sha256 = ?", (at, id_sha256))


def end_session(conn: sqlite3.Connection, id_sha256: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE id_sha256 = ?", (id_sha256,))


def end_expired(conn: sqlite3.Connection, now: int, idle_before: int) -> int:
    cur = conn.execute(
        "DELETE FROM web_sessions WHERE expires_at <= ? OR last_seen <= ?", (now, idle_before)
    )
    return cur.rowcount


def subject_token(conn: sqlite3.Connection, subject_or_token: str) -> sqlite3.Row | None:
    """A live token: this id's, or the newest of the holder or provider with this id."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, role, subject_id, label FROM tokens WHERE revoked_at IS NULL "
        "AND (id = ? OR subject_id = ?) ORDER BY created_at DESC, id DESC LIMIT 1",
        (subject_or_token, subject_or_token),
    ).fetchone()
    return row


def put_link(
    conn: sqlite3.Connection, code_sha256: str, token_id: str, by: str, at: int, expires_at: int
) -> None:
    conn.execute(
        "INSERT INTO signin_links (code_sha256, token_id, created_by, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (code_sha256, token_id, by, at, expires_at),
    )


def use_link(conn: sqlite3.Connection, code_sha256: str, at: int) -> str | None:
    """The link's token id, marking it used; None if unknown, used or expired."""
    row = conn.execute(
        "UPDATE signin_links SET used_at = ? WHERE code_sha256 = ? AND used_at IS NULL "
        "AND expires_at > ? RETURNING token_id",
        (at, code_sha256, at),
    ).fetchone()
    return None if row is None else str(row[0])
