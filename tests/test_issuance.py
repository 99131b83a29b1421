"""Registration and automatic issuance through the real API on a real SQLite file."""

from __future__ import annotations

import asyncio
import base64

from node.keys import verify_voucher
from node.node import Node
from tests.conftest import (
    HZ_ENTERPRISE,
    INSTITUTE,
    SH_ENTERPRISE,
    START_UP,
    SZ_ENTERPRISE,
    UNIVERSITY,
    Api,
    World,
    demand,
    snapshot,
    valid_uscc,
)


async def test_register_holder_and_provider(api: Api) -> None:
    data = await api.post(
        "/v1/holders",
        {"uscc": HZ_ENTERPRISE, "name": "阿里云计算", "category": "enterprise"},
        expect=201,
    )
    assert data["holder"]["region"] == "330100" and data["token"].startswith("slh_")
    holder = api.as_(data["token"])
    me = await holder.get(f"/v1/holders/{data['holder']['id']}", expect=200)
    assert me["name"] == "阿里云计算"
    await api.post(
        "/v1/holders",
        {"uscc": HZ_ENTERPRISE, "name": "again", "category": "enterprise"},
        expect=409,
        code="already_exists",
    )
    p = await api.post(
        "/v1/providers",
        {"uscc": valid_uscc("91330100MA2B3C4D5"), "name": "Centre", "kind": "computing_centre"},
        expect=201,
    )
    assert p["provider"]["state"] == "pending"
    approved = await api.post(
        f"/v1/providers/{p['provider']['id']}/state",
        {"state": "approved", "reason": "in the city plan"},
        expect=200,
    )
    assert approved["state"] == "approved"
    audit = await api.get("/v1/journal?kind=audit", expect=200)
    assert [e["action"] for e in audit["items"]][-3:] == [
        "holder.register",
        "provider.register",
        "provider.state",
    ]


async def test_uscc_override_is_explicit_and_audited(api: Api) -> None:
    legacy = "914403001922038217"  # fails the check character
    err = await api.post(
        "/v1/holders",
        {"uscc": legacy, "name": "Legacy", "category": "enterprise"},
        expect=422,
        code="invalid_uscc",
    )
    assert "expected '6'" in err["error"]["message"]
    data = await api.post(
        "/v1/holders",
        {
            "uscc": legacy,
            "name": "Legacy",
            "category": "enterprise",
            "region": "330100",
            "uscc_override_reason": "legacy code, verified on paper 2026-03-01",
        },
        expect=201,
    )
    assert data["holder"]["uscc_override"] == "legacy code, verified on paper 2026-03-01"
    audit = await api.get("/v1/journal?kind=audit", expect=200)
    override = [e for e in audit["items"] if e["action"] == "holder.uscc_override"]
    assert override and override[0]["detail"]["uscc"] == legacy
    # A valid code never carries an override, even if one is sent.
    ok = await api.post(
        "/v1/holders",
        {
            "uscc": SH_ENTERPRISE,
            "name": "SH",
            "category": "enterprise",
            "uscc_override_reason": "x",
        },
        expect=201,
    )
    assert ok["holder"]["uscc_override"] is None


async def test_category_must_fit_the_code(api: Api) -> None:
    await api.post(
        "/v1/holders",
        {"uscc": UNIVERSITY, "name": "U", "category": "enterprise"},
        expect=422,
        code="category_mismatch",
    )
    await api.post(
        "/v1/holders",
        {"uscc": UNIVERSITY, "name": "U", "category": "bank"},
        expect=422,
        code="unknown_category",
    )
    await api.post(
        "/v1/holders",
        {"uscc": INSTITUTE, "name": "I", "category": "research_institute"},
        expect=201,
    )


async def test_issue_signed_voucher(world: World, node: Node) -> None:
    data = await world.holders["acme"].post(
        "/v1/demands", demand("model_services", 100_000_003), expect=201
    )
    decision, voucher = data["decision"], data["voucher"]
    assert decision["outcome"] == "issued" and decision["ratio_bp"] == 3000
    assert voucher["face_fen"] == 30_000_000 == voucher["available_fen"]  # 30,000,000.9 truncated
    assert [r["code"] for r in decision["reasons"]][:1] == ["ratio"]
    # Verifiable offline with nothing but the node card's public key.
    card = await world.op.as_(None).get("/v1/node", expect=200)
    public = base64.b64decode(card["keys"][0]["public_key"])
    record = base64.b64decode(data["signed"]["record"])
    parsed = verify_voucher(record, base64.b64decode(data["signed"]["signature"]), public)
    assert (
        parsed["id"] == voucher["id"]
        and parsed["face_fen"] == 30_000_000
        and parsed["issuer_region"] == "330100"
    )
    tampered = record.replace(b"30000000", b"90000000")
    try:
        verify_voucher(tampered, base64.b64decode(data["signed"]["signature"]), public)
        raise AssertionError("a tampered voucher verified")
    except ValueError:
        pass
    budget = await world.op.get("/v1/budget", expect=200)
    assert budget["items"][0]["committed_fen"] == 30_000_000
    assert budget["items"][0]["remaining_fen"] == 25_000_000_000 - 30_000_000
    # The small-contract rule (BRIEF R2) is for small enterprises: a university gets the
    # class's 20% on other compute, ¥10,000.01 → ¥2,000.00 (truncated).
    university = await world.holders["zju"].post(
        "/v1/demands", demand("other_compute", 1_000_001), expect=201
    )
    assert university["decision"]["ratio_bp"] == 2000
    assert university["voucher"]["face_fen"] == 200_000
    assert "small_contract" not in [r["code"] for r in university["decision"]["reasons"]]
    # An enterprise whose yearly contracts stay within ¥500,000 gets 50%: ¥5,000.00.
    small_co = await world.holder("small-co", START_UP, region="330100")
    enterprise = await small_co.post("/v1/demands", demand("other_compute", 1_000_001), expect=201)
    assert enterprise["decision"]["ratio_bp"] == 5000
    assert enterprise["voucher"]["face_fen"] == 500_000


