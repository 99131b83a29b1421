"""JSON schemas of what the API answers, derived from the records it renders (node/api/render.py
turns each dataclass of node/domain/model.py into an object with the same fields, ``*_at`` times
as ISO 8601), with the states each record may be in. The OpenAPI document uses them, so a client
(and tests/test_schemathesis.py) can check every answer against them."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from node.domain import model
from node.domain.orders import SHOWN_FIELDS

TIME = {"type": "string", "format": "date-time"}

# The states each record may be in: the model's own Literal types.
STATES: dict[type[Any], tuple[str, ...]] = {
    model.Provider: typing.get_args(model.ProviderState),
    model.Voucher: typing.get_args(model.VoucherState),
    model.Authorization: typing.get_args(model.AuthorizationState),
    model.Hold: typing.get_args(model.HoldState),
    model.RemoteHold: typing.get_args(model.RemoteHoldState),
}
ENUMS: dict[tuple[type[Any], str], tuple[str, ...]] = {
    (model.Provider, "kind"): model.PROVIDER_KINDS,
    (model.RemoteHold, "kind"): typing.get_args(model.RemoteHoldKind),
}
HIDDEN = {"code_sha256"}  # never rendered (render.hold)


def _type(name: str, hint: Any) -> dict[str, Any]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return {**_type(name, inner), "nullable": True}
    if name.endswith("_at"):
        return dict(TIME)
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if typing.get_origin(hint) is tuple:
        return {"type": "array", "items": {"type": "string"}}
    return {"type": "string"}


def record(cls: type[Any], *, required: bool = True) -> dict[str, Any]:
    """The rendered form of a model dataclass."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in HIDDEN:
            continue
        schema = _type(f.name, hints[f.name])
        if f.name == "state" and cls in STATES:
            schema["enum"] = list(STATES[cls])
        elif (cls, f.name) in ENUMS:
            schema["enum"] = list(ENUMS[cls, f.name])
        props[f.name] = schema
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = sorted(props)
    return out


def _hold() -> dict[str, Any]:
    """A hold as the API shows it: local (on this city's voucher, ``Hold``) or remote (a peer's
    voucher redeemed here, ``RemoteHold``); the fields both have are always there."""
    local, remote = record(model.Hold), record(model.RemoteHold)
    props = {**remote["properties"], **local["properties"]}
    for name in props:
        if name in local["properties"] and name in remote["properties"]:
            merged = {**remote["properties"][name], **local["properties"][name]}
            if "nullable" in remote["properties"][name] or "nullable" in local["properties"][name]:
                merged["nullable"] = True
            props[name] = merged
        else:
            props[name] = {**props[name], "nullable": True}
    props["state"] = {
        "type": "string",
        "enum": sorted(set(STATES[model.Hold]) | set(STATES[model.RemoteHold])),
    }
    common = sorted(set(local["properties"]) & set(remote["properties"]))
    return {"type": "object", "properties": props, "required": common}


REASON = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
DECISION = {
    "type": "object",
    "required": ["id", "holder_id", "outcome", "ratio_bp", "amount_fen", "reasons", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "holder_id": {"type": "string"},
        "outcome": {"type": "string", "enum": ["issued", "declined"]},
        "ratio_bp": {"type": "integer"},
        "amount_fen": {"type": "integer"},
        "reasons": {"type": "array", "items": REASON},
        "voucher_id": {"type": "string", "nullable": True},
        "created_at": TIME,
    },
}

