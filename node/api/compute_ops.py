"""The REST operations of sharing compute (issue 20; docs/api.md, "Compute offers"), as
``node/api/operations.py``'s table takes them: request schemas, query parameters, error
codes."""

from __future__ import annotations

from typing import Any

from node.api.shapes import FEN, PAGE, REGION, TIME, _prose, _q, _schema, _text
from node.domain.fields import MAX_FEN

COMPUTE_QUERY: dict[tuple[str, str], list[dict[str, Any]]] = {}
COMPUTE_QUERY[("get", "/v1/orders")] = PAGE
COMPUTE_QUERY[("get", "/v1/catalog/utilisation")] = [
    _q(
        "between",
        {"type": "string", "enum": ["0", "1", "false", "true"]},
        "also what cities captured from each other, from every member's countersigned statements",
    )
]
COMPUTE_QUERY[("get", "/v1/catalog")] = [
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


COMPUTE_OPERATIONS: list[tuple[str, str, str, str, dict[str, Any] | None, int, tuple[str, ...]]] = [
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
]
