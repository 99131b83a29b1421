"""Settlement at this node: windows, their closing, and signed payout statements for providers.

Every capture belongs to exactly one window of the city that names it: the issuer's, in its
signed receipt, for the inter-city statements (``node/services/statements.py``); and, for this node's
provider payouts, the window of this node in which it recorded the capture (its own
``settlement_window`` for a local voucher, ``payout_window`` for another city's). A window
closes ``settlement_grace_minutes`` after its end, or earlier when the operator closes it; from
then on captures go to the next window. Once closed, each provider with captures gets a
payout statement: the count, total and SHA-256 digest of its capture lines (order, holder,
issuing city, subsidy), as canonical JSON signed with the node's key (``suanli.payout.v2``,
docs/settlement.md); the lines themselves are a streamed CSV that reproduces the digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from node import errors
from node.clock import Clock, iso, people_times
from node.csvout import Writer
from node.domain.clearing import window_progress
from node.domain.windows import open_window, window_bounds, window_of
from node.faults import crash_point
from node.keys import NodeKey, canonical_json
from node.services.common import Principal, require_operator
from node.services.policies import PolicyBook
from node.store import clearing, ledger, registry
from node.store import settlement as store
from node.store.engine import Books

PAYOUT_TAG = b"suanli/payout/v2\x00"
PAYOUT_TAG_V1 = b"suanli/payout/v1\x00"  # statements signed before schema v7 (lines inline)
# Rows per event-loop turn when reading payout lines: the joins make a row cost ~3 µs here, so
# a turn stays near a millisecond.
PAYOUT_CHUNK = 250
CSV_COLUMNS = (
    "window",
    "provider_id",
    "provider_uscc",
    "hold_id",
    "order_id",
    "holder_uscc",
    "issuer_region",
    "compute_class",
    "captured_fen",
)


class _Tally:
    """One provider's payout: count, total and SHA-256 over its lines in hold-id order."""

    __slots__ = ("count", "sha", "total_fen")

    def __init__(self) -> None:
        self.count = 0
        self.total_fen = 0
        self.sha = hashlib.sha256()


