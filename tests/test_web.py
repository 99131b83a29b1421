"""The platform's pages through the real app (no browser): sessions, CSRF, the security
headers, every role's main form, refusals shown beside the field with the books unchanged,
and both languages complete. tests/test_platform.py drives the same pages in Chromium."""

from __future__ import annotations

import re
from typing import Any

from node.node import Node
from node.web import i18n
from node.web.frame import COOKIE, CSP, PRE
from tests.conftest import World, snapshot

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """Cookies by hand (the test client's jar keeps no Secure cookie over plain HTTP)."""

    def __init__(self, world: World) -> None:
        self.client = world.op.client
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    async def go(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = dict(form or {})
        if method == "POST" and "csrf" not in data:
            data["csrf"] = self.csrf
        resp = await self.client.request(
            method,
            path,
            data=data if method == "POST" else None,
            headers=headers,
            allow_redirects=False,
        )
        for name, morsel in resp.cookies.items():
            if morsel.value:
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)
        text = await resp.text()
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return resp, text

    async def sign_in(self, token: str) -> None:
        await self.go("GET", "/ui/signin")
        resp, _ = await self.go("POST", "/ui/signin", {"token": token})
        assert resp.status == 303, resp.status
        resp, _ = await self.go("GET", "/ui/")
        assert resp.status == 303


async def test_pages_need_a_session_and_carry_the_security_headers(world: World) -> None:
    b = Browser(world)
    resp, _ = await b.go("GET", "/ui/holder")
    assert resp.status == 303 and resp.headers["Location"] == "/ui/signin"
    resp, text = await b.go("GET", "/ui/signin")
    assert resp.status == 200 and "访问令牌" in text
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "unsafe-inline" not in CSP
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    pre = resp.headers.getall("Set-Cookie")
    assert any(
        c.startswith(f"{PRE}=") and "HttpOnly" in c and "Secure" in c and "SameSite=Strict" in c
        for c in pre
    )
    assert "<script>" not in text and "style=" not in text  # no inline script or style
    # A sign-in without the form's CSRF token is refused, and signs nobody in.
    token = world.holders["acme"].token or ""
    resp, text = await b.go("POST", "/ui/signin", {"token": token, "csrf": "forged"})
    assert resp.status == 403 and COOKIE not in b.cookies
    await b.sign_in(token)
    assert COOKIE in b.cookies
    resp, text = await b.go("GET", "/ui/holder")
    assert resp.status == 200 and "我的算力券" in text
    # English on request, remembered.
    resp, text = await b.go("GET", "/ui/holder?lang=en")
    assert "My vouchers" in text and b.cookies["suanli-lang"] == "en"
    # A holder cannot open the operator's pages.
    resp, _ = await b.go("GET", "/ui/operator")
    assert resp.status == 403
    # A form from another site, or without the session's CSRF token: refused.
    resp, _ = await b.go("POST", "/ui/holder/demand", {"csrf": "x", "estimate": "100"})
    assert resp.status == 403
    # Signing out ends the session: the old cookie opens nothing.
    old = dict(b.cookies)
    resp, _ = await b.go("POST", "/ui/signout", {})
    assert resp.status == 303
    b.cookies = old
    resp, _ = await b.go("GET", "/ui/holder")
    assert resp.status == 303 and resp.headers["Location"] == "/ui/signin"


async def test_a_cross_site_origin_is_refused(world: World) -> None:
    b = Browser(world)
    await b.sign_in(world.holders["acme"].token or "")
    await b.go("GET", "/ui/holder")
    resp = await b.client.post(
        "/ui/holder/demand",
        data={"csrf": b.csrf, "estimate": "1000", "compute_class": "model_services"},
        headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in b.cookies.items()),
            "Origin": "https://evil.example",
        },
        allow_redirects=False,
    )
    assert resp.status == 403


async def test_sign_in_is_throttled_after_repeated_failures(world: World) -> None:
    b = Browser(world)
    await b.go("GET", "/ui/signin")
    for _ in range(5):
        resp, text = await b.go("POST", "/ui/signin", {"token": "slh_wrong"})
        assert resp.status == 401 and "令牌无效" in text
    resp, text = await b.go("POST", "/ui/signin", {"token": world.holders["acme"].token or ""})
    assert resp.status == 429 and "稍后再试" in text and COOKIE not in b.cookies


