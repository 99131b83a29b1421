"""The city's operators' pages (docs/platform.md, "Operators")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.windows import CST
from node.web.forms import field_of, read_form, role_of, text_field, yuan_field
from node.web.frame import lang_of, render


async def operator_home(request: web.Request) -> web.StreamResponse:
    return await _operator_page(request)


async def operator_close(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    closed = await request.app[NODE].settlement.close(who, None)
    return await _operator_page(request, 201, notice=closed)


async def operator_pay(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    form = await read_form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    window = text_field(form, "window", fields, lang)
    provider = text_field(form, "provider_id", fields, lang)
    amount = yuan_field(form, "amount", fields, lang)
    reference = text_field(form, "reference", fields, lang)
    value_date = text_field(form, "value_date", fields, lang)
    if fields:
        return await _operator_page(request, 400, errors=fields, summary=list(fields.values()))
    try:
        payment = await request.app[NODE].disbursements.pay(
            who, window, provider, amount, value_date, reference
        )
    except errors.SuanliError as exc:
        return await _operator_page(request, 400, summary=[exc.message])
    return await _operator_page(request, 201, paid=payment)


async def _operator_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "operator")
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
    who = role_of(request, "operator")
    providers = await node.registry.providers(who, 200, "")
    return render(request, "operator_providers.html", status, providers=providers, **extra)


async def operator_providers(request: web.Request) -> web.StreamResponse:
    return await _providers_page(request)


async def operator_provider_state(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    form = await read_form(request)
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
    who = role_of(request, "operator")
    peers = await node.federation.peering.status_for(who) if node.federation is not None else []
    return render(request, "operator_peers.html", peers=peers)


async def operator_audit(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    who = role_of(request, "operator")
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
    who = role_of(request, "operator")
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
    who = role_of(request, "operator")
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


async def _settlement_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "operator")
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
    who = role_of(request, "operator")
    form = await read_form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    peer = text_field(form, "peer", fields, lang)
    reference = text_field(form, "reference", fields, lang)
    value_date = text_field(form, "value_date", fields, lang)
    amount = form.get("amount_fen", "")
    if not amount.isdigit() or len(amount) > 16:
        fields["amount_fen"] = "金额有误" if lang == "zh" else "Not an amount"
    if fields:
        return await _settlement_page(request, 400, errors=fields, summary=list(fields.values()))
    try:
        transfer = await _clearing(request).record(who, peer, int(amount), value_date, reference)
    except errors.SuanliError as exc:
        return await _settlement_page(request, 400, summary=[exc.message])
    return await _settlement_page(request, 201, done=transfer)


async def operator_transfer_answer(request: web.Request) -> web.StreamResponse:
    """Confirm a transfer advised to this city, or dispute it with a reason."""
    who = role_of(request, "operator")
    form = await read_form(request)
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
    who = role_of(request, "operator")
    report = await node.views.budget_execution(who, year_of(node.clock.now_ms()), None)
    return web.json_response(_flows(report, lang_of(request)))


async def _holders_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "operator")
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
    who = role_of(request, "operator")
    node = request.app[NODE]
    form = await read_form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    uscc = text_field(form, "uscc", fields, lang).upper()
    name = text_field(form, "name", fields, lang)
    category = text_field(form, "category", fields, lang)
    region = form.get("region") or None
    if fields:
        return await _holders_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    try:
        holder, _ = await node.registry.register_holder(who, uscc, name, category, region, None)
        code = await node.sessions.issue_link(who, holder.id)
    except errors.SuanliError as exc:
        field = {"invalid_uscc": "uscc", "category_mismatch": "category"}.get(exc.code)
        shown = {field: exc.message} if field else field_of(exc, ("uscc", "name", "region"))
        return await _holders_page(request, 400, errors=shown, summary=[exc.message], form=form)
    return await _holders_page(request, 201, registered=holder, link=f"/ui/link/{code}")


async def operator_holder_link(request: web.Request) -> web.StreamResponse:
    """A new one-time sign-in link for a registered holder (a day), shown once."""
    who = role_of(request, "operator")
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
    role_of(request, "operator")
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

    who = role_of(request, "operator")
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
    who = role_of(request, "operator")
    form = await request.post()
    text = str(form.get("toml", ""))
    try:
        policy, version = await request.app[NODE].policies.load(text, who)
    except errors.SuanliError as exc:
        return await _policy_page(
            request, 400, errors={"toml": exc.message}, summary=[exc.message], text=text
        )
    return await _policy_page(request, 201, loaded={"year": policy.fiscal_year, "version": version})
