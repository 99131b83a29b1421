"""Read-only views of the books: vouchers, decisions, budgets and the journal.

Each role sees only its own: a holder its decisions and vouchers, an operator everything.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from node import errors
from node.clock import Clock, people_times
from node.domain.model import Voucher
from node.services.common import Principal, may_see, require_operator
from node.services.issuance import signed_voucher_json
from node.services.policies import PolicyBook
from node.store import ledger, vouchers
from node.store.db import Database

JOURNAL_KINDS = ledger.JOURNALS


class Views:
    def __init__(self, db: Database, clock: Clock, policies: PolicyBook) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies

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

    async def decisions(self, who: Principal, limit: int, after: str) -> list[dict[str, Any]]:
        holder = self._scope(who)
        return await self._db.read(
            "decision_list", lambda c: vouchers.list_decisions(c, holder, limit, after)
        )

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
