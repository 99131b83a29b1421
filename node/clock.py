"""Time is injected: logic asks a Clock, never ``time.time()`` directly.

Expiry, settlement windows and skew checks are then testable without sleeping, the way
Bitcoin's ``setmocktime`` makes its functional tests deterministic. Times are integer
milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import time
from typing import Any, Protocol

MS_PER_SECOND = 1000
MS_PER_DAY = 86_400_000


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """The wall clock. ``SUANLI_CLOCK_OFFSET_MS`` shifts it, for demos and fault tests."""

    def __init__(self, offset_ms: int | None = None) -> None:
        if offset_ms is None:
            offset_ms = int(os.environ.get("SUANLI_CLOCK_OFFSET_MS", "0"))
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("a clock does not go back")
        self._now += ms

    def set(self, ms: int) -> None:
        self._now = ms


def iso(ms: int) -> str:
    """Milliseconds → ISO 8601 UTC with milliseconds, the form every API and log uses."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


def is_time_field(name: str) -> bool:
    """Columns that hold a moment in epoch milliseconds: ``at`` and ``…_at``."""
    return name == "at" or name.endswith("_at")


def people_times(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every time field (``is_time_field``) as ISO 8601 UTC, for people: every
    export, CLI listing and API view shows times this way; null stays null."""
    return {
        k: iso(v) if is_time_field(k) and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in row.items()
    }


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    """The part down to the second, with its dot (most times on one request share a second)."""
    return dt.datetime.fromtimestamp(second, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")


# RFC 3339 date-time (ISO 8601's internet profile): a T between date and time, seconds,
# optional fraction, a zone. Python's fromisoformat alone also takes a space, no seconds, no
# zone, week dates and non-ASCII digits; one spelling is enough for public money.
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_iso(text: str) -> int:
    """An RFC 3339 time with a zone (``Z`` or ``±HH:MM``) → milliseconds. Raises ValueError
    when malformed."""
    if RFC3339.fullmatch(text) is None:
        raise ValueError("a time is written like 2026-01-01T00:00:00Z or 2026-01-01T08:00:00+08:00")
    moment = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time needs a zone, e.g. 2026-01-01T00:00:00Z")
    return int(moment.timestamp() * 1000)


def year_of(ms: int, utc_offset_hours: int = 8) -> int:
    """The fiscal (calendar) year of a moment, in China Standard Time by default."""
    moment = dt.datetime.fromtimestamp(
        ms / 1000, tz=dt.timezone(dt.timedelta(hours=utc_offset_hours))
    )
    return moment.year


def add_months(ms: int, months: int, utc_offset_hours: int = 8) -> int:
    """Same local day-of-month ``months`` later, clamped to the month's last day."""
    tz = dt.timezone(dt.timedelta(hours=utc_offset_hours))
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=tz)
    month0 = moment.month - 1 + months
    year = moment.year + month0 // 12
    month = month0 % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            shifted = moment.replace(year=year, month=month, day=day)
            break
        except ValueError:
            continue
    return ms + (shifted - moment) // dt.timedelta(milliseconds=1)