async def test_a_holder_gets_a_voucher_and_a_code_and_bad_input_changes_nothing(
    world: World, node: Node
) -> None:
    b = Browser(world)
    await b.sign_in(world.holders["acme"].token or "")
    await b.go("GET", "/ui/holder")
    before = snapshot(node)
    resp, text = await b.go(
        "POST",
        "/ui/holder/demand",
        {
            "compute_class": "model_services",
            "estimate": "12,x",
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        },
    )
    assert resp.status == 400 and 'id="e-estimate"' in text and "error-summary" in text
    assert snapshot(node) == before
    resp, text = await b.go(
        "POST",
        "/ui/holder/demand",
        {
            "compute_class": "model_services",
            "estimate": "1000000.00",
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        },
    )
    assert resp.status == 201 and "已核发" in text and "¥300,000.00" in text
    voucher = re.search(r'data-testid="voucher-id">(v_[0-9a-f]+)<', text)
    assert voucher is not None
    resp, text = await b.go(
        "POST",
        f"/ui/holder/vouchers/{voucher.group(1)}/authorize",
        {"provider_id": world.provider_ids["alicloud"], "max_yuan": "50000", "days": "7"},
    )
    assert resp.status == 201
    code = re.search(r'data-testid="auth-code">([^<]+)<', text)
    assert code is not None and len(code.group(1)) > 20
    # The provider redeems with that code on its own page.
    p = Browser(world)
    await p.sign_in(world.providers["alicloud"].token or "")
    await p.go("GET", "/ui/provider")
    resp, text = await p.go(
        "POST",
        "/ui/provider/redeem",
        {
            "code": code.group(1),
            "order_id": "WEB-1",
            "order_amount": "100000",
            "compute_class": "model_services",
            "mode": "redeem",
        },
    )
    assert resp.status == 201 and "¥30,000.00" in text
    # The operator sees the figures.
    o = Browser(world)
    await o.sign_in(world.op.token or "")
    resp, text = await o.go("GET", "/ui/operator")
    assert resp.status == 200 and 'data-chart="sankey"' in text and "¥300,000.00" in text
    assert 'data-testid="captured">¥30,000.00' in text
    assert 'data-testid="captured-here">¥30,000.00' in text and 'data-testid="all-well"' in text
    row = re.search(r'data-category="enterprise">(.*?)</tr>', text)
    assert row is not None and "¥300,000.00" in row.group(1) and "¥30,000.00" in row.group(1)
    from tests.conftest import HZ_ENTERPRISE

    assert re.search(rf'data-district="{HZ_ENTERPRISE[2:8]}">.*?¥300,000.00', text)
    resp, flows = await o.go("GET", "/ui/operator/flows.json")
    import json

    links = {(x["source"], x["target"]): x["value"] for x in json.loads(flows)["links"]}
    assert links[("年度预算", "企业")] == 300_000_00
    assert links[("已使用", "本市服务商")] == 30_000_00
    assert links[("企业", "未使用")] == 270_000_00
    chart = json.loads(flows)
    assert sum(chart["series"][0]["values"]) == 300_000_00  # issued, by month
    assert sum(chart["series"][1]["values"]) == 30_000_00  # captured, by month


def test_every_word_reason_and_error_has_both_languages() -> None:
    for table in (
        i18n.WORDS,
        i18n.REASONS,
        i18n.ERRORS,
        i18n.CLASSES,
        i18n.STATES,
        i18n.CATEGORIES,
    ):
        for key, pair in table.items():
            assert len(pair) == 2 and all(pair), key
    import inspect

    from node.domain import issuance

    codes = set(re.findall(r'Reason\(\s*"([a-z_]+)"', inspect.getsource(issuance)))
    assert codes <= set(i18n.REASONS), codes - set(i18n.REASONS)


