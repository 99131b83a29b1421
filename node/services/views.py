"""Read-only views of the books: vouchers, decisions, budgets and the journal.

Each role sees only its own: a holder its decisions and vouchers, an operator everything.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from node import errors
from node.clock import Clock, iso, people_times, year_of
from node.domain.model import Voucher
from node.domain.windows import CST, window_bounds
from node.services import execution
from node.services.common import Principal, may_see, require_operator
from node.services.issuance import signed_voucher_json
from node.services.policies import PolicyBook
from node.store import ledger, registry, vouchers
from node.store.engine import Books

JOURNAL_KINDS = ledger.JOURNALS


class Views:
    def __init__(self, db: Books, clock: Clock, policies: PolicyBook, city: str = "") -> None:
        self._db = db
        self._clock = clock
        self._policies = policies
        self._city = city

    @staticmethod
    def _scope(who: Principal) -> str | None:
        """The holder whose records the caller may list, or None for all (operators)."""
        if who.role == "holder":
            return who.subject_id
        require_operator(who)
        return None

    async def voucher(self, who: Principal, voucher_id: str) -> tuple[Voucher, dict[str, str]]:
        def txn(conn: sqlite3.Connection) -> tuple[Voucher, dict[str, str]]:
            voucher, record, signature, key_id = vouchers.get_voucher_signed(conn, voucher_id)
            if not may_see(who, "holder", voucher.holder_id):
                raise errors.Forbidden("a holder sees only its own vouchers")
            return voucher, signed_voucher_json(record, signature, key_id)

        return await self._db.read("voucher_get", txn)

    async def vouchers(self, who: Principal, limit: int, after: str) -> list[Voucher]:
        holder = self._scope(who)
        return await self._db.read(
            "voucher_list", lambda c: vouchers.list_vouchers(c, holder, limit, after)
        )

    async def decision(self, who: Principal, decision_id: str) -> dict[str, Any]:
        row = await self._db.read("decision_get", lambda c: vouchers.get_decision(c, decision_id))
        if not may_see(who, "holder", row["holder_id"]):
            raise errors.Forbidden("a holder sees only its own decisions")
        return row

    async def decisions(
        self,
        who: Principal,
        limit: int,
        after: str,
        outcome: str | None = None,
        holder_id: str | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Decisions a caller may see (a holder its own); an operator may ask for one
        holder's, and either for one outcome, oldest or newest first."""
        holder = self._scope(who) or holder_id
        if outcome is not None and outcome not in ("issued", "declined"):
            raise errors.InvalidRequest("outcome: issued or declined")
        return await self._db.read(
            "decision_list",
            lambda c: vouchers.list_decisions(c, holder, limit, after, outcome, newest_first),
        )

    async def holder_statement(self, who: Principal, holder_id: str, year: int) -> dict[str, Any]:
        """A holder's yearly statement for its own accounts: each voucher of the fiscal year
        (face value, captured, reclaimed, what is left), and the subsidy received by provider
        and by month (China Standard Time), every figure from the books."""
        scope = self._scope(who)
        if scope is not None and scope != holder_id:
            raise errors.HolderNotFound(f"no holder {holder_id}")

        def txn(
            conn: sqlite3.Connection,
        ) -> tuple[Any, list[Voucher], list[sqlite3.Row], int]:
            holder = registry.get_holder(conn, holder_id)
            found, captures = vouchers.holder_year(conn, holder_id, year)
            used, _ = vouchers.holder_standing(conn, holder_id, year)
            return holder, found, captures, used

        holder, found, captures, used = await self._db.read("holder_statement", txn)
        policy = self._policies.maybe_for_year(year)
        category = policy.categories.get(holder.category) if policy is not None else None
        cap = category.annual_cap_fen if category is not None else 0
        providers: dict[tuple[str, str], dict[str, Any]] = {}
        months: dict[str, dict[str, Any]] = {}
        for c in captures:
            key = (c["acquirer_region"], c["provider_id"])
            p = providers.setdefault(
                key,
                {
                    "provider_region": key[0],
                    "provider_id": key[1],
                    "provider_name": c["provider_name"],
                    "captures": 0,
                    "captured_fen": 0,
                },
            )
            p["captures"] += 1
            p["captured_fen"] += c["captured_fen"]
            month = dt.datetime.fromtimestamp(c["closed_at"] / 1000, CST).strftime("%Y-%m")
            m = months.setdefault(month, {"month": month, "captures": 0, "captured_fen": 0})
            m["captures"] += 1
            m["captured_fen"] += c["captured_fen"]
        return {
            "region": self._policies.region,
            "fiscal_year": year,
            "holder": {"id": holder.id, "uscc": holder.uscc, "name": holder.name},
            # the category's yearly cap (R3), what this holder's vouchers use of it (issued
            # less reclaimed) and what is left
            "cap": {
                "category": holder.category,
                "cap_fen": cap,
                "used_fen": used,
                "left_fen": max(0, cap - used),
            },
            "produced_at": iso(self._clock.now_ms()),
            "vouchers": [
                {
                    "id": v.id,
                    "compute_class": v.compute_class,
                    "ratio_bp": v.ratio_bp,
                    "face_fen": v.face_fen,
                    "captured_fen": v.captured_fen,
                    "reclaimed_fen": v.reclaimed_fen,
                    "available_fen": v.available_fen,
                    "held_fen": v.held_fen,
                    "state": v.state,
                    "issued_at": iso(v.issued_at),
                    "expires_at": iso(v.expires_at),
                }
                for v in found
            ],
            "by_provider": sorted(
                providers.values(), key=lambda p: (p["provider_region"], p["provider_id"])
            ),
            "by_month": [months[k] for k in sorted(months)],
            "totals": {
                "face_fen": sum(v.face_fen for v in found),
                "captured_fen": sum(c["captured_fen"] for c in captures),
                "reclaimed_fen": sum(v.reclaimed_fen for v in found),
                "available_fen": sum(v.available_fen for v in found),
                "held_fen": sum(v.held_fen for v in found),
            },
        }

    def budget_execution_sync(
        self, who: Principal, year: int | None, window: str | None = None
    ) -> dict[str, Any]:
        """The budget-execution report of a fiscal year, or of one settlement window
        (node/services/execution.py); the year defaults to the window's, else now's."""
        require_operator(who)
        return self._db.run_sync("budget_execution", self._execution_txn(year, window))

    async def budget_execution(
        self, who: Principal, year: int | None, window: str | None = None
    ) -> dict[str, Any]:
        require_operator(who)
        return await self._db.read("budget_execution", self._execution_txn(year, window))

    def _execution_txn(self, year: int | None, window: str | None) -> Any:
        now = self._clock.now_ms()
        city = self._city
        if window is not None:
            try:
                start, _ = window_bounds(window)
            except ValueError as exc:
                raise errors.InvalidRequest(f"window: {exc}") from None
            year = year or year_of(start)
        chosen = year or year_of(now)

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            return execution.report_txn(conn, chosen, self._policies.region, city, now, window)

        return txn

    async def voucher_money(self, who: Principal) -> dict[str, int]:
        """All vouchers' money by state (available, held, captured, reclaimed), from the
        ledger's running totals: one small read however many vouchers there are."""
        require_operator(who)
        return ledger.voucher_money(await self._db.read("flows", ledger.flows))

    async def budget(self, who: Principal) -> list[dict[str, int]]:
        require_operator(who)
        years = self._policies.years()

        def txn(conn: sqlite3.Connection) -> list[dict[str, int]]:
            out = []
            for year in years:
                funded = -ledger.balance(conn, ledger.appropriation(year))
                pool = ledger.balance(conn, ledger.pool(year))
                out.append(
                    {
                        "fiscal_year": year,
                        "budget_fen": funded,
                        "committed_fen": funded - pool,
                        "remaining_fen": pool,
                    }
                )
            return out

        return await self._db.read("budget", txn)

    async def journal(
        self, who: Principal, kind: str, after: int, limit: int
    ) -> list[dict[str, Any]]:
        """The append-only history, in order: ledger transfers, state events or the audit trail."""
        require_operator(who)
        if kind not in JOURNAL_KINDS:
            raise errors.InvalidRequest(
                f"kind: must be one of {', '.join(JOURNAL_KINDS)}, got {kind!r}"
            )

        rows = await self._db.read("journal", lambda c: ledger.journal(c, kind, after, limit))
        return [people_times(r) for r in rows]
