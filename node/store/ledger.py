"""The double-entry ledger, the append-only event history and the audit trail.

Accounts (balances in fen):

    budget:<year>:appropriation  −budget: where the year's money comes from
    budget:<year>:pool           budget not yet issued (issued vouchers leave, reclaims return)
    voucher:<id>                 a voucher's available balance
    hold:<id>                    the amount reserved by an open hold (a one-step redemption
                                 books its capture from voucher:<id> directly)
    payable:<provider id>        captured subsidy owed to a provider
    paid:<provider id>           what was paid to a provider (兑付), less reversals
    due:<region>                 issuer side: captured subsidy owed to an acquirer city
    issuer:<region>              acquirer side: −what an issuer city owes us for our providers
    cleared:<region>             settled with that city by confirmed transfers: the net money
                                 paid to it (positive) or received from it (negative)

Every transfer moves a positive amount from one account to another, so all balances sum to
zero by construction; ``accounts`` caches each balance in the same transaction and
``node.store.audit`` recomputes them from the transfers.

``flows`` keeps, in the same transaction too, the running total of every kind of transfer
between two *classes* of account: the account's name, except that one voucher's, hold's or
provider's account counts as its class (``voucher``, ``hold``, ``payable``, ``paid``). A small table
(kinds × years × peer cities) that equals the ledger at any moment, restarts included: the
quota-flow gauges (issued, reclaimed, captured by city pair) read it instead of scanning the
ledger, and ``node.store.audit`` checks it against the transfers.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from node.store.rows import limit_of


def appropriation(year: int) -> str:
    return f"budget:{year}:appropriation"


def pool(year: int) -> str:
    return f"budget:{year}:pool"


def voucher_account(voucher_id: str) -> str:
    return f"voucher:{voucher_id}"


def hold_account(hold_id: str) -> str:
    return f"hold:{hold_id}"


def payable(provider_id: str) -> str:
    return f"payable:{provider_id}"


def paid(provider_id: str) -> str:
    return f"paid:{provider_id}"


def due(region: str) -> str:
    return f"due:{region}"


def issuer(region: str) -> str:
    return f"issuer:{region}"


def cleared(region: str) -> str:
    return f"cleared:{region}"


PER_ENTITY = ("voucher", "hold", "payable", "paid")


def account_class(account: str) -> str:
    """``voucher:v_1`` → ``voucher``; ``due:520100`` → itself (one per peer city, bounded)."""
    prefix = account.split(":", 1)[0]
    return prefix if prefix in PER_ENTITY else account


# The same, in SQL over a column holding an account name (the migration and the audit).
ACCOUNT_CLASS_SQL = (
    "CASE WHEN {col} LIKE 'voucher:%' THEN 'voucher' WHEN {col} LIKE 'hold:%' THEN 'hold' "
    "WHEN {col} LIKE 'payable:%' THEN 'payable' WHEN {col} LIKE 'paid:%' THEN 'paid' "
    "ELSE {col} END"
)


def may_be_negative(account: str) -> bool:
    """Source accounts: the year's appropriation, what issuer cities owe us, and what was
    settled with a city that paid us more than we paid it."""
    return account.endswith(":appropriation") or account.startswith(("issuer:", "cleared:"))


def transfer(
    conn: sqlite3.Connection, at: int, kind: str, ref: str, source: str, dest: str, amount: int
) -> None:
    """Move ``amount`` fen from ``source`` to ``dest``. A zero amount records nothing."""
    if amount < 0:
        raise ValueError("a transfer amount is never negative")
    if amount == 0:
        return
    flow = (kind, account_class(source), account_class(dest))
    if getattr(conn, "engine", "sqlite") == "postgresql":
        # One statement, one round of the server's executor instead of three: a transfer is
        # made at every hold, capture, void and reclaim (docs/benchmarks.md).
        conn.execute(
            _PG_TRANSFER,
            {
                "at": at,
                "kind": kind,
                "ref": ref,
                "source": source,
                "dest": dest,
                "amount": amount,
                "flow": flow[0],
                "from_class": flow[1],
                "to_class": flow[2],
            },
        )
        return
    conn.execute(_ENTRY, (at, kind, ref, source, dest, amount))
    conn.execute(_BALANCES, (source, -amount, dest, amount))
    conn.execute(_FLOW, (*flow, amount))


_ENTRY = "INSERT INTO ledger (at, kind, ref, source, dest, amount_fen) VALUES (?, ?, ?, ?, ?, ?)"
# both cached balances in one statement (the upsert applies row by row)
_BALANCES = (
    "INSERT INTO accounts (name, balance_fen) VALUES (?, ?), (?, ?) "
    "ON CONFLICT(name) DO UPDATE SET balance_fen = accounts.balance_fen + excluded.balance_fen"
)
_FLOW = (
    "INSERT INTO flows (kind, source, dest, fen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(kind, source, dest) DO UPDATE SET fen = flows.fen + excluded.fen"
)
# The same three writes as data-modifying CTEs (PostgreSQL runs each exactly once, in one
# statement; SQLite has no such CTEs). Parameters: at, kind, ref, source, dest, amount, then
# the flow's kind and classes.
_PG_TRANSFER = (
    "WITH entry AS (INSERT INTO ledger (at, kind, ref, source, dest, amount_fen) "
    "VALUES (:at, :kind, :ref, :source, :dest, :amount)), "
    "balances AS (INSERT INTO accounts (name, balance_fen) "
    "VALUES (:source, -CAST(:amount AS BIGINT)), (:dest, :amount) "
    "ON CONFLICT(name) DO UPDATE SET balance_fen = accounts.balance_fen + excluded.balance_fen) "
    "INSERT INTO flows (kind, source, dest, fen) VALUES (:flow, :from_class, :to_class, :amount) "
    "ON CONFLICT(kind, source, dest) DO UPDATE SET fen = flows.fen + excluded.fen"
)


def flows(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    """Every (kind, source class, destination class, running total in fen)."""
    return [
        (str(k), str(s), str(d), int(f))
        for k, s, d, f in conn.execute("SELECT kind, source, dest, fen FROM flows")
    ]


def voucher_money(flows: list[tuple[str, str, str, int]]) -> dict[str, int]:
    """All vouchers' money by state, from the ledger's running totals (``books.flows``) rather
    than a sum over every voucher: available and held are what flowed into the voucher and
    hold accounts less what flowed out; captured and reclaimed are what left them as captures
    and reclaims. Equal to the vouchers' columns (tests/test_metrics.py checks it)."""
    money = {"available": 0, "held": 0, "captured": 0, "reclaimed": 0}
    for kind, source, dest, fen in flows:
        for account, sign in ((dest, fen), (source, -fen)):
            if account == "voucher":
                money["available"] += sign
            elif account == "hold":
                money["held"] += sign
        if source in ("voucher", "hold") and kind == "capture":
            money["captured"] += fen
        elif source == "voucher" and kind == "reclaim":
            money["reclaimed"] += fen
    return money


