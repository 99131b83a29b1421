"""REST handlers: each parses, calls one service method, and renders the result."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from aiohttp import web

from node import VERSION, errors
from node.api import render
from node.api.appkeys import NODE, PRINCIPAL
from node.api.parse import Query, json_body, page
from node.clock import year_of
from node.domain.clearing import REGION as CLEARING_REGION
from node.domain.clearing import STATES as TRANSFER_STATES
from node.domain.issuance import Demand
from node.domain.model import RemoteHold
from node.domain.payments import bank_statement
from node.domain.policy import policy_summary
from node.reports import EXECUTION_FORMATS, execution_csv, execution_html
from node.services.clearing import Clearing
from node.services.common import Principal
from node.services.spending import HoldResult, Order
from node.services.views import JOURNAL_KINDS


def _ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _who(request: web.Request) -> Principal:
    who: Principal = request[PRINCIPAL]
    return who


def _items(items: list[dict[str, Any]], limit: int, key: str = "id") -> dict[str, Any]:
    return {"items": items, "next_after": items[-1][key] if len(items) == limit else None}


# Public ----------------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return _ok(
        {
            "status": "ok",
            "role": "active",  # a pair's standby answers "standby" (node/standby.py)
            "region": node.config.region,
            "version": VERSION,
            "schema_version": node.db.schema_version,
            "policy_years": node.policies.years(),
        }
    )


async def node_card(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return _ok(
        {
            "region": node.config.region,
            "name": node.config.name,
            "keys": [
                {
                    "key_id": node.key.key_id,
                    "algorithm": "ed25519",
                    "public_key": base64.b64encode(node.key.public_key).decode(),
                }
            ],
        }
    )


# Policy and budget -----------------------------------------------------------------------------


async def get_policy(request: web.Request) -> web.Response:
    node = request.app[NODE]
    query = Query(request)
    year = query.integer("year", minimum=2000, maximum=2200)
    query.done()
    policy = node.policies.for_year(year) if year is not None else node.policies.current()
    return _ok(policy_summary(policy))


async def load_policy(request: web.Request) -> web.Response:
    body = await json_body(request)
    text = body.text(
        "toml", max_len=request.app[NODE].config.max_body_bytes, multiline=True, prose=True
    )
    body.done()
    policy, version = await request.app[NODE].policies.load(text, _who(request))
    return _ok({"version": version, "policy": policy_summary(policy)}, 201)


async def budget(request: web.Request) -> web.Response:
    return _ok({"items": await request.app[NODE].views.budget(_who(request))})


# Holders and providers -------------------------------------------------------------------------


async def create_holder(request: web.Request) -> web.Response:
    body = await json_body(request)
    uscc = body.text("uscc", max_len=40).upper()
    name = body.text("name", prose=True)
    category = body.text("category", max_len=60)
    region = body.region("region", required=False)
    override = body.text("uscc_override_reason", max_len=500, required=False, prose=True)
    body.done()
    holder, token = await request.app[NODE].registry.register_holder(
        _who(request), uscc, name, category, region, override
    )
    return _ok({"holder": render.holder(holder), "token": token}, 201)


async def list_holders(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].registry.holders(_who(request), limit, after)
    return _ok(_items([render.holder(h) for h in items], limit))


async def get_holder(request: web.Request) -> web.Response:
    holder = await request.app[NODE].registry.holder(_who(request), request.match_info["id"])
    return _ok(render.holder(holder))


async def holder_statement(request: web.Request) -> web.Response:
    query = Query(request)
    node = request.app[NODE]
    year = query.integer("year", minimum=2000, maximum=2200)
    query.done()
    if year is None:
        year = year_of(node.clock.now_ms())
    statement = await node.views.holder_statement(_who(request), request.match_info["id"], year)
    return _ok(statement)


async def create_provider(request: web.Request) -> web.Response:
    body = await json_body(request)
    uscc = body.text("uscc", max_len=40).upper()
    name = body.text("name", prose=True)
    kind = body.text("kind", max_len=40)
    region = body.region("region", required=False)
    related = body.texts("related_uscc")
    approved = body.flag("approved", default=False)
    body.done()
    provider, token = await request.app[NODE].registry.register_provider(
        _who(request), uscc, name, kind, region, related, approved
    )
    return _ok({"provider": render.provider(provider), "token": token}, 201)


async def list_providers(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].registry.providers(_who(request), limit, after)
    return _ok(_items([render.provider(p) for p in items], limit))


async def get_provider(request: web.Request) -> web.Response:
    provider = await request.app[NODE].registry.provider(_who(request), request.match_info["id"])
    return _ok(render.provider(provider))


async def set_provider_state(request: web.Request) -> web.Response:
    body = await json_body(request)
    state = body.text("state", max_len=20)
    reason = body.text("reason", max_len=500, prose=True)
    body.done()
    provider = await request.app[NODE].registry.set_provider_state(
        _who(request), request.match_info["id"], state, reason
    )
    return _ok(render.provider(provider))


async def set_provider_related(request: web.Request) -> web.Response:
    body = await json_body(request)
    related = body.texts("related_uscc", required=True)  # [] clears them; null is no answer
    body.done()
    provider = await request.app[NODE].registry.set_provider_related(
        _who(request), request.match_info["id"], related
    )
    return _ok(render.provider(provider))


async def list_dishonesty(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].registry.dishonesty(_who(request), limit, after)
    return _ok(_items(items, limit, "uscc"))


async def add_dishonesty(request: web.Request) -> web.Response:
    body = await json_body(request)
    uscc = body.text("uscc", max_len=18)
    reason = body.text("reason", max_len=500, prose=True)
    body.done()
    added = await request.app[NODE].registry.list_dishonest(_who(request), uscc, reason)
    return _ok({"uscc": uscc, "listed": True}, 201 if added else 200)


async def remove_dishonesty(request: web.Request) -> web.Response:
    body = await json_body(request)
    reason = body.text("reason", max_len=500, prose=True)
    body.done()
    uscc = request.match_info["id"]
    await request.app[NODE].registry.unlist_dishonest(_who(request), uscc, reason)
    return _ok({"uscc": uscc, "listed": False})


async def create_token(request: web.Request) -> web.Response:
    body = await json_body(request)
    role = body.text("role", max_len=20)
    subject = body.text("subject_id", max_len=40, required=False)
    label = body.text("label", required=False, prose=True) or ""
    body.done()
    token_id, token = await request.app[NODE].tokens.create(_who(request), role, subject, label)
    return _ok({"id": token_id, "role": role, "subject_id": subject, "token": token}, 201)


# Issuance ---------------------------------------------------------------------------------------


async def submit_demand(request: web.Request) -> web.Response:
    body = await json_body(request)
    who = _who(request)
    demand = Demand(
        holder_id=who.subject_id or "",
        compute_class=body.text("compute_class", max_len=60),
        estimated_amount_fen=body.fen("estimated_amount_fen"),
        provider_id=body.text("provider_id", max_len=40, required=False),
        period_start=body.text("period_start", max_len=40),
        period_end=body.text("period_end", max_len=40),
    )
    body.done()
    result = await request.app[NODE].issuance.submit(who, demand)
    voucher = result["voucher"]
    return _ok(
        {
            "decision": render.decision(result["decision"]),
            "voucher": render.voucher(voucher) if voucher else None,
            "signed": result["signed"],
        },
        201,
    )


async def list_decisions(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].views.decisions(_who(request), limit, after)
    return _ok(_items([render.decision(d) for d in items], limit))


async def get_decision(request: web.Request) -> web.Response:
    row = await request.app[NODE].views.decision(_who(request), request.match_info["id"])
    return _ok(render.decision(row))


async def list_vouchers(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].views.vouchers(_who(request), limit, after)
    return _ok(_items([render.voucher(v) for v in items], limit))


async def get_voucher(request: web.Request) -> web.Response:
    voucher, signed = await request.app[NODE].views.voucher(_who(request), request.match_info["id"])
    return _ok({"voucher": render.voucher(voucher), "signed": signed})


async def revoke_voucher(request: web.Request) -> web.Response:
    body = await json_body(request)
    reason = body.text("reason", max_len=500, prose=True)
    body.done()
    voucher = await request.app[NODE].spending.revoke(
        _who(request), request.match_info["id"], reason
    )
    return _ok(render.voucher(voucher))


# Spending ---------------------------------------------------------------------------------------


async def create_authorization(request: web.Request) -> web.Response:
    body = await json_body(request)
    provider_id = body.text("provider_id", max_len=60)
    provider_region = body.region("provider_region", required=False)
    max_fen = body.fen("max_fen")
    expires_at = body.time("expires_at")
    body.done()
    auth, code = await request.app[NODE].authorizations.authorize(
        _who(request), request.match_info["id"], provider_id, max_fen, expires_at, provider_region
    )
    return _ok({"authorization": render.authorization(auth), "code": code}, 201)


async def cancel_authorization(request: web.Request) -> web.Response:
    auth_id = request.match_info["id"]
    await request.app[NODE].authorizations.cancel(_who(request), auth_id)
    return _ok({"cancelled": auth_id})


async def list_authorizations(request: web.Request) -> web.Response:
    items = await request.app[NODE].authorizations.of_voucher(
        _who(request), request.match_info["id"]
    )
    return _ok({"items": [render.authorization(a) for a in items], "next_after": None})


async def _order(request: web.Request) -> Order:
    body = await json_body(request)
    order = Order(
        code=body.text("code", max_len=100),
        order_id=body.text("order_id", max_len=100),
        order_amount_fen=body.fen("order_amount_fen"),
        compute_class=body.text("compute_class", max_len=60),
    )
    body.done()
    return order


def _hold_response(result: HoldResult, created: bool = True) -> web.Response:
    """201 for a new hold, 200 for a replay or an action; 202 while the issuing city has not
    answered yet (the node keeps asking; GET the hold to follow it)."""
    hold = result.hold
    if hold.state == "pending" or (isinstance(hold, RemoteHold) and hold.wanted is not None):
        status = 202
    elif created and not result.replayed:
        status = 201
    else:
        status = 200
    return _ok({"hold": render.hold(hold), "replayed": result.replayed}, status)


async def place_hold(request: web.Request) -> web.Response:
    order = await _order(request)
    return _hold_response(await request.app[NODE].spending.hold(_who(request), order))


async def redeem(request: web.Request) -> web.Response:
    order = await _order(request)
    return _hold_response(await request.app[NODE].spending.redeem(_who(request), order))


async def capture_hold(request: web.Request) -> web.Response:
    body = await json_body(request)
    amount = body.fen("amount_fen")
    body.done()
    result = await request.app[NODE].spending.capture(
        _who(request), request.match_info["id"], amount
    )
    return _hold_response(result, created=False)


async def void_hold(request: web.Request) -> web.Response:
    result = await request.app[NODE].spending.void(_who(request), request.match_info["id"])
    return _hold_response(result, created=False)


async def get_hold(request: web.Request) -> web.Response:
    hold = await request.app[NODE].spending.get_hold(_who(request), request.match_info["id"])
    return _ok(render.hold(hold))


async def list_holds(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].spending.holds(_who(request), limit, after)
    return _ok(_items([render.hold(h) for h in items], limit))


async def journal(request: web.Request) -> web.Response:
    query = Query(request)
    limit = query.integer("limit", minimum=1, maximum=500) or 100
    seq = query.integer("after") or 0
    kind = query.choice("kind", JOURNAL_KINDS, "ledger")
    query.done()
    items = await request.app[NODE].views.journal(_who(request), kind, seq, limit)
    return _ok(_items(items, limit, key="seq"))


# Settlement ------------------------------------------------------------------------------------


async def settlement_windows(request: web.Request) -> web.Response:
    return _ok({"items": await request.app[NODE].settlement.windows(_who(request))})


async def close_window(request: web.Request) -> web.Response:
    body = await json_body(request)
    window = body.text("window", max_len=40, required=False)
    body.done()
    try:
        result = await request.app[NODE].settlement.close(_who(request), window)
    except ValueError as exc:
        raise errors.InvalidRequest(f"window: {exc}") from None
    return _ok(result, 201)


async def payouts(request: web.Request) -> web.StreamResponse:
    settlement, query = request.app[NODE].settlement, Query(request)
    window = query.text("window", max_len=40)
    csv = query.choice("format", ("json", "csv"), "json") == "csv"
    if csv:
        query.done()
        chunks = settlement.payouts_csv(_who(request), window)  # refuses before any byte goes
        response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk.encode())
        await response.write_eof()
        return response
    limit, after = query.page()
    query.done()
    items = await settlement.payouts(_who(request), window, limit, after)
    return _ok(_items(items, limit, "cursor"))


async def record_payment(request: web.Request) -> web.Response:
    body = await json_body(request)
    window = body.text("window", max_len=40)
    provider_id = body.text("provider_id", max_len=40)
    amount = body.fen("amount_fen")
    value_date = body.text("value_date", max_len=10)
    reference = body.text("bank_reference", max_len=64)
    body.done()
    payment = await request.app[NODE].disbursements.pay(
        _who(request), window, provider_id, amount, value_date, reference
    )
    return _ok({"payment": payment}, 201)


async def reverse_payment(request: web.Request) -> web.Response:
    body = await json_body(request)
    reason = body.text("reason", max_len=500, prose=True)
    body.done()
    payment = await request.app[NODE].disbursements.reverse(
        _who(request), request.match_info["id"], reason
    )
    return _ok({"payment": payment}, 201)


async def reconcile(request: web.Request) -> web.Response:
    body = await json_body(request)
    text = body.text("csv", max_len=10_000_000, multiline=True, prose=True)
    confirm = body.flag("confirm", default=False)
    body.done()
    lines = bank_statement(text)
    result = await request.app[NODE].disbursements.reconcile(_who(request), lines, confirm)
    return _ok(result)


async def list_payments(request: web.Request) -> web.Response:
    query = Query(request)
    window = query.text("window", max_len=40)
    provider = query.text("provider_id", max_len=40)
    limit, after = query.page()
    query.done()
    items = await request.app[NODE].disbursements.listing(
        _who(request), window, provider, limit, after
    )
    return _ok(_items(items, limit))


async def get_payment(request: web.Request) -> web.Response:
    payment = await request.app[NODE].disbursements.one(_who(request), request.match_info["id"])
    return _ok({"payment": payment})


async def budget_execution(request: web.Request) -> web.Response:
    node, query = request.app[NODE], Query(request)
    year = query.integer("year", minimum=2000, maximum=2200)
    window = query.text("window", max_len=40)
    fmt = query.choice("format", EXECUTION_FORMATS, "json")
    query.done()
    report = await node.views.budget_execution(_who(request), year, window)
    if fmt == "json":
        return _ok(report)
    if fmt == "html":
        return web.Response(text=execution_html(report), content_type="text/html")
    out = io.StringIO()
    execution_csv(report, out)
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8")


async def statements(request: web.Request) -> web.Response:
    return _ok({"items": await request.app[NODE].settlement_views.statements(_who(request))})


async def disputes(request: web.Request) -> web.Response:
    query = Query(request)
    open_only = not query.flag("all")
    query.done()
    return _ok(
        {"items": await request.app[NODE].settlement_views.disputes(_who(request), open_only)}
    )


async def netting(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if node.federation is None:
        raise errors.InvalidRequest("this node is not part of a federation")
    query = Query(request)
    until_ms = query.time("until") or 0
    query.done()
    return _ok(await node.federation.netting.compute(_who(request), until_ms))


def _clearing(request: web.Request) -> Clearing:
    node = request.app[NODE]
    if node.federation is None:
        raise errors.InvalidRequest("this node is not part of a federation")
    return node.federation.clearing


async def transfers_due(request: web.Request) -> web.Response:
    query = Query(request)
    until_ms = query.time("until") or 0
    query.done()
    return _ok({"items": await _clearing(request).due(_who(request), until_ms)})


async def record_transfer(request: web.Request) -> web.Response:
    body = await json_body(request)
    peer = body.region("peer")
    amount = body.fen("amount_fen", minimum=0)
    value_date = body.text("value_date", max_len=10)
    reference = body.text("reference", max_len=64)
    until_ms = body.time("until", required=False) or 0
    body.done()
    transfer = await _clearing(request).record(
        _who(request), peer, amount, value_date, reference, until_ms
    )
    return _ok({"transfer": transfer}, 201)


async def list_transfers(request: web.Request) -> web.Response:
    query = Query(request)
    peer = query.text("peer", max_len=6)
    state = query.text("state", max_len=30)
    query.done()
    if peer is not None and not CLEARING_REGION.fullmatch(peer):
        raise errors.InvalidRequest("peer: a six-digit region code")
    if state is not None and state not in TRANSFER_STATES:
        raise errors.InvalidRequest(f"state: one of {', '.join(TRANSFER_STATES)}")
    return _ok({"items": await _clearing(request).transfers(_who(request), peer, state)})


async def get_transfer(request: web.Request) -> web.Response:
    transfer = await _clearing(request).get(_who(request), request.match_info["id"])
    return _ok({"transfer": transfer})


async def answer_transfer(request: web.Request) -> web.Response:
    body = await json_body(request)
    confirmed = body.flag("confirmed", default=True)
    reason = body.text("reason", max_len=500, prose=True, required=not confirmed) or ""
    body.done()
    transfer = await _clearing(request).answer(
        _who(request), request.match_info["id"], confirmed, reason
    )
    return _ok({"transfer": transfer})


async def create_signin_link(request: web.Request) -> web.Response:
    body = await json_body(request)
    subject = body.text("subject", max_len=60)
    minutes = body.fen("minutes", required=False)
    body.done()
    sessions = request.app[NODE].sessions
    code = await sessions.issue_link(_who(request), subject, minutes or 24 * 60)
    return _ok({"path": f"/ui/link/{code}", "expires_in_minutes": minutes or 24 * 60}, 201)
