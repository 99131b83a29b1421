"""The platform's route table and signing in and out; the pages themselves are in
``people`` (holders, providers) and ``operators``, what they share in ``forms``
(docs/platform.md). Each page reads a form, calls one service method with the signed-in
person's ``Principal``, and renders the answer. No business rule here."""

from __future__ import annotations

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.web import compute as cp
from node.web import offers as of
from node.web import operators as op
from node.web import people as pp
from node.web import policy as po
from node.web import registry as rg
from node.web import settling as st
from node.web.forms import read_form, who_of
from node.web.frame import (
    clear_session_cookie,
    client_of,
    lang_of,
    render,
    session_of,
    set_session_cookie,
)


def routes() -> list[web.RouteDef]:
    return [
        web.get("", home),
        web.get("/", home),
        web.get("/signin", signin_page),
        web.post("/signin", signin),
        web.post("/signout", signout),
        web.get("/link/{code}", link_page),
        web.post("/link", link_signin),
        web.get("/holder", pp.holder_home),
        web.get("/holder/compute", cp.holder_compute),
        web.get("/provider/offers", of.provider_offers),
        web.post("/provider/offers", of.provider_publish),
        web.post("/provider/offers/{id}/withdraw", of.provider_withdraw),
        web.post("/provider/offers/{id}/change", of.provider_change),
        web.post("/provider/orders/{id}/{decision:accept|decline}", of.provider_decide),
        web.post("/holder/compute/order", cp.holder_order),
        web.post("/holder/demand", pp.holder_demand),
        web.post("/holder/vouchers/{id}/authorize", pp.holder_authorize),
        web.post("/holder/authorizations/{id}/cancel", pp.holder_cancel),
        web.get("/provider", pp.provider_home),
        web.post("/provider/redeem", pp.provider_redeem),
        web.post("/provider/holds/{id}/capture", pp.provider_capture),
        web.post("/provider/holds/{id}/void", pp.provider_void),
        web.get("/provider/payments/{id}/advice.json", pp.provider_advice),
        web.get("/operator", op.operator_home),
        web.post("/operator/windows/close", op.operator_close),
        web.post("/operator/payments", op.operator_pay),
        web.post("/operator/payments/{id}/reversal", st.operator_reverse_payment),
        web.get("/operator/policy", po.operator_policy),
        web.post("/operator/policy/check", po.operator_policy_check),
        web.post("/operator/policy/load", po.operator_policy_load),
        web.get("/operator/holders", rg.operator_holders),
        web.post("/operator/holders", rg.operator_register_holder),
        web.post("/operator/holders/{id}/link", rg.operator_holder_link),
        web.post("/operator/dishonesty", rg.operator_dishonesty_add),
        web.post("/operator/dishonesty/{uscc}/remove", rg.operator_dishonesty_remove),
        web.get("/operator/providers", rg.operator_providers),
        web.post("/operator/providers", rg.operator_register_provider),
        web.post("/operator/providers/{id}/state", rg.operator_provider_state),
        web.post("/operator/providers/{id}/related", rg.operator_provider_related),
        web.post("/operator/providers/{id}/link", rg.operator_provider_link),
        web.get("/operator/peers", op.operator_peers),
        web.get("/operator/audit", op.operator_audit),
        web.get("/operator/decisions", op.operator_decisions),
        web.get("/operator/flows.json", op.operator_flows),
        web.get("/holder/vouchers/{id}/qr.svg", pp.holder_voucher_qr),
        web.get("/operator/settlement", st.operator_settlement),
        web.post("/operator/transfers", st.operator_transfer),
        web.post("/operator/transfers/{id}/answer", st.operator_transfer_answer),
        web.get("/operator/decisions.csv", op.operator_decisions_csv),
        web.get("/operator/netting", st.operator_netting),
    ]


async def home(request: web.Request) -> web.StreamResponse:
    who = who_of(request)
    raise web.HTTPSeeOther(f"/ui/{who.role}")


async def signin_page(request: web.Request) -> web.StreamResponse:
    if session_of(request) is not None:
        raise web.HTTPSeeOther("/ui/")
    return render(request, "signin.html", errors={}, summary=[])


async def signin(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
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
    form = await read_form(request)
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