async def test_a_one_time_sign_in_link_signs_in_once(world: World) -> None:
    link = await world.op.post(
        "/v1/signin-links", {"subject": world.holder_ids["acme"], "minutes": 60}, expect=201
    )
    await world.holders["acme"].post(
        "/v1/signin-links", {"subject": world.holder_ids["acme"]}, code="forbidden"
    )
    b = Browser(world)
    resp, text = await b.go("GET", link["path"])  # a preview of the link spends nothing
    assert resp.status == 200 and 'action="/ui/link"' in text
    code = link["path"].rsplit("/", 1)[1]
    resp, _ = await b.go("POST", "/ui/link", {"code": code})
    assert resp.status == 303 and COOKIE in b.cookies
    resp, text = await b.go("GET", "/ui/holder")
    assert resp.status == 200 and "我的算力券" in text
    again = Browser(world)
    await again.go("GET", link["path"])
    resp, text = await again.go("POST", "/ui/link", {"code": code})
    assert resp.status == 401 and COOKIE not in again.cookies and "已使用" in text


async def test_a_holder_sees_its_cap_and_qr_codes_and_cancels_an_authorization(
    world: World, node: Node
) -> None:
    voucher = await world.voucher("acme", 1_000_000_00)  # ¥1,000,000 × 30% = ¥300,000
    code = await world.code("acme", voucher["id"], "alicloud", 50_000_00)
    b = Browser(world)
    await b.sign_in(world.holders["acme"].token or "")
    resp, text = await b.go("GET", "/ui/holder")
    assert 'data-testid="cap">¥8,000,000.00' in text
    assert 'data-testid="cap-left">¥7,700,000.00' in text
    qr = re.search(r'src="(/ui/holder/vouchers/[^"]+/qr\.svg)"', text)  # the voucher's QR code
    assert qr is not None
    resp, svg = await b.go("GET", qr.group(1))
    assert resp.status == 200 and resp.content_type == "image/svg+xml" and "<svg" in svg
    auth = re.search(r'data-authorization="([^"]+)"', text)
    assert auth is not None
    resp, text = await b.go("POST", f"/ui/holder/authorizations/{auth.group(1)}/cancel", {})
    assert resp.status == 200 and "授权已取消" in text and "data-authorization=" not in text
    # The cancelled code places no hold; cancelling it again, or another's, is refused.
    order = {
        "code": code,
        "order_id": "C-1",
        "order_amount_fen": 1_000_00,
        "compute_class": "model_services",
    }
    refused = await world.providers["alicloud"].post("/v1/redemptions", order)
    assert refused["error"] == {
        "code": "authorization_expired",
        "message": "this authorization was cancelled by its holder",
    }
    await world.holders["acme"].post(f"/v1/authorizations/{auth.group(1)}/cancel", code="not_found")
    await world.holders["zju"].post(f"/v1/authorizations/{auth.group(1)}/cancel", code="not_found")


async def test_an_operator_suspends_a_provider_and_reads_the_audit_trail(
    world: World, node: Node
) -> None:
    o = Browser(world)
    await o.sign_in(world.op.token or "")
    resp, text = await o.go("GET", "/ui/operator/providers")
    assert resp.status == 200 and world.provider_ids["sugon"] in text
    target = f"/ui/operator/providers/{world.provider_ids['sugon']}/state"
    before = snapshot(node)
    resp, text = await o.go("POST", target, {"state": "suspended", "reason": ""})
    assert resp.status == 400 and "请写明原因" in text and snapshot(node) == before
    resp, text = await o.go("POST", target, {"state": "suspended", "reason": "licence lapsed"})
    assert resp.status == 200 and "已暂停" in text
    provider = await world.op.get(f"/v1/providers/{world.provider_ids['sugon']}", expect=200)
    assert provider["state"] == "suspended"
    resp, text = await o.go("GET", "/ui/operator/audit")
    assert resp.status == 200 and "provider.state" in text and "session.sign_in" in text
    resp, text = await o.go("GET", "/ui/operator/peers")
    assert resp.status == 200  # no federation here: an empty table
    # The other roles cannot open them.
    h = Browser(world)
    await h.sign_in(world.holders["acme"].token or "")
    for page in ("/ui/operator/providers", "/ui/operator/audit", "/ui/operator/peers"):
        resp, _ = await h.go("GET", page)
        assert resp.status == 403, page


