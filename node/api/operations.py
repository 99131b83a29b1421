"""What each REST operation takes and answers: the request schemas, query parameters and
error codes, in one table (``OPERATIONS``) from which ``node/api/openapi.py`` builds the
OpenAPI document and docs/api.md its reference table."""

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
QUERY: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("get", "/v1/policy"): [
        _q("year", {"type": "integer", "minimum": 2000, "maximum": 2200}, "a fiscal year")
    ],
    ("get", "/v1/holders"): PAGE,
    ("get", "/v1/dishonesty"): PAGE,
    ("get", "/v1/providers"): PAGE,
    ("get", "/v1/decisions"): PAGE,
    ("get", "/v1/vouchers"): PAGE,
    ("get", "/v1/holds"): PAGE,
    ("get", "/v1/journal"): [
        PAGE[0],
        _q("after", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, "a sequence number"),
        _q("kind", {"type": "string", "enum": ["ledger", "events", "audit"]}, "which journal"),
    ],
    ("get", "/v1/settlement/payouts"): [
        _q("window", WINDOW, "one window only"),
        _q("format", {"type": "string", "enum": ["json", "csv"]}, "csv: the lines, streamed"),
        *PAGE,
    ],
    ("get", "/v1/holders/{id}/statement"): [
        _q("year", {"type": "integer", "minimum": 2000, "maximum": 2200}, "fiscal year (now's)")
    ],
    ("get", "/v1/reports/budget-execution"): [
        _q("year", {"type": "integer", "minimum": 2000, "maximum": 2200}, "fiscal year (now's)"),
        _q("window", WINDOW, "one settlement window instead of the whole year"),
        _q("format", {"type": "string", "enum": ["json", "csv", "html"]}, "html: printable"),
    ],
    ("get", "/v1/settlement/payments"): [
        _q("window", WINDOW, "one window only"),
        _q("provider_id", _text(40), "one provider only (a provider sees its own anyway)"),
        *PAGE,
    ],
    ("get", "/v1/settlement/disputes"): [
        _q("all", {"type": "string", "enum": ["0", "1", "false", "true"]}, "resolved ones too")
    ],
    ("get", "/v1/settlement/netting"): [_q("until", TIME, "windows ended by then")],
    ("get", "/v1/settlement/transfers/due"): [_q("until", TIME, "windows ended by then")],
    ("get", "/v1/settlement/transfers"): [
        _q("peer", REGION, "one partner city only"),
        _q(
            "state",
            {
                "type": "string",
                "enum": ["advised", "awaiting_confirmation", "confirmed", "disputed", "refused"],
            },
            "one state only",
        ),
    ],
}
QUERY[("get", "/v1/orders")] = PAGE
QUERY[("get", "/v1/catalog/utilisation")] = [
    _q(
        "between",
        {"type": "string", "enum": ["0", "1", "false", "true"]},
        "also what cities captured from each other, from every member's countersigned statements",
    )
]
QUERY[("get", "/v1/catalog")] = [
    _q("compute_class", _text(60), "one compute class"),
    _q("accelerator", _text(40), "one accelerator model, e.g. Ascend 910B"),
    _q("region", REGION, "the data centre's city"),
    _q(
        "max_price_fen",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "list price per card-hour at most",
    ),
    _q(
        "min_cards",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "at least this many cards",
    ),
    _q("from", TIME, "the cards must be available from then"),
    _q("until", TIME, "... until then"),
    _q(
        "domestic_chips",
        {"type": "string", "enum": ["0", "1", "false", "true"]},
        "domestic chips only",
    ),
    _q(
        "min_security_level", {"type": "integer", "minimum": 0, "maximum": 4}, "MLPS level at least"
    ),
    _q(
        "sort",
        {"type": "string", "enum": ["effective", "price"]},
        "effective (after the voucher; default) or list price",
    ),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "at most this many (50)"),
]

# Success bodies that are not JSON.
CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/v1/reports/budget-execution"): {
        "application/json": {"schema": OBJ},
        "text/csv": {"schema": S},
        "text/html": {"schema": S},
    },
    ("get", "/metrics"): {"text/plain": {"schema": S}},
    ("get", "/v1/settlement/payouts"): {
        "application/json": {"schema": OBJ},
        "text/csv": {"schema": S},
    },
}

