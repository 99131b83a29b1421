"""Settlement at this node: windows, their closing, and signed payout statements for providers.

Every capture belongs to exactly one window of the city that names it: the issuer's, in its
signed receipt, for the inter-city statements (``federation.settlement``); and, for this node's
provider payouts, the window of this node in which it recorded the capture (its own
``settlement_window`` for a local voucher, ``payout_window`` for another city's). A window
closes ``settlement_grace_minutes`` after its end, or earlier when the operator closes it; from
then on captures go to the next window. At close, each provider with captures gets a payout
statement: every capture with order, holder, issuing city and subsidy, and the total, as
canonical JSON signed with the node's key (tag ``suanli/payout/v1``), exportable as JSON or CSV.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from typing import Any

from node import errors
from node.clock import Clock, iso
from node.domain.settlement import open_window, window_bounds, window_of
from node.faults import crash_point
from node.keys import NodeKey, canonical_json
from node.services.common import Principal, require_operator
from node.services.policies import PolicyBook
from node.store import ledger, registry
from node.store import settlement as store
from node.store.db import Database

PAYOUT_TAG = b"suanli/payout/v1\x00"


class LocalSettlement:
    def __init__(self, db: Database, clock: Clock, policies: PolicyBook, key: NodeKey) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies
        self._key = key
        self.region = policies.region

    def grace_ms(self) -> int:
        return self._policies.current().settlement_grace_minutes * 60_000

    def payout_window(self, conn: sqlite3.Connection, now: int) -> str:
        """The open window of this node at ``now`` (for captures of other cities' vouchers)."""
        return open_window(self._policies.current(), now, lambda w: store.is_closed(conn, w))

    def _close(
        self, conn: sqlite3.Connection, window_id: str, now: int, actor: str
    ) -> dict[str, Any]:
        start, end = window_bounds(window_id)
        if start > now:
            raise errors.InvalidRequest(f"window {window_id} has not started")
        if store.is_closed(conn, window_id):
            raise errors.AlreadyExists(f"window {window_id} is already closed")
        store.close_window(conn, window_id, start, end, now, actor)
        lines = store.payout_lines(conn, self.region, window_id)
        by_provider: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            by_provider.setdefault(line.pop("provider_id"), []).append(line)
        for provider_id, items in sorted(by_provider.items()):
            provider = registry.get_provider(conn, provider_id)
            total = sum(int(i["captured_fen"]) for i in items)
            statement = canonical_json(
                {
                    "type": "suanli.payout.v1",
                    "region": self.region,
                    "window": window_id,
                    "window_start": iso(start),
                    "window_end": iso(end),
                    "provider_id": provider_id,
                    "provider_uscc": provider.uscc,
                    "provider_name": provider.name,
                    "count": len(items),
                    "total_fen": total,
                    "lines": items,
                    "issued_at": iso(now),
                    "key_id": self._key.key_id,
                }
            )
            signature = self._key.sign(PAYOUT_TAG, statement)
            store.put_payout(
                conn,
                window_id,
                provider_id,
                len(items),
                total,
                statement,
                signature,
                self._key.key_id,
                now,
            )
        ledger.audit(
            conn,
            now,
            actor,
            "window.close",
            window_id,
            payouts=len(by_provider),
            captures=len(lines),
        )
        # Statements this node (as acquirer) is waiting to send go out now: operators close
        # their windows together, so the issuers' windows are likely closed too.
        store.statements_due_now(conn, self.region)
        return {"window": window_id, "payouts": len(by_provider), "captures": len(lines)}

    async def close(self, who: Principal, window_id: str | None) -> dict[str, Any]:
        """Close a window now (by default the current one): the operator's early close."""
        require_operator(who)
        now = self._clock.now_ms()
        target = window_id or window_of(self._policies.current(), now)
        result = await self._db.run(
            "window_close", lambda c: self._close(c, target, now, who.actor)
        )
        crash_point("settlement.after_close")
        return result

    async def tick(self) -> list[str]:
        """Close every window with captures whose end plus the grace delay has passed."""
        now = self._clock.now_ms()
        grace = self._policies.current().settlement_grace_minutes * 60_000

        def txn(conn: sqlite3.Connection) -> list[str]:
            closed = []
            for window_id in store.active_windows(conn):
                if window_bounds(window_id)[1] + grace <= now:
                    self._close(conn, window_id, now, "system:settlement")
                    closed.append(window_id)
            return closed

        return await self._db.run("window_tick", txn)

    async def windows(self, who: Principal) -> list[dict[str, Any]]:
        require_operator(who)
        now = self._clock.now_ms()
        current = window_of(self._policies.current(), now)

        def txn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = store.windows(conn)
            known = {r["window_id"] for r in rows}
            out = [{**r, "closed_at": iso(r["closed_at"])} for r in rows]
            open_now = open_window(self._policies.current(), now, lambda w: w in known)
            out.append({"window_id": open_now, "state": "open", "current": open_now == current})
            return out

        return await self._db.read("windows", txn)

    async def payouts(self, who: Principal, window_id: str | None) -> list[dict[str, Any]]:
        provider = who.subject_id if who.role == "provider" else None
        if provider is None:
            require_operator(who)
        rows = await self._db.read("payouts", lambda c: store.payouts(c, window_id, provider))
        return [
            {
                "window": r["window_id"],
                "provider_id": r["provider_id"],
                "count": r["count"],
                "total_fen": r["total_fen"],
                "statement": json.loads(r["statement"]),
                "signature": bytes(r["signature"]).hex(),
                "key_id": r["key_id"],
            }
            for r in rows
        ]


class SettlementViews:
    """Pair statements and disputes, for operators."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def statements(self, who: Principal) -> list[dict[str, Any]]:
        require_operator(who)
        rows = await self._db.read("statements", store.statements)
        return [
            {
                "issuer": r["issuer"],
                "acquirer": r["acquirer"],
                "window": r["window_id"],
                "count": r["count"],
                "total_fen": r["total_fen"],
                "digest": r["digest"],
                "state": r["state"],
                "statement": json.loads(r["statement"]),
                "acquirer_signature": bytes(r["acquirer_signature"]).hex()
                if r["acquirer_signature"]
                else None,
                "acquirer_key_id": r["acquirer_key_id"],
                "issuer_signature": bytes(r["issuer_signature"]).hex()
                if r["issuer_signature"]
                else None,
                "issuer_key_id": r["issuer_key_id"],
                "updated_at": iso(r["updated_at"]),
            }
            for r in rows
        ]

    async def disputes(self, who: Principal, open_only: bool) -> list[dict[str, Any]]:
        require_operator(who)
        rows = await self._db.read("disputes", lambda c: store.disputes(c, open_only))
        return [
            {
                **r,
                "opened_at": iso(r["opened_at"]),
                "updated_at": iso(r["updated_at"]),
                "resolved_at": iso(r["resolved_at"]) if r["resolved_at"] else None,
            }
            for r in rows
        ]


def payouts_csv(items: list[dict[str, Any]]) -> str:
    """One line per capture, for the finance bureau."""
    out = io.StringIO()
    columns = [
        "window",
        "provider_id",
        "provider_uscc",
        "hold_id",
        "order_id",
        "holder_uscc",
        "issuer_region",
        "compute_class",
        "captured_fen",
    ]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for item in items:
        st = item["statement"]
        for line in st["lines"]:
            writer.writerow(
                {
                    "window": st["window"],
                    "provider_id": st["provider_id"],
                    "provider_uscc": st["provider_uscc"],
                    **line,
                }
            )
    return out.getvalue()
