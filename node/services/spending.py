"""Local spending: spend authorizations, holds, captures, voids, one-step redemptions, expiry.

Every operation is one write transaction that moves money in the ledger and the cached
balance columns together and appends the state change to the history. Retries are safe: a
provider repeating a hold or redemption for the same order with the same code and amounts gets
the original hold back; the same order with anything else is refused, because one provider
order is subsidised once (R3).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node import errors
from node.clock import Clock
from node.domain import spending as rules
from node.domain.model import Authorization, Hold, Voucher
from node.services.common import (
    Principal,
    may_see,
    new_id,
    new_secret,
    require_operator,
    require_role,
    sha256_hex,
)
from node.services.policies import PolicyBook
from node.store import ledger, registry, vouchers
from node.store.db import Database

# (outcome, compute_class, amount_fen): outcome is captured | voided | expired | reclaimed …
FlowObserver = Callable[[str, str, int], None]


@dataclass(frozen=True)
class Order:
    code: str
    order_id: str
    order_amount_fen: int
    compute_class: str


@dataclass(frozen=True)
class HoldResult:
    hold: Hold
    replayed: bool


def _release(
    conn: sqlite3.Connection, hold: Hold, state: str, captured: int, now: int, actor: str
) -> None:
    """End an open hold: ``captured`` goes to the provider, the rest back to the voucher."""
    rest = hold.amount_fen - captured
    vouchers.close_hold(conn, hold.id, state, captured, now)
    vouchers.move_voucher(
        conn, hold.voucher_id, held_fen=-hold.amount_fen, captured_fen=captured, available_fen=rest
    )
    hold_acct = ledger.hold_account(hold.id)
    ledger.transfer(
        conn, now, "capture", hold.id, hold_acct, ledger.payable(hold.provider_id), captured
    )
    ledger.transfer(
        conn, now, "release", hold.id, hold_acct, ledger.voucher_account(hold.voucher_id), rest
    )
    ledger.event(
        conn, now, "hold", hold.id, state, actor, captured if state == "captured" else rest
    )


def _reclaim(
    conn: sqlite3.Connection, voucher: Voucher, state: str, now: int, actor: str, reason: str
) -> int:
    """Close a voucher: end its holds, cancel its codes, return its balance to the budget."""
    for hold in vouchers.open_holds(conn, voucher.id):
        _release(conn, hold, "voided" if state == "revoked" else "expired", 0, now, actor)
    vouchers.close_open_authorizations(
        conn, voucher.id, "cancelled" if state == "revoked" else "expired"
    )
    current = vouchers.get_voucher(conn, voucher.id)
    amount = current.available_fen
    vouchers.move_voucher(conn, voucher.id, available_fen=-amount, reclaimed_fen=amount)
    vouchers.set_voucher_state(conn, voucher.id, state)
    ledger.transfer(
        conn,
        now,
        "reclaim",
        voucher.id,
        ledger.voucher_account(voucher.id),
        ledger.pool(voucher.fiscal_year),
        amount,
    )
    ledger.event(conn, now, "voucher", voucher.id, state, actor, amount, reason=reason)
    return amount


class Spending:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        policies: PolicyBook,
        observer: FlowObserver | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies
        self._observer = observer

    def _observe(self, outcome: str, compute_class: str, amount: int) -> None:
        if self._observer is not None:
            self._observer(outcome, compute_class, amount)

    # Authorizations ---------------------------------------------------------------------------

    async def authorize(
        self, who: Principal, voucher_id: str, provider_id: str, max_fen: int, expires_at: int
    ) -> tuple[Authorization, str]:
        """A holder lets one provider spend up to ``max_fen`` of a voucher until ``expires_at``.

        Returns the authorization and its one-time code, shown only here.
        """
        holder_id = require_role(who, "holder")
        now = self._clock.now_ms()
        if expires_at <= now:
            raise errors.InvalidRequest("expires_at: must be in the future")
        code = new_secret("sac")

        def txn(conn: sqlite3.Connection) -> Authorization:
            voucher = vouchers.get_voucher(conn, voucher_id)
            if voucher.holder_id != holder_id:
                raise errors.Forbidden(
                    "a voucher can be spent only by its own holder's authorization (R6)"
                )
            rules.check_voucher_spendable(voucher, now)
            if expires_at > voucher.expires_at:
                raise errors.InvalidRequest("expires_at: must not be after the voucher expires")
            holder = registry.get_holder(conn, holder_id)
            provider = registry.get_provider(conn, provider_id)
            rules.check_provider_may_redeem(provider, holder.uscc)
            auth = Authorization(
                id=new_id("a"),
                voucher_id=voucher.id,
                holder_id=holder_id,
                provider_id=provider_id,
                max_fen=max_fen,
                expires_at=expires_at,
                state="open",
                hold_id=None,
                created_at=now,
            )
            vouchers.insert_authorization(conn, auth, sha256_hex(code))
            ledger.event(
                conn,
                now,
                "authorization",
                auth.id,
                "created",
                who.actor,
                max_fen,
                voucher_id=voucher.id,
                provider_id=provider_id,
            )
            return auth

        return await self._db.run("authorization_create", txn), code

    async def authorizations(self, who: Principal, voucher_id: str) -> list[Authorization]:
        def txn(conn: sqlite3.Connection) -> list[Authorization]:
            voucher = vouchers.get_voucher(conn, voucher_id)
            if not may_see(who, "holder", voucher.holder_id):
                raise errors.Forbidden("a holder sees only its own vouchers")
            return vouchers.list_authorizations(conn, voucher_id)

        return await self._db.read("authorization_list", txn)

    # Holds ------------------------------------------------------------------------------------

    def _place(
        self, conn: sqlite3.Connection, provider_id: str, order: Order, now: int, actor: str
    ) -> HoldResult:
        existing = vouchers.hold_for_order(conn, provider_id, order.order_id)
        code_hash = sha256_hex(order.code)
        if existing is not None:
            auth = vouchers.authorization_by_code(conn, code_hash)
            same = (
                auth.id == existing.authorization_id
                and existing.order_amount_fen == order.order_amount_fen
                and existing.compute_class == order.compute_class
            )
            if same:
                return HoldResult(existing, replayed=True)
            raise errors.OrderAlreadySubsidised(
                f"order {order.order_id} of this provider already has a subsidy (hold {existing.id})"
            )
        auth = vouchers.authorization_by_code(conn, code_hash)
        rules.check_authorization(auth, provider_id, now)
        voucher = vouchers.get_voucher(conn, auth.voucher_id)
        rules.check_voucher_spendable(voucher, now)
        holder = registry.get_holder(conn, voucher.holder_id)
        provider = registry.get_provider(conn, provider_id)
        rules.check_provider_may_redeem(provider, holder.uscc)
        policy = self._policies.for_year(voucher.fiscal_year)
        rules.check_order_class(policy, voucher, order.compute_class)
        amount = rules.hold_amount(order.order_amount_fen, voucher, auth)
        hold = Hold(
            id=new_id("hd"),
            voucher_id=voucher.id,
            provider_id=provider_id,
            authorization_id=auth.id,
            order_id=order.order_id,
            order_amount_fen=order.order_amount_fen,
            compute_class=order.compute_class,
            amount_fen=amount,
            captured_fen=0,
            state="held",
            created_at=now,
            expires_at=rules.hold_expiry(policy, voucher, now),
            closed_at=None,
        )
        vouchers.insert_hold(conn, hold)
        vouchers.use_authorization(conn, auth.id, hold.id)
        vouchers.move_voucher(conn, voucher.id, available_fen=-amount, held_fen=amount)
        ledger.transfer(
            conn,
            now,
            "hold",
            hold.id,
            ledger.voucher_account(voucher.id),
            ledger.hold_account(hold.id),
            amount,
        )
        ledger.event(conn, now, "authorization", auth.id, "used", actor, amount, hold_id=hold.id)
        ledger.event(
            conn,
            now,
            "hold",
            hold.id,
            "held",
            actor,
            amount,
            order_id=order.order_id,
            voucher_id=voucher.id,
        )
        return HoldResult(hold, replayed=False)

    async def hold(self, who: Principal, order: Order) -> HoldResult:
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()
        result = await self._db.run(
            "hold_place", lambda c: self._place(c, provider_id, order, now, who.actor)
        )
        if not result.replayed:
            self._observe("held", order.compute_class, result.hold.amount_fen)
        return result

    async def redeem(self, who: Principal, order: Order) -> HoldResult:
        """Hold and capture the whole subsidy at once, for orders whose amount is known."""
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> HoldResult:
            placed = self._place(conn, provider_id, order, now, who.actor)
            if placed.replayed:
                if (
                    placed.hold.state != "captured"
                    or placed.hold.captured_fen != placed.hold.amount_fen
                ):
                    raise errors.OrderAlreadySubsidised(
                        f"order {order.order_id} has a hold {placed.hold.id} that is {placed.hold.state}"
                    )
                return placed
            _release(conn, placed.hold, "captured", placed.hold.amount_fen, now, who.actor)
            return HoldResult(vouchers.get_hold(conn, placed.hold.id), replayed=False)

        result = await self._db.run("redeem", txn)
        if not result.replayed:
            self._observe("captured", order.compute_class, result.hold.captured_fen)
        return result

    async def capture(self, who: Principal, hold_id: str, amount_fen: int) -> HoldResult:
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> HoldResult:
            hold = vouchers.get_hold(conn, hold_id)
            if hold.provider_id != provider_id:
                raise errors.Forbidden("a provider captures only its own holds")
            if hold.state == "captured" and hold.captured_fen == amount_fen:
                return HoldResult(hold, replayed=True)
            rules.check_capture(hold, amount_fen, now)
            _release(conn, hold, "captured", amount_fen, now, who.actor)
            return HoldResult(vouchers.get_hold(conn, hold_id), replayed=False)

        result = await self._db.run("hold_capture", txn)
        if not result.replayed:
            self._observe("captured", result.hold.compute_class, amount_fen)
        return result

    async def void(self, who: Principal, hold_id: str) -> HoldResult:
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> HoldResult:
            hold = vouchers.get_hold(conn, hold_id)
            if hold.provider_id != provider_id:
                raise errors.Forbidden("a provider voids only its own holds")
            if hold.state == "voided":
                return HoldResult(hold, replayed=True)
            rules.check_hold_open(hold, now)
            _release(conn, hold, "voided", 0, now, who.actor)
            return HoldResult(vouchers.get_hold(conn, hold_id), replayed=False)

        result = await self._db.run("hold_void", txn)
        if not result.replayed:
            self._observe("voided", result.hold.compute_class, result.hold.amount_fen)
        return result

    async def get_hold(self, who: Principal, hold_id: str) -> Hold:
        def txn(conn: sqlite3.Connection) -> Hold:
            hold = vouchers.get_hold(conn, hold_id)
            if may_see(who, "provider", hold.provider_id):
                return hold
            voucher = vouchers.get_voucher(conn, hold.voucher_id)
            if may_see(who, "holder", voucher.holder_id):
                return hold
            raise errors.Forbidden("this hold belongs to another provider and holder")

        return await self._db.read("hold_get", txn)

    async def holds(self, who: Principal, limit: int, after: str) -> list[Hold]:
        if who.role == "provider":
            provider: str | None = who.subject_id
        else:
            require_operator(who)
            provider = None
        return await self._db.read(
            "hold_list", lambda c: vouchers.list_holds(c, provider, None, limit, after)
        )

    # Operator and sweeper ---------------------------------------------------------------------

    async def revoke(self, who: Principal, voucher_id: str, reason: str) -> Voucher:
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> tuple[Voucher, int]:
            voucher = vouchers.get_voucher(conn, voucher_id)
            if voucher.state != "active":
                raise errors.VoucherNotActive(f"voucher {voucher_id} is already {voucher.state}")
            amount = _reclaim(conn, voucher, "revoked", now, who.actor, reason)
            ledger.audit(
                conn,
                now,
                who.actor,
                "voucher.revoke",
                voucher_id,
                reason=reason,
                reclaimed_fen=amount,
            )
            return vouchers.get_voucher(conn, voucher_id), amount

        voucher, amount = await self._db.run("voucher_revoke", txn)
        self._observe("reclaimed", voucher.compute_class, amount)
        return voucher

    async def sweep(self, batch: int = 500) -> dict[str, int]:
        """Expire holds and vouchers whose time has come. Safe to run at any moment."""
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            flows: list[tuple[str, str, int]] = []
            holds = vouchers.expired_holds(conn, now, batch)
            for hold in holds:
                _release(conn, hold, "expired", 0, now, "system:sweeper")
                flows.append(("expired", hold.compute_class, hold.amount_fen))
            vouchers.expire_authorizations(conn, now)
            expired = vouchers.expired_vouchers(conn, now, batch)
            for voucher_id in expired:
                voucher = vouchers.get_voucher(conn, voucher_id)
                amount = _reclaim(conn, voucher, "expired", now, "system:sweeper", "validity ended")
                flows.append(("reclaimed", voucher.compute_class, amount))
            return {"holds": len(holds), "vouchers": len(expired), "flows": flows}

        result = await self._db.run("sweep", txn)
        for outcome, compute_class, amount in result["flows"]:
            self._observe(outcome, compute_class, amount)
        return {"holds_expired": result["holds"], "vouchers_expired": result["vouchers"]}
