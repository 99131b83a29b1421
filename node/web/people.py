"""The holders' and providers' pages (docs/platform.md, "Holders" and "Providers")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.issuance import Demand
from node.domain.windows import CST
from node.services.spending import Order
from node.web import qr
from node.web.forms import (
    classes_of,
    error_text,
    field_of,
    posted,
    read_form,
    role_of,
    text_field,
    yuan_field,
)
from node.web.frame import lang_of, render


async def _holder_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "holder")
    vouchers = await node.views.vouchers(who, 50, "")
    holds = await node.spending.holds(who, 20, "")
    year = year_of(node.clock.now_ms())
    statement = await node.views.holder_statement(who, who.subject_id, year)
    classes = classes_of(node)
    today = dt.datetime.fromtimestamp(node.clock.now_ms() / 1000, CST).date()
    context: dict[str, Any] = {
        "authorizations": await node.authorizations.open(who),
        "vouchers": vouchers,
        "holds": holds,
        "statement": statement,
        "classes": classes,
        "region": node.config.region,
        "city": node.config.name,
        "today": today.isoformat(),
        "year_end": f"{today.year}-12-31",
        "result": None,
        "code": None,
        "cancelled": None,
    }
    context.update(extra)
    return render(request, "holder.html", status, **context)


async def holder_home(request: web.Request) -> web.StreamResponse:
    return await _holder_page(request)


async def holder_demand(request: web.Request) -> web.StreamResponse:
    who, form, lang, fields = await posted(request, "holder")
    compute_class = text_field(form, "compute_class", fields, lang)
    amount = yuan_field(form, "estimate", fields, lang)
    start = text_field(form, "period_start", fields, lang)
    end = text_field(form, "period_end", fields, lang)
    provider = form.get("provider_id") or None
    if fields:
        return await _holder_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    try:
        demand = Demand(who.subject_id or "", compute_class, amount, provider, start, end)
        result = await request.app[NODE].issuance.submit(who, demand)
    except errors.InvalidRequest as exc:
        known = ("compute_class", "provider_id", "period_start", "period_end")
        message = error_text(exc, lang)
        field = field_of(exc, known, message)
        return await _holder_page(request, 400, errors=field, summary=[message], form=form)
    return await _holder_page(request, 201, result=result)


async def holder_authorize(request: web.Request) -> web.StreamResponse:
    who, form, lang, fields = await posted(request, "holder")
    node = request.app[NODE]
    provider = text_field(form, "provider_id", fields, lang)
    maximum = yuan_field(form, "max_yuan", fields, lang)
    region = form.get("provider_region") or None
    days = form.get("days", "7")
    if not days.isdigit() or not 1 <= int(days) <= 90:
        fields["days"] = "1 到 90 天" if lang == "zh" else "1 to 90 days"
    if fields:
        return await _holder_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    try:
        expires = node.clock.now_ms() + int(days) * 86_400_000
        auth, code = await node.authorizations.authorize(
            who, request.match_info["id"], provider, maximum, expires, region
        )
    except errors.SuanliError as exc:
        return await _holder_page(
            request, 400, errors={}, summary=[error_text(exc, lang_of(request))], form=form
        )
    return await _holder_page(
        request, 201, code={"code": code, "authorization": auth, "qr": qr.data_uri(code)}
    )


async def holder_cancel(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "holder")
    await request.app[NODE].authorizations.cancel(who, request.match_info["id"])
    return await _holder_page(request, 200, cancelled=request.match_info["id"])


async def _provider_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "provider")
    holds = await node.spending.holds(who, 50, "")
    awaiting = await node.spending.awaiting_issuer(who, 50)
    payouts = await node.settlement.payouts(who, None)
    payments = await node.disbursements.listing(who, None, None)
    context: dict[str, Any] = {
        "payments": payments,
        "holds": holds,
        "awaiting": awaiting,
        "payouts": payouts,
        "classes": classes_of(node),
        "result": None,
    }
    context.update(extra)
    return render(request, "provider.html", status, **context)


async def provider_home(request: web.Request) -> web.StreamResponse:
    return await _provider_page(request)


async def provider_redeem(request: web.Request) -> web.StreamResponse:
    who, form, lang, fields = await posted(request, "provider")
    node = request.app[NODE]
    code = text_field(form, "code", fields, lang)
    order_id = text_field(form, "order_id", fields, lang)
    amount = yuan_field(form, "order_amount", fields, lang)
    compute_class = text_field(form, "compute_class", fields, lang)
    if fields:
        return await _provider_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    try:
        order = Order(code, order_id, amount, compute_class)
        spend = node.spending.hold if form.get("mode") == "hold" else node.spending.redeem
        result = await spend(who, order)
    except errors.SuanliError as exc:
        message = error_text(exc, lang)
        return await _provider_page(request, 400, errors={}, summary=[message], form=form)
    return await _provider_page(request, 201, result=result.hold)


async def provider_capture(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "provider")
    form = await read_form(request)
    fields: dict[str, str] = {}
    amount = yuan_field(form, "amount", fields, lang_of(request))
    if fields:
        return await _provider_page(request, 400, errors=fields, summary=list(fields.values()))
    result = await request.app[NODE].spending.capture(who, request.match_info["id"], amount)
    return await _provider_page(request, 200, result=result.hold)


async def provider_void(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "provider")
    result = await request.app[NODE].spending.void(who, request.match_info["id"])
    return await _provider_page(request, 200, result=result.hold)


async def provider_advice(request: web.Request) -> web.StreamResponse:
    """A payment's signed advice as a file the provider keeps and verifies offline
    (docs/settlement.md, "The payment advice")."""
    import json

    who = role_of(request, "provider")
    payment = await request.app[NODE].disbursements.one(who, request.match_info["id"])
    body = {k: payment[k] for k in ("advice", "signature", "key_id")}
    return web.Response(
        text=json.dumps(body, ensure_ascii=False, indent=2),
        content_type="application/json",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{payment["id"]}.json"'},
    )


async def holder_voucher_qr(request: web.Request) -> web.StreamResponse:
    """A voucher's QR code (its city and id), for its holder only."""
    node = request.app[NODE]
    who = role_of(request, "holder")
    voucher, _ = await node.views.voucher(who, request.match_info["id"])
    svg = qr.svg(qr.voucher_text(node.config.region, voucher.id))
    return web.Response(
        body=svg, content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=86400"}
    )
