"""Spending: holds, captures, voids, one-step redemptions, expiry (the spend authorizations
they are placed with are ``node.services.authorizations``).

Every operation is one write transaction that moves money in the ledger and the cached
balance columns together and appends the state change to the history. Retries are safe: a
provider repeating a hold or redemption for the same order with the same code and amounts gets
the original hold back; the same order with anything else is refused, because one provider
order is subsidised once (R3).

The same transaction functions serve a local provider (through REST) and a peer's provider
(through the federation, where this node is the issuer): ``Redeemer`` says which. A spend
authorization's code names its issuing region (``sac_<region>_<secret>``), so a provider's
node knows whether to redeem locally or ask the issuer (``RemoteSpending``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from node import errors
from node.clock import Clock, year_of
from node.domain import spending as rules
from node.domain.model import Hold, HoldState, Provider, RemoteHold, Voucher
from node.domain.spending import LOCAL_HOLD, HoldRef
from node.domain.windows import open_window, window_of
from node.services.common import (
    Principal,
    may_see,
    new_id,
    require_operator,
    require_role,
    sha256_hex,
)
from node.services.policies import PolicyBook
from node.store import ledger, peers, registry, remote_holds, settlement, vouchers
from node.store.engine import Books

# (role, peer, outcome, compute_class, amount_fen): role is local | issuer (| acquirer, from the
# federation); outcome is held | captured | voided | expired | reclaimed
FlowObserver = Callable[[str, str, str, str, int], None]


@dataclass(frozen=True)
class Order:
    code: str
    order_id: str
    order_amount_fen: int
    compute_class: str


@dataclass(frozen=True)
class HoldResult:
    hold: Hold | RemoteHold
    replayed: bool
    voucher: Voucher | None = None  # when the transaction already read it (saves a lookup)
    holder_uscc: str | None = None


@dataclass(frozen=True)
class Redeemer:
    """Who redeems: a local provider (region = this node's), or a peer's, vouched for by it."""

    region: str
    provider: Provider


class RemoteSpending(Protocol):
    """The acquirer side of the federation, for codes issued by another city."""

    async def hold(
        self, provider_id: str, order: Order, issuer: str, redeem: bool
    ) -> HoldResult: ...
    async def capture(self, provider_id: str, hold_id: str, amount_fen: int) -> HoldResult: ...
    async def void(self, provider_id: str, hold_id: str) -> HoldResult: ...


def _settle_account(hold: Hold, own_region: str) -> str:
    if hold.acquirer_region == own_region:
        return ledger.payable(hold.provider_id)
    return ledger.due(hold.acquirer_region)


class Spending:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        policies: PolicyBook,
        observer: FlowObserver | None = None,
        remote: RemoteSpending | None = None,
    ) -> None:
        """``remote``: where codes of other cities go (the acquirer side of the federation),
        None for a node outside any federation."""
        self._db = db
        self._clock = clock
        self._policies = policies
        self._observer = observer
        self.region = policies.region
        self.remote = remote

    def _observe(
        self, outcome: str, compute_class: str, amount: int, acquirer: str | None = None
    ) -> None:
        """Count a flow: ``local`` when this city's provider spent it, else as ``issuer`` for a peer."""
        if self._observer is not None:
            local = acquirer is None or acquirer == self.region
            self._observer(
                "local" if local else "issuer",
                "" if local else str(acquirer),
                outcome,
                compute_class,
                amount,
            )

    # Transaction functions, shared by the REST path and the federation's issuer -----------

    def release_txn(
        self,
        conn: sqlite3.Connection,
        hold: Hold,
        state: HoldState,
        captured: int,
        now: int,
        actor: str,
        voucher: Voucher | None = None,
    ) -> Hold:
        """End an open hold: ``captured`` goes to whoever is owed, the rest back to the voucher."""
        rest = hold.amount_fen - captured
        window = None
        if state == "captured":
            voucher = voucher or vouchers.get_voucher(conn, hold.voucher_id)
            policy = self._policies.for_year(voucher.fiscal_year)
            window = open_window(policy, now, lambda w: settlement.is_closed(conn, w))
        vouchers.close_hold(conn, hold.id, state, captured, now, window)
        peers.add_exposure(conn, hold.acquirer_region, "", -hold.amount_fen)
        if window is not None:
            peers.add_exposure(conn, hold.acquirer_region, window, captured)
            settlement.window_active(conn, window)
        vouchers.move_voucher(
            conn,
            hold.voucher_id,
            held_fen=-hold.amount_fen,
            captured_fen=captured,
            available_fen=rest,
        )
        hold_acct = ledger.hold_account(hold.id)
        ledger.transfer(
            conn, now, "capture", hold.id, hold_acct, _settle_account(hold, self.region), captured
        )
        ledger.transfer(
            conn, now, "release", hold.id, hold_acct, ledger.voucher_account(hold.voucher_id), rest
        )
        ledger.event(
            conn, now, "hold", hold.id, state, actor, captured if state == "captured" else rest
        )
        return dataclasses.replace(
            hold, state=state, captured_fen=captured, closed_at=now, settlement_window=window
        )

    def _reclaim_txn(
        self,
        conn: sqlite3.Connection,
        voucher: Voucher,
        state: str,
        now: int,
        actor: str,
        reason: str,
    ) -> int:
        """Close a voucher: end its holds, cancel its codes, return its balance to the budget."""
        for hold in vouchers.open_holds(conn, voucher.id):
            self.release_txn(
                conn, hold, "voided" if state == "revoked" else "expired", 0, now, actor
            )
        vouchers.close_open_authorizations(
            conn, voucher.id, "cancelled" if state == "revoked" else "expired"
        )
        amount = vouchers.get_voucher(conn, voucher.id).available_fen
        vouchers.move_voucher(conn, voucher.id, available_fen=-amount, reclaimed_fen=amount)
        vouchers.add_holder_usage(conn, voucher.holder_id, voucher.fiscal_year, -amount, 0)
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

    def place_ahead_txn(
        self,
        conn: sqlite3.Connection,
        region: str,
        provider_id: str,
        order_id: str,
        code: str,
        capture: bool,
    ) -> None:
        """Send ahead the reads ``place_txn`` makes (one round trip on PostgreSQL): ``code``
        is the one-time code's SHA-256. The window's reads assume a voucher of this year
        (if it is of another, they are made again at their place)."""
        vouchers.hold_for_order_ahead(conn, region, provider_id, order_id)
        if region == self.region:
            remote_holds.remote_hold_for_order_ahead(conn, provider_id, order_id)
        vouchers.authorization_by_code_ahead(conn, code)
        if region != self.region:
            peers.peer_policy_ahead(conn, region)
        now = self._clock.now_ms()
        if year_of(now) in self._policies.years():
            self._window_ahead_txn(conn, region, year_of(now), now, capture)

    def _window_ahead_txn(
        self, conn: sqlite3.Connection, region: str, year: int, now: int, capture: bool
    ) -> None:
        first = window_of(self._policies.for_year(year), now)
        if region != self.region:
            peers.exposure_ahead(conn, region, first)
        if capture:  # the window open_window asks about first
            settlement.is_closed_ahead(conn, first)

    def place_txn(
        self,
        conn: sqlite3.Connection,
        redeemer: Redeemer,
        order: Order,
        now: int,
        actor: str,
        capture: bool = False,
    ) -> HoldResult:
        """Place a hold for an order, or with ``capture`` redeem it at once: the hold is born
        captured and the subsidy goes straight from the voucher to whoever is owed (one
        transfer, no hold balance in between). A repeated identical request returns the
        original hold."""
        provider = redeemer.provider
        code_hash = sha256_hex(order.code)
        self.place_ahead_txn(conn, redeemer.region, provider.id, order.order_id, code_hash, capture)
        existing = vouchers.hold_for_order(conn, redeemer.region, provider.id, order.order_id)
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
        if redeemer.region == self.region and remote_holds.remote_hold_for_order(
            conn, provider.id, order.order_id
        ):
            raise errors.OrderAlreadySubsidised(
                f"order {order.order_id} already has a subsidy from another city"
            )
        auth = vouchers.authorization_by_code(conn, code_hash)
        rules.check_authorization(auth, redeemer.region, provider.id, now)
        voucher = vouchers.voucher_by_code(conn, code_hash)
        if voucher.fiscal_year in self._policies.years():  # (else refused below, in order)
            self._window_ahead_txn(conn, redeemer.region, voucher.fiscal_year, now, capture)
        rules.check_voucher_spendable(voucher, now)
        holder = vouchers.holder_by_code(conn, code_hash)
        rules.check_provider_may_redeem(provider, holder.uscc)
        policy = self._policies.for_year(voucher.fiscal_year)
        rules.check_order_class(policy, voucher, order.compute_class)
        amount = rules.hold_amount(order.order_amount_fen, voucher, auth)
        if redeemer.region != self.region:
            outbound, cap = peers.peer_policy(conn, redeemer.region)
            if not outbound:
                raise errors.OutboundNotAllowed(
                    f"this city's vouchers may not be spent in {redeemer.region}"
                )
            owed = peers.exposure(conn, redeemer.region, window_of(policy, now))
            if owed + amount > cap:
                raise errors.ExposureCapExceeded(
                    f"exposure to {redeemer.region} would be {owed + amount} fen, over its cap of {cap}"
                )
        window = (
            open_window(policy, now, lambda w: settlement.is_closed(conn, w)) if capture else None
        )
        hold = Hold(
            id=new_id(LOCAL_HOLD),
            voucher_id=voucher.id,
            acquirer_region=redeemer.region,
            provider_id=provider.id,
            authorization_id=auth.id,
            order_id=order.order_id,
            order_amount_fen=order.order_amount_fen,
            compute_class=order.compute_class,
            amount_fen=amount,
            captured_fen=amount if capture else 0,
            state="captured" if capture else "held",
            created_at=now,
            expires_at=rules.hold_expiry(policy, voucher, now),
            closed_at=now if capture else None,
            settlement_window=window,
        )
        vouchers.insert_hold(conn, hold)
        vouchers.use_authorization(conn, auth.id, hold.id)
        ledger.event(conn, now, "authorization", auth.id, "used", actor, amount, hold_id=hold.id)
        if window is not None:
            vouchers.move_voucher(conn, voucher.id, available_fen=-amount, captured_fen=amount)
            peers.add_exposure(conn, redeemer.region, window, amount)
            settlement.window_active(conn, window)
            source, dest = ledger.voucher_account(voucher.id), _settle_account(hold, self.region)
            ledger.transfer(conn, now, "capture", hold.id, source, dest, amount)
        else:
            vouchers.move_voucher(conn, voucher.id, available_fen=-amount, held_fen=amount)
            peers.add_exposure(conn, redeemer.region, "", amount)
            source, dest = ledger.voucher_account(voucher.id), ledger.hold_account(hold.id)
            ledger.transfer(conn, now, "hold", hold.id, source, dest, amount)
        ledger.event(
            conn,
            now,
            "hold",
            hold.id,
            hold.state,
            actor,
            amount,
            order_id=order.order_id,
            voucher_id=voucher.id,
        )
        return HoldResult(hold, replayed=False, voucher=voucher, holder_uscc=holder.uscc)

    def place_and_capture_txn(
        self, conn: sqlite3.Connection, redeemer: Redeemer, order: Order, now: int, actor: str
    ) -> HoldResult:
        placed = self.place_txn(conn, redeemer, order, now, actor, capture=True)
        hold = placed.hold
        if placed.replayed and (hold.state != "captured" or hold.captured_fen != hold.amount_fen):
            raise errors.OrderAlreadySubsidised(
                f"order {order.order_id} has a hold {hold.id} that is {hold.state}"
            )
        return placed

    def capture_txn(
        self,
        conn: sqlite3.Connection,
        redeemer: Redeemer,
        hold_id: str,
        amount_fen: int,
        now: int,
        actor: str,
    ) -> HoldResult:
        hold = vouchers.get_hold(conn, hold_id)
        if hold.provider_id != redeemer.provider.id or hold.acquirer_region != redeemer.region:
            raise errors.Forbidden("a provider captures only its own holds")
        if hold.state == "captured" and hold.captured_fen == amount_fen:
            return HoldResult(hold, replayed=True)
        rules.check_capture(hold, amount_fen, now)
        voucher = vouchers.get_voucher(conn, hold.voucher_id)  # read once: release and receipt
        released = self.release_txn(conn, hold, "captured", amount_fen, now, actor, voucher)
        return HoldResult(released, replayed=False, voucher=voucher)

    def void_txn(
        self, conn: sqlite3.Connection, redeemer: Redeemer, hold_id: str, now: int, actor: str
    ) -> HoldResult:
        hold = vouchers.get_hold(conn, hold_id)
        if hold.provider_id != redeemer.provider.id or hold.acquirer_region != redeemer.region:
            raise errors.Forbidden("a provider voids only its own holds")
        if hold.state == "voided":
            return HoldResult(hold, replayed=True)
        rules.check_hold_open(hold, now)
        return HoldResult(self.release_txn(conn, hold, "voided", 0, now, actor), replayed=False)

    def observe(self, result: HoldResult, outcome: str) -> None:
        hold = result.hold
        if not result.replayed:
            amount = hold.captured_fen if outcome == "captured" else hold.amount_fen
            acquirer = hold.acquirer_region if isinstance(hold, Hold) else None
            self._observe(outcome, hold.compute_class, amount, acquirer)

    # A local provider's requests (REST) -------------------------------------------------------

    def _local_txn(self, conn: sqlite3.Connection, provider_id: str) -> Redeemer:
        return Redeemer(self.region, registry.get_provider(conn, provider_id))

    def _remote_for(self, code: str) -> tuple[RemoteSpending, str] | None:
        parsed = rules.SpendCode.parse(code)
        if parsed is None or parsed.region == self.region:
            return None
        region = parsed.region
        if self.remote is None:
            raise errors.InboundNotAllowed("this node is not part of a federation")
        return self.remote, region

    async def hold(self, who: Principal, order: Order) -> HoldResult:
        provider_id = require_role(who, "provider")
        remote = self._remote_for(order.code)
        if remote is not None:
            return await remote[0].hold(provider_id, order, remote[1], redeem=False)
        now = self._clock.now_ms()
        result = await self._db.run(
            "hold_place",
            lambda c: self.place_txn(c, self._local_txn(c, provider_id), order, now, who.actor),
        )
        self.observe(result, "held")
        return result

    async def redeem(self, who: Principal, order: Order) -> HoldResult:
        """Hold and capture the whole subsidy at once, for orders whose amount is known."""
        provider_id = require_role(who, "provider")
        remote = self._remote_for(order.code)
        if remote is not None:
            return await remote[0].hold(provider_id, order, remote[1], redeem=True)
        now = self._clock.now_ms()
        result = await self._db.run(
            "redeem",
            lambda c: self.place_and_capture_txn(
                c, self._local_txn(c, provider_id), order, now, who.actor
            ),
        )
        self.observe(result, "captured")
        return result

    async def capture(self, who: Principal, hold_id: str, amount_fen: int) -> HoldResult:
        provider_id = require_role(who, "provider")
        if HoldRef.parse(hold_id).remote and self.remote is not None:
            return await self.remote.capture(provider_id, hold_id, amount_fen)
        now = self._clock.now_ms()
        result = await self._db.run(
            "hold_capture",
            lambda c: self.capture_txn(
                c, self._local_txn(c, provider_id), hold_id, amount_fen, now, who.actor
            ),
        )
        self.observe(result, "captured")
        return result

    async def void(self, who: Principal, hold_id: str) -> HoldResult:
        provider_id = require_role(who, "provider")
        if HoldRef.parse(hold_id).remote and self.remote is not None:
            return await self.remote.void(provider_id, hold_id)
        now = self._clock.now_ms()
        result = await self._db.run(
            "hold_void",
            lambda c: self.void_txn(c, self._local_txn(c, provider_id), hold_id, now, who.actor),
        )
        self.observe(result, "voided")
        return result

    async def get_hold(self, who: Principal, hold_id: str) -> Hold | RemoteHold:
        def txn(conn: sqlite3.Connection) -> Hold | RemoteHold:
            if HoldRef.parse(hold_id).remote:
                remote = remote_holds.get_remote_hold(conn, hold_id)
                if may_see(who, "provider", remote.provider_id):
                    return remote
                raise errors.Forbidden("this hold belongs to another provider")
            hold = vouchers.get_hold(conn, hold_id)
            if hold.acquirer_region == self.region and may_see(who, "provider", hold.provider_id):
                return hold
            voucher = vouchers.get_voucher(conn, hold.voucher_id)
            if may_see(who, "holder", voucher.holder_id):
                return hold
            raise errors.Forbidden("this hold belongs to another provider and holder")

        return await self._db.read("hold_get", txn)

    async def holds(self, who: Principal, limit: int, after: str) -> list[Hold | RemoteHold]:
        """Holds: a provider's own, a holder's (on its vouchers, here and in other cities),
        or every one for an operator."""
        provider: str | None = None
        holder: str | None = None
        if who.role == "provider":
            provider = who.subject_id
        elif who.role == "holder":
            holder = who.subject_id
        else:
            require_operator(who)

        def txn(conn: sqlite3.Connection) -> list[Hold | RemoteHold]:
            local: list[Hold | RemoteHold] = list(
                vouchers.list_holds(conn, provider, None, limit, after, holder)
            )
            if holder is not None:  # a holder's vouchers are this city's: no remote holds
                return local
            remote = remote_holds.list_remote_holds(conn, provider, limit, after)
            return sorted([*local, *remote], key=lambda h: h.id)[:limit]

        return await self._db.read("hold_list", txn)

    async def awaiting_issuer(self, who: Principal, limit: int) -> list[RemoteHold]:
        """Redemptions of other cities' vouchers still waiting for the issuing city's answer
        (a hold, or a capture or void asked for): a provider's own, or all for an operator.
        The outbox keeps sending them; each settles by itself when the answer comes."""
        provider: str | None = None
        if who.role == "provider":
            provider = who.subject_id
        else:
            require_operator(who)
        return await self._db.read(
            "awaiting_issuer", lambda c: remote_holds.unanswered_remote_holds(c, provider, limit)
        )

    # Operator and sweeper ---------------------------------------------------------------------

    async def revoke(self, who: Principal, voucher_id: str, reason: str) -> Voucher:
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> tuple[Voucher, int]:
            voucher = vouchers.get_voucher(conn, voucher_id)
            if voucher.state != "active":
                raise errors.VoucherNotActive(f"voucher {voucher_id} is already {voucher.state}")
            amount = self._reclaim_txn(conn, voucher, "revoked", now, who.actor, reason)
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
            flows: list[tuple[str, str, int, str | None]] = []
            holds = vouchers.expired_holds(conn, now, batch)
            for hold in holds:
                self.release_txn(conn, hold, "expired", 0, now, "system:sweeper")
                flows.append(("expired", hold.compute_class, hold.amount_fen, hold.acquirer_region))
            vouchers.expire_authorizations(conn, now)
            expired = vouchers.expired_vouchers(conn, now, batch)
            for voucher_id in expired:
                voucher = vouchers.get_voucher(conn, voucher_id)
                amount = self._reclaim_txn(
                    conn, voucher, "expired", now, "system:sweeper", "validity ended"
                )
                flows.append(("reclaimed", voucher.compute_class, amount, None))
            return {"holds": len(holds), "vouchers": len(expired), "flows": flows}

        result = await self._db.run("sweep", txn)
        for outcome, compute_class, amount, acquirer in result["flows"]:
            self._observe(outcome, compute_class, amount, acquirer)
        return {"holds_expired": result["holds"], "vouchers_expired": result["vouchers"]}
