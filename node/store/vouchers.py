"""Decisions, vouchers, spend authorizations and holds: rows in, values out.

Balance columns on ``vouchers`` are caches of the ledger kept in the same transaction; the
CHECK constraint ``face = available + held + captured + reclaimed`` makes a bookkeeping slip
fail the transaction instead of storing it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from node import errors
from node.domain.model import Authorization, Hold, Holder, Voucher
from node.store.rows import ahead, from_row, insert, limit_of


def _voucher(row: sqlite3.Row) -> Voucher:
    return from_row(Voucher, row)


def _authorization(row: sqlite3.Row) -> Authorization:
    return from_row(Authorization, row)


def _hold(row: sqlite3.Row) -> Hold:
    return from_row(Hold, row)


# Decisions ----------------------------------------------------------------------------------

DECISION_COLUMNS = (
    "id, holder_id, fiscal_year, compute_class, estimated_amount_fen, provider_id, period_start, "
    "period_end, outcome, ratio_bp, amount_fen, reasons, voucher_id, policy_sha256, created_at"
)


def insert_decision(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    values = dict(row)
    values["reasons"] = json.dumps(values["reasons"], ensure_ascii=False)
    names = DECISION_COLUMNS.split(", ")
    conn.execute(
        f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES ({', '.join('?' * len(names))})",
        tuple(values[n] for n in names),
    )


def decision_json(row: sqlite3.Row) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys()}  # noqa: SIM118 - sqlite3.Row is not a mapping
    out["reasons"] = json.loads(out["reasons"])
    return out


def get_decision(conn: sqlite3.Connection, decision_id: str) -> dict[str, Any]:
    row = conn.execute(
        f"SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,)
    ).fetchone()
    if row is None:
        raise errors.DecisionNotFound(f"no decision {decision_id}")
    return decision_json(row)


def list_decisions(
    conn: sqlite3.Connection,
    holder_id: str | None,
    limit: int,
    after: str,
    outcome: str | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Decisions by id (which is time order): after ``after``, or with ``newest_first``
    before it ("" for the newest); of one holder and one outcome if given."""
    clauses: list[str] = []
    args: list[Any] = []
    if newest_first:
        if after:
            clauses.append("id < ?")
            args.append(after)
    else:
        clauses.append("id > ?")
        args.append(after)
    if holder_id is not None:
        clauses.append("holder_id = ?")
        args.append(holder_id)
    if outcome is not None:
        clauses.append("outcome = ?")
        args.append(outcome)
    where = " AND ".join(clauses) or "true"
    order = "DESC" if newest_first else ""
    rows = conn.execute(
        f"SELECT {DECISION_COLUMNS} FROM decisions WHERE {where} ORDER BY id {order} LIMIT ?",
        (*args, limit_of(limit)),
    ).fetchall()
    return [decision_json(r) for r in rows]


