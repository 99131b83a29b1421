"""Local spending through the real API: authorizations, holds, captures, voids, redemptions."""

from __future__ import annotations

import asyncio

from node.clock import MS_PER_DAY, ManualClock
from node.node import Node
from tests.conftest import Api, World, order, snapshot, valid_uscc
from tests.test_metrics import scrape

BIG = 100_000_000  # ¥1,000,000 estimate → ¥300,000 voucher at 30%


async def test_hold_capture_releases_the_rest(world: World, node: Node) -> None:
    v = await world.voucher("acme", BIG)
    assert v["face_fen"] == 30_000_000
    code = await world.code("acme", v["id"], "alicloud", 10_000_000)
    p = world.providers["alicloud"]
    held = await p.post("/v1/holds", order(code, "ORD-1", 9_999_999), expect=201)
    hold = held["hold"]
    assert hold["amount_fen"] == 2_999_999  # 2,999,999.7 truncated
    captured = await p.post(
        f"/v1/holds/{hold['id']}/capture", {"amount_fen": 2_000_000}, expect=200
    )
    assert captured["hold"]["state"] == "captured" and captured["hold"]["captured_fen"] == 2_000_000
    after = await world.holders["acme"].get(f"/v1/vouchers/{v['id']}", expect=200)
    assert (
        after["voucher"]["available_fen"] == 28_000_000
        and after["voucher"]["captured_fen"] == 2_000_000
    )
    # Retried capture with the same amount: the original answer, no second booking.
    again = await p.post(f"/v1/holds/{hold['id']}/capture", {"amount_fen": 2_000_000}, expect=200)
    assert again["replayed"] is True
    await p.post(
        f"/v1/holds/{hold['id']}/capture", {"amount_fen": 1}, expect=409, code="hold_not_open"
    )
    await p.post(f"/v1/holds/{hold['id']}/void", expect=409, code="hold_not_open")


async def test_hold_is_limited_by_authorization_and_balance(world: World) -> None:
    v = await world.voucher("acme", BIG)  # 30,000,000 available
    p = world.providers["alicloud"]
    code = await world.code("acme", v["id"], "alicloud", 1_000_000)
    hold = await p.post("/v1/holds", order(code, "ORD-A", 50_000_000), expect=201)
    assert hold["hold"]["amount_fen"] == 1_000_000  # the authorization's maximum
    code2 = await world.code("acme", v["id"], "alicloud", 40_000_000)
    hold2 = await p.post("/v1/holds", order(code2, "ORD-B", 500_000_000), expect=201)
    assert hold2["hold"]["amount_fen"] == 29_000_000  # what is left on the voucher
    code3 = await world.code("acme", v["id"], "alicloud", 1_000)
    await p.post(
        "/v1/holds", order(code3, "ORD-C", 10_000), expect=409, code="insufficient_balance"
    )
    await p.post(
        f"/v1/holds/{hold['hold']['id']}/capture",
        {"amount_fen": 1_000_001},
        expect=422,
        code="capture_exceeds_hold",
    )
    voided = await p.post(f"/v1/holds/{hold['hold']['id']}/void", expect=200)
    assert voided["hold"]["state"] == "voided"
    await p.post("/v1/holds", order(code3, "ORD-C", 10_000), expect=201)  # balance is back


async def test_one_time_code_and_one_subsidy_per_order(world: World, node: Node) -> None:
    v = await world.voucher("acme", BIG)
    p = world.providers["alicloud"]
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    first = await p.post("/v1/redemptions", order(code, "ORD-9", 1_000_000), expect=201)
    assert first["hold"]["state"] == "captured" and first["hold"]["captured_fen"] == 300_000
    # The same request again (a retry after a timeout): the original answer.
    retry = await p.post("/v1/redemptions", order(code, "ORD-9", 1_000_000), expect=200)
    assert retry["replayed"] and retry["hold"]["id"] == first["hold"]["id"]
    before = snapshot(node)
    await p.post(
        "/v1/redemptions", order(code, "ORD-10", 1_000_000), expect=409, code="authorization_used"
    )
    code2 = await world.code("acme", v["id"], "alicloud", 5_000_000)
    await p.post(
        "/v1/redemptions",
        order(code2, "ORD-9", 1_000_000),
        expect=409,
        code="order_already_subsidised",
    )
    await p.post(
        "/v1/redemptions",
        order(code, "ORD-9", 2_000_000),
        expect=409,
        code="order_already_subsidised",
    )
    after = snapshot(node)
    assert after["ledger"] == before["ledger"] and after["holds"] == before["holds"]


