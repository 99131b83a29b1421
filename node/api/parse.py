"""Strict request parsing: every field named, typed and bounded; unknown fields refused.

Amounts must be JSON integers: ``1.5``, ``"100"`` and ``true`` are refused with an error
naming the field, so no float or string ever reaches a balance.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node import errors
from node.clock import parse_iso
from node.services.common import CONTROL, MULTILINE_CONTROL

MAX_FEN = 10**15  # ¥10 trillion: far above any budget, far below SQLite's int64


async def json_body(request: web.Request) -> Body:
    if request.content_type != "application/json":
        raise errors.InvalidRequest("the body must be JSON (Content-Type: application/json)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.PayloadTooLarge(
            f"the body is larger than {request.client_max_size} bytes"
        ) from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidRequest(f"the body is not valid JSON: {exc}") from None
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
        self, name: str, *, max_len: int = 200, required: bool = True, multiline: bool = False
    ) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise errors.InvalidRequest(f"{name}: must be a string")
        value = value.strip()
        if required and not value:
            raise errors.InvalidRequest(f"{name}: must not be empty")
        if len(value) > max_len:
            raise errors.InvalidRequest(f"{name}: at most {max_len} characters")
        if (MULTILINE_CONTROL if multiline else CONTROL).search(value):
            raise errors.InvalidRequest(f"{name}: control characters are not allowed")
        return value

    def fen(self, name: str, *, minimum: int = 1, required: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.InvalidRequest(f"{name}: must be an integer number of fen")
        if value < minimum or value > MAX_FEN:
            raise errors.InvalidRequest(f"{name}: must be between {minimum} and {MAX_FEN} fen")
        return value

    def time(self, name: str, *, required: bool = True) -> Any:
        value = self.text(name, max_len=40, required=required)
        if value is None:
            return None
        try:
            return parse_iso(value)
        except ValueError:
            raise errors.InvalidRequest(f"{name}: must be an ISO 8601 time with a zone") from None

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise errors.InvalidRequest(f"{name}: must be true or false")
        return value

    def texts(self, name: str, *, max_items: int = 100) -> tuple[str, ...]:
        value = self._get(name, False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.InvalidRequest(f"{name}: must be a list of strings")
        if len(value) > max_items:
            raise errors.InvalidRequest(f"{name}: at most {max_items} items")
        return tuple(v.strip() for v in value)

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise errors.InvalidRequest(f"{unknown[0]}: unknown field")


def page(request: web.Request) -> tuple[int, str]:
    """``?limit=&after=`` keyset pagination; limit 1..500 (default 100)."""
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise errors.InvalidRequest("limit: must be an integer") from None
    if not 1 <= limit <= 500:
        raise errors.InvalidRequest("limit: must be between 1 and 500")
    return limit, request.query.get("after", "")