def balance(conn: sqlite3.Connection, account: str) -> int:
    row = conn.execute("SELECT balance_fen FROM accounts WHERE name = ?", (account,)).fetchone()
    return int(row[0]) if row else 0


def event(
    conn: sqlite3.Connection,
    at: int,
    entity: str,
    entity_id: str,
    kind: str,
    actor: str,
    amount: int | None = None,
    **detail: Any,
) -> None:
    """Append one state change to the history. Never updated, never deleted."""
    conn.execute(
        "INSERT INTO events (at, entity, entity_id, kind, amount_fen, actor, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, entity, entity_id, kind, amount, actor, json.dumps(detail, sort_keys=True)),
    )


def audit(
    conn: sqlite3.Connection, at: int, actor: str, action: str, subject: str, **detail: Any
) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (at, actor, action, subject, json.dumps(detail, sort_keys=True, ensure_ascii=False)),
    )


JOURNALS = ("ledger", "events", "audit")


def journal(conn: sqlite3.Connection, kind: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Rows of one append-only table after sequence number ``after``, in order."""
    if kind not in JOURNALS:
        raise ValueError(f"no journal {kind}")
    rows = conn.execute(
        f"SELECT * FROM {kind} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit_of(limit))
    ).fetchall()
    out = []
    for row in rows:
        item = {k: row[k] for k in row.keys()}  # noqa: SIM118 - sqlite3.Row is not a mapping
        if "detail" in item:
            item["detail"] = json.loads(item["detail"])
        out.append(item)
    return out
