"""What every page of the platform goes through (docs/platform.md): language, session, CSRF,
security headers, error pages, and rendering.

Security, in one middleware (OWASP's cheat sheets): a server-side session from an HttpOnly,
Secure, SameSite=Strict ``__Host-`` cookie; a CSRF token in every form, checked on every POST
(and a double-submit cookie for the sign-in form, before there is a session); the Origin
header, when sent, must be this node's; a strict Content-Security-Policy (no inline script or
style, ``frame-ancestors 'none'``) and the other headers on every page; ``Cache-Control:
no-store``; errors shown as pages, never a stack trace.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.services.sessions import Session
from node.web import i18n

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "__Host-suanli"
PRE = "__Host-suanli-pre"  # the sign-in form's CSRF cookie (no session yet)
LANG = "suanli-lang"
SESSION_KEY: web.RequestKey[Session | None] = web.RequestKey("session", object)  # type: ignore[arg-type]
LANG_KEY: web.RequestKey[str] = web.RequestKey("lang", str)
PRE_KEY: web.RequestKey[str] = web.RequestKey("pre_csrf", str)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send Origin: null
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
OPEN = frozenset({"/ui/signin", "/ui/link"})  # pages without a session (and /ui/link/…)


def _open(path: str) -> bool:
    return path in OPEN or path.startswith("/ui/link/")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def lang_of(request: web.Request) -> str:
    lang: str = request.get(LANG_KEY, "zh")
    return lang


def session_of(request: web.Request) -> Any:
    return request.get(SESSION_KEY)


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    lang = lang_of(request)
    session = request.get(SESSION_KEY)
    for name, empty in (("summary", []), ("errors", {}), ("form", {})):
        context.setdefault(name, empty)
    context.update(i18n.helpers(lang))
    context["session"] = session
    context["csrf"] = session.csrf if session is not None else request.get(PRE_KEY, "")
    context["path"] = request.path
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    return response


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _client(request: web.Request) -> str:
    return request.remote or "-"


@web.middleware
async def pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Language, session, CSRF, headers and error pages for every page."""
    wanted = request.query.get("lang")
    lang = wanted if wanted in i18n.LANGS else request.cookies.get(LANG, "zh")
    request[LANG_KEY] = lang if lang in i18n.LANGS else "zh"
    node = request.app[NODE]
    new_pre = ""
    try:
        session = await node.sessions.current(request.cookies.get(COOKIE, ""))
        request[SESSION_KEY] = session
        if (
            not _open(request.path)
            and session is None
            and not request.path.startswith("/ui/static/")
        ):
            raise web.HTTPSeeOther("/ui/signin")
        if _open(request.path):
            request[PRE_KEY] = request.cookies.get(PRE) or secrets.token_urlsafe(32)
            new_pre = "" if request.cookies.get(PRE) else request[PRE_KEY]
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                raise errors.Forbidden("a form from another site")
            form = await request.post()
            sent = str(form.get("csrf", ""))
            expected = session.csrf if session is not None else request.cookies.get(PRE, "")
            if not _same(sent, expected):
                raise _Expired()
        response = await handler(request)
    except web.HTTPSeeOther as exc:
        response = web.Response(status=exc.status, headers={"Location": str(exc.location)})
    except web.HTTPException as exc:
        response = _error(request, "not_found" if exc.status == 404 else "error", "", exc.status)
    except _Expired:
        response = _error(request, "csrf", "", 403)
    except errors.SuanliError as exc:
        from node.api.status import http_status

        response = _error(request, exc.code, exc.message, http_status(exc))
    except Exception:
        logger.exception("page %s %s failed", request.method, request.path)
        response = _error(request, "internal", "", 500)
    for name, value in HEADERS.items():
        response.headers[name] = value
    if not request.path.startswith("/ui/static/"):
        response.headers["Cache-Control"] = "no-store"
    if wanted in i18n.LANGS:
        response.set_cookie(LANG, wanted, path="/", secure=True, httponly=True, samesite="Strict")
    if new_pre:
        response.set_cookie(PRE, new_pre, path="/", secure=True, httponly=True, samesite="Strict")
    return response


class _Expired(Exception):
    pass


def _error(request: web.Request, code: str, message: str, status: int) -> web.Response:
    lang = lang_of(request)
    known = i18n.ERRORS.get(code)
    text = i18n.pick(known, lang) if known else (message or code)
    detail = message if known and message and lang == "en" else ""
    return render(request, "error.html", status=status, message=text, detail=detail)


def set_session_cookie(response: web.StreamResponse, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, path="/", secure=True, httponly=True, samesite="Strict")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")


def client_of(request: web.Request) -> str:
    return _client(request)
