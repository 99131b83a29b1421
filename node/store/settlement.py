"""Settlement tables: closed windows, provider payouts, pair statements and disputes."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from node import errors
from node.domain.model import StatementState
from node.store.rows import ahead, limit_of

IS_CLOSED = "SELECT 1 FROM windows WHERE window_id = ?"


def is_closed(conn: sqlite3.Connection, window_id: str) -> bool:
    return conn.execute(IS_CLOSED, (window_id,)).fetchone() is not None


def is_closed_ahead(conn: sqlite3.Connection, window_id: str) -> None:
    ahead(conn, IS_CLOSED, (window_id,))


def close_window(
    conn: sqlite3.Connection, window_id: str, start: int, end: int, at: int, by: str
) -> None:
    conn.execute(
        "INSERT INTO windows (window_id, start_ms, end_ms, state, closed_at, closed_by) VALUES (?, ?, ?, 'closed', ?, ?)",
        (window_id, start, end, at, by),
    )


def settle_window(conn: sqlite3.Connection, window_id: str, at: int) -> None:
    conn.execute(
        "UPDATE windows SET state = 'settled', settled_at = ? WHERE window_id = ? AND state = 'closed'",
        (at, window_id),
    )


def windows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM windows ORDER BY start_ms")]


def active_windows(conn: sqlite3.Connection) -> list[str]:
    """Windows named by this node's captures (as issuer or for payouts) that are not closed."""
    rows = conn.execute(
        "SELECT window_id FROM window_activity WHERE window_id NOT IN (SELECT window_id FROM windows)"
    ).fetchall()
    return [r[0] for r in rows]


def window_active(conn: sqlite3.Connection, window_id: str) -> None:
    conn.execute(
        "INSERT INTO window_activity (window_id) VALUES (?) ON CONFLICT DO NOTHING", (window_id,)
    )


def window_acquired(conn: sqlite3.Connection, issuer: str, window_id: str) -> None:
    conn.execute(
        "INSERT INTO acquired_windows (issuer, window_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (issuer, window_id),
    )


# Payouts ------------------------------------------------------------------------------------


# A window's payout lines, (hold id, provider id, order id, holder USCC, issuing city, compute
# class, fen, the line as the payout digest covers it), each query in hold-id order straight
# from an index (schema v6 and v7): local captures (this node's own vouchers) and cross-region
# ones. Parameters: this node's region and the window (local), or the window (cross-region);
# the ``_OF`` forms add a provider. About 3 µs a row here, most of it the joins' seeks. Each
# line ends in a newline written inside the quotes (both engines take it as it is; SQLite's
# char() and PostgreSQL's chr() differ).
_LOCAL_LINES = (
    "SELECT h.id, h.provider_id, h.order_id, ho.uscc, h.acquirer_region, h.compute_class, "
    "h.captured_fen, h.id || '|' || h.order_id || '|' || ho.uscc || '|' || h.acquirer_region "
    "|| '|' || h.compute_class || '|' || h.captured_fen || '\n' "
    "FROM holds h JOIN vouchers v ON v.id = h.voucher_id JOIN holders ho ON ho.id = v.holder_id "
    "WHERE h.acquirer_region = ? AND h.state = 'captured' AND h.settlement_window = ?"
)
_REMOTE_LINES = (
    "SELECT r.id, r.provider_id, r.order_id, COALESCE(r.holder_uscc, ''), r.issuer_region, "
    "r.compute_class, r.captured_fen, r.id || '|' || r.order_id || '|' || COALESCE(r.holder_uscc, '') "
    "|| '|' || r.issuer_region || '|' || r.compute_class || '|' || r.captured_fen || '\n' "
    "FROM remote_holds r WHERE r.state = 'captured' AND r.payout_window = ?"
)
PAYOUT_LOCAL_LINES = _LOCAL_LINES + " ORDER BY h.id"
PAYOUT_REMOTE_LINES = _REMOTE_LINES + " ORDER BY r.id"
PAYOUT_LOCAL_LINES_OF = _LOCAL_LINES + " AND h.provider_id = ? ORDER BY h.id"
PAYOUT_REMOTE_LINES_OF = _REMOTE_LINES + " AND r.provider_id = ? ORDER BY r.id"


