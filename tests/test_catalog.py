"""Compute offers (issue 20): the rules and the price after the voucher (pure), the provider's
and the holder's API on a real node, and the door's side of OFFERS and OFFER_QUERY with a fake
peer city whose key is pre-loaded (hand-made signed envelopes, every bad one included)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from node import errors
from node.domain.model import Voucher
from node.domain.offers import (
    NO_ROOM,
    NO_VOUCHER,
    NOT_ALLOWED,
    Offer,
    Reach,
    Terms,
    check_terms,
    newer,
    price_after,
    purses,
)
from tests.conftest import START, Api, World

HOUR = 3_600_000
DAY = 24 * HOUR
CLASSES = ("model_services", "domestic_chips", "other_compute")


def terms(**over: Any) -> Terms:
    base = Terms(
        compute_class="domestic_chips",
        accelerator="Ascend 910B",
        cards=64,
        price_fen=2_500,
        min_card_hours=100,
        available_from=START,
        available_until=START + 30 * DAY,
        expires_at=START + 30 * DAY,
        data_centre_region="520100",
        domestic_chips=True,
        security_level=3,
        contact="sales@example.cn",
    )
    return dataclasses.replace(base, **over)


def offer(origin: str = "520100", seq: int = 1, **over: Any) -> Offer:
    return Offer(
        origin,
        "of_1",
        seq,
        seq,
        False,
        "p_1",
        "GY centre",
        "computing_centre",
        terms(**over),
        START,
    )


def voucher(
    compute_class: str, ratio: int, available: int, vid: str = "v1", **over: Any
) -> Voucher:
    base = Voucher(
        vid,
        "h1",
        2026,
        compute_class,
        ratio,
        available,
        available,
        0,
        0,
        0,
        "active",
        START,
        START + 300 * DAY,
        "d1",
    )
    return dataclasses.replace(base, **over)


# The rules, pure -----------------------------------------------------------------------------


def test_terms_are_checked_field_by_field() -> None:
    check_terms(terms(), CLASSES, START)
    for bad, field in (
        (terms(accelerator=""), "accelerator"),
        (terms(accelerator="A800\n"), "accelerator"),
        (terms(cards=0), "cards"),
        (terms(price_fen=0), "price_fen"),
        (terms(min_card_hours=0), "min_card_hours"),
        (terms(available_until=START), "available_until"),
        (terms(expires_at=START + 31 * DAY), "expires_at"),
        (terms(expires_at=START - 1, available_from=START - DAY), "expires_at"),
        (terms(data_centre_region="52010"), "data_centre_region"),
        (terms(security_level=5), "security_level"),
        (terms(contact="x" * 201), "contact"),
        (terms(price_fen=10**15, min_card_hours=2), "min_card_hours"),
    ):
        with pytest.raises(errors.InvalidRequest, match=f"^{field}:"):
            check_terms(bad, CLASSES, START)
    with pytest.raises(errors.UnknownComputeClass):
        check_terms(terms(compute_class="storage"), CLASSES, START)


def test_only_a_higher_sequence_number_replaces_an_offer() -> None:
    assert newer(offer(seq=2), None)
    assert newer(offer(seq=3), offer(seq=2))
    assert not newer(offer(seq=2), offer(seq=2))
    assert not newer(offer(seq=1), offer(seq=2))


def test_the_price_after_the_voucher_by_hand() -> None:
    home = Reach("330100", {"520100": 10_000_000})
    # 30 % of 2,500 fen is 750: 1,750 fen a card-hour; the smallest order (100 card-hours,
    # 250,000 fen) gets 75,000 fen.
    p = price_after(offer(), purses([voucher("domestic_chips", 3000, 5_000_000)], START), home)
    assert (p.ratio_bp, p.subsidy_fen, p.effective_fen) == (3000, 750, 1_750)
    assert (p.min_order_fen, p.min_order_subsidy_fen, p.why_not) == (250_000, 75_000, None)
    # Truncated toward zero: 30 % of 333 is 99.9, so 99; the order's 999 is 99,900 / 100.
    p = price_after(
        offer(price_fen=333, min_card_hours=10),
        purses([voucher("domestic_chips", 3000, 10**6)], START),
        home,
    )
    assert (p.subsidy_fen, p.effective_fen, p.min_order_subsidy_fen) == (99, 234, 999)
    # The balance limits the order's subsidy, not the price per card-hour.
    p = price_after(offer(), purses([voucher("domestic_chips", 3000, 1_234)], START), home)
    assert (p.effective_fen, p.min_order_subsidy_fen) == (1_750, 1_234)
    # So does the room left under the exposure cap to the offer's city.
    p = price_after(
        offer(),
        purses([voucher("domestic_chips", 3000, 10**6)], START),
        Reach("330100", {"520100": 500}),
    )
    assert p.min_order_subsidy_fen == 500
    # The best voucher of the class is the one with the highest ratio, then the most left;
    # spent, expired or revoked vouchers do not count.
    mine = [
        voucher("domestic_chips", 2000, 10**6, "v-low"),
        voucher("domestic_chips", 5000, 10, "v-high"),
        voucher("domestic_chips", 6000, 0, "v-spent"),
        voucher("domestic_chips", 7000, 10**6, "v-old", expires_at=START),
        voucher("domestic_chips", 8000, 10**6, "v-revoked", state="revoked"),
    ]
    p = price_after(offer(), purses(mine, START), home)
    assert (p.voucher_id, p.effective_fen, p.min_order_subsidy_fen) == ("v-high", 1_250, 10)


def test_no_subsidy_says_why() -> None:
    chips = purses([voucher("domestic_chips", 3000, 10**6)], START)
    cases = (
        (
            purses([voucher("model_services", 3000, 10**6)], START),
            Reach("330100", {"520100": 10**6}),
            NO_VOUCHER,
        ),
        (chips, Reach("330100", {}), NOT_ALLOWED),
        (chips, Reach("330100", {"520100": 0}), NO_ROOM),
    )
    for purse, reach, why in cases:
        p = price_after(offer(), purse, reach)
        assert (p.why_not, p.ratio_bp, p.subsidy_fen, p.effective_fen) == (why, 0, 0, 2_500)
    # At home there is no exposure cap.
    p = price_after(offer(origin="330100"), chips, Reach("330100", {}))
    assert p.effective_fen == 1_750


# The provider's and the holder's API -----------------------------------------------------------


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "compute_class": "domestic_chips",
        "accelerator": "Ascend 910B",
        "cards": 64,
        "price_fen": 2_500,
        "min_card_hours": 100,
        "available_from": "2026-03-02T00:00:00Z",
        "available_until": "2026-04-30T00:00:00Z",
        "domestic_chips": True,
        "security_level": 3,
        "contact": "销售部 0571-0000000",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


async def test_a_provider_publishes_changes_and_withdraws_its_offers(world: World) -> None:
    centre = world.providers["alicloud"]
    first = await centre.post("/v1/offers", body(), expect=201)
    assert (first["origin"], first["seq"], first["version"], first["state"]) == (
        "330100",
        1,
        1,
        "live",
    )
    assert first["expires_at"] == "2026-04-30T00:00:00.000Z"  # by default, with the availability
    assert first["data_centre_region"] == "330100" and first["provider_name"] == "alicloud"
    second = await centre.post(
        "/v1/offers", body(accelerator="A800", compute_class="model_services"), expect=201
    )
    assert second["seq"] == 2
    changed = await centre.call(
        "PUT", f"/v1/offers/{first['id']}", body(price_fen=2_000), expect=200
    )
    assert (changed["seq"], changed["version"], changed["price_fen"]) == (3, 2, 2_000)
    gone = await centre.post(f"/v1/offers/{second['id']}/withdraw", expect=200)
    assert (gone["seq"], gone["state"]) == (4, "withdrawn")
    await centre.post(f"/v1/offers/{second['id']}/withdraw", expect=409, code="offer_withdrawn")
    await centre.call(
        "PUT", f"/v1/offers/{second['id']}", body(), expect=409, code="offer_withdrawn"
    )
    mine = await centre.get("/v1/offers", expect=200)
    assert [(o["id"], o["state"]) for o in mine["items"]] == sorted(
        [(first["id"], "live"), (second["id"], "withdrawn")]
    )
    # Another provider neither sees nor touches them; the operator sees the city's.
    other = world.providers["sugon"]
    assert (await other.get("/v1/offers", expect=200))["items"] == []
    await other.post(f"/v1/offers/{first['id']}/withdraw", expect=404, code="offer_not_found")
    assert len((await world.op.get("/v1/offers", expect=200))["items"]) == 2


async def test_bad_offers_are_refused_and_change_nothing(world: World, api: Api) -> None:
    centre = world.providers["alicloud"]
    await centre.post("/v1/offers", body(), expect=201)
    before = await centre.get("/v1/offers", expect=200)
    for bad, code, status in (
        (body(compute_class="storage"), "unknown_compute_class", 422),
        (body(cards=0), "invalid_request", 400),
        (body(cards=1.5), "invalid_request", 400),
        (body(price_fen="100"), "invalid_request", 400),
        (body(available_until="2026-03-01T00:00:00Z"), "invalid_request", 400),
        (
            body(expires_at="2026-03-01T00:00:00Z", available_from="2026-02-01T00:00:00Z"),
            "invalid_request",
            400,
        ),
        (body(security_level=9), "invalid_request", 400),
        (body(accelerator="<script>"), "invalid_request", 400),
        (body(data_centre_region="99"), "invalid_request", 400),
        (body(surprise=1), "invalid_request", 400),
        (body(available_until="2027-12-31T00:00:00Z"), "invalid_request", 400),
    ):
        await centre.post("/v1/offers", bad, expect=status, code=code)
    # Only a provider publishes; a holder or the operator may not.
    await world.holders["acme"].post("/v1/offers", body(), expect=403, code="forbidden")
    await world.op.post("/v1/offers", body(), expect=403, code="forbidden")
    await api.as_(None).post("/v1/offers", body(), expect=401, code="unauthenticated")
    assert await centre.get("/v1/offers", expect=200) == before


async def test_a_provider_that_is_not_approved_cannot_publish_and_loses_its_offers(
    world: World,
) -> None:
    from node.api.appkeys import NODE

    centre = world.providers["alicloud"]
    live = await centre.post("/v1/offers", body(), expect=201)
    await world.op.post(
        f"/v1/providers/{world.provider_ids['alicloud']}/state",
        {"state": "suspended", "reason": "licence lapsed"},
        expect=200,
    )
    await centre.post("/v1/offers", body(), expect=403, code="provider_not_approved")
    node = world.op.client.app[NODE]
    assert await node.catalog.sweep() == 1
    mine = await centre.get("/v1/offers", expect=200)
    assert [(o["id"], o["state"], o["seq"]) for o in mine["items"]] == [
        (live["id"], "withdrawn", 2)
    ]
    assert await node.catalog.sweep() == 0


async def test_a_holder_sees_each_offer_priced_after_its_own_voucher(world: World) -> None:
    centre = world.providers["alicloud"]
    chips = await centre.post("/v1/offers", body(price_fen=2_500), expect=201)
    model = await centre.post(
        "/v1/offers",
        body(compute_class="model_services", accelerator="H20", price_fen=2_200),
        expect=201,
    )
    cheap = await centre.post(
        "/v1/offers",
        body(compute_class="other_compute", accelerator="A800", price_fen=2_100),
        expect=201,
    )
    acme = world.holders["acme"]
    # No voucher yet: list prices, cheapest first, each saying why there is no subsidy.
    found = await acme.get("/v1/catalog", expect=200)
    assert [i["offer"]["id"] for i in found["items"]] == [cheap["id"], model["id"], chips["id"]]
    assert {i["no_subsidy_reason"] for i in found["items"]} == {"no_voucher_for_class"}
    assert found["vouchers"] == []
    # A ¥1,000,000 demand for model services: a 30 % voucher of ¥300,000.
    v = await world.voucher("acme", 100_000_000, "model_services")
    assert v["ratio_bp"] == 3000
    found = await acme.get("/v1/catalog", expect=200)
    # 2,200 less 30 % (660) is 1,540: now the cheapest after the voucher.
    first = found["items"][0]
    assert first["offer"]["id"] == model["id"]
    assert (first["effective_price_fen"], first["subsidy_fen"], first["voucher_id"]) == (
        1_540,
        660,
        v["id"],
    )
    assert first["min_order_fen"] == 220_000 and first["min_order_subsidy_fen"] == 66_000
    assert [i["offer"]["id"] for i in found["items"][1:]] == [cheap["id"], chips["id"]]
    assert found["vouchers"] == [
        {
            "compute_class": "model_services",
            "voucher_id": v["id"],
            "ratio_bp": 3000,
            "available_fen": 30_000_000,
        }
    ]
    by_price = await acme.get("/v1/catalog?sort=price", expect=200)
    assert [i["offer"]["id"] for i in by_price["items"]] == [cheap["id"], model["id"], chips["id"]]
    # Filters.
    only = await acme.get(
        "/v1/catalog?accelerator=Ascend%20910B&domestic_chips=1&min_security_level=3", expect=200
    )
    assert [i["offer"]["id"] for i in only["items"]] == [chips["id"]]
    assert (await acme.get("/v1/catalog?max_price_fen=2100", expect=200))["items"][0]["offer"][
        "id"
    ] == cheap["id"]
    assert (await acme.get("/v1/catalog?min_cards=65", expect=200))["items"] == []
    assert (await acme.get("/v1/catalog?region=520100", expect=200))["items"] == []
    window = "from=2026-03-10T00:00:00Z&until=2026-04-01T00:00:00Z"
    assert len((await acme.get(f"/v1/catalog?{window}", expect=200))["items"]) == 3
    assert (await acme.get("/v1/catalog?until=2026-05-01T00:00:00Z", expect=200))["items"] == []
    # Withdrawn offers are gone from searches.
    await centre.post(f"/v1/offers/{model['id']}/withdraw", expect=200)
    found = await acme.get("/v1/catalog", expect=200)
    assert model["id"] not in [i["offer"]["id"] for i in found["items"]]
    # Bad searches are refused, naming the parameter; only holders search.
    for query in (
        "sort=cheap",
        "limit=0",
        "limit=201",
        "region=abc",
        "min_security_level=5",
        "max_price_fen=x",
        "colour=red",
        "limit=1&limit=2",
    ):
        await acme.get(f"/v1/catalog?{query}", expect=400, code="invalid_request")
    await centre.get("/v1/catalog", expect=403, code="forbidden")


# Orders against offers --------------------------------------------------------------------------


async def test_an_order_goes_from_an_offer_to_a_redemption_linked_by_its_order_id(
    world: World,
) -> None:
    centre = world.providers["alicloud"]
    offer = await centre.post(
        "/v1/offers", body(compute_class="model_services", price_fen=2_000), expect=201
    )
    acme = world.holders["acme"]
    v = await world.voucher("acme", 100_000_000, "model_services")
    ask = {"origin": "330100", "offer_id": offer["id"], "card_hours": 150, "note": "训练一周"}
    order = await acme.post("/v1/orders", ask, expect=201)
    assert (order["side"], order["state"], order["amount_fen"]) == ("local", "requested", 300_000)
    assert order["redemption"] is None and order["provider_id"] == world.provider_ids["alicloud"]
    # The provider sees it, accepts it with its own order id.
    seen = await centre.get("/v1/orders", expect=200)
    assert [o["id"] for o in seen["items"]] == [order["id"]]
    await world.providers["sugon"].post(
        f"/v1/orders/{order['id']}/accept", {"order_id": "X"}, expect=404, code="order_not_found"
    )
    accepted = await centre.post(
        f"/v1/orders/{order['id']}/accept", {"order_id": "ALI-2026-0007"}, expect=200
    )
    assert (accepted["state"], accepted["order_id"]) == ("accepted", "ALI-2026-0007")
    await centre.post(
        f"/v1/orders/{order['id']}/decline", {"reason": "no"}, expect=409, code="order_decided"
    )
    # The holder gives the provider a code; the provider redeems the order under its id.
    code = await world.code("acme", v["id"], "alicloud", 90_000, "2026-03-20T00:00:00Z")
    redeem = {
        "code": code,
        "order_id": "ALI-2026-0007",
        "order_amount_fen": 300_000,
        "compute_class": "model_services",
    }
    await centre.post("/v1/redemptions", redeem, expect=201)
    # Both see the order with its redemption: 30 % of 300,000 fen, captured.
    for who in (acme, centre, world.op):
        shown = await who.get(f"/v1/orders/{order['id']}", expect=200)
        assert shown["redemption"]["state"] == "captured", shown
        assert shown["redemption"]["captured_fen"] == 90_000
    # Another holder neither sees nor can guess it.
    await world.holders["zju"].get(f"/v1/orders/{order['id']}", expect=404, code="order_not_found")
    assert (await world.holders["zju"].get("/v1/orders", expect=200))["items"] == []
    # Utilisation: what is offered, what the order took and what was captured against it.
    use = await world.op.get("/v1/catalog/utilisation", expect=200)
    [cls] = use["classes"]
    assert cls["compute_class"] == "model_services"
    assert (cls["offers"], cls["cards"], cls["orders"]) == (1, 64, 1)
    assert (cls["ordered_card_hours"], cls["ordered_fen"], cls["captured_fen"]) == (
        150,
        300_000,
        90_000,
    )
    # 64 cards from 2026-03-02 09:00 (+08:00, now) to 2026-04-30 00:00 UTC: 1,415 hours each.
    assert cls["card_hours"] == 64 * 1_415
    assert cls["used_bp"] == 150 * 10_000 // (64 * 1_415)
    assert use["providers"][0]["provider_id"] == world.provider_ids["alicloud"]
    assert use["federation"] == [
        {
            "city": "330100",
            "compute_class": "model_services",
            "offers": 1,
            "cards": 64,
            "card_hours": 64 * 1_415,
        }
    ]
    await acme.get("/v1/catalog/utilisation", expect=403, code="forbidden")
    # The same in the metrics Prometheus scrapes, and on the operators' overview.
    text = await (await world.op.client.get("/metrics")).text()
    for line in (
        'suanli_offer_orders_captured_fen{compute_class="model_services",region="330100"} 90000.0',
        'suanli_offer_orders_card_hours{compute_class="model_services",region="330100"} 150.0',
        'suanli_catalog_offered_cards{city="330100",compute_class="model_services",region="330100"} 64.0',
    ):
        assert line in text, line
    from tests.test_web import Browser

    page = Browser(world)
    await page.sign_in(world.op.token or "")
    resp, html = await page.go("GET", "/ui/operator")
    assert (
        resp.status == 200 and 'id="compute-use"' in html and 'data-class="model_services"' in html
    )
    assert "算力供给与使用" in html and "¥900.00" in html


async def test_bad_order_requests_are_refused(world: World) -> None:
    centre = world.providers["alicloud"]
    offer = await centre.post("/v1/offers", body(), expect=201)
    acme = world.holders["acme"]
    ask = {"origin": "330100", "offer_id": offer["id"], "card_hours": 150}
    for bad, code, status in (
        ({**ask, "card_hours": 99}, "invalid_request", 400),  # below the smallest order
        ({**ask, "card_hours": 0}, "invalid_request", 400),
        ({**ask, "offer_id": "of_nothing"}, "offer_not_found", 404),
        ({**ask, "origin": "520100"}, "offer_not_found", 404),
        ({**ask, "origin": "52"}, "invalid_request", 400),
        ({**ask, "note": "x" * 501}, "invalid_request", 400),
        ({**ask, "extra": 1}, "invalid_request", 400),
    ):
        await acme.post("/v1/orders", bad, expect=status, code=code)
    await centre.post("/v1/orders", ask, expect=403, code="forbidden")
    await centre.post(f"/v1/offers/{offer['id']}/withdraw", expect=200)
    await acme.post("/v1/orders", ask, expect=409, code="offer_withdrawn")
    assert (await world.op.get("/v1/orders", expect=200))["items"] == []
    # A decision needs an order id to accept, a reason to decline.
    live = await centre.post("/v1/offers", body(), expect=201)
    order = await acme.post("/v1/orders", {**ask, "offer_id": live["id"]}, expect=201)
    await centre.post(f"/v1/orders/{order['id']}/accept", {}, expect=400, code="invalid_request")
    await centre.post(f"/v1/orders/{order['id']}/decline", {"reason": ""}, expect=400)
    declined = await centre.post(
        f"/v1/orders/{order['id']}/decline", {"reason": "fully booked in March"}, expect=200
    )
    assert (declined["state"], declined["reason"]) == ("declined", "fully booked in March")


async def test_the_find_compute_page_prices_offers_and_sends_an_order(world: World) -> None:
    from tests.test_web import Browser

    centre = world.providers["alicloud"]
    offer = await centre.post(
        "/v1/offers", body(compute_class="model_services", price_fen=2_000), expect=201
    )
    await world.voucher("acme", 100_000_000, "model_services")
    page = Browser(world)
    await page.sign_in(world.holders["acme"].token or "")
    resp, html = await page.go("GET", "/ui/holder")
    assert 'href="/ui/holder/compute"' in html
    resp, html = await page.go("GET", "/ui/holder/compute")
    assert resp.status == 200 and "找算力" in html
    row = html.split(f'data-offer="330100/{offer["id"]}"')[1].split("</tr>")[0]
    # 30 % of ¥20.00 is ¥6.00: ¥14.00 a card-hour.
    assert "¥20.00" in row and "¥14.00" in row and "30%" in row
    resp, html = await page.go(
        "POST",
        "/ui/holder/compute/order",
        {"origin": "330100", "offer_id": offer["id"], "card_hours": "120"},
    )
    assert resp.status == 201 and 'id="ordered"' in html and "待服务商确认" in html
    [mine] = (await world.holders["acme"].get("/v1/orders", expect=200))["items"]
    assert (mine["card_hours"], mine["amount_fen"]) == (120, 240_000)
    # A bad number of card-hours is named; a search field that does not read is too.
    resp, html = await page.go(
        "POST", "/ui/holder/compute/order", {"origin": "330100", "offer_id": offer["id"]}
    )
    assert resp.status == 400 and "请填写卡时数" in html
    resp, html = await page.go("GET", "/ui/holder/compute?region=abc&max_price=x")
    assert resp.status == 200 and "请填写六位地区代码" in html and "例如 25.00" in html
    resp, html = await page.go("GET", "/ui/holder/compute?lang=en")
    assert "Find compute" in html and "After your vouchers" in html


async def test_a_provider_publishes_and_answers_orders_on_its_pages(world: World) -> None:
    from tests.test_web import Browser

    page = Browser(world)
    await page.sign_in(world.providers["alicloud"].token or "")
    resp, html = await page.go("GET", "/ui/provider")
    assert 'href="/ui/provider/offers"' in html
    resp, html = await page.go("GET", "/ui/provider/offers")
    assert resp.status == 200 and "发布报价" in html
    form = {
        "compute_class": "model_services",
        "accelerator": "H20",
        "cards": "32",
        "price": "18.50",
        "min_card_hours": "10",
        "available_from": "2026-03-02",
        "available_until": "2026-04-02",
        "security_level": "3",
        "contact": "0571-12345678",
    }
    resp, html = await page.go("POST", "/ui/provider/offers", {**form, "cards": "0"})
    assert resp.status == 400 and 'id="e-cards"' in html
    resp, html = await page.go("POST", "/ui/provider/offers", {**form, "accelerator": "<b>"})
    assert resp.status == 400 and 'id="e-accelerator"' in html
    resp, html = await page.go("POST", "/ui/provider/offers", form)
    assert resp.status == 201 and 'id="published"' in html and "¥18.50" in html
    [offer] = (await world.providers["alicloud"].get("/v1/offers", expect=200))["items"]
    assert (offer["price_fen"], offer["cards"], offer["security_level"]) == (1_850, 32, 3)
    assert offer["available_until"] == "2026-04-01T16:00:00.000Z"  # midnight in China
    # A new price and number of cards, from the offer's row: a new version, signed.
    change = f"/ui/provider/offers/{offer['id']}/change"
    resp, html = await page.go("POST", change, {"price": "abc", "cards": "40"})
    assert resp.status == 400 and "例如 1200.50" in html
    resp, html = await page.go("POST", change, {"price": "17.00", "cards": "40"})
    assert resp.status == 200 and "¥17.00" in html
    [offer] = (await world.providers["alicloud"].get("/v1/offers", expect=200))["items"]
    assert (offer["version"], offer["price_fen"], offer["cards"]) == (2, 1_700, 40)
    assert offer["security_level"] == 3  # the other terms as they were
    # A holder asks for it; the provider accepts on its page with its order id.
    ask = {"origin": "330100", "offer_id": offer["id"], "card_hours": 20}
    order = await world.holders["acme"].post("/v1/orders", ask, expect=201)
    resp, html = await page.go("GET", "/ui/provider/offers")
    assert f'data-request="{order["id"]}"' in html
    resp, html = await page.go(
        "POST", f"/ui/provider/orders/{order['id']}/accept", {"order_id": "ALI-9"}
    )
    assert resp.status == 200 and 'id="decided"' in html and "ALI-9" in html
    shown = await world.holders["acme"].get(f"/v1/orders/{order['id']}", expect=200)
    assert (shown["state"], shown["order_id"]) == ("accepted", "ALI-9")
    resp, html = await page.go(
        "POST", f"/ui/provider/orders/{order['id']}/decline", {"reason": "late"}
    )
    assert resp.status == 400 and "该订购申请已处理" in html
    resp, html = await page.go("POST", f"/ui/provider/offers/{offer['id']}/withdraw", {})
    assert resp.status == 200 and "已撤回" in html
