"""Registration of holders and providers, provider approval, and bearer tokens.

A USCC that fails the GB 32100-2015 check is refused. A known legacy code that fails the check
can be registered only with an explicit operator override carrying a reason, which is stored
on the holder and in the audit trail: never a silent pass (R4).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from node import errors
from node.clock import Clock, people_times
from node.domain import uscc as uscc_rules
from node.domain.fields import require_region
from node.domain.model import PROVIDER_KINDS, PROVIDER_STATES, Holder, Provider
from node.domain.policy import Policy
from node.services.common import (
    ROLES,
    Principal,
    may_see,
    new_id,
    new_secret,
    require_operator,
    sha256_hex,
)
from node.services.policies import PolicyBook
from node.store import ledger, registry
from node.store.engine import Books

TOKEN_PREFIX = {"operator": "slo", "holder": "slh", "provider": "slp"}


def _check_uscc(code: str, override_reason: str | None, field: str = "uscc") -> None:
    result = uscc_rules.check(code)
    if result.ok:
        return
    if not result.form_ok:  # no override makes a malformed code acceptable
        raise errors.InvalidUSCC(f"{field}: {code[:40]!r} {result.reason}")
    if override_reason:
        return
    raise errors.InvalidUSCC(
        f"{field}: {code!r} {result.reason}; a known legacy code needs an operator override "
        "with a reason (uscc_override_reason)"
    )


def _check_related(codes: tuple[str, ...]) -> None:
    for i, code in enumerate(codes):
        result = uscc_rules.check(code)
        if not result.ok:
            raise errors.InvalidUSCC(f"related_uscc[{i}]: {code!r} {result.reason}")


def _check_category(policy: Policy, category: str, code: str) -> None:
    cat = policy.categories.get(category)
    if cat is None:
        raise errors.UnknownCategory(
            f"category: {category!r} is not one of {', '.join(sorted(policy.categories))}"
        )
    if not any(code.startswith(p) for p in cat.uscc_prefixes):
        raise errors.CategoryMismatch(
            f"category: {category} needs a USCC starting with {' or '.join(cat.uscc_prefixes)}, "
            f"got {code[:2]}…"
        )


class Registry:
    def __init__(self, db: Books, clock: Clock, policies: PolicyBook) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies

    # Holders --------------------------------------------------------------------------------

    async def register_holder(
        self,
        who: Principal,
        uscc: str,
        name: str,
        category: str,
        region: str | None,
        override_reason: str | None,
    ) -> tuple[Holder, str]:
        """Register a holder and give it its first token (returned once, stored hashed)."""
        require_operator(who)
        _check_uscc(uscc, override_reason)
        _check_category(self._policies.current(), category, uscc)
        region = require_region("region", region or uscc_rules.region_of(uscc))
        now = self._clock.now_ms()
        legacy = not uscc_rules.check(uscc).ok
        holder = Holder(
            id=new_id("h"),
            uscc=uscc,
            name=name,
            category=category,
            region=region,
            uscc_override=override_reason if legacy else None,
            created_at=now,
        )
        token = new_secret(TOKEN_PREFIX["holder"])

        def txn(conn: sqlite3.Connection) -> None:
            registry.insert_holder(conn, holder)
            registry.insert_token(
                conn, new_id("t"), "holder", holder.id, sha256_hex(token), name, now
            )
            ledger.audit(
                conn,
                now,
                who.actor,
                "holder.register",
                holder.id,
                uscc=uscc,
                category=category,
                region=region,
            )
            if legacy:
                ledger.audit(
                    conn,
                    now,
                    who.actor,
                    "holder.uscc_override",
                    holder.id,
                    uscc=uscc,
                    reason=override_reason,
                )

        await self._db.run("holder_register", txn)
        return holder, token

    async def holder(self, who: Principal, holder_id: str) -> Holder:
        if not may_see(who, "holder", holder_id):
            raise errors.Forbidden("a holder sees only itself")
        return await self._db.read("holder_get", lambda c: registry.get_holder(c, holder_id))

    async def holders(self, who: Principal, limit: int, after: str) -> list[Holder]:
        require_operator(who)
        return await self._db.read("holder_list", lambda c: registry.list_holders(c, limit, after))

    # Providers ------------------------------------------------------------------------------

    async def register_provider(
        self,
        who: Principal,
        uscc: str,
        name: str,
        kind: str,
        region: str | None,
        related_uscc: tuple[str, ...],
        approved: bool,
    ) -> tuple[Provider, str]:
        require_operator(who)
        _check_uscc(uscc, None)
        if kind not in PROVIDER_KINDS:
            raise errors.InvalidRequest(
                f"kind: must be one of {', '.join(PROVIDER_KINDS)}, got {kind!r}"
            )
        _check_related(related_uscc)
        region = require_region("region", region or self._policies.region)
        now = self._clock.now_ms()
        provider = Provider(
            id=new_id("p"),
            uscc=uscc,
            name=name,
            kind=kind,
            region=region,
            state="approved" if approved else "pending",
            related_uscc=tuple(related_uscc),
            created_at=now,
        )
        token = new_secret(TOKEN_PREFIX["provider"])

        def txn(conn: sqlite3.Connection) -> None:
            registry.insert_provider(conn, provider)
            registry.insert_token(
                conn, new_id("t"), "provider", provider.id, sha256_hex(token), name, now
            )
            ledger.audit(
                conn,
                now,
                who.actor,
                "provider.register",
                provider.id,
                uscc=uscc,
                kind=kind,
                state=provider.state,
                related_uscc=list(related_uscc),
            )

        await self._db.run("provider_register", txn)
        return provider, token

    async def set_provider_state(
        self, who: Principal, provider_id: str, state: str, reason: str
    ) -> Provider:
        require_operator(who)
        if state not in PROVIDER_STATES:
            raise errors.InvalidRequest(
                f"state: must be one of {', '.join(PROVIDER_STATES)}, got {state!r}"
            )
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> Provider:
            before = registry.get_provider(conn, provider_id)
            registry.set_provider_state(conn, provider_id, state)
            ledger.audit(
                conn,
                now,
                who.actor,
                "provider.state",
                provider_id,
                before=before.state,
                after=state,
                reason=reason,
            )
            return registry.get_provider(conn, provider_id)

        return await self._db.run("provider_state", txn)

    async def set_provider_related(
        self, who: Principal, provider_id: str, related: tuple[str, ...]
    ) -> Provider:
        require_operator(who)
        _check_related(related)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> Provider:
            registry.get_provider(conn, provider_id)
            registry.set_provider_related(conn, provider_id, related)
            ledger.audit(
                conn, now, who.actor, "provider.related", provider_id, related_uscc=list(related)
            )
            return registry.get_provider(conn, provider_id)

        return await self._db.run("provider_related", txn)

    async def provider(self, who: Principal, provider_id: str) -> Provider:
        if not may_see(who, "provider", provider_id):
            raise errors.Forbidden("a provider sees only itself")
        return await self._db.read("provider_get", lambda c: registry.get_provider(c, provider_id))

    async def providers(self, who: Principal, limit: int, after: str) -> list[Provider]:
        require_operator(who)
        return await self._db.read(
            "provider_list", lambda c: registry.list_providers(c, limit, after)
        )

    # The dishonesty list (失信名单) --------------------------------------------------------

    async def dishonesty(self, who: Principal, limit: int, after: str) -> list[dict[str, Any]]:
        """The operators' list, by code; the policy's own ``[dishonesty]`` list is in the
        policy (``GET /v1/policy``). A demand from a holder on either is declined (R4)."""
        require_operator(who)
        rows = await self._db.read("dishonesty", lambda c: registry.dishonesty(c, limit, after))
        return [people_times(r) for r in rows]

    async def list_dishonest(self, who: Principal, uscc: str, reason: str) -> bool:
        """Put a holder's code on the list, with the reason (the court's or the credit
        authority's reference, say). False when it is listed already. Audited."""
        require_operator(who)
        _check_listed_code(uscc)
        if not reason.strip():
            raise errors.InvalidRequest("reason: say why (the list's source and reference)")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> bool:
            added = registry.add_dishonest(conn, uscc, reason, who.actor, now)
            if added:
                ledger.audit(conn, now, who.actor, "dishonesty.add", uscc, reason=reason)
            return added

        return await self._db.run("dishonesty_add", txn)

    async def unlist_dishonest(self, who: Principal, uscc: str, reason: str) -> None:
        """Take a code off the list (its entry ended or was a mistake), with the reason."""
        require_operator(who)
        _check_listed_code(uscc)
        if not reason.strip():
            raise errors.InvalidRequest("reason: say why the entry ends")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            if not registry.remove_dishonest(conn, uscc):
                raise errors.NotFound(f"{uscc} is not on the dishonesty list")
            ledger.audit(conn, now, who.actor, "dishonesty.remove", uscc, reason=reason)

        await self._db.run("dishonesty_remove", txn)