def holder_standing(conn: sqlite3.Connection, holder_id: str, year: int) -> tuple[int, int]:
    """(cap used: issued − reclaimed, sum of estimates of issued demands) for a fiscal year."""
    row = conn.execute(
        "SELECT used_fen, contracts_fen FROM holder_usage WHERE holder_id = ? AND fiscal_year = ?",
        (holder_id, year),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def add_holder_usage(
    conn: sqlite3.Connection, holder_id: str, year: int, used: int, contracts: int
) -> None:
    conn.execute(
        "INSERT INTO holder_usage (holder_id, fiscal_year, used_fen, contracts_fen) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(holder_id, fiscal_year) DO UPDATE SET used_fen = holder_usage.used_fen + excluded.used_fen, "
        "contracts_fen = holder_usage.contracts_fen + excluded.contracts_fen",
        (holder_id, year, used, contracts),
    )


# Vouchers -----------------------------------------------------------------------------------


def insert_voucher(
    conn: sqlite3.Connection, v: Voucher, record: bytes, signature: bytes, key_id: str
) -> None:
    insert(conn, "vouchers", v, record=record, signature=signature, key_id=key_id)


def get_voucher(conn: sqlite3.Connection, voucher_id: str) -> Voucher:
    row = conn.execute("SELECT * FROM vouchers WHERE id = ?", (voucher_id,)).fetchone()
    if row is None:
        raise errors.VoucherNotFound(f"no voucher {voucher_id}")
    return _voucher(row)


def get_voucher_signed(
    conn: sqlite3.Connection, voucher_id: str
) -> tuple[Voucher, bytes, bytes, str]:
    row = conn.execute("SELECT * FROM vouchers WHERE id = ?", (voucher_id,)).fetchone()
    if row is None:
        raise errors.VoucherNotFound(f"no voucher {voucher_id}")
    return _voucher(row), bytes(row["record"]), bytes(row["signature"]), str(row["key_id"])


def list_vouchers(
    conn: sqlite3.Connection, holder_id: str | None, limit: int, after: str
) -> list[Voucher]:
    where, args = (
        ("id > ?", [after])
        if holder_id is None
        else ("holder_id = ? AND id > ?", [holder_id, after])
    )
    rows = conn.execute(
        f"SELECT * FROM vouchers WHERE {where} ORDER BY id LIMIT ?", (*args, limit_of(limit))
    ).fetchall()
    return [_voucher(r) for r in rows]


def spendable_vouchers(conn: sqlite3.Connection, holder_id: str, now_ms: int) -> list[Voucher]:
    """A holder's active vouchers with balance left and not expired."""
    rows = conn.execute(
        "SELECT * FROM vouchers WHERE holder_id = ? AND state = 'active' AND available_fen > 0 "
        "AND expires_at > ? ORDER BY id",
        (holder_id, now_ms),
    ).fetchall()
    return [_voucher(r) for r in rows]


def move_voucher(conn: sqlite3.Connection, voucher_id: str, **deltas: int) -> None:
    """Add deltas to a voucher's balance columns (available, held, captured, reclaimed)."""
    allowed = {"available_fen", "held_fen", "captured_fen", "reclaimed_fen"}
    if not deltas or set(deltas) - allowed:
        raise ValueError(f"bad voucher columns {sorted(deltas)}")
    sets = ", ".join(f"{col} = {col} + ?" for col in deltas)
    conn.execute(f"UPDATE vouchers SET {sets} WHERE id = ?", (*deltas.values(), voucher_id))


def set_voucher_state(conn: sqlite3.Connection, voucher_id: str, state: str) -> None:
    conn.execute("UPDATE vouchers SET state = ? WHERE id = ?", (state, voucher_id))


def expired_vouchers(conn: sqlite3.Connection, now_ms: int, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM vouchers WHERE state = 'active' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        (now_ms, limit_of(limit)),
    ).fetchall()
    return [str(r[0]) for r in rows]


# Authorizations -----------------------------------------------------------------------------


def insert_authorization(conn: sqlite3.Connection, a: Authorization, code_sha256: str) -> None:
    insert(conn, "authorizations", a, code_sha256=code_sha256)


AUTHORIZATION_BY_CODE = "SELECT * FROM authorizations WHERE code_sha256 = ?"
HOLD_FOR_ORDER = (
    "SELECT * FROM holds WHERE acquirer_region = ? AND provider_id = ? AND order_id = ?"
)


# The voucher and the holder of an authorization, by its code: read in the same round trip as
# the authorization on PostgreSQL, where reading them by id would wait for it first.
VOUCHER_BY_CODE = (
    "SELECT v.* FROM vouchers v JOIN authorizations a ON a.voucher_id = v.id "
    "WHERE a.code_sha256 = ?"
)
HOLDER_BY_CODE = (
    "SELECT h.* FROM holders h JOIN vouchers v ON v.holder_id = h.id "
    "JOIN authorizations a ON a.voucher_id = v.id WHERE a.code_sha256 = ?"
)


def authorization_by_code_ahead(conn: sqlite3.Connection, code_sha256: str) -> None:
    """The authorization of a code, its voucher and its holder, sent ahead together."""
    ahead(conn, AUTHORIZATION_BY_CODE, (code_sha256,))
    ahead(conn, VOUCHER_BY_CODE, (code_sha256,))
    ahead(conn, HOLDER_BY_CODE, (code_sha256,))


def hold_for_order_ahead(
    conn: sqlite3.Connection, acquirer_region: str, provider_id: str, order_id: str
) -> None:
    ahead(conn, HOLD_FOR_ORDER, (acquirer_region, provider_id, order_id))


def authorization_by_code(conn: sqlite3.Connection, code_sha256: str) -> Authorization:
    row = conn.execute(AUTHORIZATION_BY_CODE, (code_sha256,)).fetchone()
    if row is None:
        raise errors.AuthorizationInvalid("unknown authorization code")
    return _authorization(row)


def voucher_by_code(conn: sqlite3.Connection, code_sha256: str) -> Voucher:
    """The voucher an authorization code spends."""
    row = conn.execute(VOUCHER_BY_CODE, (code_sha256,)).fetchone()
    if row is None:
        raise errors.AuthorizationInvalid("unknown authorization code")
    return _voucher(row)


def holder_by_code(conn: sqlite3.Connection, code_sha256: str) -> Holder:
    """The holder of the voucher an authorization code spends."""
    row = conn.execute(HOLDER_BY_CODE, (code_sha256,)).fetchone()
    if row is None:
        raise errors.AuthorizationInvalid("unknown authorization code")
    return from_row(Holder, row)


def list_authorizations(conn: sqlite3.Connection, voucher_id: str) -> list[Authorization]:
    rows = conn.execute(
        "SELECT * FROM authorizations WHERE voucher_id = ? ORDER BY created_at, id", (voucher_id,)
    ).fetchall()
    return [_authorization(r) for r in rows]


def open_authorizations(conn: sqlite3.Connection, holder_id: str, now: int) -> list[Authorization]:
    """A holder's open authorizations not yet expired, soonest expiry first."""
    rows = conn.execute(
        "SELECT * FROM authorizations WHERE holder_id = ? AND state = 'open' AND expires_at > ? "
        "ORDER BY expires_at, id LIMIT 200",
        (holder_id, now),
    ).fetchall()
    return [_authorization(r) for r in rows]


def cancel_authorization(conn: sqlite3.Connection, auth_id: str, holder_id: str) -> bool:
    """An open authorization of this holder, cancelled; False when there is none such."""
    cur = conn.execute(
        "UPDATE authorizations SET state = 'cancelled' WHERE id = ? AND holder_id = ? "
        "AND state = 'open'",
        (auth_id, holder_id),
    )
    return cur.rowcount == 1


def use_authorization(conn: sqlite3.Connection, auth_id: str, hold_id: str) -> None:
    conn.execute(
        "UPDATE authorizations SET state = 'used', hold_id = ? WHERE id = ? AND state = 'open'",
        (hold_id, auth_id),
    )


def close_open_authorizations(conn: sqlite3.Connection, voucher_id: str, state: str) -> int:
    cur = conn.execute(
        "UPDATE authorizations SET state = ? WHERE voucher_id = ? AND state = 'open'",
        (state, voucher_id),
    )
    return cur.rowcount


def expire_authorizations(conn: sqlite3.Connection, now_ms: int) -> int:
    cur = conn.execute(
        "UPDATE authorizations SET state = 'expired' WHERE state = 'open' AND expires_at <= ?",
        (now_ms,),
    )
    return cur.rowcount


# Holds --------------------------------------------------------------------------------------


def insert_hold(conn: sqlite3.Connection, h: Hold) -> None:
    insert(conn, "holds", h)


def get_hold(conn: sqlite3.Connection, hold_id: str) -> Hold:
    row = conn.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone()
    if row is None:
        raise errors.HoldNotFound(f"no hold {hold_id}")
    return _hold(row)


def hold_for_order(
    conn: sqlite3.Connection, acquirer_region: str, provider_id: str, order_id: str
) -> Hold | None:
    row = conn.execute(HOLD_FOR_ORDER, (acquirer_region, provider_id, order_id)).fetchone()
    return None if row is None else _hold(row)


def list_holds(
    conn: sqlite3.Connection,
    provider_id: str | None,
    voucher_id: str | None,
    limit: int,
    after: str,
    holder_id: str | None = None,
) -> list[Hold]:
    clauses, args = ["id > ?"], [after]
    if holder_id is not None:  # through the holder's vouchers (indexed: holds_voucher)
        clauses.append("voucher_id IN (SELECT id FROM vouchers WHERE holder_id = ?)")
        args.append(holder_id)
    if provider_id is not None:
        clauses.append("provider_id = ?")
        args.append(provider_id)
    if voucher_id is not None:
        clauses.append("voucher_id = ?")
        args.append(voucher_id)
    rows = conn.execute(
        f"SELECT * FROM holds WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
        (*args, limit_of(limit)),
    ).fetchall()
    return [_hold(r) for r in rows]


def close_hold(
    conn: sqlite3.Connection, hold_id: str, state: str, captured: int, at: int, window: str | None
) -> None:
    cur = conn.execute(
        "UPDATE holds SET state = ?, captured_fen = ?, closed_at = ?, settlement_window = ? "
        "WHERE id = ? AND state = 'held'",
        (state, captured, at, window, hold_id),
    )
    if cur.rowcount != 1:
        raise errors.HoldNotOpen(f"hold {hold_id} is not open")


def open_holds(conn: sqlite3.Connection, voucher_id: str) -> list[Hold]:
    rows = conn.execute(
        "SELECT * FROM holds WHERE voucher_id = ? AND state = 'held'", (voucher_id,)
    ).fetchall()
    return [_hold(r) for r in rows]


def expired_holds(conn: sqlite3.Connection, now_ms: int, limit: int) -> list[Hold]:
    rows = conn.execute(
        "SELECT * FROM holds WHERE state = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        (now_ms, limit_of(limit)),
    ).fetchall()
    return [_hold(r) for r in rows]


def holder_year(
    conn: sqlite3.Connection, holder_id: str, year: int
) -> tuple[list[Voucher], list[sqlite3.Row]]:
    """A holder's vouchers of a fiscal year, and every capture on them (with the provider's
    name when it is this city's), for the holder's yearly statement."""
    found = [
        _voucher(r)
        for r in conn.execute(
            "SELECT * FROM vouchers WHERE holder_id = ? AND fiscal_year = ? ORDER BY id",
            (holder_id, year),
        )
    ]
    captures = conn.execute(
        "SELECT h.id, h.voucher_id, h.acquirer_region, h.provider_id, p.name AS provider_name, "
        "h.order_id, h.compute_class, h.captured_fen, h.closed_at FROM holds h "
        "JOIN vouchers v ON v.id = h.voucher_id LEFT JOIN providers p ON p.id = h.provider_id "
        "WHERE v.holder_id = ? AND v.fiscal_year = ? AND h.state = 'captured' "
        "ORDER BY h.closed_at, h.id",
        (holder_id, year),
    ).fetchall()
    return found, captures
