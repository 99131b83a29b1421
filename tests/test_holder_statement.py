"""A holder's yearly statement for its own accounts: its vouchers, and the subsidy it received
by provider and by month, every figure equal to the books."""

from __future__ import annotations

from node.clock import MS_PER_DAY, ManualClock
from node.node import Node
from tests.conftest import World, order


async def test_the_yearly_statement_adds_up(world: World, node: Node, clock: ManualClock) -> None:
    acme = world.holders["acme"]
    v = await world.voucher("acme", 100_000_000)
    for provider, order_id, amount in (
        ("alicloud", "S-1", 4_000_000),
        ("alicloud", "S-2", 2_000_000),
    ):
        code = await world.code("acme", v["id"], provider, 10_000_000)
        await world.providers[provider].post(
            "/v1/redemptions", order(code, order_id, amount), expect=201
        )
    clock.advance(31 * MS_PER_DAY)  # into April (China Standard Time)
    code = await world.code("acme", v["id"], "sugon", 10_000_000)
    await world.providers["sugon"].post(
        "/v1/redemptions", order(code, "S-3", 1_000_000), expect=201
    )

    statement = await acme.get(f"/v1/holders/{world.holder_ids['acme']}/statement?year=2026")
    assert (
        statement["holder"]["id"] == world.holder_ids["acme"] and statement["fiscal_year"] == 2026
    )
    voucher = (await acme.get(f"/v1/vouchers/{v['id']}"))["voucher"]
    assert [x["id"] for x in statement["vouchers"]] == [v["id"]]
    assert statement["vouchers"][0]["captured_fen"] == voucher["captured_fen"] == 2_100_000
    assert statement["totals"]["captured_fen"] == 2_100_000
    assert statement["totals"]["face_fen"] == v["face_fen"]
    by_provider = {
        p["provider_id"]: (p["captures"], p["captured_fen"]) for p in statement["by_provider"]
    }
    assert by_provider == {
        world.provider_ids["alicloud"]: (2, 1_800_000),
        world.provider_ids["sugon"]: (1, 300_000),
    }
    assert all(p["provider_name"] for p in statement["by_provider"])
    months = [(m["month"], m["captures"], m["captured_fen"]) for m in statement["by_month"]]
    assert months == [("2026-03", 2, 1_800_000), ("2026-04", 1, 300_000)]

    # Its own only; the operator sees any; a year without vouchers is empty, not an error.
    await world.holders["zju"].get(
        f"/v1/holders/{world.holder_ids['acme']}/statement", expect=404, code="holder_not_found"
    )
    assert (await world.op.get(f"/v1/holders/{world.holder_ids['acme']}/statement"))[
        "totals"
    ] == statement["totals"]
    empty = await acme.get(f"/v1/holders/{world.holder_ids['acme']}/statement?year=2025")
    assert (
        empty["vouchers"] == [] and empty["by_month"] == [] and empty["totals"]["captured_fen"] == 0
    )
    await acme.get(f"/v1/holders/{world.holder_ids['acme']}/statement?year=20260", expect=400)
    await world.providers["alicloud"].get(
        f"/v1/holders/{world.holder_ids['acme']}/statement", expect=403, code="forbidden"
    )
