"""The city's operators' pages (docs/platform.md, "Operators")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.model import PROVIDER_KINDS
from node.domain.windows import CST
from node.services.clearing import Clearing
from node.web.forms import error_text, field_of, read_form, role_of, text_field, yuan_field
from node.web.frame import lang_of, render
from node.web.i18n import CATEGORIES, named, pick


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
        return await _operator_page(request, 400, summary=[error_text(exc, lang_of(request))])
    return await _operator_page(request, 201, paid=payment)


async def _operator_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "operator")
    year = year_of(node.clock.now_ms())
    budget = [b for b in await node.views.budget(who) if b["fiscal_year"] == year]
    decisions = await node.views.decisions(who, 20, "", newest_first=True)
    windows = await node.settlement.windows(who)
    money = await node.views.voucher_money(who)
    figures = await node.overview.year(who, year)
    attention = await node.overview.attention(who)
    between = await node.overview.between_cities(who)
    peers: list[dict[str, Any]] = []
    transfers: list[dict[str, Any]] = []
    if node.federation is not None:
        peers = await node.federation.peering.status_for(who)
        owed = {row["peer"]: row for row in between}
        for peer in peers:
            at, method, outcome = node.metrics.last_call.get(peer["region"], (0, "", ""))
            peer.update(last_at=at, last_method=method, last_outcome=outcome)
            row = owed.get(peer["region"], {})
            peer.update(
                we_owe_fen=row.get("we_owe_fen", 0), owed_to_us_fen=row.get("owed_to_us_fen", 0)
            )
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
        figures=figures,
        attention=attention,
        between=between,
        peers=peers,
        transfers=transfers,
        city=node.config.name,
    )


def _flows(year: dict[str, Any], lang: str) -> dict[str, Any]:
    """The quota flows as a Sankey chart's nodes and links (ECharts), from the running totals
    (``Overview.year``): budget → holder categories (issued); each category → captured, not
    yet used, or reclaimed into the budget; captured → this city's providers or other
    cities' providers, and those → each partner city. Category names in the page's language."""
    zh = lang == "zh"
    t = year["totals"]
    budget = "年度预算" if zh else "Budget"
    captured = "已使用" if zh else "Captured"
    unused = "未使用" if zh else "Not yet used"
    reclaimed = "已收回" if zh else "Reclaimed"
    here = "本市服务商" if zh else "Our providers"
    there = "外地服务商" if zh else "Other cities' providers"
    # The unallocated budget is a figure above the chart: beside it every flow would vanish.
    links: list[tuple[str, str, int]] = []
    for row in year["by_category"]:
        name = named(CATEGORIES, row["category"], lang)
        links.append((budget, name, row["issued_fen"]))
        links.append((name, captured, row["captured_fen"]))
        links.append((name, unused, row["unused_fen"]))
        links.append((name, reclaimed, row["reclaimed_fen"]))
    links.append((captured, here, t["captured_here_fen"]))
    links.append((captured, there, t["captured_elsewhere_fen"]))
    for row in year["by_partner"]:
        links.append((there, str(row["partner"]), row["captured_fen"]))
    kept = [(a, b, int(v)) for a, b, v in links if int(v) > 0]
    names = sorted({a for a, _, _ in kept} | {b for _, b, _ in kept})
    return {
        "nodes": [{"name": n} for n in names],
        "links": [{"source": a, "target": b, "value": v} for a, b, v in kept],
        "months": [r["month"] for r in year["by_month"]],
        "series": [
            {
                "name": "核发" if zh else "Issued",
                "values": [r["issued_fen"] for r in year["by_month"]],
            },
            {"name": captured, "values": [r["captured_fen"] for r in year["by_month"]]},
        ],
    }


async def _providers_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "operator")
    after = _after(request)
    providers = await node.registry.providers(who, 100, after)
    context: dict[str, Any] = {
        "providers": providers,
        "following": providers[-1].id if len(providers) == 100 else None,
        "kinds": PROVIDER_KINDS,
        "changed": None,
        "registered": None,
        "link": None,
    }
    context.update(extra)
    return render(request, "operator_providers.html", status, **context)


def _after(request: web.Request) -> str:
    after = request.query.get("after", "")
    if len(after) > 40 or not all(ch.isalnum() or ch == "_" for ch in after):
        raise errors.InvalidRequest("after: an id")
    return after


def _codes(text: str) -> tuple[str, ...]:
    """USCCs typed one per line (or separated by commas or spaces), upper-cased."""
    return tuple(c.upper() for c in text.replace(",", " ").replace("，", " ").split())


async def operator_providers(request: web.Request) -> web.StreamResponse:
    return await _providers_page(request)


async def operator_register_provider(request: web.Request) -> web.StreamResponse:
    """Register a provider (approved at once if asked) and show a sign-in link for it."""
    who = role_of(request, "operator")
    node = request.app[NODE]
    form = await read_form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    uscc = text_field(form, "uscc", fields, lang).upper()
    name = text_field(form, "name", fields, lang)
    kind = form.get("kind", "")
    if kind not in PROVIDER_KINDS:
        fields["kind"] = pick(("请选择服务商类型", "Choose the kind of provider"), lang)
    related = _codes(form.get("related_uscc", ""))
    if len(related) > 100:
        fields["related_uscc"] = pick(("最多 100 个", "At most 100"), lang)
    if fields:
        return await _providers_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    try:
        provider, _ = await node.registry.register_provider(
            who,
            uscc,
            name,
            kind,
            form.get("region") or None,
            related,
            form.get("approved") == "yes",
        )
        code = await node.sessions.issue_link(who, provider.id)
    except errors.SuanliError as exc:
        message = error_text(exc, lang)
        field = "related_uscc" if exc.message.startswith("related_uscc") else None
        shown = {field: message} if field else field_of(exc, ("uscc", "name", "region"), message)
        return await _providers_page(request, 400, errors=shown, summary=[message], form=form)
    return await _providers_page(request, 201, registered=provider, link=f"/ui/link/{code}")


async def operator_provider_link(request: web.Request) -> web.StreamResponse:
    """A new one-time sign-in link for a provider (a day), shown once."""
    who = role_of(request, "operator")
    code = await request.app[NODE].sessions.issue_link(who, request.match_info["id"])
    return await _providers_page(request, 201, link=f"/ui/link/{code}")


async def operator_provider_related(request: web.Request) -> web.StreamResponse:
    """Replace a provider's declared related parties (R5: a demand or a redemption between
    related parties is refused)."""
    who = role_of(request, "operator")
    provider_id = request.match_info["id"]
    form = await read_form(request)
    lang = lang_of(request)
    related = _codes(form.get("related_uscc", ""))
    try:
        if len(related) > 100:
            raise errors.InvalidRequest("related_uscc: at most 100")
        provider = await request.app[NODE].registry.set_provider_related(who, provider_id, related)
    except errors.SuanliError as exc:
        message = error_text(exc, lang)
        return await _providers_page(
            request, 400, errors={f"related_{provider_id}": message}, summary=[message]
        )
    return await _providers_page(request, 200, changed=provider)


async def operator_provider_state(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    provider_id = request.match_info["id"]
    form = await read_form(request)
    state = form.get("state", "")
    reason = form.get("reason", "")
    lang = lang_of(request)
    fields: dict[str, str] = {}
    if state not in ("approved", "suspended"):
        fields["state"] = pick(("请选择批准或暂停", "Choose approve or suspend"), lang)
    if not reason or len(reason) > 500:
        fields["reason"] = pick(
            ("请写明原因（最多 500 字）", "Give a reason (at most 500 characters)"), lang
        )
    if fields:
        return await _providers_page(
            request, 400, errors=fields, summary=list(fields.values()), form={"for": provider_id}
        )
    provider = await request.app[NODE].registry.set_provider_state(who, provider_id, state, reason)
    return await _providers_page(request, 200, changed=provider)


async def operator_peers(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    who = role_of(request, "operator")
    federation = node.federation
    peers: list[dict[str, Any]] = []
    own = None
    if federation is not None:  # a node on its own has no peers
        peers = await federation.peering.status_for(who)
        own = await federation.peering.own_keys_for(who, node.key)
    return render(request, "operator_peers.html", peers=peers, own=own)


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
    # The newest 50 pair statements (a window has one per partner city and direction).
    statements = (await node.settlement_views.statements(who))[-50:][::-1]
    # Payments to providers (one per provider and window, a few thousand a year): the newest 50.
    every = await node.disbursements.listing(who, None, None)
    undone = {m["reverses"] for m in every if m["reverses"]}
    payments = [{**m, "reversed_by": m["id"] in undone} for m in every[-50:][::-1]]
    disputes = await node.settlement_views.disputes(who, True)
    today = dt.datetime.fromtimestamp(node.clock.now_ms() / 1000, CST).date().isoformat()
    context: dict[str, Any] = {
        "windows": windows,
        "due": due,
        "transfers": transfers,
        "statements": statements,
        "payments": payments,
        "reversed": None,
        "disputes": [_dispute_row(d) for d in disputes],
        "region": node.config.region,
        "today": today,
        "done": None,
    }
    context.update(extra)
    return render(request, "operator_settlement.html", status, **context)


async def operator_settlement(request: web.Request) -> web.StreamResponse:
    return await _settlement_page(request)


def _dispute_row(d: dict[str, Any]) -> dict[str, Any]:
    """An open dispute, or a statement refused because one was already agreed, as a row:
    each side's count and total, and how many records differ (the evidence itself is in
    ``GET /v1/settlement/disputes``)."""
    evidence = d.get("evidence", {})
    ours = evidence.get("ours") or {}
    theirs = evidence.get("theirs") or {}
    return {
        "kind": d["kind"],
        "issuer": d["issuer"],
        "acquirer": d["acquirer"],
        "window": d["window_id"],
        "at": d.get("opened_at") or d.get("received_at"),
        "ours_count": ours.get("count"),
        "ours_fen": ours.get("total_fen"),
        "theirs_count": theirs.get("count"),
        "theirs_fen": theirs.get("total_fen"),
        "differences": len(evidence.get("differences") or []),
    }


async def operator_netting(request: web.Request) -> web.StreamResponse:
    """The federation's multilateral netting (informational: cities settle bilaterally,
    docs/settlement.md), computed from every city's countersigned statements; it asks every
    peer, so it is a page of its own rather than a part of the settlement page."""
    node = request.app[NODE]
    who = role_of(request, "operator")
    netting = await _federation(request).netting.compute(who, 0)
    return render(request, "operator_netting.html", netting=netting, region=node.config.region)


def _federation(request: web.Request) -> Any:  # node.node.Federation
    federation = request.app[NODE].federation
    if federation is None:
        raise errors.InvalidRequest("this node is not part of a federation")
    return federation


def _clearing(request: web.Request) -> Clearing:
    clearing: Clearing = _federation(request).clearing
    return clearing


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
        return await _settlement_page(request, 400, summary=[error_text(exc, lang_of(request))])
    return await _settlement_page(request, 201, done=transfer)


async def operator_reverse_payment(request: web.Request) -> web.StreamResponse:
    """Undo a payment, whole, with a reason (a new signed row; the money is payable again)."""
    who = role_of(request, "operator")
    form = await read_form(request)
    payment_id = request.match_info["id"]
    try:
        reversal = await request.app[NODE].disbursements.reverse(
            who, payment_id, form.get("reason", "")
        )
    except errors.SuanliError as exc:
        message = error_text(exc, lang_of(request))
        return await _settlement_page(
            request, 400, errors={f"reason_{payment_id}": message}, summary=[message]
        )
    return await _settlement_page(request, 201, reversed=reversal)


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
        return await _settlement_page(request, 400, summary=[error_text(exc, lang_of(request))])
    return await _settlement_page(request, 200, done=transfer)


async def operator_flows(request: web.Request) -> web.StreamResponse:
    """The overview charts' data (JSON), which its script fetches: the quota flows (Sankey)
    and issuance and captures by month, from the running totals."""
    node = request.app[NODE]
    who = role_of(request, "operator")
    year = await node.overview.year(who, year_of(node.clock.now_ms()))
    return web.json_response(_flows(year, lang_of(request)))


async def _holders_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    node = request.app[NODE]
    who = role_of(request, "operator")
    after = _after(request)
    holders = await node.registry.holders(who, 100, after)
    policy = node.policies.maybe_for_year(year_of(node.clock.now_ms()))
    categories = sorted(policy.categories) if policy is not None else []
    context: dict[str, Any] = {
        "dishonest": await node.registry.dishonesty(who, 500, ""),
        "policy_dishonest": sorted(policy.dishonest_uscc) if policy is not None else [],
        "listed": None,
        "unlisted": None,
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
        message = error_text(exc, lang)
        field = {
            "invalid_uscc": "uscc",
            "category_mismatch": "category",
            "unknown_category": "category",
        }.get(exc.code)
        shown = {field: message} if field else field_of(exc, ("uscc", "name", "region"), message)
        return await _holders_page(request, 400, errors=shown, summary=[message], form=form)
    return await _holders_page(request, 201, registered=holder, link=f"/ui/link/{code}")


async def operator_holder_link(request: web.Request) -> web.StreamResponse:
    """A new one-time sign-in link for a registered holder (a day), shown once."""
    who = role_of(request, "operator")
    holder_id = request.match_info["id"]
    code = await request.app[NODE].sessions.issue_link(who, holder_id)
    return await _holders_page(request, 201, link=f"/ui/link/{code}", linked=holder_id)


async def operator_dishonesty_add(request: web.Request) -> web.StreamResponse:
    """Put a credit code on the dishonesty list (失信名单): its demands are declined."""
    who = role_of(request, "operator")
    form = await read_form(request)
    lang = lang_of(request)
    fields: dict[str, str] = {}
    uscc = text_field(form, "d_uscc", fields, lang).upper()
    reason = form.get("d_reason", "")
    if not reason or len(reason) > 500:
        fields["d_reason"] = pick(
            ("请写明来源与文号（最多 500 字）", "Give the source and reference (at most 500)"), lang
        )
    if fields:
        return await _holders_page(
            request, 400, errors=fields, summary=list(fields.values()), form=form
        )
    try:
        await request.app[NODE].registry.list_dishonest(who, uscc, reason)
    except errors.SuanliError as exc:
        message = error_text(exc, lang)
        return await _holders_page(
            request, 400, errors={"d_uscc": message}, summary=[message], form=form
        )
    return await _holders_page(request, 201, listed=uscc)


async def operator_dishonesty_remove(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    form = await read_form(request)
    lang = lang_of(request)
    uscc = request.match_info["uscc"]
    try:
        await request.app[NODE].registry.unlist_dishonest(who, uscc, form.get("reason", ""))
    except errors.SuanliError as exc:
        message = error_text(exc, lang)
        return await _holders_page(request, 400, summary=[f"{uscc}：{message}"])
    return await _holders_page(request, 200, unlisted=uscc)
