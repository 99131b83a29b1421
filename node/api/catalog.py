"""REST handlers for sharing compute (issue 20; docs/api.md, "Compute offers"): offers,
the catalog search at the price after the holder's vouchers, orders, utilisation. Each
parses, calls one service method and renders the result, as ``handlers`` does."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api import render
from node.api.appkeys import NODE
from node.api.handlers import _items, _ok, _who
from node.api.parse import Query, json_body, page
from node.domain.fields import require_region
from node.domain.offers import Filters, Terms


async def _terms(request: web.Request) -> Terms:
    body = await json_body(request)
    until = body.time("available_until")
    terms = Terms(
        compute_class=body.text("compute_class", max_len=60),
        accelerator=body.text("accelerator", max_len=40),
        cards=body.fen("cards"),
        price_fen=body.fen("price_fen"),
        min_card_hours=body.fen("min_card_hours"),
        available_from=body.time("available_from"),
        available_until=until,
        expires_at=body.time("expires_at", required=False) or until,
        data_centre_region=body.region("data_centre_region", required=False)
        or request.app[NODE].config.region,
        domestic_chips=body.flag("domestic_chips", default=False),
        security_level=body.fen("security_level", minimum=0, required=False) or 0,
        contact=body.text("contact", max_len=200, required=False, prose=True) or "",
    )
    body.done()
    return terms


def _offer(request: web.Request, offer: Any, status: int = 200) -> web.Response:
    return _ok(render.offer(offer, request.app[NODE].clock.now_ms()), status)


async def publish_offer(request: web.Request) -> web.Response:
    terms = await _terms(request)
    return _offer(request, await request.app[NODE].catalog.publish(_who(request), terms), 201)


async def change_offer(request: web.Request) -> web.Response:
    terms = await _terms(request)
    catalog = request.app[NODE].catalog
    return _offer(request, await catalog.change(_who(request), request.match_info["id"], terms))


async def withdraw_offer(request: web.Request) -> web.Response:
    catalog = request.app[NODE].catalog
    return _offer(request, await catalog.withdraw(_who(request), request.match_info["id"]))


async def list_offers(request: web.Request) -> web.Response:
    query = Query(request)
    query.done()
    now = request.app[NODE].clock.now_ms()
    own = await request.app[NODE].catalog.own(_who(request))
    return _ok({"items": [render.offer(o, now) for o in own]})


def _region(text: str | None) -> str | None:
    return None if text is None else require_region("region", text)


async def search_catalog(request: web.Request) -> web.Response:
    query = Query(request)
    filters = Filters(
        compute_class=query.text("compute_class", max_len=60),
        accelerator=query.text("accelerator", max_len=40),
        region=_region(query.text("region", max_len=6)),
        max_price_fen=query.integer("max_price_fen", minimum=1),
        min_cards=query.integer("min_cards", minimum=1),
        available_from=query.time("from"),
        available_until=query.time("until"),
        domestic_chips=query.flag("domestic_chips"),
        min_security_level=query.integer("min_security_level", minimum=0, maximum=4),
    )
    sort = query.choice("sort", ("effective", "price"), "effective")
    limit = query.integer("limit", minimum=1, maximum=200) or 50
    query.done()
    node = request.app[NODE]
    found = await node.catalog.search(_who(request), filters, sort, limit)
    now = node.clock.now_ms()
    return _ok(
        {
            "items": [render.priced(p, now) for p in found.items],
            "vouchers": [render.purse(c, p) for c, p in sorted(found.purses.items())],
            "outbound": sorted(found.reach.room_fen),
            "cap_left_fen": found.cap_left_fen,
        }
    )


async def request_order(request: web.Request) -> web.Response:
    body = await json_body(request)
    origin = body.region("origin")
    offer_id = body.text("offer_id", max_len=64)
    card_hours = body.fen("card_hours")
    note = body.text("note", max_len=500, required=False, prose=True) or ""
    body.done()
    orders = request.app[NODE].orders
    return _ok(await orders.request(_who(request), origin, offer_id, card_hours, note), 201)


async def list_orders(request: web.Request) -> web.Response:
    limit, after = page(request)
    items = await request.app[NODE].orders.list(_who(request), limit, after)
    return _ok(_items(items, limit))


async def get_order(request: web.Request) -> web.Response:
    return _ok(await request.app[NODE].orders.get(_who(request), request.match_info["id"]))


async def accept_order(request: web.Request) -> web.Response:
    body = await json_body(request)
    order_id = body.text("order_id", max_len=100)
    body.done()
    orders = request.app[NODE].orders
    return _ok(await orders.decide(_who(request), request.match_info["id"], True, order_id, ""))


async def decline_order(request: web.Request) -> web.Response:
    body = await json_body(request)
    reason = body.text("reason", max_len=500, prose=True)
    body.done()
    orders = request.app[NODE].orders
    return _ok(await orders.decide(_who(request), request.match_info["id"], False, "", reason))


async def catalog_utilisation(request: web.Request) -> web.Response:
    query = Query(request)
    between = query.flag("between")
    query.done()
    return _ok(await request.app[NODE].catalog.utilisation(_who(request), between))