def payouts_pending(conn: sqlite3.Connection) -> list[str]:
    """Closed windows whose payouts are not signed yet (a crash between the two)."""
    rows = conn.execute(
        "SELECT window_id FROM windows WHERE payouts_at IS NULL ORDER BY start_ms"
    ).fetchall()
    return [r[0] for r in rows]


def payouts_signed(conn: sqlite3.Connection, window_id: str) -> bool:
    row = conn.execute(
        "SELECT payouts_at FROM windows WHERE window_id = ?", (window_id,)
    ).fetchone()
    return row is not None and row[0] is not None


def payouts_done(conn: sqlite3.Connection, window_id: str, at: int) -> None:
    conn.execute("UPDATE windows SET payouts_at = ? WHERE window_id = ?", (at, window_id))


def payout_counts(conn: sqlite3.Connection, window_id: str) -> tuple[int, int]:
    """A signed window's payout statements and captures."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM payouts WHERE window_id = ?", (window_id,)
    ).fetchone()
    return int(row[0]), int(row[1])


def signed_windows(conn: sqlite3.Connection, window_id: str | None) -> list[str]:
    """Windows whose payouts are signed (all, or the one named), oldest first."""
    rows = conn.execute(
        "SELECT window_id FROM windows WHERE payouts_at IS NOT NULL AND (CAST(? AS TEXT) IS NULL OR window_id = ?) "
        "ORDER BY start_ms",
        (window_id, window_id),
    ).fetchall()
    return [r[0] for r in rows]


def put_payout(
    conn: sqlite3.Connection,
    window_id: str,
    provider_id: str,
    count: int,
    total: int,
    statement: bytes,
    signature: bytes,
    key_id: str,
    at: int,
) -> None:
    conn.execute(
        "INSERT INTO payouts (window_id, provider_id, count, total_fen, statement, signature, key_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (window_id, provider_id, count, total, statement, signature, key_id, at),
    )


def payouts(
    conn: sqlite3.Connection,
    window_id: str | None,
    provider_id: str | None,
    limit: int = -1,
    after: tuple[str, str] = ("", ""),
) -> list[sqlite3.Row]:
    """Payout statements by window and provider, from after ``after`` (keyset), at most
    ``limit`` (-1: all)."""
    clauses, args = ["(window_id, provider_id) > (?, ?)"], list(after)
    if window_id is not None:
        clauses.append("window_id = ?")
        args.append(window_id)
    if provider_id is not None:
        clauses.append("provider_id = ?")
        args.append(provider_id)
    return conn.execute(
        f"SELECT p.*, ({PAID_SQL}) AS paid_fen FROM payouts p WHERE {' AND '.join(clauses)} "
        "ORDER BY window_id, provider_id LIMIT ?",
        [*args, limit_of(limit)],
    ).fetchall()


# What was paid against a payout statement ``p``: payments less their reversals.
PAID_SQL = (
    "SELECT COALESCE(SUM(CASE m.kind WHEN 'payment' THEN m.amount_fen ELSE -m.amount_fen END), 0) "
    "FROM payments m WHERE m.window_id = p.window_id AND m.provider_id = p.provider_id"
)


# Pair statements ----------------------------------------------------------------------------


# A statement's records, (issuer's hold id, provider id, order id, captured fen), in record
# order: the order of those tuples, which SQLite gives too (BINARY collation compares UTF-8
# bytes, and UTF-8 keeps code point order). Both queries read through an index in that order
# (schema V6), so a window of millions of records streams without a sort. Parameters: the
# partner city, the window.

# As issuer: what this node owes an acquirer city for a window (hold ids are unique).
ISSUER_RECORDS = (
    "SELECT id, provider_id, order_id, captured_fen FROM holds WHERE acquirer_region = ? "
    "AND state = 'captured' AND settlement_window = ? ORDER BY id"
)
# As acquirer: what an issuer city owes this node for a window, by the issuer's hold ids.
ACQUIRER_RECORDS = (
    "SELECT issuer_hold_id, provider_id, order_id, captured_fen FROM remote_holds "
    "WHERE issuer_region = ? AND state = 'captured' AND settlement_window = ? "
    "ORDER BY issuer_hold_id, provider_id, order_id, captured_fen"
)


def acquirers_in_window(conn: sqlite3.Connection, window_id: str, own_region: str) -> set[str]:
    """As issuer: the other cities with captures in a window. A walk over the distinct
    acquirers of the captured-holds index, one seek each, then one seek per acquirer for the
    window: it costs the number of partner cities, where a DISTINCT over the window read every
    captured hold of every window (measured at a million: 0.12 ms against 137-169 ms, and the
    other grows with the books, on every countersignature)."""
    rows = conn.execute(
        "WITH RECURSIVE acquirers(region) AS ("
        " SELECT MIN(acquirer_region) FROM holds WHERE state = 'captured'"
        " UNION ALL SELECT (SELECT MIN(acquirer_region) FROM holds"
        "  WHERE state = 'captured' AND acquirer_region > region)"
        " FROM acquirers WHERE region IS NOT NULL) "
        "SELECT region FROM acquirers WHERE region IS NOT NULL AND region != ? AND EXISTS ("
        " SELECT 1 FROM holds WHERE acquirer_region = region AND settlement_window = ?"
        " AND state = 'captured')",
        (own_region, window_id),
    ).fetchall()
    return {r[0] for r in rows}


def acquirer_windows(conn: sqlite3.Connection, own_region: str) -> list[tuple[str, str]]:
    """(issuer, window) pairs with captures here and no agreed statement yet."""
    rows = conn.execute(
        "SELECT a.issuer, a.window_id FROM acquired_windows a WHERE NOT EXISTS ("
        "SELECT 1 FROM statements s WHERE s.issuer = a.issuer AND s.acquirer = ? "
        "AND s.window_id = a.window_id AND s.state = 'agreed')",
        (own_region,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def get_statement(
    conn: sqlite3.Connection, issuer: str, acquirer: str, window_id: str
) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM statements WHERE issuer = ? AND acquirer = ? AND window_id = ?",
        (issuer, acquirer, window_id),
    ).fetchone()
    return row


def put_statement(conn: sqlite3.Connection, *, state: StatementState, **fields: Any) -> None:
    """Insert or update a pair statement (its parties and window, and any other columns)."""
    row = {**fields, "state": state}
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    updates = ", ".join(
        f"{k} = excluded.{k}" for k in row if k not in ("issuer", "acquirer", "window_id")
    )
    conn.execute(
        f"INSERT INTO statements ({names}) VALUES ({marks}) "
        f"ON CONFLICT(issuer, acquirer, window_id) DO UPDATE SET {updates}",
        tuple(row.values()),
    )


def statements(conn: sqlite3.Connection, state: StatementState | None = None) -> list[sqlite3.Row]:
    if state is None:
        return conn.execute(
            "SELECT * FROM statements ORDER BY window_end, issuer, acquirer"
        ).fetchall()
    return conn.execute(
        "SELECT * FROM statements WHERE state = ? ORDER BY window_end, issuer, acquirer", (state,)
    ).fetchall()


def agreed_statements(
    conn: sqlite3.Connection, until_ms: int, after: tuple[str, str, str], limit: int
) -> list[sqlite3.Row]:
    """Countersigned statements of windows ended by ``until_ms`` (0: all), by (issuer,
    acquirer, window) after ``after``, at most ``limit`` (negative: all): one page of them."""
    return conn.execute(
        "SELECT * FROM statements WHERE state = 'agreed' AND (? = 0 OR window_end <= ?) "
        "AND (issuer, acquirer, window_id) > (?, ?, ?) ORDER BY issuer, acquirer, window_id "
        "LIMIT ?",
        (until_ms, until_ms, *after, limit_of(limit)),
    ).fetchall()


def statements_due_now(conn: sqlite3.Connection, acquirer: str) -> None:
    conn.execute(
        "UPDATE statements SET next_attempt_at = 0 WHERE acquirer = ? AND state != 'agreed'",
        (acquirer,),
    )


def notify_closed(conn: sqlite3.Connection, window_id: str, at: int) -> None:
    """Every peer is to be told that this node closed ``window_id``."""
    conn.execute(
        # WHERE true: SQLite would read the ON of ON CONFLICT as a join's without it.
        "INSERT INTO window_notices (peer, window_id, closed_at) "
        "SELECT region, ?, ? FROM peers WHERE true ON CONFLICT DO NOTHING",
        (window_id, at),
    )


def pending_notices(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    return [
        (str(p), str(w), int(t))
        for p, w, t in conn.execute(
            "SELECT peer, window_id, closed_at FROM window_notices WHERE acked_at IS NULL "
            "ORDER BY closed_at LIMIT 100"
        )
    ]


def notice_acked(conn: sqlite3.Connection, peer: str, window_id: str, at: int) -> None:
    conn.execute(
        "UPDATE window_notices SET acked_at = ? WHERE peer = ? AND window_id = ?",
        (at, peer, window_id),
    )


def statement_due_now(conn: sqlite3.Connection, issuer: str, acquirer: str, window_id: str) -> None:
    conn.execute(
        "UPDATE statements SET next_attempt_at = 0 WHERE issuer = ? AND acquirer = ? "
        "AND window_id = ? AND state != 'agreed'",
        (issuer, acquirer, window_id),
    )


def open_dispute(
    conn: sqlite3.Connection,
    issuer: str,
    acquirer: str,
    window_id: str,
    evidence: dict[str, Any],
    at: int,
) -> None:
    text = json.dumps(evidence, sort_keys=True, ensure_ascii=False)
    cur = conn.execute(
        "UPDATE disputes SET evidence = ?, updated_at = ? WHERE issuer = ? AND acquirer = ? AND window_id = ? "
        "AND resolved_at IS NULL",
        (text, at, issuer, acquirer, window_id),
    )
    if cur.rowcount == 0:
        conn.execute(
            "INSERT INTO disputes (issuer, acquirer, window_id, opened_at, updated_at, evidence) VALUES (?, ?, ?, ?, ?, ?)",
            (issuer, acquirer, window_id, at, at, text),
        )


def resolve_disputes(
    conn: sqlite3.Connection, issuer: str, acquirer: str, window_id: str, at: int
) -> None:
    conn.execute(
        "UPDATE disputes SET resolved_at = ? WHERE issuer = ? AND acquirer = ? AND window_id = ? AND resolved_at IS NULL",
        (at, issuer, acquirer, window_id),
    )


def record_conflict(
    conn: sqlite3.Connection,
    issuer: str,
    acquirer: str,
    window_id: str,
    evidence: dict[str, Any],
    at: int,
) -> None:
    """Keep, as evidence, a statement that differed from an agreed one (never un-agreed)."""
    conn.execute(
        "INSERT INTO statement_conflicts (issuer, acquirer, window_id, received_at, evidence) "
        "VALUES (?, ?, ?, ?, ?)",
        (issuer, acquirer, window_id, at, json.dumps(evidence, sort_keys=True, ensure_ascii=False)),
    )


def conflicts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute("SELECT * FROM statement_conflicts ORDER BY id"):
        item = dict(r)
        item["evidence"] = json.loads(item["evidence"])
        out.append(item)
    return out


def disputes(conn: sqlite3.Connection, open_only: bool) -> list[dict[str, Any]]:
    where = "WHERE resolved_at IS NULL" if open_only else ""
    out = []
    for r in conn.execute(f"SELECT * FROM disputes {where} ORDER BY id"):
        item = dict(r)
        item["evidence"] = json.loads(item["evidence"])
        out.append(item)
    return out


def require_window(conn: sqlite3.Connection, window_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM windows WHERE window_id = ?", (window_id,)
    ).fetchone()
    if row is None:
        raise errors.NotFound(f"window {window_id} is not closed")
    return row


def agreed_acquirers(conn: sqlite3.Connection, issuer: str, window_id: str) -> set[str]:
    """As issuer: the acquirer cities whose statement for a window is countersigned."""
    return {
        str(r[0])
        for r in conn.execute(
            "SELECT acquirer FROM statements WHERE issuer = ? AND window_id = ? AND state = 'agreed'",
            (issuer, window_id),
        )
    }
