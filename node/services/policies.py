"""The loaded policies, one per fiscal year, and the operator's way to change them.

Loading a policy for a new year funds that year's budget in the ledger (appropriation → pool).
Reloading changes the budget by the difference; a budget can never go below what is already
committed (issued and not reclaimed), so a policy edit can never make the books negative.
"""

from __future__ import annotations

import logging
import sqlite3
import tomllib
from collections.abc import Callable

from node import errors
from node.clock import Clock, year_of
from node.domain.policy import Policy, parse_policy
from node.services.common import Principal, require_operator
from node.store import ledger, registry
from node.store.engine import Books

logger = logging.getLogger(__name__)


class PolicyBook:
    def __init__(self, db: Books, clock: Clock, region: str) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._by_year: dict[int, Policy] = {}
        self._count = 0

    def reload_sync(self) -> None:
        """Read the latest version of every year's policy from the database."""
        rows = self._db.run_sync("policy_latest", registry.latest_policies)
        self._by_year = {int(r["fiscal_year"]): _stored(r["source"]) for r in rows}
        self._count = self._db.run_sync("policy_count", registry.policy_count)

    def years(self) -> list[int]:
        return sorted(self._by_year)

    def for_year(self, year: int) -> Policy:
        policy = self._by_year.get(year)
        if policy is None:
            raise errors.PolicyMissing(f"no policy is loaded for fiscal year {year}")
        return policy

    def current(self) -> Policy:
        return self.for_year(year_of(self._clock.now_ms()))

    def governing(self) -> Policy:
        """The policy whose settlement cycle applies now: this year's, or until it is loaded
        the latest earlier year's (on 1 January the windows, their listing and the metrics
        carry on under last year's cycle instead of failing)."""
        now_year = year_of(self._clock.now_ms())
        earlier = [y for y in self._by_year if y <= now_year]
        if not earlier:
            return self.current()
        return self._by_year[max(earlier)]

    def maybe_for_year(self, year: int) -> Policy | None:
        return self._by_year.get(year)

    def _prepare(self, text: str, actor: str) -> tuple[Policy, Callable[[sqlite3.Connection], int]]:
        policy = parse_policy(text)
        if policy.region != self.region:
            problem = f"policy.region: {policy.region} is not this node's region {self.region}"
            raise errors.PolicyInvalid(problem, problems=[problem])
        now = self._clock.now_ms()
        previous = self._by_year.get(policy.fiscal_year)

        def txn(conn: sqlite3.Connection) -> int:
            year = policy.fiscal_year
            old_budget = -ledger.balance(conn, ledger.appropriation(year))
            delta = policy.annual_budget_fen - old_budget
            if delta > 0:
                ledger.transfer(
                    conn,
                    now,
                    "fund",
                    f"policy:{year}",
                    ledger.appropriation(year),
                    ledger.pool(year),
                    delta,
                )
            elif delta < 0:
                remaining = ledger.balance(conn, ledger.pool(year))
                if -delta > remaining:
                    raise errors.BudgetBelowCommitted(
                        f"annual_budget_fen {policy.annual_budget_fen} is below the "
                        f"{old_budget - remaining} fen already committed in {year}"
                    )
                ledger.transfer(
                    conn,
                    now,
                    "defund",
                    f"policy:{year}",
                    ledger.pool(year),
                    ledger.appropriation(year),
                    -delta,
                )
            version = registry.insert_policy(conn, year, text, policy.source_sha256, now, actor)
            ledger.audit(
                conn,
                now,
                actor,
                "policy.load",
                f"policy:{year}",
                version=version,
                sha256=policy.source_sha256,
                budget_delta_fen=delta,
                previous_sha256=previous.source_sha256 if previous else None,
            )
            return version

        return policy, txn

    def preview(self, text: str, who: Principal) -> tuple[Policy, Policy | None]:
        """Check a policy without loading it: the parsed policy, and the one it would replace
        for its fiscal year (None for a new year). Raises what ``load`` would (but a budget
        below what is committed, which only the load's transaction can see)."""
        require_operator(who)
        policy, _ = self._prepare(text, who.actor)
        return policy, self._by_year.get(policy.fiscal_year)

    def _loaded(self, policy: Policy, version: int) -> None:
        self._by_year[policy.fiscal_year] = policy
        self._count += 1
        logger.info(
            "loaded policy %d v%d (%s)", policy.fiscal_year, version, policy.source_sha256[:12]
        )

    def load_sync(self, text: str, who: Principal) -> tuple[Policy, int]:
        """Validate and load a policy from synchronous code (the CLI)."""
        require_operator(who)
        policy, txn = self._prepare(text, who.actor)
        version = self._db.run_sync("policy_load", txn)
        self._loaded(policy, version)
        return policy, version

    async def load(self, text: str, who: Principal) -> tuple[Policy, int]:
        """Validate and load a policy (the REST path). Returns the policy and its version."""
        require_operator(who)
        policy, txn = self._prepare(text, who.actor)
        version = await self._db.run("policy_load", txn)
        self._loaded(policy, version)
        return policy, version

    async def refresh(self) -> bool:
        """Pick up policies loaded by another process (``suanli policy load``)."""
        count = await self._db.read("policy_count", registry.policy_count)
        if count == self._count:
            return False
        rows = await self._db.read("policy_latest", registry.latest_policies)
        self._by_year = {int(r["fiscal_year"]): _stored(r["source"]) for r in rows}
        self._count = count
        return True


def _stored(source: str) -> Policy:
    """A policy loaded earlier; one that predates ``[small_contract] categories`` is read with
    the enterprise categories (node/domain/policy.py), and the log says so."""
    policy = parse_policy(source, stored=True)
    if policy.small_contract is not None and "categories" not in tomllib.loads(source).get(
        "small_contract", {}
    ):
        logger.warning(
            "the %d policy names no small_contract.categories; the small-contract ratio applies "
            "to %s only: load a new version that names them",
            policy.fiscal_year,
            ", ".join(policy.small_contract.categories) or "no category",
        )
    return policy
