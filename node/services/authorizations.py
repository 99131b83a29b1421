"""Spend authorizations (R6): a holder lets one provider, of this city or of a peer city the
policy lets its vouchers travel to, spend up to an amount of one of its vouchers until an
expiry, and hands the provider a one-time code. The code names the issuing region
(``sac_<region>_<secret>``); only its SHA-256 is kept. A hold is placed with it
(``node.services.spending``), once."""

from __future__ import annotations

import sqlite3

from node import errors
from node.clock import Clock
from node.domain import spending as rules
from node.domain.model import Authorization
from node.services.common import (
    Principal,
    may_see,
    new_id,
    new_secret,
    require_role,
    sha256_hex,
)
from node.store import ledger, peers, registry, vouchers
from node.store.engine import Books


class Authorizations:
    def __init__(self, db: Books, clock: Clock, region: str) -> None:
        self._db = db
        self._clock = clock
        self.region = region

    async def authorize(
        self,
        who: Principal,
        voucher_id: str,
        provider_id: str,
        max_fen: int,
        expires_at: int,
        provider_region: str | None = None,
    ) -> tuple[Authorization, str]:
        """A holder lets one provider spend up to ``max_fen`` of a voucher until ``expires_at``.

        The provider may be this city's or, where the policy lets vouchers travel, a peer's
        (``provider_region``). Returns the authorization and its one-time code, shown only here.
        """
        holder_id = require_role(who, "holder")
        region = provider_region or self.region
        now = self._clock.now_ms()
        if expires_at <= now:
            raise errors.InvalidRequest("expires_at: must be in the future")
        code = f"sac_{self.region}_{new_secret('x')[2:]}"

        def txn(conn: sqlite3.Connection) -> Authorization:
            voucher = vouchers.get_voucher(conn, voucher_id)
            if voucher.holder_id != holder_id:
                raise errors.Forbidden(
                    "a voucher can be spent only by its own holder's authorization (R6)"
                )
            rules.check_voucher_spendable(voucher, now)
            if expires_at > voucher.expires_at:
                raise errors.InvalidRequest("expires_at: must not be after the voucher expires")
            if region == self.region:
                holder = registry.get_holder(conn, holder_id)
                rules.check_provider_may_redeem(
                    registry.get_provider(conn, provider_id), holder.uscc
                )
            elif not peers.get_peer(conn, region).outbound:
                raise errors.OutboundNotAllowed(
                    f"this city's vouchers may not be spent in {region}"
                )
            auth = Authorization(
                id=new_id("a"),
                voucher_id=voucher.id,
                holder_id=holder_id,
                provider_region=region,
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
                provider_region=region,
            )
            return auth

        return await self._db.run("authorization_create", txn), code

    async def of_voucher(self, who: Principal, voucher_id: str) -> list[Authorization]:
        """Every authorization of a voucher, for its holder or an operator."""

        def txn(conn: sqlite3.Connection) -> list[Authorization]:
            voucher = vouchers.get_voucher(conn, voucher_id)
            if not may_see(who, "holder", voucher.holder_id):
                raise errors.Forbidden("a holder sees only its own vouchers")
            return vouchers.list_authorizations(conn, voucher_id)

        return await self._db.read("authorization_list", txn)

    async def open(self, who: Principal) -> list[Authorization]:
        """The holder's open spend authorizations (not used, cancelled or expired)."""
        holder_id = require_role(who, "holder")
        now = self._clock.now_ms()
        return await self._db.read(
            "authorizations_open", lambda c: vouchers.open_authorizations(c, holder_id, now)
        )

    async def cancel(self, who: Principal, authorization_id: str) -> None:
        """A holder withdraws an open spend authorization: its code no longer places a hold,
        here or through another city."""
        holder_id = require_role(who, "holder")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            if not vouchers.cancel_authorization(conn, authorization_id, holder_id):
                raise errors.NotFound(
                    f"no open authorization {authorization_id} of this holder (used, expired "
                    "or cancelled ones stay as they are)"
                )
            ledger.event(conn, now, "authorization", authorization_id, "cancelled", who.actor)

        await self._db.run("authorization_cancel", txn)