async def test_provider_rules(world: World, node: Node) -> None:
    v = await world.voucher("acme", BIG)
    p = world.providers["alicloud"]
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    # Only the authorized provider may use the code (R6).
    await world.providers["sugon"].post(
        "/v1/holds", order(code, "X-1", 1_000), expect=403, code="wrong_provider"
    )
    await p.post(
        "/v1/holds",
        order("sac_not-a-real-code", "X-2", 1_000),
        expect=403,
        code="authorization_invalid",
    )
    await p.post("/v1/holds", order(code, "X-3", 1_000, "storage"), expect=422, code="out_of_scope")
    await p.post(
        "/v1/holds",
        order(code, "X-4", 1_000, "other_compute"),
        expect=422,
        code="compute_class_mismatch",
    )
    # A suspended provider cannot redeem; related parties are refused (R5).
    await world.op.post(
        f"/v1/providers/{world.provider_ids['alicloud']}/state",
        {"state": "suspended", "reason": "audit"},
        expect=200,
    )
    await p.post("/v1/holds", order(code, "X-5", 1_000), expect=403, code="provider_not_approved")
    await world.op.post(
        f"/v1/providers/{world.provider_ids['alicloud']}/state",
        {"state": "approved", "reason": "cleared"},
        expect=200,
    )
    await world.op.call(
        "PUT",
        f"/v1/providers/{world.provider_ids['alicloud']}/related",
        {"related_uscc": [valid_uscc("91330100716105852")[:17] + "F"]},
        expect=200,
    )
    await p.post("/v1/holds", order(code, "X-6", 1_000), expect=403, code="related_party")
    related = await world.provider(
        "acme-own-centre", valid_uscc("91330100MA2RELATD"), related_uscc=["91330100716105852F"]
    )
    assert related is not None
    await world.holders["acme"].post(
        f"/v1/vouchers/{v['id']}/authorizations",
        {
            "provider_id": world.provider_ids["acme-own-centre"],
            "max_fen": 100,
            "expires_at": "2026-06-01T00:00:00Z",
        },
        expect=403,
        code="related_party",
    )


async def test_expiry_with_injected_clock(world: World, node: Node, clock: ManualClock) -> None:
    v = await world.voucher("acme", BIG)
    p = world.providers["alicloud"]
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    hold = (await p.post("/v1/holds", order(code, "E-1", 1_000_000), expect=201))["hold"]
    clock.advance(72 * 3600 * 1000)  # the policy's hold expiry
    await p.post(
        f"/v1/holds/{hold['id']}/capture", {"amount_fen": 1}, expect=409, code="hold_expired"
    )
    swept = await node.spending.sweep()
    assert swept == {"holds_expired": 1, "vouchers_expired": 0}
    got = await p.get(f"/v1/holds/{hold['id']}", expect=200)
    assert got["state"] == "expired"
    voucher = (await world.holders["acme"].get(f"/v1/vouchers/{v['id']}"))["voucher"]
    assert voucher["available_fen"] == 30_000_000 and voucher["held_fen"] == 0
    # A code used after its own expiry is refused.
    late = await world.code("acme", v["id"], "alicloud", 100, expires="2026-03-06T00:00:00Z")
    clock.advance(2 * MS_PER_DAY)
    await p.post("/v1/holds", order(late, "E-2", 1_000), expect=409, code="authorization_expired")
    # Twelve months on, the voucher expires and its balance returns to the budget.
    spent = await world.code("acme", v["id"], "alicloud", 1_000_000, expires="2026-12-01T00:00:00Z")
    await p.post("/v1/redemptions", order(spent, "E-3", 1_000_000), expect=201)
    budget_before = (await world.op.get("/v1/budget"))["items"][0]
    clock.advance(366 * MS_PER_DAY)
    assert (await node.spending.sweep())["vouchers_expired"] == 1
    voucher = (await world.holders["acme"].get(f"/v1/vouchers/{v['id']}"))["voucher"]
    assert voucher["state"] == "expired" and voucher["reclaimed_fen"] == 30_000_000 - 300_000
    budget_after = (await world.op.get("/v1/budget"))["items"][0]
    assert budget_after["remaining_fen"] == budget_before["remaining_fen"] + 29_700_000
    # A year with no policy loaded yet: the metrics and the windows carry on under the last
    # policy's cycle (they used to answer policy_missing).
    samples = await scrape(world)
    windows = (await world.op.get("/v1/settlement/windows"))["items"]
    assert windows and all(w["window_id"] for w in windows)
    assert samples[("suanli_vouchers_reclaimed_fen", (("reason", "expired"),))] == 29_700_000
    assert samples[("suanli_vouchers_reclaimed_fen", (("reason", "revoked"),))] == 0
    await world.holders["acme"].post(
        f"/v1/vouchers/{v['id']}/authorizations",
        {
            "provider_id": world.provider_ids["alicloud"],
            "max_fen": 100,
            "expires_at": "2028-01-01T00:00:00Z",
        },
        expect=409,
        code="voucher_not_active",
    )