def test_reasons_read_in_chinese_with_the_recorded_figures() -> None:
    decision = {
        "compute_class": "model_services",
        "ratio_bp": 3000,
        "estimated_amount_fen": 1_000_000_00,
        "amount_fen": 250_000_00,
    }
    say = i18n.reason_sentence
    assert say({"code": "ratio", "message": "x"}, decision, "zh") == "适用补贴比例：模型服务 30%"
    assert (
        say({"code": "by_ratio", "message": "x"}, decision, "zh")
        == "按比例计算的补贴：¥1,000,000.00 × 30% = ¥300,000.00"
    )
    limited = {"code": "limited", "message": "limited to the remaining annual cap: ¥250,000.00"}
    assert say(limited, decision, "zh") == "受年度剩余额度限制，核发 ¥250,000.00"
    assert say(limited, decision, "en").endswith("remaining annual cap: ¥250,000.00")


async def test_an_operator_filters_and_exports_decisions(world: World) -> None:
    await world.voucher("acme", 1_000_000_00)
    await world.holders["zju"].post(
        "/v1/demands",
        {
            "compute_class": "storage",
            "estimated_amount_fen": 100_00,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        },
        expect=201,
    )
    o = Browser(world)
    await o.sign_in(world.op.token or "")
    resp, text = await o.go("GET", "/ui/operator/decisions?outcome=declined")
    assert resp.status == 200 and text.count("data-decision=") == 1
    assert world.holder_ids["zju"] in text and "不属于智能算力" in text
    resp, text = await o.go("GET", "/ui/operator/decisions")
    assert text.count("data-decision=") == 2
    resp, text = await o.go("GET", "/ui/operator/decisions.csv?outcome=issued")
    lines = text.strip().splitlines()
    assert resp.content_type == "text/csv" and len(lines) == 2
    assert lines[1].split(",")[2] == world.holder_ids["acme"] and ",issued,30000000," in lines[1]
    resp, _ = await o.go("GET", "/ui/operator/decisions?outcome=maybe")
    assert resp.status == 400


async def test_a_window_closed_and_paid_on_the_pages_gives_the_provider_its_advice(
    world: World, node: Node
) -> None:
    from node.domain.payments import PAYMENT_TAG
    from node.keys import canonical_json, verify

    voucher = await world.voucher("acme", 1_000_000_00)
    code = await world.code("acme", voucher["id"], "alicloud", 50_000_00)
    order = {
        "code": code,
        "order_id": "P-1",
        "order_amount_fen": 100_000_00,
        "compute_class": "model_services",
    }
    await world.providers["alicloud"].post("/v1/redemptions", order, expect=201)
    o = Browser(world)
    await o.sign_in(world.op.token or "")
    await o.go("GET", "/ui/operator")
    resp, text = await o.go("POST", "/ui/operator/windows/close", {})
    assert resp.status == 201 and 'id="notice"' in text
    match = re.search(r'name="window" value="([^"]+)"', text)
    assert match is not None
    pay = {
        "window": match.group(1),
        "provider_id": world.provider_ids["alicloud"],
        "amount": "30000.00",
        "value_date": "2026-03-10",
        "reference": "",
    }
    before = snapshot(node)
    resp, text = await o.go("POST", "/ui/operator/payments", pay)
    assert resp.status == 400 and snapshot(node) == before  # no bank reference
    pay["reference"] = "ICBC-P-1"
    resp, text = await o.go("POST", "/ui/operator/payments", pay)
    assert resp.status == 201 and "¥30,000.00" in text
    p = Browser(world)
    await p.sign_in(world.providers["alicloud"].token or "")
    resp, text = await p.go("GET", "/ui/provider")
    link = re.search(r'href="(/ui/provider/payments/[^"]+/advice\.json)"', text)
    assert link is not None and "ICBC-P-1" in text
    resp, body = await p.go("GET", link.group(1))
    import json

    signed = json.loads(body)
    assert signed["advice"]["amount_fen"] == 30_000_00
    assert verify(
        node.key.public_key,
        PAYMENT_TAG,
        canonical_json(signed["advice"]),
        bytes.fromhex(signed["signature"]),
    )
    # Another provider cannot fetch it.
    q = Browser(world)
    await q.sign_in(world.providers["sugon"].token or "")
    resp, _ = await q.go("GET", link.group(1))
    assert resp.status == 404
    # The operator reverses the payment on the settlement page: a reason is needed; then the
    # statement is unpaid again and the reversal is listed.
    resp, text = await o.go("GET", "/ui/operator/settlement")
    payment_id = link.group(1).split("/")[-2]
    assert f'data-payment="{payment_id}"' in text
    before = snapshot(node)
    target = f"/ui/operator/payments/{payment_id}/reversal"
    resp, text = await o.go("POST", target, {"reason": ""})
    assert resp.status == 400 and f'id="e-rev-{payment_id}"' in text and snapshot(node) == before
    resp, text = await o.go("POST", target, {"reason": "wrong account"})
    assert resp.status == 201 and 'data-testid="reversed"' in text
    assert f'action="{target}"' not in text  # reversed once only
    payouts = await world.op.get("/v1/settlement/payouts", expect=200)
    assert sum(p["unpaid_fen"] for p in payouts["items"]) == 30_000_00


