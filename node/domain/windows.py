"""Settlement windows (兑付周期): which window a moment belongs to, and a window's bounds.

Windows are computed in China Standard Time, so "2026-Q1" is the first quarter as Beijing
counts it. A window id alone gives its bounds (``window_bounds``), so a peer that names a
window in its receipt tells every other city exactly which interval it means:

    quarterly  2026-Q4          monthly  2026-11          weekly  2026-W48 (ISO week)
    daily      2026-11-27       minutes  2026-11-27T02:05:00.000Z/5m (start, length)

The issuer names the window of each capture in its signed receipt, so both cities agree on it
whatever their clocks say. An operator may close the current window early: captures then go to
the next one (``open_window``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from node.clock import iso, parse_iso
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


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1000


def window_bounds(window: str) -> tuple[int, int]:
    """[start, end) in milliseconds for a window id of any cycle. Raises ValueError.

    Ids are canonical: ASCII digits only, and a minutes window's start exactly as ``iso``
    writes it, so that one window has one name (``2026-11-27T02:05:00Z/5m`` is refused)."""
    if len(window) > 40:
        raise ValueError(f"not a settlement window: {window[:40]!r}…")
    if m := re.fullmatch(r"([0-9]{4})-Q([1-4])", window):
        year, quarter = int(m[1]), int(m[2])
        start = dt.datetime(year, 3 * quarter - 2, 1, tzinfo=CST)
        end = dt.datetime(
            year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1, tzinfo=CST
        )
        return _ms(start), _ms(end)
    if m := re.fullmatch(r"([0-9]{4})-([0-9]{2})", window):
        year, month = int(m[1]), int(m[2])
        start = dt.datetime(year, month, 1, tzinfo=CST)
        end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CST)
        return _ms(start), _ms(end)
    if m := re.fullmatch(r"([0-9]{4})-W([0-9]{2})", window):
        monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        start = dt.datetime(monday.year, monday.month, monday.day, tzinfo=CST)
        return _ms(start), _ms(start + dt.timedelta(days=7))
    if m := re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", window):
        start = dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=CST)
        return _ms(start), _ms(start + dt.timedelta(days=1))
    if m := re.fullmatch(
        r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)/([1-9][0-9]{0,5})m",
        window,
    ):
        start_ms = parse_iso(m[1])
        if iso(start_ms) != m[1] or start_ms % (int(m[2]) * 60_000):
            raise ValueError(f"not a settlement window: {window!r}")
        return start_ms, start_ms + int(m[2]) * 60_000
    raise ValueError(f"not a settlement window: {window!r}")


def open_window(policy: Policy, ms: int, closed: Callable[[str], bool]) -> str:
    """The window a capture at ``ms`` belongs to: the current one, or the next that is open."""
    window = window_of(policy, ms)
    for _ in range(1000):
        if not closed(window):
            return window
        window = window_of(policy, window_bounds(window)[1])
    raise RuntimeError("a thousand consecutive windows are closed")
