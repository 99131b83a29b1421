"""The demo's compute sharing (issue 20): Guiyang's cluster and Qingdao's matchmaking partner
publish offers, which reach Hangzhou's catalog; the Hangzhou start-up finds them at its price
after its own voucher, orders from the Guiyang cluster, which accepts with its order id, and
redeems the order with the start-up's voucher: offer, order and capture linked by that id."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any, Protocol

from node.domain.money import yuan

HZ, QD, GY = "330100", "370200", "520100"


class Cityish(Protocol):
    name: str
    tokens: dict[str, str]
    ids: dict[str, str]


class Apiish(Protocol):
    async def ok(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> Any: ...


def _terms(compute_class: str, accelerator: str, cards: int, price: int, hours: int) -> Any:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "compute_class": compute_class,
        "accelerator": accelerator,
        "cards": cards,
        "price_fen": price,
        "min_card_hours": hours,
        "available_from": now.isoformat().replace("+00:00", "Z"),
        "available_until": (now + dt.timedelta(days=90)).isoformat().replace("+00:00", "Z"),
        "domestic_chips": accelerator.startswith("Ascend"),
        "security_level": 3,
        "contact": "sales@example.cn",
    }


async def share_compute(api: Mapping[str, Apiish], cities: Mapping[str, Cityish]) -> list[str]:
    """Run the scenario; the lines the demo prints about it."""
    gy, qd = cities[GY].tokens["gy-cluster"], cities[QD].tokens["qd-cloud"]
    a800 = await api[GY].ok(
        "POST", "/v1/offers", gy, _terms("model_services", "A800", 512, 2_500, 100)
    )
    await api[GY].ok(
        "POST", "/v1/offers", gy, _terms("domestic_chips", "Ascend 910B", 1024, 1_800, 100)
    )
    await api[QD].ok("POST", "/v1/offers", qd, _terms("model_services", "H20", 256, 2_200, 50))
    startup = cities[HZ].tokens["hz-startup"]
    deadline = time.monotonic() + 15
    found: dict[str, Any] = {"items": []}
    while len(found["items"]) < 3 and time.monotonic() < deadline:
        found = await api[HZ].ok("GET", "/v1/catalog", startup)
        await asyncio.sleep(0.1)
    lines = [
        "\nCompute shared across the federation (the Hangzhou start-up's search, price per card-hour):"
    ]
    for item in found["items"]:
        o = item["offer"]
        lines.append(
            f"  {o['provider_name']} ({o['origin']}) {o['accelerator']:12s} list {yuan(o['price_fen'])}"
            f"  after its voucher {yuan(item['effective_price_fen'])}"
            + (f" ({item['no_subsidy_reason']})" if item["no_subsidy_reason"] else "")
        )
    ask = {"origin": GY, "offer_id": a800["id"], "card_hours": 400, "note": "fine-tuning, March"}
    order = await api[HZ].ok("POST", "/v1/orders", startup, ask)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        seen = await api[GY].ok("GET", "/v1/orders", gy)
        if any(r["id"] == order["id"] for r in seen["items"]):
            break
        await asyncio.sleep(0.1)
    await api[GY].ok("POST", f"/v1/orders/{order['id']}/accept", gy, {"order_id": "GA-2026-0100"})
    while time.monotonic() < deadline:
        shown = await api[HZ].ok("GET", f"/v1/orders/{order['id']}", startup)
        if shown["state"] == "accepted":
            break
        await asyncio.sleep(0.1)
    vouchers = await api[HZ].ok("GET", "/v1/vouchers", startup)
    voucher = next(v for v in vouchers["items"] if v["compute_class"] == "model_services")
    subsidy = order["amount_fen"] * voucher["ratio_bp"] // 10_000
    code = await api[HZ].ok(
        "POST",
        f"/v1/vouchers/{voucher['id']}/authorizations",
        startup,
        {
            "provider_id": cities[GY].ids["gy-cluster"],
            "provider_region": GY,
            "max_fen": subsidy,
            "expires_at": voucher["expires_at"],
        },
    )
    redeem = {
        "code": code["code"],
        "order_id": "GA-2026-0100",
        "order_amount_fen": order["amount_fen"],
        "compute_class": "model_services",
    }
    await api[GY].ok("POST", "/v1/redemptions", gy, redeem)
    shown = await api[HZ].ok("GET", f"/v1/orders/{order['id']}", startup)
    got = shown["redemption"] or {}
    lines.append(
        f"  ordered 400 card-hours of the A800 offer ({yuan(order['amount_fen'])}); Guiyang accepted"
        f" as {shown['order_id']}; redeemed: {got.get('state', '?')},"
        f" subsidy {yuan(got.get('captured_fen', 0))}"
    )
    return lines


async def federation_use(api: Mapping[str, Apiish], names: Mapping[str, str]) -> list[str]:
    """The federation-wide picture as Qingdao computes it, from the signed offers in its
    catalog and every member's countersigned statements (it is party to none of Hangzhou's
    and Guiyang's): the same figures every city gets."""
    use = await api[QD].ok("GET", "/v1/catalog/utilisation?between=1")
    cards: dict[str, int] = {}
    for row in use["federation"]:
        cards[row["city"]] = cards.get(row["city"], 0) + row["cards"]
    lines = ["\nThe federation as Qingdao sees it (signed offers; countersigned statements):"]
    lines.append(
        "  cards on offer: "
        + ", ".join(f"{names.get(c, c)} {n:,}" for c, n in sorted(cards.items()))
    )
    for row in use["between_cities"]:
        lines.append(
            f"  {names.get(row['issuer'], row['issuer']):9s} → "
            f"{names.get(row['acquirer'], row['acquirer']):9s} captured {yuan(row['captured_fen'])}"
        )
    return lines
