"""Each role sees and does only its own things; everything but the public endpoints needs a token."""

from __future__ import annotations

from typing import Any

import pytest

from node.api.routes import PUBLIC
from node.node import Node
from node.services.common import SYSTEM
from tests.conftest import HZ_ENTERPRISE, Api, World, demand, order, snapshot


async def test_unauthenticated_everywhere_but_public(world: World, node: Node) -> None:
    anon = world.op.as_(None)
    for path in sorted(PUBLIC):
        resp = await anon.client.get(path)
        assert resp.status == 200, path
    before = snapshot(node)
    for method, path in [
        ("GET", "/v1/policy"),
        ("GET", "/v1/vouchers"),
        ("POST", "/v1/holders"),
        ("POST", "/v1/holds"),
        ("GET", "/v1/journal"),
    ]:
        await anon.call(
            method, path, {} if method == "POST" else None, expect=401, code="unauthenticated"
        )
        await anon.as_("slo_forged").call(
            method, path, {} if method == "POST" else None, expect=401, code="unauthenticated"
        )
    resp = await anon.client.get("/v1/vouchers", headers={"Authorization": "Basic abc"})
    assert resp.status == 401
    assert snapshot(node) == before


async def test_revoked_token_stops_working(world: World, node: Node) -> None:
    created = await world.op.post(
        "/v1/tokens", {"role": "operator", "label": "night shift"}, expect=201
    )
    second = world.op.as_(created["token"])
    await second.get("/v1/budget", expect=200)
    node.tokens.revoke_sync(SYSTEM, created["id"])
    await second.get("/v1/budget", expect=401, code="unauthenticated")
    stored = node.db.run_sync(
        "t", lambda c: [r[0] for r in c.execute("SELECT token_sha256 FROM tokens")]
    )
    assert created["token"] not in stored and all(
        len(h) == 64 for h in stored
    )  # hashed, never plain


async def _setup(world: World) -> dict[str, Any]:
    other = await world.holder("other", "91310000132260250X", region="330100")
    v = await world.voucher("acme", 100_000_000)
    code = await world.code("acme", v["id"], "alicloud", 1_000_000)
    hold = (
        await world.providers["alicloud"].post(
            "/v1/holds", order(code, "O-1", 1_000_000), expect=201
        )
    )["hold"]
    d = await other.post("/v1/demands", demand("model_services", 100_000_000), expect=201)
    return {
        "voucher": v,
        "hold": hold,
        "other_voucher": d["voucher"],
        "other_decision": d["decision"],
    }


async def test_holder_sees_only_its_own(world: World, node: Node) -> None:
    ctx = await _setup(world)
    acme = world.holders["acme"]
    mine = await acme.get("/v1/vouchers", expect=200)
    assert [v["id"] for v in mine["items"]] == [ctx["voucher"]["id"]]
    await acme.get(f"/v1/vouchers/{ctx['other_voucher']['id']}", expect=403, code="forbidden")
    await acme.get(f"/v1/decisions/{ctx['other_decision']['id']}", expect=403, code="forbidden")
    await acme.get(f"/v1/holders/{world.holder_ids['other']}", expect=403, code="forbidden")
    await acme.get(
        f"/v1/vouchers/{ctx['other_voucher']['id']}/authorizations", expect=403, code="forbidden"
    )
    before = snapshot(node)
    await acme.post(
        f"/v1/vouchers/{ctx['other_voucher']['id']}/authorizations",
        {
            "provider_id": world.provider_ids["alicloud"],
            "max_fen": 1,
            "expires_at": "2026-06-01T00:00:00Z",
        },
        expect=403,
        code="forbidden",
    )
    assert snapshot(node) == before


FORBIDDEN_FOR_HOLDER = [
    ("POST", "/v1/holders", {"uscc": HZ_ENTERPRISE, "name": "x", "category": "enterprise"}),
    ("POST", "/v1/providers", {"uscc": HZ_ENTERPRISE, "name": "x", "kind": "computing_centre"}),
    ("GET", "/v1/holders", None),
    ("GET", "/v1/providers", None),
    ("GET", "/v1/budget", None),
    ("GET", "/v1/journal", None),
    ("POST", "/v1/tokens", {"role": "operator"}),
    ("POST", "/v1/policy", {"toml": "x"}),
    (
        "POST",
        "/v1/holds",
        {"code": "c", "order_id": "o", "order_amount_fen": 1, "compute_class": "model_services"},
    ),
    (
        "POST",
        "/v1/redemptions",
        {"code": "c", "order_id": "o", "order_amount_fen": 1, "compute_class": "model_services"},
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), FORBIDDEN_FOR_HOLDER)
async def test_holder_forbidden(
    world: World, node: Node, method: str, path: str, body: Any
) -> None:
    before = snapshot(node)
    await world.holders["acme"].call(method, path, body, expect=403, code="forbidden")
    assert snapshot(node) == before


FORBIDDEN_FOR_PROVIDER = [
    *[f for f in FORBIDDEN_FOR_HOLDER if f[1] not in ("/v1/holds", "/v1/redemptions")],
    ("POST", "/v1/demands", demand("model_services", 1_000)),
    ("GET", "/v1/vouchers", None),
    ("GET", "/v1/decisions", None),
]


@pytest.mark.parametrize(("method", "path", "body"), FORBIDDEN_FOR_PROVIDER)
async def test_provider_forbidden(
    world: World, node: Node, method: str, path: str, body: Any
) -> None:
    before = snapshot(node)
    await world.providers["alicloud"].call(method, path, body, expect=403, code="forbidden")
    assert snapshot(node) == before


async def test_provider_acts_only_on_its_own_holds(world: World, node: Node) -> None:
    ctx = await _setup(world)
    sugon = world.providers["sugon"]
    hold_id = ctx["hold"]["id"]
    before = snapshot(node)
    await sugon.post(
        f"/v1/holds/{hold_id}/capture", {"amount_fen": 1}, expect=403, code="forbidden"
    )
    await sugon.post(f"/v1/holds/{hold_id}/void", expect=403, code="forbidden")
    await sugon.get(f"/v1/holds/{hold_id}", expect=403, code="forbidden")
    await sugon.get(f"/v1/providers/{world.provider_ids['alicloud']}", expect=403, code="forbidden")
    assert (await sugon.get("/v1/holds", expect=200))["items"] == []
    assert snapshot(node) == before
    # The holder may look at a hold on its voucher; the operator at any.
    await world.holders["acme"].get(f"/v1/holds/{hold_id}", expect=200)
    # A holder lists the holds on its own vouchers, and no one else's.
    mine = (await world.holders["acme"].get("/v1/holds", expect=200))["items"]
    assert [h["id"] for h in mine] == [hold_id]
    assert (await world.holders["zju"].get("/v1/holds", expect=200))["items"] == []
    await world.holders["other"].get(f"/v1/holds/{hold_id}", expect=403, code="forbidden")
    await world.op.get(f"/v1/holds/{hold_id}", expect=200)


async def test_operator_cannot_spend_or_demand(world: World, api: Api) -> None:
    await api.post("/v1/demands", demand("model_services", 1_000), expect=403, code="forbidden")
    await api.post(
        "/v1/holds",
        {"code": "c", "order_id": "o", "order_amount_fen": 1, "compute_class": "model_services"},
        expect=403,
        code="forbidden",
    )
