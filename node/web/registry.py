"""The operators' registry pages: holders (and the dishonesty list) and providers (their
approval, related parties and sign-in links) (docs/platform.md, "Operators")."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.model import PROVIDER_KINDS
from node.web.forms import error_text, field_of, posted, read_form, role_of, text_field
from node.web.frame import lang_of, render
from node.web.i18n import pick


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
    who, form, lang, fields = await posted(request, "operator")
    node = request.app[NODE]
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
    who, form, lang, fields = await posted(request, "operator")
    node = request.app[NODE]
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
    who, form, lang, fields = await posted(request, "operator")
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
        return await _holders_page(request, 400, summary=[f"{uscc[:40]}：{message}"])
    return await _holders_page(request, 200, unlisted=uscc)