async def test_an_operator_registers_a_holder_who_signs_in_with_the_link(
    world: World, node: Node
) -> None:
    o = Browser(world)
    await o.sign_in(world.op.token or "")
    await o.go("GET", "/ui/operator/holders")
    before = snapshot(node)
    bad = {"uscc": "91330100716105852X", "name": "杭州新公司", "category": "enterprise"}
    resp, text = await o.go("POST", "/ui/operator/holders", bad)
    assert resp.status == 400 and 'id="e-uscc"' in text and snapshot(node) == before
    from tests.conftest import valid_uscc

    good = dict(bad, uscc=valid_uscc("91330100MA2HXN001"))
    resp, text = await o.go("POST", "/ui/operator/holders", good)
    assert resp.status == 201 and "杭州新公司" in text
    link = re.search(r'data-testid="signin-link">(/ui/link/[^<]+)<', text)
    assert link is not None
    h = Browser(world)
    await h.go("GET", link.group(1))
    resp, _ = await h.go("POST", "/ui/link", {"code": link.group(1).rsplit("/", 1)[1]})
    assert resp.status == 303
    resp, text = await h.go("GET", "/ui/holder")
    assert resp.status == 200 and "¥8,000,000.00" in text  # the enterprise cap, none used


async def test_an_operator_checks_then_loads_a_policy(world: World, node: Node) -> None:
    from tests.conftest import policy_text

    o = Browser(world)
    await o.sign_in(world.op.token or "")
    await o.go("GET", "/ui/operator/policy")
    before = snapshot(node)
    # Three problems: each is named at once, beside the line of its key.
    broken = (
        policy_text()
        .replace("model_services = 3000", "model_services = 30000")
        .replace('settlement_cycle = "quarterly"', 'settlement_cycle = "yearly"')
        .replace("[compute_classes]", "surplus = 1\n[compute_classes]")
    )
    resp, text = await o.go("POST", "/ui/operator/policy/check", {"toml": broken})
    assert resp.status == 400 and 'id="e-toml"' in text and "3 处问题" in text
    assert "应在 0 至 10000 之间，实际为 30000" in text and "未知的项" in text  # in Chinese
    lines = {n + 1: line for n, line in enumerate(broken.splitlines())}
    shown = dict(re.findall(r'data-line="(\d+)">.*?data-testid="policy-problem">([^<]*)<', text))
    assert {lines[int(n)].split("=")[0].strip() for n in shown} == {
        "model_services",
        "settlement_cycle",
        "surplus",
    }, shown
    assert snapshot(node) == before
    raised = policy_text().replace(
        "annual_budget_fen = 25_000_000_000", "annual_budget_fen = 26_000_000_000"
    )
    resp, text = await o.go("POST", "/ui/operator/policy/check", {"toml": raised})
    row = re.search(r'data-key="annual_budget_fen">(.*?)</tr>', text)
    assert resp.status == 200 and row is not None
    assert "25000000000" in row.group(1) and "<strong>26000000000</strong>" in row.group(1)
    assert re.search(r'data-testid="budget-move">[^<]*\+¥10,000,000.00<', text)
    assert snapshot(node) == before  # checked, not loaded
    resp, text = await o.go("POST", "/ui/operator/policy/load", {"toml": raised})
    assert resp.status == 201 and "v2" in text
    budget = await world.op.get("/v1/budget", expect=200)
    assert budget["items"][0]["budget_fen"] == 26_000_000_000


