"""The OpenAPI 3 document served at /openapi.json, built from one table.

``tests/test_api_contract.py`` checks that this table and the route table name exactly the
same operations, and that every error code listed here is one the node really uses.
"""

from __future__ import annotations

from typing import Any

from node import errors

ERR = {"$ref": "#/components/schemas/Error"}
OBJ: dict[str, Any] = {"type": "object"}


def _schema(required: list[str], **props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


S = {"type": "string"}
FEN = {"type": "integer", "minimum": 1, "description": "integer fen (分)"}
TIME = {"type": "string", "format": "date-time"}

ORDER = _schema(
    ["code", "order_id", "order_amount_fen", "compute_class"],
    code=S,
    order_id=S,
    order_amount_fen=FEN,
    compute_class=S,
)
ORDER_ERRORS = (
    "inbound_not_allowed",
    "outbound_not_allowed",
    "exposure_cap_exceeded",
    "peer_not_found",
    "authorization_invalid",
    "authorization_used",
    "authorization_expired",
    "wrong_provider",
    "order_already_subsidised",
    "voucher_not_active",
    "voucher_expired",
    "insufficient_balance",
    "provider_not_approved",
    "related_party",
    "compute_class_mismatch",
    "out_of_scope",
)

# (method, path, role, summary, request schema or None, success status, error codes)
OPERATIONS: list[tuple[str, str, str, str, dict[str, Any] | None, int, tuple[str, ...]]] = [
    ("get", "/health", "public", "Liveness and the loaded policy years", None, 200, ()),
    ("get", "/metrics", "public", "Prometheus metrics", None, 200, ()),
    ("get", "/openapi.json", "public", "This document", None, 200, ()),
    ("get", "/v1/node", "public", "The node card: region, name, signing keys", None, 200, ()),
    (
        "get",
        "/v1/policy",
        "any",
        "The policy of the current (or ?year=) fiscal year",
        None,
        200,
        ("policy_missing",),
    ),
    (
        "post",
        "/v1/policy",
        "operator",
        "Validate and load a policy (TOML text)",
        _schema(["toml"], toml=S),
        201,
        ("policy_invalid", "budget_below_committed"),
    ),
    (
        "get",
        "/v1/budget",
        "operator",
        "Budget, committed and remaining per fiscal year",
        None,
        200,
        (),
    ),
    (
        "post",
        "/v1/tokens",
        "operator",
        "Create a bearer token (shown once)",
        _schema(["role"], role={"enum": ["operator", "holder", "provider"]}, subject_id=S, label=S),
        201,
        ("holder_not_found", "provider_not_found"),
    ),
    (
        "post",
        "/v1/holders",
        "operator",
        "Register a holder; returns its first token",
        _schema(
            ["uscc", "name", "category"],
            uscc=S,
            name=S,
            category=S,
            region=S,
            uscc_override_reason=S,
        ),
        201,
        (
            "invalid_uscc",
            "unknown_category",
            "category_mismatch",
            "already_exists",
            "policy_missing",
        ),
    ),
    ("get", "/v1/holders", "operator", "List holders (?limit=&after=)", None, 200, ()),
    (
        "get",
        "/v1/holders/{id}",
        "operator or that holder",
        "One holder",
        None,
        200,
        ("holder_not_found",),
    ),
    (
        "post",
        "/v1/providers",
        "operator",
        "Register a provider; returns its token",
        _schema(
            ["uscc", "name", "kind"],
            uscc=S,
            name=S,
            kind={"enum": ["computing_centre", "matchmaking_partner"]},
            region=S,
            related_uscc={"type": "array", "items": S},
            approved={"type": "boolean"},
        ),
        201,
        ("invalid_uscc", "already_exists"),
    ),
    ("get", "/v1/providers", "operator", "List providers", None, 200, ()),
    (
        "get",
        "/v1/providers/{id}",
        "operator or that provider",
        "One provider",
        None,
        200,
        ("provider_not_found",),
    ),
    (
        "post",
        "/v1/providers/{id}/state",
        "operator",
        "Approve, suspend or reset a provider (audited)",
        _schema(
            ["state", "reason"], state={"enum": ["pending", "approved", "suspended"]}, reason=S
        ),
        200,
        ("provider_not_found",),
    ),
    (
        "put",
        "/v1/providers/{id}/related",
        "operator",
        "Replace the declared related parties",
        _schema(["related_uscc"], related_uscc={"type": "array", "items": S}),
        200,
        ("provider_not_found", "invalid_uscc"),
    ),
    (
        "post",
        "/v1/demands",
        "holder",
        "Submit a compute demand; decided at once (免申即享)",
        _schema(
            ["compute_class", "estimated_amount_fen", "period_start", "period_end"],
            compute_class=S,
            estimated_amount_fen=FEN,
            provider_id=S,
            period_start=S,
            period_end=S,
        ),
        201,
        ("unknown_compute_class", "provider_not_found", "policy_missing"),
    ),
    (
        "get",
        "/v1/decisions",
        "operator, or a holder for its own",
        "List issuance decisions",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/decisions/{id}",
        "operator or the holder",
        "One decision with its reasons",
        None,
        200,
        ("decision_not_found",),
    ),
    ("get", "/v1/vouchers", "operator, or a holder for its own", "List vouchers", None, 200, ()),
    (
        "get",
        "/v1/vouchers/{id}",
        "operator or the holder",
        "A voucher with its signed record",
        None,
        200,
        ("voucher_not_found",),
    ),
    (
        "post",
        "/v1/vouchers/{id}/revoke",
        "operator",
        "Revoke a voucher; its balance returns to the budget",
        _schema(["reason"], reason=S),
        200,
        ("voucher_not_found", "voucher_not_active"),
    ),
    (
        "post",
        "/v1/vouchers/{id}/authorizations",
        "holder",
        "Authorize a provider; returns a one-time code",
        _schema(
            ["provider_id", "max_fen", "expires_at"],
            provider_id=S,
            provider_region={"type": "string", "description": "a peer's region, for its provider"},
            max_fen=FEN,
            expires_at=TIME,
        ),
        201,
        (
            "voucher_not_found",
            "voucher_not_active",
            "voucher_expired",
            "provider_not_found",
            "provider_not_approved",
            "related_party",
        ),
    ),
    (
        "get",
        "/v1/vouchers/{id}/authorizations",
        "operator or the holder",
        "A voucher's authorizations",
        None,
        200,
        ("voucher_not_found",),
    ),
    (
        "post",
        "/v1/holds",
        "provider",
        "Place a hold with a holder's code, this city's or another's (200 on an identical retry; 202 while another city's answer is awaited)",
        ORDER,
        201,
        ORDER_ERRORS,
    ),
    ("get", "/v1/holds", "operator, or a provider for its own", "List holds", None, 200, ()),
    (
        "get",
        "/v1/holds/{id}",
        "operator, the provider or the holder",
        "One hold",
        None,
        200,
        ("hold_not_found",),
    ),
    (
        "post",
        "/v1/holds/{id}/capture",
        "provider",
        "Capture at most the held amount (202 while another city's answer is awaited)",
        _schema(["amount_fen"], amount_fen=FEN),
        200,
        ("hold_not_found", "hold_not_open", "hold_expired", "capture_exceeds_hold", "hold_pending"),
    ),
    (
        "post",
        "/v1/holds/{id}/void",
        "provider",
        "Void a hold; its amount returns to the voucher (202 while awaited)",
        None,
        200,
        ("hold_not_found", "hold_not_open", "hold_expired"),
    ),
    (
        "post",
        "/v1/redemptions",
        "provider",
        "One-step redeem: hold and capture at once (200 on a retry; 202 while awaited)",
        ORDER,
        201,
        ORDER_ERRORS,
    ),
    (
        "get",
        "/v1/journal",
        "operator",
        "The append-only history (?kind=ledger|events|audit&after=seq)",
        None,
        200,
        (),
    ),
    ("get", "/v1/settlement/windows", "operator", "Closed windows and the open one", None, 200, ()),
    (
        "post",
        "/v1/settlement/windows/close",
        "operator",
        "Close a window now (default: the current one); payouts are signed at once",
        _schema([], window=S),
        201,
        ("already_exists",),
    ),
    (
        "get",
        "/v1/settlement/payouts",
        "operator, or a provider for its own",
        "Signed payout statements (?window=&limit=&after=); ?format=csv streams their lines, one per capture",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/settlement/statements",
        "operator",
        "Pair statements between cities, with signatures",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/settlement/disputes",
        "operator",
        "Open disputes with their evidence (?all=1 for resolved too)",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/settlement/netting",
        "operator",
        "Net positions and the fewest transfers, from countersigned statements (?until=)",
        None,
        200,
        (),
    ),
]

COMMON_ERRORS = ("invalid_request", "payload_too_large", "unauthenticated", "forbidden")


def _status_of(code: str) -> int:
    for cls in errors.ALL_ERRORS:
        if cls.code == code:
            return cls.status
    raise KeyError(code)


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, role, summary, schema, ok, codes in OPERATIONS:
        responses: dict[str, Any] = {
            str(ok): {"description": "success", "content": {"application/json": {"schema": OBJ}}}
        }
        all_codes = codes if role == "public" else (*COMMON_ERRORS, *codes)
        by_status: dict[int, list[str]] = {}
        for code in all_codes:
            by_status.setdefault(_status_of(code), []).append(code)
        for status, names in sorted(by_status.items()):
            responses[str(status)] = {
                "description": "error codes: " + ", ".join(names),
                "content": {"application/json": {"schema": ERR}},
            }
        op: dict[str, Any] = {
            "summary": summary,
            "description": f"Role: {role}.",
            "responses": responses,
            "x-error-codes": list(all_codes),
        }
        if role != "public":
            op["security"] = [{"bearer": []}]
        if "{id}" in path:
            op["parameters"] = [{"name": "id", "in": "path", "required": True, "schema": S}]
        if schema is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Suanli city node",
            "version": "1",
            "description": "Money is integer fen. Every error is {error: {code, message}}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": S, "message": S, "details": OBJ},
                        }
                    },
                }
            },
        },
    }


def markdown_table() -> str:
    """The endpoint table of docs/api.md (``python -m node.api.openapi`` prints it)."""
    lines = [
        "| method | path | role | what | success | specific error codes |",
        "|---|---|---|---|---|---|",
    ]
    for method, path, role, summary, schema, ok, codes in OPERATIONS:
        body = ""
        if schema:
            required = schema["required"]
            fields = [f"`{k}`" for k in required] + [
                f"`{k}`?" for k in schema["properties"] if k not in required
            ]
            body = "<br>body: " + ", ".join(fields)
        errs = ", ".join(f"`{c}`" for c in codes) or "—"
        lines.append(f"| {method.upper()} | `{path}` | {role} | {summary}{body} | {ok} | {errs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