class LocalSettlement:
    def __init__(self, db: Books, clock: Clock, policies: PolicyBook, key: NodeKey) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies
        self._key = key
        self.region = policies.region
        self._signing = asyncio.Lock()  # one window's payouts at a time

    def grace_ms(self) -> int:
        return self._policies.governing().settlement_grace_minutes * 60_000

    def payout_window_txn(self, conn: sqlite3.Connection, now: int) -> str:
        """The open window of this node at ``now`` (for captures of other cities' vouchers)."""
        return open_window(self._policies.governing(), now, lambda w: store.is_closed(conn, w))

    def payout_window_ahead_txn(self, conn: sqlite3.Connection, now: int) -> None:
        """Send ahead the read ``payout_window_txn`` starts with (``node.store.rows.ahead``)."""
        store.is_closed_ahead(conn, window_of(self._policies.governing(), now))

    def _close_txn(self, conn: sqlite3.Connection, window_id: str, now: int, actor: str) -> None:
        start, end = window_bounds(window_id)
        if start > now:
            raise errors.InvalidRequest(f"window {window_id} has not started")
        if store.is_closed(conn, window_id):
            raise errors.AlreadyExists(f"window {window_id} is already closed")
        store.close_window(conn, window_id, start, end, now, actor)
        ledger.audit(conn, now, actor, "window.close", window_id)
        store.notify_closed(conn, window_id, now)  # the acquirers hear of it (WINDOW_CLOSED)
        # Statements this node (as acquirer) is waiting to send go out now: operators close
        # their windows together, so the issuers' windows are likely closed too.
        store.statements_due_now(conn, self.region)

    async def close(self, who: Principal, window_id: str | None) -> dict[str, Any]:
        """Close a window now (by default the current one): the operator's early close. Its
        payouts are signed before the answer."""
        require_operator(who)
        now = self._clock.now_ms()
        target = window_id or window_of(self._policies.governing(), now)
        await self._db.run("window_close", lambda c: self._close_txn(c, target, now, who.actor))
        crash_point("settlement.after_close")
        payouts, captures = await self.sign_payouts(target)
        return {"window": target, "payouts": payouts, "captures": captures}

    async def tick(self) -> list[str]:
        """Close every window with captures whose end plus the grace delay has passed, then sign
        the payouts of every closed window still without them (after a crash, too)."""
        now = self._clock.now_ms()
        grace = self._policies.governing().settlement_grace_minutes * 60_000

        def txn(conn: sqlite3.Connection) -> list[str]:
            closed = []
            for window_id in store.active_windows(conn):
                if window_bounds(window_id)[1] + grace <= now:
                    self._close_txn(conn, window_id, now, "system:settlement")
                    closed.append(window_id)
            return closed

        closed = await self._db.run("window_tick", txn)
        for window_id in await self._db.read("payouts_pending", store.payouts_pending):
            await self.sign_payouts(window_id)
        return closed

    async def sign_payouts(self, window_id: str) -> tuple[int, int]:
        """Sign a closed window's payout statements, once; returns (statements, captures).

        A closed window's captures never change, so its lines are read after the close, in
        chunks on the event loop (``Books.scan_merged``), and each provider's statement
        signs a count, a total and a digest of its lines (not the lines: a provider with a
        million captures would need a document of ~170 MB). Only the statements are written,
        in one short transaction that sets ``payouts_at``; whoever comes second (a tick and an
        operator's close, or the CLI beside the node) finds them signed."""
        async with self._signing:
            if not await self._db.read("payouts_due", lambda c: _due_txn(c, window_id)):
                return await self._db.read(
                    "payout_counts", lambda c: store.payout_counts(c, window_id)
                )
            tallies: dict[str, _Tally] = {}
            async for rows in self._lines(window_id, None):
                by_provider: dict[str, list[tuple[Any, ...]]] = {}
                for row in rows:
                    mine = by_provider.get(row[1])
                    if mine is None:
                        by_provider[row[1]] = [row]
                    else:
                        mine.append(row)
                for provider_id, mine in by_provider.items():
                    tally = tallies.get(provider_id)
                    if tally is None:
                        tally = tallies[provider_id] = _Tally()
                    tally.count += len(mine)
                    tally.total_fen += sum(r[6] for r in mine)
                    tally.sha.update("".join(r[7] for r in mine).encode())
            now = self._clock.now_ms()
            start, end = window_bounds(window_id)
            providers = await self._db.read(
                "payout_providers",
                lambda c: {p: registry.get_provider(c, p) for p in sorted(tallies)},
            )
            signed = []
            for provider_id, tally in sorted(tallies.items()):
                provider = providers[provider_id]
                statement = canonical_json(
                    {
                        "type": "suanli.payout.v2",
                        "region": self.region,
                        "window": window_id,
                        "window_start": iso(start),
                        "window_end": iso(end),
                        "provider_id": provider_id,
                        "provider_uscc": provider.uscc,
                        "provider_name": provider.name,
                        "count": tally.count,
                        "total_fen": tally.total_fen,
                        "digest": tally.sha.hexdigest(),
                        "issued_at": iso(now),
                        "key_id": self._key.key_id,
                    }
                )
                signature = self._key.sign(PAYOUT_TAG, statement)
                signed.append((provider_id, tally, statement, signature))
                if len(signed) % 32 == 0:
                    await asyncio.sleep(0)  # ~100 µs a statement: other requests go between
            captures = sum(t.count for t in tallies.values())

            def txn(conn: sqlite3.Connection) -> tuple[int, int]:
                if not _due_txn(conn, window_id):
                    return store.payout_counts(conn, window_id)
                for provider_id, tally, statement, signature in signed:
                    store.put_payout(
                        conn,
                        window_id,
                        provider_id,
                        tally.count,
                        tally.total_fen,
                        statement,
                        signature,
                        self._key.key_id,
                        now,
                    )
                store.payouts_done(conn, window_id, now)
                ledger.audit(
                    conn,
                    now,
                    "system:settlement",
                    "window.payouts",
                    window_id,
                    payouts=len(signed),
                    captures=captures,
                )
                return len(signed), captures

            return await self._db.run("payouts_sign", txn)

    def _lines(
        self, window_id: str, provider_id: str | None
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """A window's payout lines (``store.PAYOUT_LOCAL_LINES`` columns) in hold-id order."""
        if provider_id is None:
            queries = [
                (store.PAYOUT_LOCAL_LINES, (self.region, window_id)),
                (store.PAYOUT_REMOTE_LINES, (window_id,)),
            ]
        else:
            queries = [
                (store.PAYOUT_LOCAL_LINES_OF, (self.region, window_id, provider_id)),
                (store.PAYOUT_REMOTE_LINES_OF, (window_id, provider_id)),
            ]
        return self._db.scan_merged("payout_lines", queries, PAYOUT_CHUNK)

    async def pending_notices(self) -> list[tuple[str, str, int]]:
        """(peer, window, closed at) for every close a peer has not acknowledged yet."""
        return await self._db.read("window_notices", store.pending_notices)

    async def notice_acked(self, peer: str, window_id: str) -> None:
        now = self._clock.now_ms()
        await self._db.run(
            "window_notice_acked", lambda c: store.notice_acked(c, peer, window_id, now)
        )

    async def windows(self, who: Principal) -> list[dict[str, Any]]:
        require_operator(who)
        now = self._clock.now_ms()
        current = window_of(self._policies.governing(), now)

        def txn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = store.windows(conn)
            known = {r["window_id"] for r in rows}
            out = []
            for r in rows:
                window_id = r["window_id"]
                state, missing = window_progress(
                    r["state"] == "settled",
                    r["payouts_at"] is not None,
                    [
                        (s["acquirer"], s["state"], int(s["total_fen"]), s["transfer_state"])
                        for s in clearing.window_coverage(conn, self.region, window_id)
                    ],
                    [
                        (p["provider_id"], int(p["total_fen"]), int(p["paid_fen"]))
                        for p in store.payouts(conn, window_id, None)
                    ],
                )
                times = people_times({"closed_at": r["closed_at"], "closed_by": r["closed_by"]})
                out.append(
                    {
                        "window_id": window_id,
                        "start": iso(r["start_ms"]),
                        "end": iso(r["end_ms"]),
                        "state": state,
                        "missing": missing,
                        **times,
                        "statements_agreed_at": iso(r["settled_at"]) if r["settled_at"] else None,
                        "payouts_at": iso(r["payouts_at"]) if r["payouts_at"] else None,
                    }
                )
            open_now = open_window(self._policies.governing(), now, lambda w: w in known)
            out.append({"window_id": open_now, "state": "open", "current": open_now == current})
            return out

        return await self._db.read("windows", txn)

    async def payouts(
        self, who: Principal, window_id: str | None, limit: int = -1, after: str = ""
    ) -> list[dict[str, Any]]:
        """Signed payout statements by window, then provider; ``after`` is the ``cursor`` of
        the last one seen (``window/provider``), ``limit`` -1 for all."""
        provider = _viewer(who)
        window_after, _, provider_after = after.rpartition("/")
        rows = await self._db.read(
            "payouts",
            lambda c: store.payouts(c, window_id, provider, limit, (window_after, provider_after)),
        )
        return [
            {
                "cursor": f"{r['window_id']}/{r['provider_id']}",
                "window": r["window_id"],
                "provider_id": r["provider_id"],
                "count": r["count"],
                "total_fen": r["total_fen"],
                # 兑付: what was paid against it (payments less reversals), and what is left
                "paid_fen": r["paid_fen"],
                "unpaid_fen": r["total_fen"] - r["paid_fen"],
                "statement": json.loads(r["statement"]),
                "signature": bytes(r["signature"]).hex(),
                "key_id": r["key_id"],
            }
            for r in rows
        ]

    def payouts_csv(self, who: Principal, window_id: str | None) -> AsyncIterator[str]:
        """The lines of signed payouts (every signed window, or one) as CSV, streamed: one line
        per capture, in hold-id order within a window; a provider sees only its own. A
        provider's lines of a window, in this order, are what its statement's digest covers."""
        return self._csv(_viewer(who), window_id)

    async def _csv(self, provider_id: str | None, window_id: str | None) -> AsyncIterator[str]:
        out = io.StringIO()
        writer = Writer(out)
        writer.writerow(CSV_COLUMNS)
        yield out.getvalue()
        windows, uscc = await self._db.read(
            "payout_windows",
            lambda c: (store.signed_windows(c, window_id), registry.provider_usccs(c, provider_id)),
        )
        for window in windows:
            async with contextlib.aclosing(self._lines(window, provider_id)) as chunks:
                async for rows in chunks:
                    out.seek(0)
                    out.truncate()
                    writer.writerows(
                        (window, p, uscc[p], hold, order, holder, issuer, compute_class, fen)
                        for hold, p, order, holder, issuer, compute_class, fen, _ in rows
                    )
                    yield out.getvalue()


def _viewer(who: Principal) -> str | None:
    """Whose payouts ``who`` may see: a provider its own (the id), an operator all (None)."""
    if who.role == "provider":
        return who.subject_id
    require_operator(who)
    return None


def _due_txn(conn: sqlite3.Connection, window_id: str) -> bool:
    """Whether a window is closed and its payouts are not signed yet."""
    return store.is_closed(conn, window_id) and not store.payouts_signed(conn, window_id)


class SettlementViews:
    """Pair statements and disputes, for operators."""

    def __init__(self, db: Books) -> None:
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
        rows, conflicts = await self._db.read(
            "disputes", lambda c: (store.disputes(c, open_only), store.conflicts(c))
        )
        # A statement that differed from an agreed one is permanent evidence: always listed.
        return [
            {
                "kind": "statement_mismatch",
                **r,
                "opened_at": iso(r["opened_at"]),
                "updated_at": iso(r["updated_at"]),
                "resolved_at": iso(r["resolved_at"]) if r["resolved_at"] else None,
            }
            for r in rows
        ] + [
            {
                "kind": "statement_already_agreed",
                **c,
                "received_at": iso(c["received_at"]),
            }
            for c in conflicts
        ]