def test_what_a_window_misses_reads_in_chinese() -> None:
    from node.domain.clearing import window_progress

    state, missing = window_progress(
        False,
        True,
        [("520100", "sent", 900, None), ("370200", "agreed", 500, "awaiting_confirmation")],
        [("p_1", 1000, 400)],
    )
    assert state == "closed"
    assert [i18n.missing(m, "zh") for m in missing] == [
        "尚未会签的对账单：520100",
        "应付服务商 p_1：1000 分中 600 分未兑付",
        "与 370200 的城市间转账：待确认",
    ]
    assert [i18n.missing(m, "en") for m in missing] == missing
    _, more = window_progress(True, False, [("520100", "agreed", 900, None)], [])
    assert [i18n.missing(m, "zh") for m in more] == [
        "服务商结算单尚未签发",
        "与 520100 的对账单（900 分）尚未付款结算",
    ]


DEMAND = {
    "compute_class": "model_services",
    "estimate": "1000000.00",
    "period_start": "2026-01-01",
    "period_end": "2026-12-31",
}


async def test_an_operator_registers_a_provider_and_declares_its_related_parties(
    world: World, node: Node
) -> None:
    from tests.conftest import HZ_ENTERPRISE, valid_uscc

    o = Browser(world)
    await o.sign_in(world.op.token or "")
    await o.go("GET", "/ui/operator/providers")
    before = snapshot(node)
    bad = {"uscc": "91330100716105852X", "name": "贵安智算", "kind": "computing_centre"}
    resp, text = await o.go("POST", "/ui/operator/providers", bad)
    assert resp.status == 400 and 'id="e-uscc"' in text and "校验位" in text
    resp, text = await o.go("POST", "/ui/operator/providers", dict(bad, kind="bank"))
    assert resp.status == 400 and 'id="e-kind"' in text
    resp, text = await o.go(
        "POST",
        "/ui/operator/providers",
        dict(bad, uscc=valid_uscc("91330100MA2K00001"), related_uscc="91330100716105852X"),
    )
    assert resp.status == 400 and 'id="e-related_uscc"' in text
    assert snapshot(node) == before
    good = {
        "uscc": valid_uscc("91330100MA2K00001"),
        "name": "贵安智算",
        "kind": "matchmaking_partner",
        "approved": "yes",
        "related_uscc": "",
    }
    resp, text = await o.go("POST", "/ui/operator/providers", good)
    assert resp.status == 201 and "贵安智算" in text and "已批准" in text
    found = re.search(r'data-testid="provider-id">(p_[0-9a-f]+)<', text)
    link = re.search(r'data-testid="signin-link">(/ui/link/[^<]+)<', text)
    assert found is not None and link is not None
    provider_id = found.group(1)
    shown = await world.op.get(f"/v1/providers/{provider_id}", expect=200)
    assert shown["kind"] == "matchmaking_partner" and shown["state"] == "approved"
    # The provider signs in with its link and sees its own page.
    p = Browser(world)
    await p.go("GET", link.group(1))
    resp, _ = await p.go("POST", "/ui/link", {"code": link.group(1).rsplit("/", 1)[1]})
    assert resp.status == 303
    resp, _ = await p.go("GET", "/ui/provider")
    assert resp.status == 200
    # Related parties: a bad code is refused beside the provider's field, a good list saved,
    # and a demand naming that provider from a related holder is then declined (R5).
    target = f"/ui/operator/providers/{provider_id}/related"
    before = snapshot(node)
    resp, text = await o.go("POST", target, {"related_uscc": "not-a-code"})
    assert resp.status == 400 and f'id="e-rel-{provider_id}"' in text
    assert snapshot(node) == before
    resp, text = await o.go("POST", target, {"related_uscc": f"{HZ_ENTERPRISE.lower()}\n"})
    assert resp.status == 200
    shown = await world.op.get(f"/v1/providers/{provider_id}", expect=200)
    assert shown["related_uscc"] == [HZ_ENTERPRISE]
    decision = await world.holders["acme"].post(
        "/v1/demands",
        {
            "compute_class": "model_services",
            "estimated_amount_fen": 100_000_00,
            "provider_id": provider_id,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        },
        expect=201,
    )
    assert [r["code"] for r in decision["decision"]["reasons"]] == ["related_party"]


