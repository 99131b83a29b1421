"""The reports' queries, read through sqlite-utils from a read-only connection (safe beside a
running node): the rows behind ``suanli export`` (node/reports.py formats them)."""

from __future__ import annotations

import sqlite3
from typing import Any

REPORTS: dict[str, str] = {
    "vouchers": (
        "SELECT v.id, h.uscc AS holder_uscc, h.name AS holder_name, v.fiscal_year, v.compute_class, "
        "v.ratio_bp, v.face_fen, v.available_fen, v.held_fen, v.captured_fen, v.reclaimed_fen, v.state, "
        "v.issued_at, v.expires_at, v.decision_id FROM vouchers v JOIN holders h ON h.id = v.holder_id ORDER BY v.id"
    ),
    "decisions": (
        "SELECT id, holder_id, fiscal_year, compute_class, estimated_amount_fen, provider_id, outcome, "
        "ratio_bp, amount_fen, reasons, voucher_id, policy_sha256, created_at FROM decisions ORDER BY created_at, id"
    ),
    # Every captured subsidy this node's books hold, in three kinds: ``local`` (this city's
    # voucher, this city's provider), ``issued_here`` (this city's voucher, another city's
    # provider: owed to that city) and ``acquired_here`` (another city's voucher, this city's
    # provider: owed by that city). hold_id is the issuer's; a provider of another city is
    # known here by its id only. :region is this node's.
    "captures": (
        "SELECT CASE WHEN h.acquirer_region = :region THEN 'local' ELSE 'issued_here' END AS kind, "
        ":region AS issuer_region, h.acquirer_region, h.id AS hold_id, h.provider_id, "
        "p.uscc AS provider_uscc, p.name AS provider_name, h.order_id, h.order_amount_fen, "
        "h.compute_class, h.captured_fen, v.id AS voucher_id, ho.uscc AS holder_uscc, "
        "h.settlement_window, h.closed_at AS captured_at FROM holds h "
        "LEFT JOIN providers p ON p.id = h.provider_id AND h.acquirer_region = :region "
        "JOIN vouchers v ON v.id = h.voucher_id JOIN holders ho ON ho.id = v.holder_id "
        "WHERE h.state = 'captured' "
        "UNION ALL SELECT 'acquired_here', r.issuer_region, :region, r.issuer_hold_id, "
        "r.provider_id, p.uscc, p.name, r.order_id, r.order_amount_fen, r.compute_class, "
        "r.captured_fen, r.voucher_id, r.holder_uscc, r.settlement_window, r.closed_at "
        "FROM remote_holds r JOIN providers p ON p.id = r.provider_id WHERE r.state = 'captured' "
        "ORDER BY captured_at, hold_id"
    ),
    "payables": (
        "SELECT p.id AS provider_id, p.uscc AS provider_uscc, p.name AS provider_name, "
        "COALESCE(a.balance_fen, 0) AS payable_fen FROM providers p "
        "LEFT JOIN accounts a ON a.name = 'payable:' || p.id ORDER BY p.id"
    ),
    # The records behind pair statements, both roles: what this node (issuer) owes each
    # acquirer city, and what each issuer owes it, per window, by the issuer's hold id — the
    # same lines the statement digest covers, to compare with the partner's export when a
    # dispute is too large to carry its records (docs/settlement.md).
    "statement_records": (
        "SELECT 'issuer' AS role, acquirer_region AS partner, settlement_window AS window_id, "
        "id AS issuer_hold_id, provider_id, order_id, captured_fen FROM holds "
        "WHERE state = 'captured' AND settlement_window IS NOT NULL "
        "UNION ALL SELECT 'acquirer', issuer_region, settlement_window, issuer_hold_id, "
        "provider_id, order_id, captured_fen FROM remote_holds WHERE state = 'captured' "
        "ORDER BY role, partner, window_id, issuer_hold_id"
    ),
    "ledger": "SELECT seq, at, kind, ref, source, dest, amount_fen FROM ledger ORDER BY seq",
    "audit": "SELECT seq, at, actor, action, subject, detail FROM audit ORDER BY seq",
}


def rows(
    conn: sqlite3.Connection, report: str, region: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """One report's columns and rows. ``region`` is this node's (the captures report tells
    local captures from cross-region ones by it)."""
    if report not in REPORTS:
        raise ValueError(f"no report {report!r}; choose from {', '.join(REPORTS)}")
    sql = REPORTS[report]
    cursor = conn.execute(sql, {"region": region} if ":region" in sql else ())
    columns = [d[0] for d in cursor.description]
    return columns, [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
