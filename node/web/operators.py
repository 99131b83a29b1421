"""The city's operators' overview, decisions, peers and audit trail (docs/platform.md,
"Operators"); settlement is in ``settling``, holders and providers in ``registry``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.windows import CST
from node.web.forms import error_text, posted, role_of, text_field, yuan_field
from node.web.frame import lang_of, render
from node.web.i18n import CATEGORIES, named


async def operator_home(request: web.Request) -> web.StreamResponse:
    return await _operator_page(request)


async def operator_close(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    closed = await request.app[NODE].settlement.close(who, None)
    return await _operator_page(request, 201, notice=closed)


async def operator_pay(request: web.Request) -> web.StreamResponse:
    who, form, lang, fields = await posted(request, "operator")
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
    use = await node.catalog.utilisation(who)
    federation_cards: dict[str, int] = {}
    for row in use["federation"]:
        cls = row["compute_class"]
        federation_cards[cls] = federation_cards.get(cls, 0) + row["cards"]
    use["federation_cards"] = federation_cards
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
        use=use,
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


async def operator_flows(request: web.Request) -> web.StreamResponse:
    """The overview charts' data (JSON), which its script fetches: the quota flows (Sankey)
    and issuance and captures by month, from the running totals."""
    node = request.app[NODE]
    who = role_of(request, "operator")
    year = await node.overview.year(who, year_of(node.clock.now_ms()))
    return web.json_response(_flows(year, lang_of(request)))