async def test_the_dishonesty_list_declines_demands_until_an_entry_is_removed(
    world: World, node: Node
) -> None:
    from tests.conftest import HZ_ENTERPRISE

    o = Browser(world)
    await o.sign_in(world.op.token or "")
    resp, text = await o.go("GET", "/ui/operator/holders")
    assert resp.status == 200 and "失信名单" in text
    before = snapshot(node)
    resp, text = await o.go(
        "POST", "/ui/operator/dishonesty", {"d_uscc": "91330100716105852X", "d_reason": "x"}
    )
    assert resp.status == 400 and 'id="e-d_uscc"' in text
    resp, text = await o.go("POST", "/ui/operator/dishonesty", {"d_uscc": HZ_ENTERPRISE})
    assert resp.status == 400 and 'id="e-d_reason"' in text
    assert snapshot(node) == before
    resp, text = await o.go(
        "POST",
        "/ui/operator/dishonesty",
        {"d_uscc": HZ_ENTERPRISE, "d_reason": "（2026）浙01执123号"},
    )
    assert resp.status == 201 and 'data-testid="listed"' in text
    listed = await world.op.get("/v1/dishonesty", expect=200)
    assert [e["uscc"] for e in listed["items"]] == [HZ_ENTERPRISE]
    assert listed["items"][0]["reason"] == "（2026）浙01执123号"
    # The holder's demand is declined on its own page, with the reason in plain words.
    h = Browser(world)
    await h.sign_in(world.holders["acme"].token or "")
    await h.go("GET", "/ui/holder")
    resp, text = await h.go("POST", "/ui/holder/demand", DEMAND)
    assert resp.status == 201 and "需求方在失信名单上" in text and "未核发" in text
    # Removing needs a reason; then the same demand is issued.
    target = f"/ui/operator/dishonesty/{HZ_ENTERPRISE}/remove"
    resp, text = await o.go("POST", target, {"reason": ""})
    assert resp.status == 400
    assert len((await world.op.get("/v1/dishonesty", expect=200))["items"]) == 1
    resp, text = await o.go("POST", target, {"reason": "已履行"})
    assert resp.status == 200 and 'data-testid="unlisted"' in text
    resp, text = await h.go("POST", "/ui/holder/demand", DEMAND)
    assert resp.status == 201 and "已核发" in text
    resp, text = await o.go("GET", "/ui/operator/audit")
    assert "dishonesty.add" in text and "dishonesty.remove" in text
    # The API refuses the same bad input with its codes, and a holder may not touch the list.
    await world.op.post("/v1/dishonesty", {"uscc": "123", "reason": "x"}, expect=422)
    await world.op.post(f"/v1/dishonesty/{HZ_ENTERPRISE}/remove", {"reason": "x"}, expect=404)
    await world.holders["acme"].get("/v1/dishonesty", expect=403)


async def test_every_page_has_a_plain_title(world: World) -> None:
    """Each page's <title> is words (a template once put a whole section inside it)."""
    o = Browser(world)
    await o.sign_in(world.op.token or "")
    pages = ("", "/decisions", "/settlement", "/policy", "/holders", "/providers", "/peers")
    for page in (*pages, "/audit"):
        resp, text = await o.go("GET", f"/ui/operator{page}")
        title = re.search(r"<title>(.*?)</title>", text, re.S)
        assert resp.status == 200 and title is not None, page
        assert "<" not in title.group(1) and "{" not in title.group(1), (page, title.group(1))
        assert len(title.group(1)) < 60, (page, title.group(1))