async def test_declines_are_recorded_with_reasons(world: World) -> None:
    outsider = await world.holder("shenzhen-co", SZ_ENTERPRISE)  # registered in 440300
    data = await outsider.post("/v1/demands", demand("model_services", 1_000_000), expect=201)
    assert data["decision"]["outcome"] == "declined" and data["voucher"] is None
    assert data["decision"]["reasons"][0]["code"] == "not_eligible_region"
    listed = await outsider.get("/v1/decisions", expect=200)
    assert [d["id"] for d in listed["items"]] == [data["decision"]["id"]]
    storage = await world.holders["acme"].post(
        "/v1/demands", demand("storage", 1_000_000), expect=201
    )
    assert storage["decision"]["reasons"][0]["code"] == "out_of_scope"
    pending = await world.provider(
        "pending-centre", valid_uscc("91330100MA2PENDXN"), approved=False
    )
    assert pending is not None
    with_pending = await world.holders["acme"].post(
        "/v1/demands",
        demand("model_services", 10_000, provider_id=world.provider_ids["pending-centre"]),
        expect=201,
    )
    assert with_pending["decision"]["reasons"][0]["code"] == "provider_not_approved"


async def test_unknown_compute_class_is_an_error_not_a_decision(world: World, node: Node) -> None:
    before = snapshot(node)
    err = await world.holders["acme"].post(
        "/v1/demands", demand("quantum", 1_000), expect=422, code="unknown_compute_class"
    )
    assert "model_services" in err["error"]["message"]
    assert snapshot(node) == before


async def test_cap_limits_then_exhausts(world: World) -> None:
    acme = world.holders["acme"]
    first = await acme.post("/v1/demands", demand("model_services", 2_600_000_000), expect=201)
    assert first["voucher"]["face_fen"] == 780_000_000
    second = await acme.post("/v1/demands", demand("model_services", 2_600_000_000), expect=201)
    assert second["voucher"]["face_fen"] == 20_000_000  # the rest of the ¥8,000,000 cap
    assert any(r["code"] == "limited" for r in second["decision"]["reasons"])
    third = await acme.post("/v1/demands", demand("model_services", 1_000_000), expect=201)
    assert (
        third["decision"]["outcome"] == "declined"
        and third["decision"]["reasons"][-1]["code"] == "cap_exhausted"
    )


async def test_200_concurrent_demands_never_exceed_budget_or_cap(
    aiohttp_client, tmp_path, clock
) -> None:  # type: ignore[no-untyped-def]
    """A small budget, many holders, 200 demands at once: issuance stops exactly at the cap."""
    from node.app import make_app
    from tests.conftest import make_node, policy_text

    node, token = make_node(
        tmp_path, clock, policy_text(annual_budget_fen="10_000_000", annual_cap_fen="1_500_000")
    )
    try:
        client = await aiohttp_client(make_app(node, sweep=False))
        world = World(Api(client, token))
        for i in range(10):
            await world.holder(f"h{i}", valid_uscc(f"9133010{i}MA2B3C4D5"), region="330100")
        # 20 demands per holder at ¥1,000 subsidy each (¥2,000 × 50%, the small-contract rule):
        # ¥15,000 would reach every cap, ¥150,000 in all would be three times the budget.
        tasks = [
            world.holders[f"h{i % 10}"].post("/v1/demands", demand("model_services", 200_000))
            for i in range(200)
        ]
        results = await asyncio.gather(*tasks)
        issued = [r["voucher"]["face_fen"] for r in results if r["decision"]["outcome"] == "issued"]
        assert sum(issued) == 10_000_000  # the budget, exactly, never more
        per_holder: dict[str, int] = {}
        for r in results:
            if r["voucher"]:
                per_holder[r["voucher"]["holder_id"]] = (
                    per_holder.get(r["voucher"]["holder_id"], 0) + r["voucher"]["face_fen"]
                )
        assert max(per_holder.values()) <= 1_500_000
        reasons = {
            r["decision"]["reasons"][-1]["code"]
            for r in results
            if r["decision"]["outcome"] == "declined"
        }
        assert reasons <= {"budget_exhausted", "cap_exhausted"} and reasons
        assert node.check() == []
    finally:
        node.close()
