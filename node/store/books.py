"""The reads behind the quota-flow gauges (node/metrics.py), on a read-only connection of
their own so that a scrape never waits for the writer. Each is one indexed query or a small
aggregate; the metrics module turns the figures into samples."""

from __future__ import annotations

import sqlite3

from node.store import ledger
from node.store.settlement import PAID_SQL


def budget(conn: sqlite3.Connection, year: int) -> tuple[int, int]:
    """(funded, still in the pool) for a fiscal year, fen."""
    return -ledger.balance(conn, ledger.appropriation(year)), ledger.balance(
        conn, ledger.pool(year)
    )


def flows(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    """The ledger's running totals by kind and account class (a small table)."""
    return ledger.flows(conn)


def peer_regions(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT region FROM peers ORDER BY region")]


def revoked_fen(conn: sqlite3.Connection) -> int:
    """Balance returned to the budget by revocations (an operator's act, so few vouchers: a
    partial index holds exactly them). Expiries are the rest of the reclaims in ``flows``."""
    row = conn.execute(
        "SELECT COALESCE(SUM(reclaimed_fen), 0) FROM vouchers WHERE state = 'revoked'"
    ).fetchone()
    return int(row[0])


def positions(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """The accounts between cities: ``due:<region>`` (we owe) and ``issuer:<region>`` (owed)."""
    return [
        (str(r[0]), int(r[1]))
        for r in conn.execute(
            # Ranges on the primary key (a LIKE would read every voucher's account).
            "SELECT name, balance_fen FROM accounts WHERE (name >= 'due:' AND name < 'due;') "
            "OR (name >= 'issuer:' AND name < 'issuer;')"
        )
    ]


def settlement_counts(conn: sqlite3.Connection) -> tuple[int, int, list[tuple[str, int]]]:
    """Open disputes, conflicts after agreement, and pair statements by state."""
    disputes = conn.execute("SELECT COUNT(*) FROM disputes WHERE resolved_at IS NULL").fetchone()
    conflicts = conn.execute("SELECT COUNT(*) FROM statement_conflicts").fetchone()
    states = conn.execute("SELECT state, COUNT(*) FROM statements GROUP BY state").fetchall()
    return int(disputes[0]), int(conflicts[0]), [(str(s), int(n)) for s, n in states]


def unpaid_payouts(conn: sqlite3.Connection) -> tuple[list[tuple[str, int]], int | None]:
    """What the signed payout statements still owe each provider (totals less payments and
    reversals), and when the window of the oldest one not fully paid closed (None if none)."""
    rows = conn.execute(
        f"SELECT p.provider_id, p.total_fen - ({PAID_SQL}) AS unpaid, w.closed_at "
        "FROM payouts p JOIN windows w ON w.window_id = p.window_id"
    ).fetchall()
    by_provider: dict[str, int] = {}
    oldest: int | None = None
    for provider_id, unpaid, closed_at in rows:
        by_provider[str(provider_id)] = by_provider.get(str(provider_id), 0) + int(unpaid)
        if unpaid > 0 and (oldest is None or closed_at < oldest):
            oldest = int(closed_at)
    return sorted(by_provider.items()), oldest


def unsettled_between_cities(
    conn: sqlite3.Connection,
) -> tuple[list[tuple[str, str, int]], int | None]:
    """Transfers between cities advised and not yet confirmed, per peer and direction (out: we
    paid, in: we were paid), and the end of the oldest window with an agreed statement that
    no confirmed transfer settles (None if none)."""
    pending = [
        (str(p), str(d), int(fen))
        for p, d, fen in conn.execute(
            "SELECT peer, direction, SUM(amount_fen) FROM city_transfers "
            "WHERE state IN ('advised', 'awaiting_confirmation') GROUP BY peer, direction"
        )
    ]
    oldest = conn.execute(
        "SELECT MIN(s.window_end) FROM statements s LEFT JOIN statement_coverage c "
        "ON c.issuer = s.issuer AND c.acquirer = s.acquirer AND c.window_id = s.window_id "
        "LEFT JOIN city_transfers t ON t.id = c.transfer_id "
        "WHERE s.state = 'agreed' AND s.total_fen > 0 AND (t.state IS NULL OR t.state != 'confirmed')"
    ).fetchone()[0]
    return pending, None if oldest is None else int(oldest)


def peer_exposure(conn: sqlite3.Connection, window: str) -> list[tuple[str, int, int, int, int]]:
    """Per peer: region, outbound, inbound, exposure cap, and what we may owe it in ``window``
    (open holds and this window's captures)."""
    out = []
    for region, outbound, inbound, cap in conn.execute(
        "SELECT region, outbound, inbound, exposure_cap_fen FROM peers ORDER BY region"
    ).fetchall():
        owed = conn.execute(
            "SELECT COALESCE(SUM(fen), 0) FROM exposure WHERE acquirer = ? AND window_id IN ('', ?)",
            (region, window),
        ).fetchone()[0]
        out.append((str(region), int(outbound), int(inbound), int(cap), int(owed)))
    return out


def outbox_backlog(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Per peer with messages awaiting an answer: how many, and when the oldest was written."""
    return {
        str(peer): (int(count), int(oldest))
        for peer, count, oldest in conn.execute(
            "SELECT peer, COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending' GROUP BY peer"
        )
    }


def overdue_holds(conn: sqlite3.Connection, now: int, grace_ms: int) -> int:
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM holds WHERE state = 'held' AND expires_at + ? < ?",
            (grace_ms, now),
        ).fetchone()[0]
    )
