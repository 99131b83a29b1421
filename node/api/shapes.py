"""The building blocks of the REST API's request schemas (``node/api/operations.py``,
``node/api/compute_ops.py``): what the strict parser (node/api/parse.py) accepts, written
down."""

from __future__ import annotations

from typing import Any

from node.domain.fields import MAX_FEN

ERR = {"$ref": "#/components/schemas/Error"}
OBJ: dict[str, Any] = {"type": "object"}

# What the strict parser (node/api/parse.py) accepts, written down: the document may be looser
# than the node (the node refuses more, e.g. a USCC whose check character is wrong) but never
# stricter, so anything this schema calls invalid the node refuses with a 4xx
# (tests/test_schemathesis.py holds the two together).
NO_CONTROL = r"^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$"


def _schema(required: list[str], **props: Any) -> dict[str, Any]:
    """An object with exactly these fields; an optional field may also be null (= absent)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            k: v if k in required or "$ref" in v else {**v, "nullable": True}
            for k, v in props.items()
        },
    }


def _text(max_len: int, min_len: int = 1, **extra: Any) -> dict[str, Any]:
    """A string taken exactly as sent: no control characters, no white space around it."""
    return {
        "type": "string",
        "minLength": min_len,
        "maxLength": max_len,
        "pattern": extra.pop("pattern", r"^\S(.*\S)?$" if min_len else NO_CONTROL),
        **extra,
    }


def _prose(max_len: int) -> dict[str, Any]:
    """Free text for people (names, reasons): trimmed, no control characters."""
    return {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": NO_CONTROL}


S = {"type": "string"}
ID = _text(60)
FEN = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_FEN,
    "description": "integer fen (分), 1 to 10^15",
}
TIME = {
    "type": "string",
    "format": "date-time",
    "maxLength": 40,
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
    "description": "RFC 3339 with a zone, e.g. 2026-01-01T00:00:00Z",
}
DATE = {
    "type": "string",
    "format": "date",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "description": "ISO 8601 calendar date",
}
REGION = {
    "type": "string",
    "pattern": r"^[1-8][0-9]{5}$",
    "description": "GB/T 2260 region code, e.g. 330100",
}
USCC = {
    "type": "string",
    "pattern": r"^[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{10}$",
    "description": "unified social credit code (GB 32100-2015), 18 characters; its check "
    "character is verified too",
}
WINDOW = _text(40, description="a settlement window name, docs/protocol.md §4.6")
ROLES = ["operator", "holder", "provider"]
PROVIDER_STATES = ["pending", "approved", "suspended"]
PROVIDER_KINDS = ["computing_centre", "matchmaking_partner"]
# Filled from the node's current policy when the document is served (openapi_document).
COMPUTE_CLASS = {"$ref": "#/components/schemas/ComputeClass"}
CATEGORY = {"$ref": "#/components/schemas/Category"}


def _q(name: str, schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": what}


PAGE = [
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most this many (100)"),
    _q("after", _text(200, min_len=0), "the previous page's next_after"),
]
