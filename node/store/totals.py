"""Running totals of this city's vouchers (``voucher_totals``, schema v17): what the operators'
overview draws (issued, captured and reclaimed by holder category; issued by district; issued
and captured by month; captured by the provider's city), kept by triggers in the transaction
that changes a voucher or a hold, so one read of a small table serves a city of any size.
``recompute`` derives the same figures from the vouchers and holds for ``suanli check``."""

from __future__ import annotations

import sqlite3

from node.store.execution import month_sql

Key = tuple[int, str, str, str]  # fiscal year, dimension, key, measure


def for_year(conn: sqlite3.Connection, year: int) -> list[tuple[str, str, str, int, int]]:
    """(dimension, key, measure, fen, count) of one fiscal year."""
    return [
        (str(d), str(k), str(m), int(f), int(c))
        for d, k, m, f, c in conn.execute(
            "SELECT dim, key, measure, fen, count FROM voucher_totals WHERE fiscal_year = ? "
            "ORDER BY dim, key, measure",
            (year,),
        )
    ]


def kept(conn: sqlite3.Connection) -> dict[Key, tuple[int, int]]:
    return {
        (int(y), str(d), str(k), str(m)): (int(f), int(c))
        for y, d, k, m, f, c in conn.execute("SELECT * FROM voucher_totals")
    }


def recompute(conn: sqlite3.Connection) -> dict[Key, tuple[int, int]]:
    """The same totals from the vouchers and holds themselves (a full scan: for the audit)."""
    issued_month = month_sql(conn, "v.issued_at")
    captured_month = month_sql(conn, "COALESCE(o.closed_at, o.created_at)")
    queries = (
        "SELECT v.fiscal_year, 'category', h.category, 'issued', SUM(v.face_fen), COUNT(*) "
        "FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3",
        "SELECT v.fiscal_year, 'category', h.category, 'captured', SUM(v.captured_fen), 0 "
        "FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3",
        "SELECT v.fiscal_year, 'category', h.category, 'reclaimed', SUM(v.reclaimed_fen), 0 "
        "FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3",
        "SELECT v.fiscal_year, 'district', substr(h.uscc, 3, 6), 'issued', SUM(v.face_fen), "
        "COUNT(*) FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3",
        f"SELECT v.fiscal_year, 'month', {issued_month}, 'issued', SUM(v.face_fen), COUNT(*) "
        "FROM vouchers v GROUP BY 1, 3",
        "SELECT v.fiscal_year, 'acquirer', o.acquirer_region, 'captured', SUM(o.captured_fen), "
        "COUNT(*) FROM holds o JOIN vouchers v ON v.id = o.voucher_id "
        "WHERE o.state = 'captured' GROUP BY 1, 3",
        f"SELECT v.fiscal_year, 'month', {captured_month}, 'captured', SUM(o.captured_fen), "
        "COUNT(*) FROM holds o JOIN vouchers v ON v.id = o.voucher_id "
        "WHERE o.state = 'captured' GROUP BY 1, 3",
    )
    out: dict[Key, tuple[int, int]] = {}
    for sql in queries:
        for y, d, k, m, f, c in conn.execute(sql):
            out[(int(y), str(d), str(k), str(m))] = (int(f), int(c))
    return out
