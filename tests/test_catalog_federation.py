"""Compute offers between real node processes (issue 20): published in one city, signed and
current in every other; a city that was down catches up by asking."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.cluster import Cluster, Member
from tests.conftest import HZ_ENTERPRISE, valid_uscc
from tests.proc import wait_until

HZ, QD, GY = "330100", "370200", "520100"
GY_CENTRE = valid_uscc("91520100MA6DGY001")


def terms(**over: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "compute_class": "model_services",
        "accelerator": "Ascend 910B",
        "cards": 256,
        "price_fen": 2_000,
        "min_card_hours": 50,
        "available_from": now.isoformat().replace("+00:00", "Z"),
        "available_until": (now + dt.timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "domestic_chips": True,
        "security_level": 3,
    }
    body.update(over)
    return body


def catalog(member: Member, origin: str) -> dict[str, tuple[int, bool, bytes]]:
    with member.db() as conn:
        rows = conn.execute(
            "SELECT offer_id, seq, withdrawn, record FROM catalog_offers WHERE origin = ?",
            (origin,),
        ).fetchall()
    return {r[0]: (int(r[1]), bool(r[2]), bytes(r[3])) for r in rows}


def test_offers_reach_every_city_and_a_city_that_was_down_catches_up(tmp_path: Path) -> None:
    with Cluster(tmp_path, [HZ, QD, GY]).session() as trio:
        trio.start()
        trio.provider(GY, "gy-centre", GY_CENTRE)
        trio.holder(HZ, "startup", HZ_ENTERPRISE)
        gy = trio[GY]
        token = gy.tokens["gy-centre"]
        first = gy.call("POST", "/v1/offers", token, terms(), expect=201)
        second = gy.call("POST", "/v1/offers", token, terms(accelerator="H20"), expect=201)
        own = catalog(gy, GY)

        def everywhere(expected: dict[str, tuple[int, bool, bytes]]) -> bool:
            return all(catalog(trio[city], GY) == expected for city in (HZ, QD))

        # The same signed records, byte for byte, in every city.
        wait_until(lambda: everywhere(own), "both offers in Hangzhou's and Qingdao's catalogs")
        # A change and a withdrawal replace them everywhere.
        gy.call("PUT", f"/v1/offers/{first['id']}", token, terms(price_fen=1_800), expect=200)
        gy.call("POST", f"/v1/offers/{second['id']}/withdraw", token, expect=200)
        own = catalog(gy, GY)
        assert own[first["id"]][0] == 3 and own[second["id"]][:2] == (4, True)
        wait_until(lambda: everywhere(own), "the change and the withdrawal everywhere")
        # A Hangzhou holder finds the Guiyang offer, priced after its own voucher: 30 % of
        # 1,800 fen is 540, so 1,260 fen a card-hour.
        hz = trio[HZ]
        voucher = trio.voucher(HZ, "startup", 100_000_000)
        found = hz.call("GET", "/v1/catalog", hz.tokens["startup"], expect=200)
        assert [(i["offer"]["origin"], i["offer"]["id"]) for i in found["items"]] == [
            (GY, first["id"])
        ]
        item = found["items"][0]
        assert (item["effective_price_fen"], item["voucher_id"]) == (1_260, voucher["id"])
        # Qingdao goes down hard; Guiyang publishes and changes meanwhile.
        trio.kill(QD)
        third = gy.call("POST", "/v1/offers", token, terms(accelerator="A800"), expect=201)
        gy.call("PUT", f"/v1/offers/{first['id']}", token, terms(price_fen=1_700), expect=200)
        own = catalog(gy, GY)
        wait_until(lambda: catalog(hz, GY) == own, "Hangzhou current while Qingdao is down")
        assert catalog(trio[QD], GY) != own
        # It comes back with its inbound cut: Guiyang's pushes cannot reach it, so it can only
        # have caught up by asking (its own calls out still go through).
        trio.cut(QD)
        trio.restart(QD)
        wait_until(lambda: catalog(trio[QD], GY) == own, "Qingdao caught up after its restart")
        assert own[third["id"]][0] == 5

        def said() -> bool:
            return f"offers caught up from {GY}" in (trio[QD].data / "node.log").read_text()

        wait_until(said, "Qingdao's log saying it caught up from Guiyang")
        trio.heal(QD)
        trio.check_all()


def test_a_holder_orders_from_another_citys_offer_and_redeems_it(tmp_path: Path) -> None:
    with Cluster(tmp_path, [HZ, GY]).session() as pair:
        pair.start()
        pair.provider(GY, "gy-centre", GY_CENTRE)
        pair.holder(HZ, "startup", HZ_ENTERPRISE)
        gy, hz = pair[GY], pair[HZ]
        centre, startup = gy.tokens["gy-centre"], hz.tokens["startup"]
        offer = gy.call("POST", "/v1/offers", centre, terms(price_fen=2_000), expect=201)
        wait_until(lambda: catalog(hz, GY), "the offer in Hangzhou's catalog")
        voucher = pair.voucher(HZ, "startup", 100_000_000)
        ask = {"origin": GY, "offer_id": offer["id"], "card_hours": 100, "note": "fine-tuning"}
        order = hz.call("POST", "/v1/orders", startup, ask, expect=201)
        assert (order["side"], order["state"], order["amount_fen"]) == (
            "holder",
            "requested",
            200_000,
        )
        # Guiyang has it, as its city's request to its provider, who accepts it.
        received = wait_until(
            lambda: gy.call("GET", "/v1/orders", centre, expect=200)["items"],
            "the request in Guiyang",
        )
        assert [(o["id"], o["side"], o["holder_name"]) for o in received] == [
            (order["id"], "provider", "startup")
        ]
        gy.call(
            "POST", f"/v1/orders/{order['id']}/accept", centre, {"order_id": "GY-77"}, expect=200
        )
        wait_until(
            lambda: hz.call("GET", f"/v1/orders/{order['id']}", startup)["state"] == "accepted",
            "the acceptance back in Hangzhou",
        )
        # The holder's code; the provider redeems the order under its order id.
        code = pair.code(HZ, "startup", voucher, GY, "gy-centre", 60_000)
        redeem = {
            "code": code,
            "order_id": "GY-77",
            "order_amount_fen": 200_000,
            "compute_class": "model_services",
        }
        gy.call("POST", "/v1/redemptions", centre, redeem, expect=201)
        for member, token in ((hz, startup), (gy, centre)):
            shown = member.call("GET", f"/v1/orders/{order['id']}", token, expect=200)
            assert shown["order_id"] == "GY-77", shown
            assert shown["redemption"]["state"] == "captured", shown
            assert shown["redemption"]["captured_fen"] == 60_000
        pair.check_all()


def test_five_cities_one_update_reaches_every_one_and_a_killed_one_catches_up(
    tmp_path: Path,
) -> None:
    """Five real node processes (the 300-city figures come from the in-process simulation,
    python -m node.tools.bench.offers). Prints how long an update took to reach every city."""
    import time

    cities = [HZ, QD, GY, "310100", "440300"]
    with Cluster(tmp_path, cities).session() as five:
        five.start()
        five.provider(GY, "gy-centre", GY_CENTRE)
        gy = five[GY]
        token = gy.tokens["gy-centre"]
        offers = [
            gy.call("POST", "/v1/offers", token, terms(cards=8 * (i + 1)), expect=201)
            for i in range(3)
        ]
        own = catalog(gy, GY)
        wait_until(
            lambda: all(catalog(five[c], GY) == own for c in cities), "three offers in five cities"
        )
        started = time.monotonic()
        gy.call("PUT", f"/v1/offers/{offers[0]['id']}", token, terms(price_fen=1_500), expect=200)
        own = catalog(gy, GY)
        wait_until(
            lambda: all(catalog(five[c], GY) == own for c in cities), "the update in five cities"
        )
        print(f"\nfive cities: an update reached every city in {time.monotonic() - started:.3f} s")
        # Every city took each push once: four OFFERS, one per peer, for this change.
        for city in cities:
            if city != GY:
                log = (five[city].data / "node.log").read_text()
                assert log.count("accepted OFFERS ") >= 2, log[-2000:]
        five.kill("440300")
        for offer in offers[1:]:
            gy.call("POST", f"/v1/offers/{offer['id']}/withdraw", token, expect=200)
        own = catalog(gy, GY)
        five.restart("440300")
        wait_until(lambda: catalog(five["440300"], GY) == own, "Shenzhen caught up after kill -9")
        five.check_all()
