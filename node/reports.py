"""Exports for the finance bureau and auditors, read through sqlite-utils from a read-only
connection (safe beside a running node)."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

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
    "captures": (
        "SELECT h.id AS hold_id, p.uscc AS provider_uscc, p.name AS provider_name, h.order_id, "
        "h.order_amount_fen, h.compute_class, h.captured_fen, v.id AS voucher_id, ho.uscc AS holder_uscc, "
        "h.closed_at AS captured_at FROM holds h JOIN providers p ON p.id = h.provider_id "
        "JOIN vouchers v ON v.id = h.voucher_id JOIN holders ho ON ho.id = v.holder_id "
        "WHERE h.state = 'captured' ORDER BY h.closed_at, h.id"
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
FORMATS = ("csv", "json")


def export(db_path: Path, report: str, fmt: str, out: TextIO) -> int:
    """Write one report as CSV or JSON lines; returns the number of rows."""
    if report not in REPORTS:
        raise ValueError(f"no report {report!r}; choose from {', '.join(REPORTS)}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        cursor = sqlite_utils.Database(conn).execute(REPORTS[report])
        columns = [d[0] for d in cursor.description]
        rows: list[dict[str, Any]] = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    finally:
        conn.close()
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
