"""Automatic issuance (免申即享): the decision for one compute demand, by rule, at once.

Pure: everything the rule needs is passed in. The amount is the smallest of the demand ×
ratio (truncated), the holder's remaining annual cap, and the remaining budget (R9). Every
decision, yes or no, comes with its reasons so the holder can see why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.domain.model import Holder, Provider
from node.domain.money import apply_ratio, percent, yuan
from node.domain.policy import Policy


@dataclass(frozen=True)
class Demand:
    holder_id: str
    compute_class: str
    estimated_amount_fen: int
    provider_id: str | None
    period_start: str
    period_end: str


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class Decision:
    outcome: str  # "issued" | "declined"
    amount_fen: int
    ratio_bp: int
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def issued(self) -> bool:
        return self.outcome == "issued"


@dataclass(frozen=True)
class Standing:
    """What the books say about the holder and the budget when the demand arrives."""

    cap_used_fen: int  # issued − reclaimed for this holder this fiscal year
    yearly_contracts_fen: int  # estimates of this year's earlier issued demands
    budget_remaining_fen: int
    member_regions: frozenset[str]  # regions a hub accepts holders from
    listed_dishonest: bool = False  # on the operators' dishonesty list (the policy has its own)


def decide(
    policy: Policy,
    holder: Holder,
    provider: Provider | None,
    demand: Demand,
    standing: Standing,
) -> Decision:
    """Decide a demand. The compute class must be known to the policy or excluded (R5)."""
    declines: list[Reason] = []
    notes: list[Reason] = []

    if demand.compute_class in policy.excluded_services:
        declines.append(
            Reason("out_of_scope", f"{demand.compute_class} is not intelligent compute (R5)")
        )
    if policy.eligibility == "local" and holder.region != policy.region:
        declines.append(
            Reason(
                "not_eligible_region",
                f"holder is registered in {holder.region}; this programme covers {policy.region} only",
            )
        )
    elif (
        policy.eligibility == "federation"
        and holder.region != policy.region
        and holder.region not in standing.member_regions
    ):
        declines.append(
            Reason("not_eligible_region", f"region {holder.region} is not a federation member")
        )
    if holder.uscc in policy.dishonest_uscc or standing.listed_dishonest:
        declines.append(Reason("dishonest", "holder is on the dishonesty list (失信)"))
    category = policy.categories.get(holder.category)
    if category is None:
        declines.append(
            Reason(
                "category_not_covered", f"category {holder.category} is not in this year's policy"
            )
        )
    if provider is not None:
        if not provider.approved:
            declines.append(
                Reason("provider_not_approved", f"provider {provider.id} is {provider.state}")
            )
        if provider.related_to(holder.uscc):
            declines.append(Reason("related_party", "holder and provider are related parties (R5)"))

    if declines or category is None:
        return Decision("declined", 0, 0, tuple(declines))

    contracts_after = standing.yearly_contracts_fen + demand.estimated_amount_fen
    small = (
        policy.small_contract is not None
        and holder.category in policy.small_contract.categories
        and contracts_after <= policy.small_contract.max_yearly_contracts_fen
    )
    ratio = policy.ratio_for(demand.compute_class, holder.category, small)
    notes.append(Reason("ratio", f"{demand.compute_class} for {holder.category}: {percent(ratio)}"))
    if small:
        notes.append(
            Reason(
                "small_contract",
                f"yearly contracts {yuan(contracts_after)} within the small-contract rule",
            )
        )
    by_ratio = apply_ratio(demand.estimated_amount_fen, ratio)
    cap_left = max(0, category.annual_cap_fen - standing.cap_used_fen)
    budget_left = max(0, standing.budget_remaining_fen)
    amount = min(by_ratio, cap_left, budget_left)
    notes.append(
        Reason("by_ratio", f"{yuan(demand.estimated_amount_fen)} × {ratio} bp = {yuan(by_ratio)}")
    )

    if cap_left == 0:
        return Decision(
            "declined", 0, ratio, (*notes, Reason("cap_exhausted", "annual cap reached"))
        )
    if budget_left == 0:
        return Decision(
            "declined", 0, ratio, (*notes, Reason("budget_exhausted", "annual budget spent"))
        )
    if by_ratio == 0:
        return Decision(
            "declined", 0, ratio, (*notes, Reason("amount_zero", "subsidy truncates to zero"))
        )
    if amount < by_ratio:
        limit = "remaining annual cap" if amount == cap_left else "remaining budget"
        notes.append(Reason("limited", f"limited to the {limit}: {yuan(amount)}"))
    if amount < policy.minimum_voucher_fen:
        return Decision(
            "declined",
            0,
            ratio,
            (
                *notes,
                Reason(
                    "below_minimum",
                    f"{yuan(amount)} is below the minimum voucher {yuan(policy.minimum_voucher_fen)}",
                ),
            ),
        )
    return Decision("issued", amount, ratio, tuple(notes))
