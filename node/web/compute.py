"""The holders' "find compute" page (找算力, docs/platform.md): every city's live offers, each
at the price the holder's own vouchers leave it to pay, and orders against them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.domain.fields import is_region
from node.domain.offers import Filters
from node.domain.payments import yuan_to_fen
from node.web.forms import classes_of, error_text, posted, role_of
from node.web.frame import lang_of, render

SORTS = ("effective", "price")


def _filters(query: Any) -> tuple[Filters, str, dict[str, str]]:
    """The search form (a GET: the results can be bookmarked and shared), read leniently: a
    field that does not read is left out of the search and named beside the field."""
    problems: dict[str, str] = {}
    region = query.get("region", "").strip()
    if region and not is_region(region):
        problems["region"] = "region"
    max_price = query.get("max_price", "").strip().replace(",", "")
    cap = None
    if max_price:
        try:
            cap = yuan_to_fen("max_price", max_price)
        except errors.InvalidRequest:
            problems["max_price"] = "max_price"
    sort = query.get("sort", "effective")
    filters = Filters(
        compute_class=query.get("compute_class") or None,
        accelerator=(query.get("accelerator") or "").strip()[:40] or None,
        region=region if region and "region" not in problems else None,
        max_price_fen=cap,
        domestic_chips=query.get("domestic_chips") == "1",
    )
    return filters, sort if sort in SORTS else "effective", problems


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "holder")
    lang = lang_of(request)
    filters, sort, problems = _filters(request.query)
    found = await node.catalog.search(who, filters, sort, 50)
    orders = await node.orders.list(who, 50, "")
    words = {
        "region": "请填写六位地区代码" if lang == "zh" else "Six-digit region code",
        "max_price": "请填写金额，例如 25.00" if lang == "zh" else "An amount such as 25.00",
    }
    context: dict[str, Any] = {
        "found": found,
        "orders": sorted(orders, key=lambda o: o["created_at"], reverse=True),
        "query": dict(request.query),
        "classes": classes_of(node),
        "errors": {k: words[k] for k in problems},
        "summary": [words[k] for k in problems],
        "region": node.config.region,
        "ordered": None,
    }
    context.update(extra)
    return render(request, "holder_compute.html", status, **context)


async def holder_compute(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def holder_order(request: web.Request) -> web.StreamResponse:
    """Ask an offer's provider for an order (protocol §5e for another city's offer)."""
    who, form, lang, fields = await posted(request, "holder")
    hours = form.get("card_hours", "")
    if not hours.isdigit() or not 1 <= int(hours) <= 100_000_000:
        fields["card_hours"] = "请填写卡时数" if lang == "zh" else "Enter a number of card-hours"
    if fields:
        return await _page(request, 400, summary=list(fields.values()))
    try:
        order = await request.app[NODE].orders.request(
            who,
            form.get("origin", ""),
            form.get("offer_id", ""),
            int(hours),
            form.get("note", "")[:500],
        )
    except errors.SuanliError as exc:
        return await _page(request, 400, summary=[error_text(exc, lang)])
    return await _page(request, 201, ordered=order)