OFFER = {
    "type": "object",
    "required": [
        "origin",
        "id",
        "seq",
        "version",
        "state",
        "provider_id",
        "provider_name",
        "provider_kind",
        "compute_class",
        "accelerator",
        "cards",
        "price_fen",
        "min_card_hours",
        "available_from",
        "available_until",
        "expires_at",
        "data_centre_region",
        "domestic_chips",
        "security_level",
        "contact",
        "published_at",
    ],
    "properties": {
        **{
            k: {"type": "string"}
            for k in (
                "origin",
                "id",
                "provider_id",
                "provider_name",
                "compute_class",
                "accelerator",
                "data_centre_region",
                "contact",
            )
        },
        **{
            k: {"type": "integer"}
            for k in (
                "seq",
                "version",
                "cards",
                "price_fen",
                "min_card_hours",
                "security_level",
            )
        },
        **{k: TIME for k in ("available_from", "available_until", "expires_at", "published_at")},
        "state": {"type": "string", "enum": ["live", "withdrawn", "expired"]},
        "provider_kind": {"type": "string", "enum": list(model.PROVIDER_KINDS)},
        "domestic_chips": {"type": "boolean"},
    },
}
PRICED = {
    "type": "object",
    "required": [
        "offer",
        "ratio_bp",
        "subsidy_fen",
        "effective_price_fen",
        "min_order_fen",
        "min_order_subsidy_fen",
        "voucher_id",
        "no_subsidy_reason",
    ],
    "properties": {
        "offer": {"$ref": "#/components/schemas/Offer"},
        **{
            k: {"type": "integer"}
            for k in (
                "ratio_bp",
                "subsidy_fen",
                "effective_price_fen",
                "min_order_fen",
                "min_order_subsidy_fen",
            )
        },
        "voucher_id": {"type": "string", "nullable": True},
        "no_subsidy_reason": {
            "type": "string",
            "nullable": True,
            "enum": ["no_voucher_for_class", "outbound_not_allowed", "exposure_cap_reached"],
        },
    },
}

ORDER = {
    "type": "object",
    "required": [*SHOWN_FIELDS, "redemption"],
    "properties": {
        **{
            k: {"type": "string"}
            for k in (
                "id",
                "peer",
                "holder_id",
                "holder_name",
                "holder_uscc",
                "offer_origin",
                "offer_id",
                "provider_id",
                "provider_name",
                "compute_class",
                "note",
            )
        },
        **{
            k: {"type": "integer"}
            for k in (
                "offer_version",
                "card_hours",
                "price_fen",
                "amount_fen",
            )
        },
        "side": {"type": "string", "enum": ["holder", "provider", "local"]},
        "state": {"type": "string", "enum": ["requested", "accepted", "declined", "refused"]},
        "order_id": {"type": "string", "nullable": True},
        "reason": {"type": "string", "nullable": True},
        "created_at": TIME,
        "updated_at": TIME,
        "decided_at": {**TIME, "nullable": True},
        "redemption": {
            "type": "object",
            "nullable": True,
            "required": ["hold_id", "state", "subsidy_fen", "captured_fen"],
            "properties": {
                "hold_id": {"type": "string"},
                "state": {"type": "string"},
                "subsidy_fen": {"type": "integer"},
                "captured_fen": {"type": "integer"},
            },
        },
    },
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Order": ORDER,
    "Offer": OFFER,
    "PricedOffer": PRICED,
    "Holder": record(model.Holder),
    "Provider": record(model.Provider),
    "Voucher": record(model.Voucher),
    "Authorization": record(model.Authorization),
    "Hold": _hold(),
    "Decision": DECISION,
    "DishonestyEntry": {
        "type": "object",
        "required": ["uscc", "reason", "added_by", "added_at"],
        "properties": {
            "uscc": {"type": "string"},
            "reason": {"type": "string"},
            "added_by": {"type": "string"},
            "added_at": TIME,
        },
    },
}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(name: str, cursor: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_after"],
        "properties": {
            "items": {"type": "array", "items": ref(name)},
            "next_after": {**(cursor or {"type": "string"}), "nullable": True},
        },
    }


def wrapped(**fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(fields), "properties": fields}


HOLD_ANSWER = wrapped(hold=ref("Hold"), replayed={"type": "boolean"})

