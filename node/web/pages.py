"""The platform's pages: each reads a form, calls one service method with the signed-in
person's ``Principal``, and renders the answer (docs/platform.md). No business rule here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.issuance import Demand
from node.domain.payments import yuan_to_fen
from node.domain.windows import CST
from node.services.spending import Order
from node.web import qr
from node.web.frame import (
    FormError,
    clear_session_cookie,
    client_of,
    lang_of,
    render,
    session_of,
    set_session_cookie,
)

MAX_TEXT = 100


def routes() -> list[web.RouteDef]:
    return [
        web.get("", home),
        web.get("/", home),
        web.get("/signin", signin_page),
        web.post("/signin", signin),
        web.post("/signout", signout),
        web.get("/link/{code}", link_page),
        web.post("/link", link_signin),
        web.get("/holder", holder_home),
        web.post("/holder/demand", holder_demand),
        web.post("/holder/vouchers/{id}/authorize", holder_authorize),
        web.post("/holder/authorizations/{id}/cancel", holder_cancel),
        web.get("/provider", provider_home),
        web.post("/provider/redeem", provider_redeem),
        web.post("/provider/holds/{id}/capture", provider_capture),
        web.post("/provider/holds/{id}/void", provider_void),
        web.get("/provider/payments/{id}/advice.json", provider_advice),
        web.get("/operator", operator_home),
        web.post("/operator/windows/close", operator_close),
        web.post("/operator/payments", operator_pay),
        web.get("/operator/policy", operator_policy),
        web.post("/operator/policy/check", operator_policy_check),
        web.post("/operator/policy/load", operator_policy_load),
        web.get("/operator/holders", operator_holders),
        web.post("/operator/holders", operator_register_holder),
        web.post("/operator/holders/{id}/link", operator_holder_link),
        web.get("/operator/providers", operator_providers),
        web.post("/operator/providers/{id}/state", operator_provider_state),
        web.get("/operator/peers", operator_peers),
        web.get("/operator/audit", operator_audit),
        web.get("/operator/decisions", operator_decisions),
        web.get("/operator/flows.json", operator_flows),
        web.get("/holder/vouchers/{id}/qr.svg", holder_voucher_qr),
        web.get("/operator/settlement", operator_settlement),
        web.post("/operator/transfers", operator_transfer),
        web.post("/operator/transfers/{id}/answer", operator_transfer_answer),
        web.get("/operator/decisions.csv", operator_decisions_csv),
    ]


def _who(request: web.Request) -> Any:
    return session_of(request).principal


def _role(request: web.Request, role: str) -> Any:
    who = _who(request)
    if who.role != role:
        raise errors.Forbidden(f"this page is for {role}s")
    return who


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    out = {}
    for key, value in form.items():
        if not isinstance(value, str):
            raise errors.InvalidRequest(f"{key}: text expected")
        out[key] = value.strip()
    return out


def _text(form: dict[str, str], name: str, fields: dict[str, str], lang: str) -> str:
    value = form.get(name, "")
    if not value or len(value) > MAX_TEXT:
        fields[name] = (
            "必填，最多 100 个字符" if lang == "zh" else "Required, at most 100 characters"
        )
    return value


def _yuan(form: dict[str, str], name: str, fields: dict[str, str], lang: str) -> int:
    try:
        return yuan_to_fen(name, form.get(name, "").replace(",", ""))
    except errors.InvalidRequest:
        fields[name] = (
            "请填写金额，例如 1200.50" if lang == "zh" else "Enter an amount such as 1200.50"
        )
        return 0


def _classes(node: Any) -> list[str]:
    """This year's compute classes, for a form's choice."""
    policy = node.policies.maybe_for_year(year_of(node.clock.now_ms()))
    return sorted(policy.compute_classes) if policy is not None else []


def _field_of(exc: errors.SuanliError, known: tuple[str, ...]) -> dict[str, str]:
    """A service's refusal shown beside the field it names (``field: …``), if it names one."""
    name = exc.message.split(":", 1)[0]
    return {name: exc.message} if name in known else {}


