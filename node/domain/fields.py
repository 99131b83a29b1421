"""What a valid field looks like, wherever it enters (REST body or query, policy file, CLI).

Pure rules, no I/O. Every integer that reaches the database fits SQLite's signed 64 bits;
digits are ASCII digits (``str.isdigit()`` also accepts ``²`` and ``٣``, which ``int()``
refuses or reads as other numbers); dates are ISO calendar dates; text carries no control
characters and no bidirectional overrides that would make a name read differently in a report.
"""

from __future__ import annotations

import datetime as dt
import re

from node import errors

INT64_MAX = 2**63 - 1
MAX_FEN = 10**15  # ¥10 trillion: far above any budget, far below SQLite's int64

# GB/T 2260 administrative division code: six ASCII digits, the first the region (1-8).
REGION = re.compile(r"[1-8][0-9]{5}")
ASCII_DIGITS = re.compile(r"[0-9]{1,40}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# C0 and C1 controls, DEL, and the Unicode bidirectional embeddings, overrides and isolates.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MULTILINE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# A gRPC endpoint as a card lists it: host (a name, IPv4, or [IPv6]) and port 1-65535.
ENDPOINT = re.compile(r"([A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})")
MAX_ENDPOINTS = 8


def is_endpoint(text: str) -> bool:
    found = ENDPOINT.fullmatch(text)
    return found is not None and 1 <= int(found.group(2)) <= 65535


def endpoints_problem(endpoints: list[str] | tuple[str, ...]) -> str | None:
    """Why a list of endpoints (a card's, a node's configuration) cannot be used, or None:
    1 to 8, each ``host:port``, none twice."""
    if not 1 <= len(endpoints) <= MAX_ENDPOINTS:
        return f"1 to {MAX_ENDPOINTS} endpoints, got {len(endpoints)}"
    for endpoint in endpoints:
        if not is_endpoint(endpoint):
            return f"{endpoint[:80]!r} is not host:port"
    if len(set(endpoints)) != len(endpoints):
        return "an endpoint is listed twice"
    return None


def is_region(text: str) -> bool:
    return REGION.fullmatch(text) is not None


def require_region(name: str, text: str) -> str:
    if not is_region(text):
        raise errors.InvalidRequest(
            f"{name}: must be a 6-digit GB/T 2260 region code such as 330100, got {text[:20]!r}"
        )
    return text


def parse_int(name: str, text: str, minimum: int, maximum: int) -> int:
    """ASCII decimal digits only, within ``minimum..maximum`` (at most int64)."""
    if ASCII_DIGITS.fullmatch(text) is None:
        raise errors.InvalidRequest(f"{name}: must be a whole number written with digits 0-9")
    value = int(text)
    if not minimum <= value <= min(maximum, INT64_MAX):
        raise errors.InvalidRequest(f"{name}: must be between {minimum} and {maximum}")
    return value


def parse_date(name: str, text: str) -> dt.date:
    if DATE.fullmatch(text) is None:
        raise errors.InvalidRequest(f"{name}: must be an ISO 8601 date, YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise errors.InvalidRequest(f"{name}: {text} is not a calendar date") from None


def check_period(start: str, end: str) -> None:
    """A demand's period: two ISO dates, the start not after the end."""
    if parse_date("period_start", start) > parse_date("period_end", end):
        raise errors.InvalidRequest("period_end: must not be before period_start")