ORDER = _schema(
    ["code", "order_id", "order_amount_fen", "compute_class"],
    code=_text(100),
    order_id=_text(100),
    order_amount_fen=FEN,
    compute_class=_text(60),
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

TERMS = _schema(
    [
        "compute_class",
        "accelerator",
        "cards",
        "price_fen",
        "min_card_hours",
        "available_from",
        "available_until",
    ],
    compute_class=_text(60),
    accelerator=_text(40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,39}$"),
    cards={"type": "integer", "minimum": 1, "maximum": 1_000_000},
    price_fen={**FEN, "description": "integer fen per card-hour"},
    min_card_hours={"type": "integer", "minimum": 1, "maximum": 100_000_000},
    available_from=TIME,
    available_until=TIME,
    expires_at={**TIME, "description": "when the offer lapses (default: available_until)"},
    data_centre_region=REGION,
    domestic_chips={"type": "boolean"},
    security_level={"type": "integer", "minimum": 0, "maximum": 4},
    contact=_prose(200),
)
OFFER_ERRORS = ("unknown_compute_class", "provider_not_found", "provider_not_approved")

# (method, path, role, summary, request schema or None, success status, error codes)
OPERATIONS: list[tuple[str, str, str, str, dict[str, Any] | None, int, tuple[str, ...]]] = [
    (
        "get",
        "/health",
        "public",
        "Liveness, role (active; a pair's standby answers standby), region, software and schema versions, the loaded policy years",
        None,
        200,
        (),
    ),
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
        _schema(["toml"], toml={"type": "string", "minLength": 1}),
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
        "/v1/signin-links",
        "operator",
        "A one-time sign-in link to the platform's pages for a holder or provider (its id), a "
        "token (its id) or `self`: used once, within `minutes` (default a day, at most a week)",
        _schema(
            ["subject"],
            subject=_text(60),
            minutes={"type": "integer", "minimum": 1, "maximum": 10080},
        ),
        201,
        ("not_found",),
    ),
    (
        "post",
        "/v1/tokens",
        "operator",
        "Create a bearer token (shown once)",
        _schema(["role"], role={"type": "string", "enum": ROLES}, subject_id=ID, label=_prose(200)),
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
            uscc=USCC,
            name=_prose(200),
            category=CATEGORY,
            region=REGION,
            uscc_override_reason=_prose(500),
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
        "get",
        "/v1/holders/{id}/statement",
        "operator or that holder",
        "The holder's yearly statement (?year=): its vouchers, subsidy by provider and by month",
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
            uscc=USCC,
            name=_prose(200),
            kind={"type": "string", "enum": PROVIDER_KINDS},
            region=REGION,
            related_uscc={"type": "array", "maxItems": 100, "items": USCC},
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
            ["state", "reason"],
            state={"type": "string", "enum": PROVIDER_STATES},
            reason=_prose(500),
        ),
        200,
        ("provider_not_found",),
    ),
    (
        "put",
        "/v1/providers/{id}/related",
        "operator",
        "Replace the declared related parties",
        _schema(["related_uscc"], related_uscc={"type": "array", "maxItems": 100, "items": USCC}),
        200,
        ("provider_not_found", "invalid_uscc"),
    ),
    (
        "get",
        "/v1/dishonesty",
        "operator",
        "The operators' dishonesty list (失信名单), by code (?limit=&after=); a demand from a holder on it, or on the policy's own list, is declined",
        None,
        200,
        (),
    ),
    (
        "post",
        "/v1/dishonesty",
        "operator",
        "Put a code on the dishonesty list with the reason (201; 200 when it was listed already)",
        _schema(["uscc", "reason"], uscc=USCC, reason=_prose(500)),
        201,
        ("invalid_uscc",),
    ),
    (
        "post",
        "/v1/dishonesty/{id}/remove",
        "operator",
        "Take a code (the id) off the dishonesty list, with the reason",
        _schema(["reason"], reason=_prose(500)),
        200,
        ("invalid_uscc", "not_found"),
    ),
    (
        "post",
        "/v1/demands",
        "holder",
        "Submit a compute demand; decided at once (免申即享)",
        _schema(
            ["compute_class", "estimated_amount_fen", "period_start", "period_end"],
            compute_class=COMPUTE_CLASS,
            estimated_amount_fen=FEN,
            provider_id=_text(40),
            period_start=DATE,
            period_end=DATE,
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
        _schema(["reason"], reason=_prose(500)),
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
            provider_id=ID,
            provider_region={**REGION, "description": "a peer's region, for its provider"},
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
        "/v1/authorizations/{id}/cancel",
        "holder",
        "Cancel one of the holder's open spend authorizations: its code places no hold after",
        None,
        200,
        ("not_found",),
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
    (
        "get",
        "/v1/holds",
        "operator; a provider or a holder for its own",
        "List holds (a holder's: those on its vouchers, whichever city's provider)",
        None,
        200,
        (),
    ),
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
        "post",
        "/v1/offers",
        "provider",
        "Publish a compute offer; the node signs it and sends it to every peer city",
        TERMS,
        201,
        OFFER_ERRORS,
    ),
    (
        "get",
        "/v1/offers",
        "operator (this city's) or a provider (its own)",
        "This city's offers, withdrawn and expired ones included",
        None,
        200,
        (),
    ),
    (
        "put",
        "/v1/offers/{id}",
        "provider",
        "Change an offer's terms: a new version, sent to every peer city",
        TERMS,
        200,
        (*OFFER_ERRORS, "offer_not_found", "offer_withdrawn"),
    ),
    (
        "post",
        "/v1/offers/{id}/withdraw",
        "provider",
        "Withdraw an offer in every city's catalog",
        None,
        200,
        ("offer_not_found", "offer_withdrawn"),
    ),
    (
        "get",
        "/v1/catalog",
        "holder",
        "Search every city's live offers, each priced after the holder's own vouchers",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/catalog/utilisation",
        "operator",
        "Compute offered in every city (from the signed offers), and what was ordered and captured against this city's offers, by provider and class",
        None,
        200,
        (),
    ),
    (
        "post",
        "/v1/orders",
        "holder",
        "Ask an offer's provider for an order (a peer city's: sent signed through the federation)",
        _schema(
            ["origin", "offer_id", "card_hours"],
            origin=REGION,
            offer_id=_text(64),
            card_hours={"type": "integer", "minimum": 1, "maximum": MAX_FEN},
            note=_prose(500),
        ),
        201,
        (
            "offer_not_found",
            "offer_withdrawn",
            "offer_expired",
            "provider_not_approved",
            "peer_not_found",
        ),
    ),
    (
        "get",
        "/v1/orders",
        "operator; a holder or a provider for its own",
        "Orders against offers, with the redemption each led to",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/orders/{id}",
        "operator, the holder or the provider",
        "One order, with its redemption",
        None,
        200,
        ("order_not_found",),
    ),
    (
        "post",
        "/v1/orders/{id}/accept",
        "provider",
        "Accept an order request with your order id (the redemption then names it)",
        _schema(["order_id"], order_id=_text(100)),
        200,
        ("order_not_found", "order_decided", "already_exists"),
    ),
    (
        "post",
        "/v1/orders/{id}/decline",
        "provider",
        "Decline an order request, saying why",
        _schema(["reason"], reason=_prose(500)),
        200,
        ("order_not_found", "order_decided"),
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
        "Close a window now (window absent or null: the current one); payouts are signed at once",
        _schema([], window=WINDOW),
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
        "post",
        "/v1/settlement/payments",
        "operator",
        "Record a payment to a provider against its payout statement (兑付); signed advice",
        _schema(
            ["window", "provider_id", "amount_fen", "value_date", "bank_reference"],
            window=WINDOW,
            provider_id=_text(40),
            amount_fen=FEN,
            value_date=DATE,
            bank_reference=_text(64),
        ),
        201,
        ("payout_not_found", "overpayment", "duplicate_reference"),
    ),
    (
        "get",
        "/v1/settlement/payments",
        "operator, or a provider for its own",
        "Payments and reversals in the order recorded (?window=&provider_id=&limit=&after=)",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/settlement/payments/{id}",
        "operator, or a provider for its own",
        "One payment or reversal, with its signed advice",
        None,
        200,
        ("payment_not_found",),
    ),
    (
        "post",
        "/v1/settlement/payments/{id}/reversal",
        "operator",
        "Reverse a payment, whole, with a reason (a payment is never edited)",
        _schema(["reason"], reason=_text(500)),
        201,
        ("payment_not_found", "already_reversed"),
    ),
    (
        "post",
        "/v1/settlement/reconciliations",
        "operator",
        "Match the bank's statement of transfers (CSV text) with the payments it has not "
        "confirmed; confirm: true keeps the matches (never a new payment)",
        _schema(["csv"], csv=_text(10_000_000), confirm={"type": "boolean"}),
        200,
        (),
    ),
    (
        "get",
        "/v1/reports/budget-execution",
        "operator",
        "The fiscal year's budget execution (预算执行) for the finance bureau: totals and "
        "breakdowns, every figure from the books (?year=&format=json|csv|html)",
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
    (
        "get",
        "/v1/settlement/transfers/due",
        "operator",
        "Per partner city: the agreed statements no transfer settles yet, their bilateral "
        "net and who pays it (?until=)",
        None,
        200,
        (),
    ),
    (
        "post",
        "/v1/settlement/transfers",
        "operator",
        "Record this city's transfer to a partner city, settling the agreed statements due "
        "(before `until`); the node sends the signed TRANSFER_ADVICE",
        _schema(
            ["peer", "amount_fen", "value_date", "reference"],
            peer=REGION,
            amount_fen={"type": "integer", "minimum": 0, "maximum": 10**15},
            value_date=DATE,
            reference=_text(64),
            until=TIME,
        ),
        201,
        (
            "peer_not_found",
            "nothing_to_settle",
            "not_payer",
            "amount_mismatch",
            "duplicate_reference",
        ),
    ),
    (
        "get",
        "/v1/settlement/transfers",
        "operator",
        "Transfers between cities, both directions, in the order recorded (?peer=&state=)",
        None,
        200,
        (),
    ),
    (
        "get",
        "/v1/settlement/transfers/{id}",
        "operator",
        "One transfer between cities, with the statements it settles",
        None,
        200,
        ("transfer_not_found",),
    ),
    (
        "post",
        "/v1/settlement/transfers/{id}/confirmation",
        "operator",
        "Confirm the advised money arrived (confirmed: true) or dispute it with a reason; "
        "the node answers the payer with a signed RECEIPT_CONFIRMATION",
        _schema([], confirmed={"type": "boolean"}, reason=_text(500)),
        200,
        ("transfer_not_found", "transfer_not_awaiting"),
    ),
]