# Signing in ------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    who = _who(request)
    raise web.HTTPSeeOther(f"/ui/{who.role}")


async def signin_page(request: web.Request) -> web.StreamResponse:
    if session_of(request) is not None:
        raise web.HTTPSeeOther("/ui/")
    return render(request, "signin.html", errors={}, summary=[])


async def signin(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    lang = lang_of(request)
    token = form.get("token", "")
    if not token or len(token) > 200:
        fields = {"token": i18n_required(lang)}
        return render(request, "signin.html", 400, errors=fields, summary=list(fields.values()))
    try:
        session_id, _ = await request.app[NODE].sessions.sign_in(token, client_of(request))
    except (errors.Unauthenticated, errors.TooManyAttempts) as exc:
        from node.web.i18n import ERRORS, pick

        message = pick(ERRORS[exc.code], lang)
        status = 429 if isinstance(exc, errors.TooManyAttempts) else 401
        return render(request, "signin.html", status, errors={"token": message}, summary=[message])
    response = web.Response(status=303, headers={"Location": "/ui/"})
    set_session_cookie(response, session_id)
    return response


async def link_page(request: web.Request) -> web.StreamResponse:
    """A one-time sign-in link: a page with one button, so that a link preview or a mail
    scanner that fetches the URL does not spend it."""
    code = request.match_info["code"]
    if len(code) > 100:
        raise web.HTTPNotFound()
    return render(request, "link.html", code=code)


async def link_signin(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    lang = lang_of(request)
    try:
        session_id, _ = await request.app[NODE].sessions.sign_in_link(
            form.get("code", ""), client_of(request)
        )
    except (errors.Unauthenticated, errors.TooManyAttempts) as exc:
        from node.web.i18n import pick

        message = pick(
            ("登录链接无效、已使用或已过期", "This sign-in link is unknown, used or expired"), lang
        )
        status = 429 if isinstance(exc, errors.TooManyAttempts) else 401
        return render(request, "signin.html", status, errors={}, summary=[message])
    response = web.Response(status=303, headers={"Location": "/ui/"})
    set_session_cookie(response, session_id)
    return response


def i18n_required(lang: str) -> str:
    return "请填写访问令牌" if lang == "zh" else "Enter your access token"


async def signout(request: web.Request) -> web.StreamResponse:
    await request.app[NODE].sessions.sign_out(session_of(request))
    response = web.Response(status=303, headers={"Location": "/ui/signin"})
    clear_session_cookie(response)
    return response


# Holders -----------------------------------------------------------------------------------------


async def _holder_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = _role(request, "holder")
    vouchers = await node.views.vouchers(who, 50, "")
    holds = await node.spending.holds(who, 20, "")
    year = year_of(node.clock.now_ms())
    statement = await node.views.holder_statement(who, who.subject_id, year)
    classes = _classes(node)
    today = dt.datetime.fromtimestamp(node.clock.now_ms() / 1000, CST).date()
    context: dict[str, Any] = {
        "authorizations": await node.spending.open_authorizations(who),
        "vouchers": vouchers,
        "holds": holds,
        "statement": statement,
        "classes": classes,
        "region": node.config.region,
        "city": node.config.name,
        "today": today.isoformat(),
        "year_end": f"{today.year}-12-31",
        "result": None,
        "code": None,
        "cancelled": None,
    }
    context.update(extra)
    return render(request, "holder.html", status, **context)


async def holder_home(request: web.Request) -> web.StreamResponse:
    return await _holder_page(request)


async def holder_demand(request: web.Request) -> web.StreamResponse:
    who = _role(request, "holder")
    form = await _form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    compute_class = _text(form, "compute_class", fields, lang)
    amount = _yuan(form, "estimate", fields, lang)
    start = _text(form, "period_start", fields, lang)
    end = _text(form, "period_end", fields, lang)
    provider = form.get("provider_id") or None
    try:
        if fields:
            raise FormError(fields)
        demand = Demand(who.subject_id or "", compute_class, amount, provider, start, end)
        result = await request.app[NODE].issuance.submit(who, demand)
    except FormError as exc:
        return await _holder_page(request, 400, errors=exc.fields, summary=exc.summary, form=form)
    except errors.InvalidRequest as exc:
        known = ("compute_class", "provider_id", "period_start", "period_end")
        field = _field_of(exc, known)
        return await _holder_page(request, 400, errors=field, summary=[exc.message], form=form)
    return await _holder_page(request, 201, result=result)


async def holder_authorize(request: web.Request) -> web.StreamResponse:
    who = _role(request, "holder")
    node = request.app[NODE]
    form = await _form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    provider = _text(form, "provider_id", fields, lang)
    maximum = _yuan(form, "max_yuan", fields, lang)
    region = form.get("provider_region") or None
    days = form.get("days", "7")
    if not days.isdigit() or not 1 <= int(days) <= 90:
        fields["days"] = "1 到 90 天" if lang == "zh" else "1 to 90 days"
    try:
        if fields:
            raise FormError(fields)
        expires = node.clock.now_ms() + int(days) * 86_400_000
        auth, code = await node.spending.authorize(
            who, request.match_info["id"], provider, maximum, expires, region
        )
    except FormError as exc:
        return await _holder_page(request, 400, errors=exc.fields, summary=exc.summary, form=form)
    except errors.SuanliError as exc:
        return await _holder_page(request, 400, errors={}, summary=[exc.message], form=form)
    return await _holder_page(
        request, 201, code={"code": code, "authorization": auth, "qr": qr.data_uri(code)}
    )


async def holder_cancel(request: web.Request) -> web.StreamResponse:
    who = _role(request, "holder")
    await request.app[NODE].spending.cancel_authorization(who, request.match_info["id"])
    return await _holder_page(request, 200, cancelled=request.match_info["id"])


# Providers ---------------------------------------------------------------------------------------


async def _provider_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = _role(request, "provider")
    holds = await node.spending.holds(who, 50, "")
    payouts = await node.settlement.payouts(who, None)
    payments = await node.disbursements.listing(who, None, None)
    context: dict[str, Any] = {
        "payments": payments,
        "holds": holds,
        "payouts": payouts,
        "classes": _classes(node),
        "result": None,
    }
    context.update(extra)
    return render(request, "provider.html", status, **context)


async def provider_home(request: web.Request) -> web.StreamResponse:
    return await _provider_page(request)


async def provider_redeem(request: web.Request) -> web.StreamResponse:
    who = _role(request, "provider")
    node = request.app[NODE]
    form = await _form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    code = _text(form, "code", fields, lang)
    order_id = _text(form, "order_id", fields, lang)
    amount = _yuan(form, "order_amount", fields, lang)
    compute_class = _text(form, "compute_class", fields, lang)
    try:
        if fields:
            raise FormError(fields)
        order = Order(code, order_id, amount, compute_class)
        spend = node.spending.hold if form.get("mode") == "hold" else node.spending.redeem
        result = await spend(who, order)
    except FormError as exc:
        return await _provider_page(request, 400, errors=exc.fields, summary=exc.summary, form=form)
    except errors.SuanliError as exc:
        from node.web.i18n import ERRORS, pick

        known = ERRORS.get(exc.code)
        message = pick(known, lang) if known else exc.message
        return await _provider_page(request, 400, errors={}, summary=[message], form=form)
    return await _provider_page(request, 201, result=result.hold)


async def provider_capture(request: web.Request) -> web.StreamResponse:
    who = _role(request, "provider")
    form = await _form(request)
    fields: dict[str, str] = {}
    amount = _yuan(form, "amount", fields, lang_of(request))
    if fields:
        return await _provider_page(request, 400, errors=fields, summary=list(fields.values()))
    result = await request.app[NODE].spending.capture(who, request.match_info["id"], amount)
    return await _provider_page(request, 200, result=result.hold)


async def provider_void(request: web.Request) -> web.StreamResponse:
    who = _role(request, "provider")
    result = await request.app[NODE].spending.void(who, request.match_info["id"])
    return await _provider_page(request, 200, result=result.hold)


# Operators --------------------------------------------------------------------------------------


async def operator_home(request: web.Request) -> web.StreamResponse:
    return await _operator_page(request)


async def operator_close(request: web.Request) -> web.StreamResponse:
    who = _role(request, "operator")
    closed = await request.app[NODE].settlement.close(who, None)
    return await _operator_page(request, 201, notice=closed)


async def operator_pay(request: web.Request) -> web.StreamResponse:
    who = _role(request, "operator")
    form = await _form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    window = _text(form, "window", fields, lang)
    provider = _text(form, "provider_id", fields, lang)
    amount = _yuan(form, "amount", fields, lang)
    reference = _text(form, "reference", fields, lang)
    value_date = _text(form, "value_date", fields, lang)
    try:
        if fields:
            raise FormError(fields)
        payment = await request.app[NODE].disbursements.pay(
            who, window, provider, amount, value_date, reference
        )
    except FormError as exc:
        return await _operator_page(request, 400, errors=exc.fields, summary=exc.summary)
    except errors.SuanliError as exc:
        return await _operator_page(request, 400, summary=[exc.message])
    return await _operator_page(request, 201, paid=payment)


async def _operator_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = _role(request, "operator")
    year = year_of(node.clock.now_ms())
    budget = [b for b in await node.views.budget(who) if b["fiscal_year"] == year]
    decisions = await node.views.decisions(who, 20, "", newest_first=True)
    windows = await node.settlement.windows(who)
    money = await node.views.voucher_money(who)
    peers: list[dict[str, Any]] = []
    transfers: list[dict[str, Any]] = []
    if node.federation is not None:
        peers = [
            {"region": p.region, "name": p.name, "endpoint": p.endpoint}
            for p in node.federation.directory.all()
        ]
        transfers = await node.federation.clearing.transfers(who)
    payouts = await node.settlement.payouts(who, None)
    today = dt.datetime.fromtimestamp(node.clock.now_ms() / 1000, CST).date().isoformat()
    return render(
        request,
        "operator.html",
        status,
        payouts=payouts,
        today=today,
        notice=extra.pop("notice", None),
        paid=extra.pop("paid", None),
        **extra,
        budget=budget[0] if budget else None,
        decisions=decisions,
        windows=windows,
        money=money,
        peers=peers,
        transfers=transfers,
        city=node.config.name,
    )


def _flows(report: dict[str, Any], lang: str) -> dict[str, Any]:
    """The quota flows as a Sankey chart's nodes and links (ECharts), every figure from the
    budget-execution report (so from the books): budget → holder categories (issued);
    categories → captured or not yet used; captured → this city's providers or
    other cities' providers, and those → each partner city."""
    zh = lang == "zh"
    t = report["totals"]
    budget = "年度预算" if zh else "Budget"
    captured = "已使用" if zh else "Captured"
    unused = "未使用" if zh else "Not yet used"
    here = "本市服务商" if zh else "Our providers"
    there = "外地服务商" if zh else "Other cities' providers"
    # The unallocated budget is a figure above the chart: beside it every flow would vanish.
    links: list[tuple[str, str, int]] = []
    for row in report["by_category"]:
        links.append((budget, row["category"], row["issued_fen"]))
        links.append((row["category"], captured, row["captured_fen"]))
        links.append((row["category"], unused, row["issued_fen"] - row["captured_fen"]))
    links.append((captured, here, t["captured_by_our_providers_fen"]))
    links.append((captured, there, t["captured_by_other_cities_providers_fen"]))
    for row in report["by_partner"]:
        links.append((there, str(row["partner"]), row["ours_captured_there_fen"]))
    kept = [(a, b, int(v)) for a, b, v in links if int(v) > 0]
    names = sorted({a for a, _, _ in kept} | {b for _, b, _ in kept})
    return {
        "nodes": [{"name": n} for n in names],
        "links": [{"source": a, "target": b, "value": v} for a, b, v in kept],
    }


async def _providers_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = _role(request, "operator")
    providers = await node.registry.providers(who, 200, "")
    return render(request, "operator_providers.html", status, providers=providers, **extra)


async def operator_providers(request: web.Request) -> web.StreamResponse:
    return await _providers_page(request)


async def operator_provider_state(request: web.Request) -> web.StreamResponse:
    who = _role(request, "operator")
    form = await _form(request)
    state = form.get("state", "")
    reason = form.get("reason", "")
    lang = lang_of(request)
    fields: dict[str, str] = {}
    if state not in ("approved", "suspended"):
        fields["state"] = "请选择批准或暂停" if lang == "zh" else "Choose approve or suspend"
    if not reason or len(reason) > 500:
        fields["reason"] = (
            "请写明原因（最多 500 字）"
            if lang == "zh"
            else "Give a reason (at most 500 characters)"
        )
    if fields:
        return await _providers_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    provider = await request.app[NODE].registry.set_provider_state(
        who, request.match_info["id"], state, reason
    )
    return await _providers_page(request, 200, changed=provider)


async def operator_peers(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    who = _role(request, "operator")
    peers = await node.federation.peering.status_for(who) if node.federation is not None else []
    return render(request, "operator_peers.html", peers=peers)


async def operator_audit(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    who = _role(request, "operator")
    after = request.query.get("after", "0")
    seq = int(after) if after.isdigit() and len(after) < 16 else 0
    items = await node.views.journal(who, "audit", seq, 100)
    following = items[-1]["seq"] if len(items) == 100 else None
    return render(request, "operator_audit.html", items=items, following=following)


def _decision_filter(request: web.Request) -> tuple[str | None, str | None, str]:
    """?outcome=issued|declined&holder=ID&before=ID, each checked."""
    q = request.query
    outcome = q.get("outcome") or None
    if outcome not in (None, "issued", "declined"):
        raise errors.InvalidRequest("outcome: issued or declined")
    holder = q.get("holder", "").strip() or None
    before = q.get("before", "")
    for value in (holder or "", before):
        if len(value) > 40 or not all(ch.isalnum() or ch == "_" for ch in value):
            raise errors.InvalidRequest("holder, before: ids")
    return outcome, holder, before


async def operator_decisions(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    who = _role(request, "operator")
    outcome, holder, before = _decision_filter(request)
    items = await node.views.decisions(who, 50, before, outcome, holder, newest_first=True)
    following = items[-1]["id"] if len(items) == 50 else None
    query = "&".join(f"{k}={v}" for k, v in (("outcome", outcome), ("holder", holder)) if v)
    return render(
        request,
        "operator_decisions.html",
        decisions=items,
        following=following,
        outcome=outcome or "",
        holder=holder or "",
        query=query,
    )


async def operator_decisions_csv(request: web.Request) -> web.StreamResponse:
    """The filtered decisions as CSV (at most 100,000, newest first), for a spreadsheet."""
    import csv
    import io

    node = request.app[NODE]
    who = _role(request, "operator")
    outcome, holder, _ = _decision_filter(request)
    items = await node.views.decisions(who, 100_000, "", outcome, holder, newest_first=True)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "created_at",
            "holder_id",
            "compute_class",
            "estimated_amount_fen",
            "outcome",
            "amount_fen",
            "ratio_bp",
            "voucher_id",
            "reasons",
        ]
    )
    for d in items:
        writer.writerow(
            [
                d["id"],
                d["created_at"],
                d["holder_id"],
                d["compute_class"],
                d["estimated_amount_fen"],
                d["outcome"],
                d["amount_fen"],
                d["ratio_bp"],
                d["voucher_id"] or "",
                ";".join(r["code"] for r in d["reasons"]),
            ]
        )
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="decisions.csv"'},
    )


async def provider_advice(request: web.Request) -> web.StreamResponse:
    """A payment's signed advice as a file the provider keeps and verifies offline
    (docs/settlement.md, "The payment advice")."""
    import json

    who = _role(request, "provider")
    payment = await request.app[NODE].disbursements.one(who, request.match_info["id"])
    body = {k: payment[k] for k in ("advice", "signature", "key_id")}
    return web.Response(
        text=json.dumps(body, ensure_ascii=False, indent=2),
        content_type="application/json",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{payment["id"]}.json"'},
    )


async def _settlement_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = _role(request, "operator")
    windows = await node.settlement.windows(who)
    due: list[dict[str, Any]] = []
    transfers: list[dict[str, Any]] = []
    if node.federation is not None:
        due = await node.federation.clearing.due(who)
        transfers = await node.federation.clearing.transfers(who)
    today = dt.datetime.fromtimestamp(node.clock.now_ms() / 1000, CST).date().isoformat()
    context: dict[str, Any] = {
        "windows": windows,
        "due": due,
        "transfers": transfers,
        "region": node.config.region,
        "today": today,
        "done": None,
    }
    context.update(extra)
    return render(request, "operator_settlement.html", status, **context)


async def operator_settlement(request: web.Request) -> web.StreamResponse:
    return await _settlement_page(request)


def _clearing(request: web.Request) -> Any:
    node = request.app[NODE]
    if node.federation is None:
        raise errors.InvalidRequest("this node is not part of a federation")
    return node.federation.clearing


async def operator_transfer(request: web.Request) -> web.StreamResponse:
    """Record this city's transfer to a partner city (the net due) and advise it."""
    who = _role(request, "operator")
    form = await _form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    peer = _text(form, "peer", fields, lang)
    reference = _text(form, "reference", fields, lang)
    value_date = _text(form, "value_date", fields, lang)
    amount = form.get("amount_fen", "")
    if not amount.isdigit() or len(amount) > 16:
        fields["amount_fen"] = "金额有误" if lang == "zh" else "Not an amount"
    try:
        if fields:
            raise FormError(fields)
        transfer = await _clearing(request).record(who, peer, int(amount), value_date, reference)
    except FormError as exc:
        return await _settlement_page(request, 400, errors=exc.fields, summary=exc.summary)
    except errors.SuanliError as exc:
        return await _settlement_page(request, 400, summary=[exc.message])
    return await _settlement_page(request, 201, done=transfer)


async def operator_transfer_answer(request: web.Request) -> web.StreamResponse:
    """Confirm a transfer advised to this city, or dispute it with a reason."""
    who = _role(request, "operator")
    form = await _form(request)
    confirmed = form.get("confirmed") == "yes"
    try:
        transfer = await _clearing(request).answer(
            who, request.match_info["id"], confirmed, form.get("reason", "")
        )
    except errors.SuanliError as exc:
        return await _settlement_page(request, 400, summary=[exc.message])
    return await _settlement_page(request, 200, done=transfer)


async def operator_flows(request: web.Request) -> web.StreamResponse:
    """The quota-flow chart's data (JSON), which the overview's script fetches: the year's
    budget-execution report reads every voucher of the year, so it is not on the page's own
    path (docs/platform.md, "How fast")."""
    node = request.app[NODE]
    who = _role(request, "operator")
    report = await node.views.budget_execution(who, year_of(node.clock.now_ms()), None)
    return web.json_response(_flows(report, lang_of(request)))


async def holder_voucher_qr(request: web.Request) -> web.StreamResponse:
    """A voucher's QR code (its city and id), for its holder only."""
    node = request.app[NODE]
    who = _role(request, "holder")
    voucher, _ = await node.views.voucher(who, request.match_info["id"])
    svg = qr.svg(qr.voucher_text(node.config.region, voucher.id))
    return web.Response(
        body=svg, content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=86400"}
    )


async def _holders_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = _role(request, "operator")
    after = request.query.get("after", "")
    if len(after) > 40 or not all(ch.isalnum() or ch == "_" for ch in after):
        raise errors.InvalidRequest("after: an id")
    holders = await node.registry.holders(who, 100, after)
    policy = node.policies.maybe_for_year(year_of(node.clock.now_ms()))
    categories = sorted(policy.categories) if policy is not None else []
    context: dict[str, Any] = {
        "holders": holders,
        "following": holders[-1].id if len(holders) == 100 else None,
        "categories": categories,
        "registered": None,
        "link": None,
    }
    context.update(extra)
    return render(request, "operator_holders.html", status, **context)


async def operator_holders(request: web.Request) -> web.StreamResponse:
    return await _holders_page(request)


async def operator_register_holder(request: web.Request) -> web.StreamResponse:
    """Register a holder (its USCC is checked, GB 32100-2015) and show a sign-in link for it."""
    who = _role(request, "operator")
    node = request.app[NODE]
    form = await _form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    uscc = _text(form, "uscc", fields, lang).upper()
    name = _text(form, "name", fields, lang)
    category = _text(form, "category", fields, lang)
    region = form.get("region") or None
    try:
        if fields:
            raise FormError(fields)
        holder, _ = await node.registry.register_holder(who, uscc, name, category, region, None)
        code = await node.sessions.issue_link(who, holder.id)
    except FormError as exc:
        return await _holders_page(request, 400, errors=exc.fields, summary=exc.summary, form=form)
    except errors.SuanliError as exc:
        field = {"invalid_uscc": "uscc", "category_mismatch": "category"}.get(exc.code)
        shown = {field: exc.message} if field else _field_of(exc, ("uscc", "name", "region"))
        return await _holders_page(request, 400, errors=shown, summary=[exc.message], form=form)
    return await _holders_page(request, 201, registered=holder, link=f"/ui/link/{code}")


async def operator_holder_link(request: web.Request) -> web.StreamResponse:
    """A new one-time sign-in link for a registered holder (a day), shown once."""
    who = _role(request, "operator")
    holder_id = request.match_info["id"]
    code = await request.app[NODE].sessions.issue_link(who, holder_id)
    return await _holders_page(request, 201, link=f"/ui/link/{code}", linked=holder_id)


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """A policy summary as ``key.path → value`` lines, for showing and comparing."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        return {prefix: ", ".join(str(v) for v in value)}
    return {prefix: "—" if value is None else str(value)}


async def _policy_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    from node.domain.policy import policy_summary

    node = request.app[NODE]
    _role(request, "operator")
    policy = node.policies.maybe_for_year(year_of(node.clock.now_ms()))
    current = _flat(policy_summary(policy)) if policy is not None else {}
    context: dict[str, Any] = {"current": current, "changes": None, "text": "", "loaded": None}
    context.update(extra)
    return render(request, "operator_policy.html", status, **context)


async def operator_policy(request: web.Request) -> web.StreamResponse:
    return await _policy_page(request)


async def operator_policy_check(request: web.Request) -> web.StreamResponse:
    """Check an uploaded policy and show what would change (GOV.UK's "check your answers"):
    nothing is loaded until the operator confirms."""
    from node.domain.policy import policy_summary

    who = _role(request, "operator")
    form = await request.post()
    text = str(form.get("toml", ""))
    if not text.strip() or len(text) > 200_000:
        message = (
            "请粘贴政策文件（TOML）" if lang_of(request) == "zh" else "Paste the policy (TOML)"
        )
        return await _policy_page(request, 400, errors={"toml": message}, summary=[message])
    try:
        policy, previous = request.app[NODE].policies.preview(text, who)
    except errors.SuanliError as exc:
        return await _policy_page(
            request, 400, errors={"toml": exc.message}, summary=[exc.message], text=text
        )
    new = _flat(policy_summary(policy))
    old = _flat(policy_summary(previous)) if previous is not None else {}
    changes = [
        (key, old.get(key, "—"), new.get(key, "—"))
        for key in sorted(set(new) | set(old))
        if old.get(key) != new.get(key) and key != "sha256"
    ]
    return await _policy_page(request, 200, changes=changes, text=text, year=policy.fiscal_year)


async def operator_policy_load(request: web.Request) -> web.StreamResponse:
    who = _role(request, "operator")
    form = await request.post()
    text = str(form.get("toml", ""))
    try:
        policy, version = await request.app[NODE].policies.load(text, who)
    except errors.SuanliError as exc:
        return await _policy_page(
            request, 400, errors={"toml": exc.message}, summary=[exc.message], text=text
        )
    return await _policy_page(request, 201, loaded={"year": policy.fiscal_year, "version": version})
