"""Strict request parsing, the one path every REST input takes: fields named, typed and
bounded, unknown fields refused, in the body and in the query string alike.

Amounts must be JSON integers: ``1.5``, ``"100"`` and ``true`` are refused with an error
naming the field, so no float or string ever reaches a balance. A body is refused, with a
4xx naming the problem, when it repeats a key (the last one would win here while a proxy
might read the first), nests deeper than ``MAX_DEPTH``, or holds ``NaN`` or ``Infinity``.
Query parameters are read the same way: digits are ASCII digits, integers fit SQLite's 64
bits, a parameter given twice is refused. Field rules shared with other doors (regions,
dates, control characters) live in ``node/domain/fields.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from node import errors
from node.clock import parse_iso
from node.domain.fields import (
    CONTROL,
    INT64_MAX,
    MAX_FEN,
    MULTILINE_CONTROL,
    parse_int,
    require_region,
)

MAX_DEPTH = 16  # the deepest body any endpoint takes is 2 (an object holding a list)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise errors.InvalidRequest(f"{key[:60]}: appears more than once in the body")
        data[key] = value
    return data


def _constant(name: str) -> Any:
    raise errors.InvalidRequest(f"the body is not valid JSON: {name} is not a JSON number")


def _depth(value: Any, limit: int) -> None:
    """Refuse containers nested deeper than ``limit``, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise errors.InvalidRequest(f"the body nests deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes) -> Any:
    """JSON as RFC 8259 says, stricter where ambiguity would matter: no duplicate keys, no
    NaN or Infinity, bounded nesting. Raises InvalidRequest."""
    try:
        data = json.loads(raw, object_pairs_hook=_pairs, parse_constant=_constant)
    except RecursionError:
        raise errors.InvalidRequest(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        # json's own messages say where, not what is inside; integers of over 4,300 digits
        # are refused by Python's limit with a sentence of its own
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise errors.InvalidRequest(f"the body is not valid JSON{where}") from None
    _depth(data, MAX_DEPTH)
    return data


async def json_body(request: web.Request) -> Body:
    if request.content_type != "application/json":
        raise errors.InvalidRequest("the body must be JSON (Content-Type: application/json)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.PayloadTooLarge(
            f"the body is larger than {request.client_max_size} bytes"
        ) from None
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise errors.InvalidRequest("the body must be a JSON object")
    return Body(data)


class Body:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._seen: set[str] = set()

    def _get(self, name: str, required: bool) -> Any:
        self._seen.add(name)
        if name not in self._data or self._data[name] is None:
            if required:
                raise errors.InvalidRequest(f"{name}: required")
            return None
        return self._data[name]

    def text(
        self,
        name: str,
        *,
        max_len: int = 200,
        required: bool = True,
        multiline: bool = False,
        prose: bool = False,
    ) -> Any:
        """A string field. ``prose`` (names, reasons, labels, policy text): white space around
        it is trimmed. Anything else (codes, ids, regions, dates, enums) is taken exactly as
        sent, and white space around it is refused rather than silently removed."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise errors.InvalidRequest(f"{name}: must be a string")
        # optional or not, never "": leave an optional field out (or null) instead
        control = MULTILINE_CONTROL if multiline else CONTROL
        return _text(name, value, max_len=max_len, control=control, prose=prose)

    def fen(self, name: str, *, minimum: int = 1, required: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.InvalidRequest(f"{name}: must be an integer number of fen")
        if value < minimum or value > MAX_FEN:  # and so within SQLite's int64
            raise errors.InvalidRequest(f"{name}: must be between {minimum} and {MAX_FEN} fen")
        return value

    def time(self, name: str, *, required: bool = True) -> Any:
        value = self.text(name, max_len=40, required=required)
        if value is None:
            return None
        return _time(name, value)

    def region(self, name: str, *, required: bool = True) -> Any:
        value = self.text(name, max_len=20, required=required)
        if value is None:
            return None
        return require_region(name, value)

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise errors.InvalidRequest(f"{name}: must be true or false")
        return value

    def texts(
        self, name: str, *, max_items: int = 100, max_len: int = 40, required: bool = False
    ) -> tuple[str, ...]:
        value = self._get(name, required)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.InvalidRequest(f"{name}: must be a list of strings")
        if len(value) > max_items:
            raise errors.InvalidRequest(f"{name}: at most {max_items} items")
        if any(len(v) > max_len or CONTROL.search(v) or v != v.strip() for v in value):
            raise errors.InvalidRequest(
                f"{name}: each item at most {max_len} characters, without control characters "
                "or white space around it"
            )
        return tuple(value)

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise errors.InvalidRequest(f"{unknown[0]}: unknown field")


def _text(
    name: str,
    value: str,
    *,
    max_len: int,
    control: re.Pattern[str] = CONTROL,
    prose: bool = False,
    allow_empty: bool = False,
) -> str:
    """The one rule for text, in a body or a query string: no control characters (looked for
    before any trimming), white space around it trimmed for prose and refused otherwise, not
    empty unless allowed, at most ``max_len`` characters."""
    if control.search(value):
        raise errors.InvalidRequest(f"{name}: control characters are not allowed")
    if prose:
        value = value.strip()
    elif value != value.strip():
        raise errors.InvalidRequest(f"{name}: must not begin or end with white space")
    if not value and not allow_empty:
        raise errors.InvalidRequest(f"{name}: must not be empty")
    if len(value) > max_len:
        raise errors.InvalidRequest(f"{name}: at most {max_len} characters")
    return value


def _time(name: str, value: str) -> int:
    try:
        ms = parse_iso(value)
    except (ValueError, OverflowError):
        raise errors.InvalidRequest(f"{name}: must be an ISO 8601 time with a zone") from None
    if not 0 <= ms <= INT64_MAX:
        raise errors.InvalidRequest(f"{name}: must be after 1970")
    return ms


class Query:
    """The query string, read as strictly as a body: each parameter at most once, typed and
    bounded; ``done()`` refuses parameters the endpoint does not take."""

    def __init__(self, request: web.Request) -> None:
        self._query = request.query
        self._seen: set[str] = set()

    def _get(self, name: str) -> str | None:
        self._seen.add(name)
        values = self._query.getall(name, [])
        if len(values) > 1:
            raise errors.InvalidRequest(f"{name}: given more than once")
        return values[0] if values else None

    def text(self, name: str, *, max_len: int = 200, allow_empty: bool = False) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        return _text(name, value, max_len=max_len, allow_empty=allow_empty)

    def integer(self, name: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
        value = self._get(name)
        return None if value is None else parse_int(name, value, minimum, maximum)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(name)
        if value is None:
            return default
        if value not in choices:
            raise errors.InvalidRequest(f"{name}: must be one of {', '.join(choices)}")
        return value

    def flag(self, name: str) -> bool:
        return self.choice(name, ("0", "1", "false", "true"), "0") in ("1", "true")

    def time(self, name: str) -> int | None:
        value = self.text(name, max_len=40)
        return None if value is None else _time(name, value)

    def page(self) -> tuple[int, str]:
        """``?limit=&after=`` keyset pagination; limit 1..500 (default 100); ``after`` is the
        last item's id (or cursor) from the previous page."""
        limit = self.integer("limit", minimum=1, maximum=500)
        return limit or 100, self.text("after", max_len=200, allow_empty=True) or ""

    def done(self) -> None:
        unknown = sorted(set(self._query) - self._seen)
        if unknown:
            raise errors.InvalidRequest(f"{unknown[0][:60]}: unknown query parameter")


def page(request: web.Request) -> tuple[int, str]:
    """The pagination parameters of an endpoint that takes nothing else."""
    query = Query(request)
    limit, after = query.page()
    query.done()
    return limit, after