# (method, path) → the schema of its success body; anything else is a JSON object.
ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/holders"): wrapped(holder=ref("Holder"), token={"type": "string"}),
    ("get", "/v1/holders"): page_of("Holder"),
    ("get", "/v1/dishonesty"): page_of("DishonestyEntry"),
    ("post", "/v1/dishonesty"): wrapped(uscc={"type": "string"}, listed={"type": "boolean"}),
    ("post", "/v1/dishonesty/{id}/remove"): wrapped(
        uscc={"type": "string"}, listed={"type": "boolean"}
    ),
    ("get", "/v1/holders/{id}"): ref("Holder"),
    ("post", "/v1/providers"): wrapped(provider=ref("Provider"), token={"type": "string"}),
    ("get", "/v1/providers"): page_of("Provider"),
    ("get", "/v1/providers/{id}"): ref("Provider"),
    ("post", "/v1/providers/{id}/state"): ref("Provider"),
    ("put", "/v1/providers/{id}/related"): ref("Provider"),
    ("post", "/v1/demands"): wrapped(
        decision=ref("Decision"),
        voucher={**ref("Voucher"), "nullable": True},
        signed={"type": "object", "nullable": True},
    ),
    ("get", "/v1/decisions"): page_of("Decision"),
    ("get", "/v1/decisions/{id}"): ref("Decision"),
    ("get", "/v1/vouchers"): page_of("Voucher"),
    ("get", "/v1/vouchers/{id}"): wrapped(voucher=ref("Voucher"), signed={"type": "object"}),
    ("post", "/v1/vouchers/{id}/revoke"): ref("Voucher"),
    ("post", "/v1/vouchers/{id}/authorizations"): wrapped(
        authorization=ref("Authorization"), code={"type": "string"}
    ),
    ("get", "/v1/vouchers/{id}/authorizations"): page_of("Authorization"),
    ("post", "/v1/holds"): HOLD_ANSWER,
    ("post", "/v1/redemptions"): HOLD_ANSWER,
    ("post", "/v1/holds/{id}/capture"): HOLD_ANSWER,
    ("post", "/v1/holds/{id}/void"): HOLD_ANSWER,
    ("get", "/v1/holds"): page_of("Hold"),
    ("get", "/v1/holds/{id}"): ref("Hold"),
    ("post", "/v1/offers"): ref("Offer"),
    ("put", "/v1/offers/{id}"): ref("Offer"),
    ("post", "/v1/offers/{id}/withdraw"): ref("Offer"),
    ("post", "/v1/orders"): ref("Order"),
    ("get", "/v1/orders"): page_of("Order"),
    ("get", "/v1/orders/{id}"): ref("Order"),
    ("post", "/v1/orders/{id}/accept"): ref("Order"),
    ("post", "/v1/orders/{id}/decline"): ref("Order"),
    ("get", "/v1/offers"): wrapped(items={"type": "array", "items": ref("Offer")}),
    ("get", "/v1/catalog"): wrapped(
        items={"type": "array", "items": ref("PricedOffer")},
        vouchers={
            "type": "array",
            "items": {
                "type": "object",
                "required": ["compute_class", "voucher_id", "ratio_bp", "available_fen"],
                "properties": {
                    "compute_class": {"type": "string"},
                    "voucher_id": {"type": "string"},
                    "ratio_bp": {"type": "integer"},
                    "available_fen": {"type": "integer"},
                },
            },
        },
        outbound={"type": "array", "items": {"type": "string"}},
        cap_left_fen={"type": "integer", "nullable": True},
    ),
}

# Success statuses besides the main one: a replay is 200, and 202 while a peer city's answer
# is awaited (docs/api.md, "Retries"; docs/protocol.md §5).
MORE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/v1/dishonesty"): (200,),
    ("post", "/v1/holds"): (200, 202),
    ("post", "/v1/redemptions"): (200, 202),
    ("post", "/v1/holds/{id}/capture"): (202,),
    ("post", "/v1/holds/{id}/void"): (202,),
}