def _check_listed_code(code: str) -> None:
    """A code for the dishonesty list: a well-formed USCC whose check character holds (a
    mistyped code would match nobody and protect nothing)."""
    result = uscc_rules.check(code)
    if not result.ok:
        raise errors.InvalidUSCC(f"uscc: {code[:40]!r} {result.reason}")


CACHE_SECONDS = 1.0
CACHE_SIZE = 10_000


class Tokens:
    """Bearer tokens: shown once, stored as SHA-256, revocable."""

    def __init__(self, db: Books, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}

    def _create_txn(
        self, actor: str, role: str, subject_id: str | None, label: str, token: str
    ) -> Callable[[sqlite3.Connection], str]:
        now = self._clock.now_ms()
        token_id = new_id("t")

        def txn(conn: sqlite3.Connection) -> str:
            if role == "holder" and subject_id is not None:
                registry.get_holder(conn, subject_id)
            if role == "provider" and subject_id is not None:
                registry.get_provider(conn, subject_id)
            registry.insert_token(conn, token_id, role, subject_id, sha256_hex(token), label, now)
            ledger.audit(
                conn,
                now,
                actor,
                "token.create",
                token_id,
                role=role,
                subject_id=subject_id,
                label=label,
            )
            return token_id

        return txn

    @staticmethod
    def _validate(role: str, subject_id: str | None) -> str:
        if role not in ROLES:
            raise errors.InvalidRequest(f"role: must be one of {', '.join(ROLES)}, got {role!r}")
        if (role == "operator") != (subject_id is None):
            raise errors.InvalidRequest(
                "subject_id: required for holder and provider tokens, not allowed for operator"
            )
        return new_secret(TOKEN_PREFIX[role])

    def create_sync(
        self, who: Principal, role: str, subject_id: str | None, label: str
    ) -> tuple[str, str]:
        require_operator(who)
        token = self._validate(role, subject_id)
        token_id: str = self._db.run_sync(
            "token_create", self._create_txn(who.actor, role, subject_id, label, token)
        )
        return token_id, token

    async def create(
        self, who: Principal, role: str, subject_id: str | None, label: str
    ) -> tuple[str, str]:
        require_operator(who)
        token = self._validate(role, subject_id)
        token_id: str = await self._db.run(
            "token_create", self._create_txn(who.actor, role, subject_id, label, token)
        )
        return token_id, token

    async def authenticate(self, token: str) -> Principal:
        """The token's principal. Known tokens are remembered for ``CACHE_SECONDS``: a token
        revoked through this node stops at once, one revoked from the CLI within that delay."""
        digest = sha256_hex(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = await self._db.read("token_find", lambda c: registry.find_token(c, digest))
        if row is None:
            raise errors.Unauthenticated("unknown or revoked token")
        principal = Principal(
            role=row["role"], subject_id=row["subject_id"], token_id=row["id"], name=row["label"]
        )
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[digest] = (principal, now + CACHE_SECONDS)
        return principal

    def revoke_sync(self, who: Principal, token_id: str) -> None:
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            registry.revoke_token(conn, token_id, now)
            ledger.audit(conn, now, who.actor, "token.revoke", token_id)

        self._db.run_sync("token_revoke", txn)
        self._cache.clear()

    def list_sync(self, who: Principal) -> list[dict[str, Any]]:
        require_operator(who)
        rows = self._db.run_sync("token_list", registry.list_tokens)
        return [people_times(dict(r)) for r in rows]