async def test_revoke_voids_holds_and_reclaims(world: World, node: Node) -> None:
    v = await world.voucher("acme", BIG)
    p = world.providers["alicloud"]
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    hold = (await p.post("/v1/holds", order(code, "R-1", 1_000_000), expect=201))["hold"]
    open_code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    revoked = await world.op.post(
        f"/v1/vouchers/{v['id']}/revoke", {"reason": "fraud investigation"}, expect=200
    )
    assert revoked["state"] == "revoked" and revoked["reclaimed_fen"] == 30_000_000
    assert (await p.get(f"/v1/holds/{hold['id']}"))["state"] == "voided"
    await p.post(
        "/v1/holds", order(open_code, "R-2", 1_000), expect=409, code="authorization_expired"
    )
    await world.op.post(
        f"/v1/vouchers/{v['id']}/revoke", {"reason": "again"}, expect=409, code="voucher_not_active"
    )
    cap_back = await world.holders["acme"].post(
        "/v1/demands",
        {
            "compute_class": "model_services",
            "estimated_amount_fen": 2_666_666_667,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        },
        expect=201,
    )
    assert (
        cap_back["voucher"]["face_fen"] == 800_000_000
    )  # reclaimed money no longer counts against the cap


async def test_200_concurrent_holds_never_overspend(world: World, node: Node) -> None:
    v = await world.voucher("acme", 10_000_000)  # ¥100,000 → ¥50,000 (small-contract rule)
    assert v["face_fen"] == 5_000_000
    codes = [await world.code("acme", v["id"], "alicloud", 100_000) for _ in range(200)]
    p = world.providers["alicloud"]
    results = await asyncio.gather(
        *(p.post("/v1/holds", order(c, f"C-{i}", 1_000_000)) for i, c in enumerate(codes))
    )
    held = [r["hold"]["amount_fen"] for r in results if "hold" in r]
    refused = [r["error"]["code"] for r in results if "error" in r]
    assert sum(held) == 5_000_000  # every fen, never more
    assert len(held) == 50 and set(refused) == {"insufficient_balance"}
    voucher = (await world.holders["acme"].get(f"/v1/vouchers/{v['id']}"))["voucher"]
    assert voucher["available_fen"] == 0 and voucher["held_fen"] == 5_000_000


async def test_provider_payable_in_ledger(world: World, node: Node, api: Api) -> None:
    v = await world.voucher("acme", BIG)
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    await world.providers["alicloud"].post(
        "/v1/redemptions", order(code, "L-1", 1_000_000), expect=201
    )
    ledger = (await api.get("/v1/journal?kind=ledger&limit=500"))["items"]
    kinds = [e["kind"] for e in ledger]
    # a one-step redemption goes straight from the voucher to the provider: no hold in between
    assert kinds[:1] == ["fund"] and kinds[-2:] == ["issue", "capture"]
    assert ledger[-1]["source"] == f"voucher:{v['id']}"
    assert (
        ledger[-1]["dest"] == f"payable:{world.provider_ids['alicloud']}"
        and ledger[-1]["amount_fen"] == 300_000
    )
    events = (await api.get("/v1/journal?kind=events&limit=500"))["items"]
    assert [e["kind"] for e in events if e["entity"] == "hold"] == ["captured"]
