"""The reads behind the budget-execution report (预算执行, node/services/execution.py): a fiscal
year's vouchers and captures in aggregates, its payments, and what the ledger says of the same
money, to reconcile the two."""

from __future__ import annotations

import sqlite3

# Unix milliseconds to a China Standard Time month, in SQL: SQLite's strftime, or the
# function the PostgreSQL schema defines (node/store/pgschema.py) to compute the same.
MONTH_SQL = "strftime('%Y-%m', {col} / 1000 + 8 * 3600, 'unixepoch')"
PG_MONTH_SQL = "suanli_month({col})"


def month_sql(conn: sqlite3.Connection, col: str) -> str:
    """The month of ``col`` in the SQL of ``conn``'s engine."""
    pg = getattr(conn, "engine", "sqlite") == "postgresql"
    return (PG_MONTH_SQL if pg else MONTH_SQL).format(col=col)


# Every query takes the fiscal year and a period [start, end) in Unix milliseconds: the whole
# year (everything of the year's vouchers) or one settlement window (what happened in it).


def vouchers(conn: sqlite3.Connection, year: int, start: int, end: int) -> list[sqlite3.Row]:
    """The year's vouchers issued in the period by holder category, district (the registering
    authority's division code inside the holder's USCC, characters 3 to 8), compute class,
    month of issue and state."""
    month = month_sql(conn, "v.issued_at")
    return conn.execute(
        f"SELECT h.category, substr(h.uscc, 3, 6) AS district, v.compute_class, {month} AS month, "
        "v.state, COUNT(*) AS vouchers, SUM(v.face_fen) AS face_fen, "
        "SUM(v.captured_fen) AS captured_fen, SUM(v.reclaimed_fen) AS reclaimed_fen, "
        "SUM(v.available_fen) AS available_fen, SUM(v.held_fen) AS held_fen "
        "FROM vouchers v JOIN holders h ON h.id = v.holder_id WHERE v.fiscal_year = ? "
        "AND v.issued_at >= ? AND v.issued_at < ? "
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
        (year, start, end),
    ).fetchall()


def captures(conn: sqlite3.Connection, year: int, start: int, end: int) -> list[sqlite3.Row]:
    """Captures on the year's vouchers made in the period, by the provider's city and id,
    compute class and month."""
    month = month_sql(conn, "h.closed_at")
    return conn.execute(
        f"SELECT h.acquirer_region, h.provider_id, p.name AS provider_name, v.compute_class, "
        f"{month} AS month, o.category, substr(o.uscc, 3, 6) AS district, COUNT(*) AS captures, "
        "SUM(h.captured_fen) AS captured_fen "
        "FROM holds h JOIN vouchers v ON v.id = h.voucher_id JOIN holders o ON o.id = v.holder_id "
        "LEFT JOIN providers p ON p.id = h.provider_id "
        "WHERE v.fiscal_year = ? AND h.state = 'captured' AND h.closed_at >= ? AND h.closed_at < ? "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 4, 5, 6, 7",
        (year, start, end),
    ).fetchall()


def reclaims(conn: sqlite3.Connection, year: int, start: int, end: int) -> tuple[int, int]:
    """Reclaimed into the year's budget in the period: (expired, revoked), from the ledger."""
    rows = conn.execute(
        "SELECT v.state, COALESCE(SUM(l.amount_fen), 0) FROM ledger l JOIN vouchers v ON v.id = l.ref "
        "WHERE l.kind = 'reclaim' AND l.dest = ? AND l.at >= ? AND l.at < ? GROUP BY v.state",
        (f"budget:{year}:pool", start, end),
    ).fetchall()
    revoked = sum(int(f) for state, f in rows if state == "revoked")
    return sum(int(f) for _, f in rows) - revoked, revoked


def foreign_captures(conn: sqlite3.Connection, start_ms: int, end_ms: int) -> list[sqlite3.Row]:
    """Other cities' vouchers captured by this city's providers in the period, by issuer."""
    return conn.execute(
        "SELECT issuer_region, COUNT(*) AS captures, SUM(captured_fen) AS captured_fen "
        "FROM remote_holds WHERE state = 'captured' AND closed_at >= ? AND closed_at < ? "
        "GROUP BY 1 ORDER BY 1",
        (start_ms, end_ms),
    ).fetchall()


def paid(conn: sqlite3.Connection, start_ms: int, end_ms: int) -> int:
    """Paid to providers in the period (payments less reversals, by when they were recorded)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(CASE kind WHEN 'payment' THEN amount_fen ELSE -amount_fen END), 0) "
        "FROM payments WHERE recorded_at >= ? AND recorded_at < ?",
        (start_ms, end_ms),
    ).fetchone()
    return int(row[0])


def ledger_year(conn: sqlite3.Connection, year: int, start: int, end: int) -> dict[str, int]:
    """The same money as the ledger has it, transfers made in the period: issued from and
    reclaimed into the year's pool, and captured from the year's vouchers (to a provider here,
    or due to another city)."""
    pool = f"budget:{year}:pool"
    out = {}
    for kind, column in (("issue", "source"), ("reclaim", "dest")):
        row = conn.execute(
            f"SELECT COALESCE(SUM(amount_fen), 0) FROM ledger WHERE kind = ? AND {column} = ? "
            "AND at >= ? AND at < ?",
            (kind, pool, start, end),
        ).fetchone()
        out[kind] = int(row[0])
    row = conn.execute(
        "SELECT COALESCE(SUM(l.amount_fen), 0) FROM ledger l JOIN holds h ON h.id = l.ref "
        "JOIN vouchers v ON v.id = h.voucher_id WHERE l.kind = 'capture' AND v.fiscal_year = ? "
        "AND l.at >= ? AND l.at < ?",
        (year, start, end),
    ).fetchone()
    out["capture"] = int(row[0])
    return out
