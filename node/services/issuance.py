"""Automatic issuance: demand in, decision with reasons out, voucher signed in the same commit.

The whole decision runs inside one write transaction, so the budget and the holder's cap it
reads are the ones it commits against: under any concurrency, issuance can never exceed
either (R1, R3). Declines are recorded exactly like grants (R9).
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from node import errors
from node.clock import Clock, add_months, iso
from node.domain.fields import check_period
from node.domain.issuance import Decision, Demand, Standing, decide
from node.domain.model import Voucher
from node.keys import VOUCHER_TAG, NodeKey, canonical_json
from node.services.common import Principal, new_id, require_role
from node.services.policies import PolicyBook
from node.store import ledger, registry, vouchers
from node.store.engine import Books

DecisionObserver = Callable[[str, Decision, str, int], None]  # category, decision, class, estimate


def voucher_record(v: Voucher, holder_uscc: str, issuer_region: str, key_id: str) -> bytes:
    """The signed form of a voucher: canonical JSON any federation member can verify offline."""
    return canonical_json(
        {
            "type": "suanli.voucher.v1",
            "id": v.id,
            "issuer_region": issuer_region,
            "key_id": key_id,
            "holder_id": v.holder_id,
            "holder_uscc": holder_uscc,
            "fiscal_year": v.fiscal_year,
            "compute_class": v.compute_class,
            "ratio_bp": v.ratio_bp,
            "face_fen": v.face_fen,
            "issued_at": iso(v.issued_at),
            "expires_at": iso(v.expires_at),
            "decision_id": v.decision_id,
        }
    )


def signed_voucher_json(record: bytes, signature: bytes, key_id: str) -> dict[str, str]:
    return {
        "record": base64.b64encode(record).decode(),
        "signature": base64.b64encode(signature).decode(),
        "key_id": key_id,
    }


class Issuance:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        policies: PolicyBook,
        key: NodeKey,
        member_regions: Callable[[], frozenset[str]] = frozenset,
        observer: DecisionObserver | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policies = policies
        self._key = key
        self._member_regions = member_regions
        self._observer = observer

    async def submit(self, who: Principal, demand: Demand) -> dict[str, Any]:
        """Decide a holder's demand at once; returns the decision (and voucher when issued)."""
        holder_id = require_role(who, "holder")
        if demand.holder_id != holder_id:
            raise errors.Forbidden("a holder submits demands only for itself")
        policy = self._policies.current()
        if (
            demand.compute_class not in policy.compute_classes
            and demand.compute_class not in policy.excluded_services
        ):
            raise errors.UnknownComputeClass(
                f"compute_class: {demand.compute_class!r} is not one of "
                f"{', '.join(sorted(policy.compute_classes))}"
            )
        check_period(demand.period_start, demand.period_end)
        now = self._clock.now_ms()
        members = self._member_regions()
        region = self._policies.region
        key = self._key

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            holder = registry.get_holder(conn, demand.holder_id)
            provider = (
                registry.get_provider(conn, demand.provider_id) if demand.provider_id else None
            )
            cap_used, contracts = vouchers.holder_standing(conn, holder.id, policy.fiscal_year)
            standing = Standing(
                cap_used_fen=cap_used,
                yearly_contracts_fen=contracts,
                budget_remaining_fen=ledger.balance(conn, ledger.pool(policy.fiscal_year)),
                member_regions=members,
                listed_dishonest=registry.is_dishonest(conn, holder.uscc),
            )
            decision = decide(policy, holder, provider, demand, standing)
            decision_id = new_id("d")
            voucher: Voucher | None = None
            signed: dict[str, str] | None = None
            if decision.issued:
                voucher = Voucher(
                    id=new_id("v"),
                    holder_id=holder.id,
                    fiscal_year=policy.fiscal_year,
                    compute_class=demand.compute_class,
                    ratio_bp=decision.ratio_bp,
                    face_fen=decision.amount_fen,
                    available_fen=decision.amount_fen,
                    held_fen=0,
                    captured_fen=0,
                    reclaimed_fen=0,
                    state="active",
                    issued_at=now,
                    expires_at=add_months(now, policy.voucher_validity_months),
                    decision_id=decision_id,
                )
            row = {
                "id": decision_id,
                "holder_id": holder.id,
                "fiscal_year": policy.fiscal_year,
                "compute_class": demand.compute_class,
                "estimated_amount_fen": demand.estimated_amount_fen,
                "provider_id": demand.provider_id,
                "period_start": demand.period_start,
                "period_end": demand.period_end,
                "outcome": decision.outcome,
                "ratio_bp": decision.ratio_bp,
                "amount_fen": decision.amount_fen,
                "reasons": [asdict(r) for r in decision.reasons],
                "voucher_id": voucher.id if voucher else None,
                "policy_sha256": policy.source_sha256,
                "created_at": now,
            }
            vouchers.insert_decision(conn, row)
            if voucher is not None:
                record = voucher_record(voucher, holder.uscc, region, key.key_id)
                signature = key.sign(VOUCHER_TAG, record)
                vouchers.insert_voucher(conn, voucher, record, signature, key.key_id)
                vouchers.add_holder_usage(
                    conn,
                    holder.id,
                    policy.fiscal_year,
                    voucher.face_fen,
                    demand.estimated_amount_fen,
                )
                ledger.transfer(
                    conn,
                    now,
                    "issue",
                    voucher.id,
                    ledger.pool(policy.fiscal_year),
                    ledger.voucher_account(voucher.id),
                    voucher.face_fen,
                )
                ledger.event(
                    conn,
                    now,
                    "voucher",
                    voucher.id,
                    "issued",
                    who.actor,
                    voucher.face_fen,
                    decision_id=decision_id,
                )
                signed = signed_voucher_json(record, signature, key.key_id)
            ledger.event(
                conn, now, "decision", decision_id, decision.outcome, who.actor, decision.amount_fen
            )
            return {
                "decision": row,
                "voucher": voucher,
                "signed": signed,
                "category": holder.category,
                "value": decision,
            }

        result = await self._db.run("issue_decide", txn)
        if self._observer is not None:
            self._observer(
                result["category"],
                result["value"],
                demand.compute_class,
                demand.estimated_amount_fen,
            )
        return result
