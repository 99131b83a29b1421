"""The operators' overview: this year's quota flows and what needs attention, each from a
handful of small reads (the running totals ``voucher_totals`` and ``flows``, and the gauges'
own queries in ``node.store.books``), so it answers as fast for a million vouchers as for ten
(docs/platform.md, "How fast")."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from node.clock import Clock
from node.domain.attention import Figures, notices
from node.domain.windows import window_of
from node.services import ownkeys
from node.services.common import Principal, require_operator
from node.services.policies import PolicyBook
from node.store import books, totals
from node.store.engine import Books

DISTRICTS_SHOWN = 20  # the largest; the rest are summed as "other"


class Overview:
    def __init__(self, db: Books, clock: Clock, policies: PolicyBook, grace_ms: int) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies
        self._grace = grace_ms

    async def year(self, who: Principal, year: int) -> dict[str, Any]:
        """One fiscal year's vouchers in running totals: issued, captured and reclaimed by
        holder category; issued by district (the USCC's division code) and month; captured
        by month and by the provider's city (this one or a partner)."""
        require_operator(who)
        own = self._policies.region
        rows = await self._db.read("overview_totals", lambda c: totals.for_year(c, year))
        category: dict[str, dict[str, Any]] = {}
        district: dict[str, int] = {}
        month: dict[str, dict[str, Any]] = {}
        acquirer: dict[str, int] = {}
        vouchers = 0
        for dim, key, measure, fen, count in rows:
            if dim == "category":
                category.setdefault(key, {"category": key, "issued_fen": 0, "vouchers": 0})
                category[key][f"{measure}_fen"] = fen
                if measure == "issued":
                    category[key]["vouchers"] = count
                    vouchers += count
            elif dim == "district":
                district[key] = fen
            elif dim == "month":
                month.setdefault(key, {"month": key, "issued_fen": 0, "captured_fen": 0})
                month[key][f"{measure}_fen"] = fen
            elif dim == "acquirer":
                acquirer[key] = fen
        for row in category.values():
            row.setdefault("captured_fen", 0)
            row.setdefault("reclaimed_fen", 0)
            row["unused_fen"] = row["issued_fen"] - row["captured_fen"] - row["reclaimed_fen"]
        largest = sorted(district.items(), key=lambda kv: (-kv[1], kv[0]))
        by_district = [{"district": d, "issued_fen": f} for d, f in largest[:DISTRICTS_SHOWN]]
        rest = sum(f for _, f in largest[DISTRICTS_SHOWN:])
        if rest:
            by_district.append({"district": "other", "issued_fen": rest})
        issued = sum(r["issued_fen"] for r in category.values())
        captured = sum(r["captured_fen"] for r in category.values())
        return {
            "fiscal_year": year,
            "totals": {
                "vouchers": vouchers,
                "issued_fen": issued,
                "captured_fen": captured,
                "reclaimed_fen": sum(r["reclaimed_fen"] for r in category.values()),
                "captured_here_fen": acquirer.get(own, 0),
                "captured_elsewhere_fen": sum(f for r, f in acquirer.items() if r != own),
            },
            "by_category": sorted(category.values(), key=lambda r: r["category"]),
            "by_district": by_district,
            "by_month": sorted(month.values(), key=lambda r: r["month"]),
            "by_partner": [
                {"partner": r, "captured_fen": f} for r, f in sorted(acquirer.items()) if r != own
            ],
        }

    async def attention(self, who: Principal) -> list[dict[str, Any]]:
        """What needs attention now, by the alert rules' conditions (node/domain/attention.py)."""
        require_operator(who)
        now = self._clock.now_ms()
        years = self._policies.years()
        window = window_of(self._policies.governing(), now) if years else ""

        def txn(conn: sqlite3.Connection) -> Figures:
            budgets = []
            for year in years:
                funded, pool = books.budget(conn, year)
                budgets.append((year, funded, pool))
            _, oldest_unpaid = books.unpaid_payouts(conn)
            _, oldest_unsettled = books.unsettled_between_cities(conn)
            disputes, _, _ = books.settlement_counts(conn)
            return Figures(
                now=now,
                budgets=budgets,
                exposure=[
                    (p, owed, cap) for p, _, _, cap, owed in books.peer_exposure(conn, window)
                ],
                backlog=books.outbox_backlog(conn),
                disputes_open=disputes,
                holds_overdue=books.overdue_holds(conn, now, self._grace),
                oldest_unpaid=oldest_unpaid,
                oldest_unsettled=oldest_unsettled,
                unacknowledged=ownkeys.unacknowledged_txn(conn),
            )

        figures = await self._db.read("attention", txn)
        return [dataclasses.asdict(n) for n in notices(figures)]

    async def between_cities(self, who: Principal) -> list[dict[str, Any]]:
        """What this city owes each partner city (``due:``) and is owed (``issuer:``) for
        captures not yet settled, from the ledger's accounts."""
        require_operator(who)
        rows = await self._db.read("positions", books.positions)
        out: dict[str, dict[str, Any]] = {}
        for name, balance in rows:
            kind, peer = name.split(":", 1)
            row = out.setdefault(peer, {"peer": peer, "we_owe_fen": 0, "owed_to_us_fen": 0})
            if kind == "due":
                row["we_owe_fen"] = balance
            else:  # issuer:<peer> holds −what the peer owes us
                row["owed_to_us_fen"] = -balance
        return sorted(out.values(), key=lambda r: r["peer"])
