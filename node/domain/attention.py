"""What needs an operator's attention, as the overview lists it: the same conditions, on the
same figures from the books, as the Prometheus alert rules in ``ops/prometheus/alerts.yml``
(without their ``for:`` delays, since a page shows the moment), so the page and the alerts
never disagree. ``tests/test_ops.py`` checks that the thresholds here are those rules'."""

from __future__ import annotations

from dataclasses import dataclass, field

BUDGET_LOW_SHARE = 0.10  # SuanliBudgetNearlyExhausted
EXPOSURE_NEAR_SHARE = 0.8  # SuanliExposureNearCap
OUTBOX_GROWING = 100  # SuanliOutboxGrowing: messages waiting for one peer
OUTBOX_STUCK_SECONDS = 300  # SuanliOutboxStuck
PAYOUTS_OVERDUE_SECONDS = 30 * 86400  # SuanliPayoutsOverdue
SETTLEMENT_OVERDUE_SECONDS = 45 * 86400  # SuanliSettlementOverdue
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Notice:
    code: str  # budget_low, exposure_near_cap, outbox_growing, outbox_stuck, disputes_open,
    # holds_overdue, payouts_overdue, settlement_overdue, card_unacknowledged
    figures: dict[str, int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    """The books' figures the rules read (node/store/books.py, as the gauges do)."""

    now: int
    budgets: list[tuple[int, int, int]]  # (year, budget, remaining) of years with a policy
    exposure: list[tuple[str, int, int]]  # (peer, owed this window, cap)
    backlog: dict[str, tuple[int, int]]  # peer → (messages waiting, oldest written at)
    disputes_open: int
    holds_overdue: int
    oldest_unpaid: int | None  # when the window of the oldest unpaid payout closed
    oldest_unsettled: int | None  # end of the oldest window not settled between cities
    unacknowledged: list[str]  # peers without this node's current card


def notices(f: Figures) -> list[Notice]:
    out: list[Notice] = []
    for year, budget, remaining in f.budgets:
        if budget > 0 and remaining < budget * BUDGET_LOW_SHARE:
            out.append(
                Notice("budget_low", {"year": year, "remaining": remaining, "budget": budget})
            )
    for peer, owed, cap in f.exposure:
        if cap > 0 and owed > cap * EXPOSURE_NEAR_SHARE:
            out.append(Notice("exposure_near_cap", {"peer": peer, "owed": owed, "cap": cap}))
    for peer, (count, oldest) in sorted(f.backlog.items()):
        if count > OUTBOX_GROWING:
            out.append(Notice("outbox_growing", {"peer": peer, "count": count}))
        age = (f.now - oldest) // 1000
        if age > OUTBOX_STUCK_SECONDS:
            out.append(Notice("outbox_stuck", {"peer": peer, "seconds": age}))
    if f.disputes_open:
        out.append(Notice("disputes_open", {"count": f.disputes_open}))
    if f.holds_overdue:
        out.append(Notice("holds_overdue", {"count": f.holds_overdue}))
    if f.oldest_unpaid is not None and f.now - f.oldest_unpaid > PAYOUTS_OVERDUE_SECONDS * 1000:
        out.append(Notice("payouts_overdue", {"days": (f.now - f.oldest_unpaid) // DAY_MS}))
    if (
        f.oldest_unsettled is not None
        and f.now - f.oldest_unsettled > SETTLEMENT_OVERDUE_SECONDS * 1000
    ):
        out.append(Notice("settlement_overdue", {"days": (f.now - f.oldest_unsettled) // DAY_MS}))
    if f.unacknowledged:
        out.append(Notice("card_unacknowledged", {"peers": "、".join(f.unacknowledged)}))
    return out
