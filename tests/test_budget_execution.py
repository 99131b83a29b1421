"""The budget-execution report (预算执行): every figure from the books, the breakdowns adding up
to the totals, the totals reconciled with the ledger by `suanli check` (the node fixture runs it
after the test), in JSON, CSV and a printable page."""

from __future__ import annotations

import csv
import io

from node.node import Node
from tests.conftest import World, order


async def test_the_report_is_the_books(world: World, node: Node) -> None:
    acme = await world.voucher("acme", 100_000_000)  # ¥1,000,000 demand, 30%: ¥300,000
    zju = await world.voucher("zju", 50_000_000, "other_compute")
    code = await world.code("acme", acme["id"], "alicloud", 10_000_000)
    await world.providers["alicloud"].post(
        "/v1/redemptions", order(code, "E-1", 4_000_000), expect=201
    )
    code = await world.code("zju", zju["id"], "sugon", 10_000_000)
    held = (
        await world.providers["sugon"].post(
            "/v1/holds", order(code, "E-2", 2_000_000, "other_compute"), expect=201
        )
    )["hold"]
    await world.op.post(f"/v1/vouchers/{zju['id']}/revoke", {"reason": "audit"}, expect=200)
    closed = await world.op.post("/v1/settlement/windows/close", {}, expect=201)
    payout = (await world.op.get(f"/v1/settlement/payouts?window={closed['window']}"))["items"][0]
    await world.op.post(
        "/v1/settlement/payments",
        {
            "window": closed["window"],
            "provider_id": payout["provider_id"],
            "amount_fen": 1_000_000,
            "value_date": "2026-04-10",
            "bank_reference": "E-PAY-1",
        },
        expect=201,
    )

    report = await world.op.get("/v1/reports/budget-execution?year=2026")
    t = report["totals"]
    budget = (await world.op.get("/v1/budget"))["items"][0]
    assert (
        report["fiscal_year"] == 2026
        and report["city"] == "Test City"
        and report["region"] == "330100"
    )
    assert t["budget_fen"] == budget["budget_fen"] and t["remaining_fen"] == budget["remaining_fen"]
    assert t["issued_fen"] == acme["face_fen"] + zju["face_fen"] and t["vouchers"] == 2
    assert t["captured_fen"] == t["captured_by_our_providers_fen"] == 1_200_000
    assert (
        t["reclaimed_revoked_fen"] == t["reclaimed_fen"] == zju["face_fen"]
    )  # the hold was voided
    assert t["reclaimed_expired_fen"] == 0
    assert t["committed_fen"] == budget["committed_fen"]
    assert t["outstanding_fen"] == acme["face_fen"] - 1_200_000
    assert t["paid_to_providers_fen"] == 1_000_000
    assert held["state"] == "held"
    categories = {r["category"]: r["issued_fen"] for r in report["by_category"]}
    assert categories == {"enterprise": acme["face_fen"], "university": zju["face_fen"]}
    assert {r["district"] for r in report["by_district"]} == {"330100", "100000"}
    assert [(r["month"], r["captured_fen"]) for r in report["by_month"]] == [("2026-03", 1_200_000)]
    assert [r["captured_fen"] for r in report["by_provider"]] == [1_200_000]
    assert node.check() == []  # the report's totals reconcile with the ledger

    # The window's own report: what happened in 2026-Q1 (here, all of it).
    quarter = await world.op.get(f"/v1/reports/budget-execution?window={closed['window']}")
    q = quarter["totals"]
    assert quarter["window"] == closed["window"] == "2026-Q1" and quarter["fiscal_year"] == 2026
    assert (q["issued_fen"], q["captured_fen"], q["paid_to_providers_fen"]) == (
        t["issued_fen"],
        1_200_000,
        1_000_000,
    )
    assert q["reclaimed_revoked_fen"] == zju["face_fen"]
    later = await world.op.get("/v1/reports/budget-execution?window=2026-Q2")
    assert later["totals"]["issued_fen"] == later["totals"]["captured_fen"] == 0
    await world.op.get(
        "/v1/reports/budget-execution?window=2026-Q5", expect=400, code="invalid_request"
    )

    text = await world.op.client.get(
        "/v1/reports/budget-execution?format=csv",
        headers={"Authorization": f"Bearer {world.op.token}"},
    )
    rows = list(csv.DictReader(io.StringIO(await text.text())))
    assert {
        "section": "totals",
        "key": "",
        "figure": "issued_fen",
        "value": str(t["issued_fen"]),
    } in rows
    page = await world.op.client.get(
        "/v1/reports/budget-execution?format=html",
        headers={"Authorization": f"Bearer {world.op.token}"},
    )
    body = await page.text()
    assert page.content_type == "text/html" and "Test City" in body and "¥12,000.00" in body
    assert "<script" not in body
    await world.holders["acme"].get("/v1/reports/budget-execution", expect=403, code="forbidden")
    await world.op.get("/v1/reports/budget-execution?format=pdf", expect=400)


def test_the_cli_exports_it_in_each_format(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from tests.conftest import policy_text
    from tests.proc import suanli

    root = Path(str(tmp_path))
    (root / "p.toml").write_text(policy_text())
    data = str(root / "hz")
    suanli(
        "init",
        "--data",
        data,
        "--region",
        "330100",
        "--name",
        "杭州",
        "--policy",
        str(root / "p.toml"),
    )
    report = json.loads(
        suanli(
            "export", "budget-execution", "--data", data, "--year", "2026", "--format", "json"
        ).stdout
    )
    assert report["city"] == "杭州" and report["totals"]["issued_fen"] == 0
    assert report["totals"]["budget_fen"] == report["totals"]["remaining_fen"] > 0
    suanli(
        "export",
        "budget-execution",
        "--data",
        data,
        "--year",
        "2026",
        "--format",
        "html",
        "--out",
        str(root / "r.html"),
    )
    assert "杭州 (330100) 算力券预算执行" in (root / "r.html").read_text()
    assert suanli(
        "export", "budget-execution", "--data", data, "--format", "csv"
    ).stdout.startswith("section,key,figure,value")
    refused = suanli("export", "vouchers", "--data", data, "--format", "html", check=False)
    assert refused.returncode == 2 and "budget-execution only" in refused.stderr
