"""The operators' settlement pages: windows, transfers between cities, payments and their
reversal, statements, disputes and the federation's netting (docs/platform.md, "Operators")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.domain.windows import CST
from node.services.clearing import Clearing
from node.web.forms import error_text, posted, read_form, role_of, text_field
from node.web.frame import lang_of, render


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
    who, form, lang, fields = await posted(request, "operator")
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
