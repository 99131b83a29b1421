"""Bulk loader for benchmarks: vouchers and spend authorizations straight into a stopped node's
books (its SQLite file or its PostgreSQL database), with real signatures and a balanced ledger,
so a million vouchers load in minutes rather than hours through the API. Nothing here is used
by a serving node."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

from node.clock import add_months
from node.config import load as load_config
from node.domain.model import Voucher, field_names
from node.keys import VOUCHER_TAG, NodeKey
from node.services.common import sha256_hex
from node.services.issuance import voucher_record
from node.store.engine import connect_writer
from node.store.vouchers import add_holder_usage

VOUCHER_COLUMNS = ", ".join((*field_names(Voucher), "record", "signature", "key_id"))


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def seed_vouchers(
    data: Path,
    key: NodeKey,
    region: str,
    holders: list[tuple[str, str]],  # (holder id, uscc)
    per_holder: int,
    face_fen: int,
    year: int,
    now_ms: int,
    compute_class: str = "model_services",
    ratio_bp: int = 3000,
) -> list[str]:
    """Issue ``per_holder`` vouchers to each holder; returns the voucher ids."""
    conn = connect_writer(load_config(data))
    ids: list[str] = []
    expires = add_months(now_ms, 12)
    pool = f"budget:{year}:pool"
    try:
        conn.execute("BEGIN")
        total = 0
        for holder_id, uscc in holders:
            decisions, vouchers, ledger, accounts = [], [], [], []
            for _ in range(per_holder):
                vid, did = f"v_{secrets.token_hex(8)}", f"d_{secrets.token_hex(8)}"
                v = Voucher(
                    vid,
                    holder_id,
                    year,
                    compute_class,
                    ratio_bp,
                    face_fen,
                    face_fen,
                    0,
                    0,
                    0,
                    "active",
                    now_ms,
                    expires,
                    did,
                )
                record = voucher_record(v, uscc, region, key.key_id)
                decisions.append(
                    (
                        did,
                        holder_id,
                        year,
                        compute_class,
                        face_fen * 10_000 // ratio_bp,
                        None,
                        "bench",
                        "bench",
                        "issued",
                        ratio_bp,
                        face_fen,
                        "[]",
                        vid,
                        "bench",
                        now_ms,
                    )
                )
                vouchers.append(
                    (
                        *(getattr(v, name) for name in field_names(Voucher)),
                        record,
                        key.sign(VOUCHER_TAG, record),
                        key.key_id,
                    )
                )
                ledger.append((now_ms, "issue", vid, pool, f"voucher:{vid}", face_fen))
                accounts.append((f"voucher:{vid}", face_fen))
                ids.append(vid)
            conn.executemany(
                "INSERT INTO decisions (id, holder_id, fiscal_year, compute_class, estimated_amount_fen, provider_id, "
                "period_start, period_end, outcome, ratio_bp, amount_fen, reasons, voucher_id, policy_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                decisions,
            )
            conn.executemany(
                f"INSERT INTO vouchers ({VOUCHER_COLUMNS}) VALUES ({', '.join('?' * len(vouchers[0]))})",
                vouchers,
            )
            conn.executemany(
                "INSERT INTO ledger (at, kind, ref, source, dest, amount_fen) VALUES (?, ?, ?, ?, ?, ?)",
                ledger,
            )
            conn.executemany("INSERT INTO accounts (name, balance_fen) VALUES (?, ?)", accounts)
            add_holder_usage(
                conn, holder_id, year, face_fen * per_holder, sum(d[4] for d in decisions)
            )
            total += face_fen * per_holder
        conn.execute(
            "UPDATE accounts SET balance_fen = balance_fen - ? WHERE name = ?", (total, pool)
        )
        # the running totals that ledger.transfer keeps (node/store/ledger.py), for these issues
        conn.execute(
            "INSERT INTO flows (kind, source, dest, fen) VALUES ('issue', ?, 'voucher', ?) "
            "ON CONFLICT(kind, source, dest) DO UPDATE SET fen = flows.fen + excluded.fen",
            (pool, total),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return ids


def seed_codes(
    data: Path,
    vouchers: list[tuple[str, str]],  # (voucher id, holder id), used round-robin
    provider_region: str,
    provider_id: str,
    count: int,
    max_fen: int,
    now_ms: int,
    expires_ms: int,
    issuer_region: str,
) -> list[str]:
    """Open spend authorizations for one provider; returns their one-time codes."""
    conn = connect_writer(load_config(data))
    codes: list[str] = []
    try:
        conn.execute("BEGIN")
        for chunk in _chunks(count, 10_000):
            rows = []
            for i in chunk:
                voucher_id, holder_id = vouchers[i % len(vouchers)]
                code = f"sac_{issuer_region}_{secrets.token_urlsafe(24)}"
                codes.append(code)
                rows.append(
                    (
                        f"a_{secrets.token_hex(8)}",
                        voucher_id,
                        holder_id,
                        provider_region,
                        provider_id,
                        max_fen,
                        sha256_hex(code),
                        expires_ms,
                        "open",
                        None,
                        now_ms,
                    )
                )
            conn.executemany(
                "INSERT INTO authorizations (id, voucher_id, holder_id, provider_region, provider_id, max_fen, "
                "code_sha256, expires_at, state, hold_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return codes
