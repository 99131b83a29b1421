"""Every bad input gets its specific error code and a sentence, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from node.node import Node
from tests.conftest import HZ_ENTERPRISE, World, demand, order, snapshot


def _order(**kw: Any) -> dict[str, Any]:
    body = order("sac_x", "O-1", 1_000_000)
    body.update(kw)
    return body


BAD_HOLDS = [
    ({"order_amount_fen": 1.5}, "invalid_request", "order_amount_fen: must be an integer"),
    ({"order_amount_fen": "100"}, "invalid_request", "order_amount_fen: must be an integer"),
    ({"order_amount_fen": True}, "invalid_request", "order_amount_fen: must be an integer"),
    ({"order_amount_fen": 0}, "invalid_request", "order_amount_fen: must be between"),
    ({"order_amount_fen": -5}, "invalid_request", "order_amount_fen: must be between"),
    ({"order_amount_fen": 10**20}, "invalid_request", "order_amount_fen: must be between"),
    ({"order_id": ""}, "invalid_request", "order_id: must not be empty"),
    ({"order_id": "x" * 101}, "invalid_request", "order_id: at most 100"),
    ({"order_id": "a\x00b"}, "invalid_request", "order_id: control characters"),
    ({"extra": 1}, "invalid_request", "extra: unknown field"),
    ({"code": None}, "invalid_request", "code: required"),
    ({"code": 12}, "invalid_request", "code: must be a string"),
]


@pytest.mark.parametrize(("change", "code", "message"), BAD_HOLDS)
async def test_bad_hold_bodies(
    world: World, node: Node, change: dict[str, Any], code: str, message: str
) -> None:
    before = snapshot(node)
    err = await world.providers["alicloud"].post(
        "/v1/holds", _order(**change), expect=400, code=code
    )
    assert message in err["error"]["message"]
    assert snapshot(node) == before


async def test_not_json_and_not_an_object(world: World, node: Node) -> None:
    before = snapshot(node)
    p = world.providers["alicloud"]
    headers = {"Authorization": f"Bearer {p.token}"}
    resp = await p.client.post(
        "/v1/holds", data=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_request"
    resp = await p.client.post(
        "/v1/holds", data=b"[1,2]", headers={**headers, "Content-Type": "application/json"}
    )
    assert "JSON object" in (await resp.json())["error"]["message"]
    resp = await p.client.post(
        "/v1/holds",
        data=b"code=1",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 400 and "must be JSON" in (await resp.json())["error"]["message"]
    resp = await p.client.post(
        "/v1/holds", data=b"\xff\xfe", headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert snapshot(node) == before


async def test_oversized_body(world: World, node: Node) -> None:
    before = snapshot(node)
    big = {"uscc": HZ_ENTERPRISE, "name": "x" * 100_000, "category": "enterprise"}
    err = await world.op.post("/v1/holders", big, expect=413, code="payload_too_large")
    assert "larger than" in err["error"]["message"]
    assert snapshot(node) == before


BAD_DEMANDS = [
    (demand("model_services", 0), "invalid_request", 400),
    (demand("model_services", 100, period_start=5), "invalid_request", 400),
    ({"compute_class": "model_services"}, "invalid_request", 400),
    (demand("quantum", 100), "unknown_compute_class", 422),
    (demand("model_services", 100, provider_id="p_missing"), "provider_not_found", 404),
]


@pytest.mark.parametrize(("body", "code", "status"), BAD_DEMANDS)
async def test_bad_demands(
    world: World, node: Node, body: dict[str, Any], code: str, status: int
) -> None:
    before = snapshot(node)
    await world.holders["acme"].post("/v1/demands", body, expect=status, code=code)
    assert snapshot(node) == before


async def test_bad_registry_and_spending_requests(world: World, node: Node) -> None:
    op, acme, p = world.op, world.holders["acme"], world.providers["alicloud"]
    v = await world.voucher("acme", 100_000_000)
    before = snapshot(node)
    await op.post(
        "/v1/holders",
        {"uscc": "9144030019220382I6", "name": "x", "category": "enterprise"},
        expect=422,
        code="invalid_uscc",
    )
    await op.post(
        "/v1/holders",
        {"uscc": HZ_ENTERPRISE, "name": "x", "category": "enterprise", "region": "abc"},
        expect=400,
        code="invalid_request",
    )
    await op.post(
        "/v1/holders",
        {"uscc": HZ_ENTERPRISE, "name": "x", "category": "enterprise"},
        expect=409,
        code="already_exists",
    )
    await op.post(
        "/v1/providers",
        {"uscc": "914403001922038217", "name": "x", "kind": "computing_centre"},
        expect=422,
        code="invalid_uscc",
    )
    await op.post(
        "/v1/providers",
        {"uscc": "914403001922038216", "name": "x", "kind": "cloud"},
        expect=400,
        code="invalid_request",
    )
    await op.post(
        "/v1/providers",
        {
            "uscc": "914403001922038216",
            "name": "x",
            "kind": "computing_centre",
            "related_uscc": ["bad"],
        },
        expect=422,
        code="invalid_uscc",
    )
    await op.post(
        "/v1/providers/p_nope/state",
        {"state": "approved", "reason": "r"},
        expect=404,
        code="provider_not_found",
    )
    await op.post(
        f"/v1/providers/{world.provider_ids['sugon']}/state",
        {"state": "gone", "reason": "r"},
        expect=400,
        code="invalid_request",
    )
    await op.post("/v1/tokens", {"role": "holder"}, expect=400, code="invalid_request")
    await op.post(
        "/v1/tokens",
        {"role": "holder", "subject_id": "h_nope"},
        expect=404,
        code="holder_not_found",
    )
    await op.post(
        "/v1/vouchers/v_nope/revoke", {"reason": "r"}, expect=404, code="voucher_not_found"
    )
    auth = {
        "provider_id": world.provider_ids["alicloud"],
        "max_fen": 100,
        "expires_at": "2026-06-01T00:00:00Z",
    }
    await acme.post(
        "/v1/vouchers/v_nope/authorizations", auth, expect=404, code="voucher_not_found"
    )
    await acme.post(
        f"/v1/vouchers/{v['id']}/authorizations",
        {**auth, "expires_at": "tomorrow"},
        expect=400,
        code="invalid_request",
    )
    await acme.post(
        f"/v1/vouchers/{v['id']}/authorizations",
        {**auth, "expires_at": "2020-01-01T00:00:00Z"},
        expect=400,
        code="invalid_request",
    )
    await acme.post(
        f"/v1/vouchers/{v['id']}/authorizations",
        {**auth, "expires_at": "2030-01-01T00:00:00Z"},
        expect=400,
        code="invalid_request",
    )
    await acme.post(
        f"/v1/vouchers/{v['id']}/authorizations",
        {**auth, "provider_id": "p_nope"},
        expect=404,
        code="provider_not_found",
    )
    await p.post("/v1/holds/hd_nope/capture", {"amount_fen": 1}, expect=404, code="hold_not_found")
    await p.post("/v1/holds/hd_nope/void", expect=404, code="hold_not_found")
    await op.get("/v1/journal?kind=secrets", expect=400, code="invalid_request")
    await op.get("/v1/holders?limit=0", expect=400, code="invalid_request")
    await op.get("/v1/holders?limit=many", expect=400, code="invalid_request")
    await op.get("/v1/policy?year=2031", expect=409, code="policy_missing")
    await op.get("/v1/nowhere", expect=404, code="not_found")
    await op.call("DELETE", "/v1/holders", expect=405, code="method_not_allowed")
    assert snapshot(node) == before


async def test_policy_load_errors_change_nothing(world: World, node: Node) -> None:
    from tests.conftest import policy_text

    before = snapshot(node)
    err = await world.op.post(
        "/v1/policy",
        {"toml": policy_text(annual_budget_fen="1.5")},
        expect=422,
        code="policy_invalid",
    )
    assert "policy.annual_budget_fen" in err["error"]["message"]
    await world.op.post(
        "/v1/policy", {"toml": policy_text(region='"370200"')}, expect=422, code="policy_invalid"
    )
    assert snapshot(node) == before
    await world.voucher("acme", 100_000_000)  # commits 30,000,000
    before = snapshot(node)
    await world.op.post(
        "/v1/policy",
        {"toml": policy_text(annual_budget_fen="29_999_999")},
        expect=409,
        code="budget_below_committed",
    )
    assert snapshot(node) == before
    loaded = await world.op.post(
        "/v1/policy", {"toml": policy_text(annual_budget_fen="30_000_000")}, expect=201
    )
    assert loaded["version"] == 2
    budget = (await world.op.get("/v1/budget"))["items"][0]
    assert budget == {
        "fiscal_year": 2026,
        "budget_fen": 30_000_000,
        "committed_fen": 30_000_000,
        "remaining_fen": 0,
    }
    declined = await world.holders["zju"].post(
        "/v1/demands", demand("model_services", 1_000), expect=201
    )
    assert declined["decision"]["reasons"][-1]["code"] == "budget_exhausted"
