"""Settlement windows (兑付周期): which window a moment belongs to, by the policy's cycle.

Windows are computed in China Standard Time, so "2026-Q1" is the first quarter as Beijing
counts it. The issuer names the window of each capture in its signed receipt, so both cities
agree on it whatever their clocks say.
"""

from __future__ import annotations

import datetime as dt

from node.clock import iso
from node.domain.policy import Policy

CST = dt.timezone(dt.timedelta(hours=8))


def window_of(policy: Policy, ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=CST)
    cycle = policy.settlement_cycle
    if cycle == "quarterly":
        return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
    if cycle == "monthly":
        return f"{moment.year}-{moment.month:02d}"
    if cycle == "weekly":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if cycle == "daily":
        return moment.strftime("%Y-%m-%d")
    size = policy.settlement_window_minutes * 60_000
    start = ms - ms % size
    return f"{iso(start)}/{policy.settlement_window_minutes}m"
