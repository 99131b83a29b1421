"""The providers' offers page (我的报价, docs/platform.md, "Providers"): publish and withdraw
compute offers, and answer holders' order requests with an order id or a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.domain.model import field_names
from node.domain.offers import Terms
from node.domain.windows import CST
from node.web.forms import classes_of, error_text, field_of, posted, role_of, text_field, yuan_field
from node.web.frame import render

TERMS_FIELDS = field_names(Terms)
# The form's names for the service's fields, so that a refusal lands beside its field.
FORM_NAME = {"price_fen": "price", "expires_at": "available_until"}


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "provider")
    now = node.clock.now_ms()
    today = dt.datetime.fromtimestamp(now / 1000, CST).date()
    context: dict[str, Any] = {
        "offers": await node.catalog.own(who),
        "requests": await node.orders.list(who, 100, ""),
        "classes": classes_of(node),
        "now": now,
        "today": today.isoformat(),
        "month_on": (today + dt.timedelta(days=30)).isoformat(),
        "form": {},
        "errors": {},
        "summary": [],
        "published": None,
        "decided": None,
    }
    context.update(extra)
    return render(request, "provider_offers.html", status, **context)


async def provider_offers(request: web.Request) -> web.StreamResponse:
    return await _page(request)


def _count(form: dict[str, str], name: str, fields: dict[str, str], lang: str, most: int) -> int:
    value = form.get(name, "")
    if not value.isdigit() or not 1 <= int(value) <= most:
        fields[name] = f"1 到 {most:,}" if lang == "zh" else f"1 to {most:,}"
        return 0
    return int(value)


def _day(form: dict[str, str], name: str, fields: dict[str, str], lang: str) -> int:
    """A date field as the start of that day in China Standard Time, in ms."""
    try:
        day = dt.date.fromisoformat(form.get(name, ""))
    except ValueError:
        fields[name] = "请选择日期" if lang == "zh" else "Choose a date"
        return 0
    return int(dt.datetime.combine(day, dt.time(), CST).timestamp() * 1000)


async def provider_publish(request: web.Request) -> web.StreamResponse:
    who, form, lang, fields = await posted(request, "provider")
    node = request.app[NODE]
    compute_class = text_field(form, "compute_class", fields, lang)
    accelerator = text_field(form, "accelerator", fields, lang)
    cards = _count(form, "cards", fields, lang, 1_000_000)
    price = yuan_field(form, "price", fields, lang)
    hours = _count(form, "min_card_hours", fields, lang, 100_000_000)
    start = _day(form, "available_from", fields, lang)
    until = _day(form, "available_until", fields, lang)
    level = form.get("security_level", "0")
    if fields:
        return await _page(request, 400, errors=fields, summary=list(fields.values()), form=form)
    terms = Terms(
        compute_class=compute_class,
        accelerator=accelerator,
        cards=cards,
        price_fen=price,
        min_card_hours=hours,
        available_from=start,
        available_until=until,
        expires_at=until,
        data_centre_region=form.get("data_centre_region") or node.config.region,
        domestic_chips=form.get("domestic_chips") == "1",
        security_level=int(level) if level.isdigit() else 9,
        contact=form.get("contact", ""),
    )
    try:
        offer = await node.catalog.publish(who, terms)
    except errors.SuanliError as exc:
        message = error_text(exc, lang)
        field = field_of(exc, TERMS_FIELDS, message)
        field = {FORM_NAME.get(k, k): v for k, v in field.items()}
        return await _page(request, 400, errors=field, summary=[message], form=form)
    return await _page(request, 201, published=offer)


async def provider_change(request: web.Request) -> web.StreamResponse:
    """A new version of an offer at a new price and number of cards (its other terms as they
    are): the node signs it and sends it to every city."""
    who, form, lang, fields = await posted(request, "provider")
    node = request.app[NODE]
    price = yuan_field(form, "price", fields, lang)
    cards = _count(form, "cards", fields, lang, 1_000_000)
    if fields:
        return await _page(request, 400, errors=fields, summary=list(fields.values()))
    offer_id = request.match_info["id"]
    mine = {o.offer_id: o for o in await node.catalog.own(who)}
    try:
        if offer_id not in mine:
            raise errors.OfferNotFound(f"no offer {offer_id[:70]!r} of this provider")
        terms = dataclasses.replace(mine[offer_id].terms, price_fen=price, cards=cards)
        offer = await node.catalog.change(who, offer_id, terms)
    except errors.SuanliError as exc:
        return await _page(request, 400, summary=[error_text(exc, lang)])
    return await _page(request, 200, published=offer)


async def provider_withdraw(request: web.Request) -> web.StreamResponse:
    who, _, lang, _ = await posted(request, "provider")
    try:
        await request.app[NODE].catalog.withdraw(who, request.match_info["id"])
    except errors.SuanliError as exc:
        return await _page(request, 400, summary=[error_text(exc, lang)])
    return await _page(request)


async def provider_decide(request: web.Request) -> web.StreamResponse:
    who, form, lang, _ = await posted(request, "provider")
    accept = request.match_info["decision"] == "accept"
    order_id = form.get("order_id", "") if accept else ""
    reason = "" if accept else form.get("reason", "")
    try:
        decided = await request.app[NODE].orders.decide(
            who, request.match_info["id"], accept, order_id, reason
        )
    except errors.SuanliError as exc:
        return await _page(request, 400, summary=[error_text(exc, lang)])
    return await _page(request, 200, decided=decided)
