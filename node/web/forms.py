"""What the platform's pages share: who is asking, and reading a form's fields with the
errors shown beside them (docs/platform.md)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import errors
from node.clock import year_of
from node.domain.payments import yuan_to_fen
from node.web.frame import lang_of, session_of

MAX_TEXT = 100


def who_of(request: web.Request) -> Any:
    return session_of(request).principal


def role_of(request: web.Request, role: str) -> Any:
    who = who_of(request)
    if who.role != role:
        raise errors.Forbidden(f"this page is for {role}s")
    return who


async def read_form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    out = {}
    for key, value in form.items():
        if not isinstance(value, str):
            raise errors.InvalidRequest(f"{key}: text expected")
        out[key] = value.strip()
    return out


async def posted(
    request: web.Request, role: str
) -> tuple[Any, dict[str, str], str, dict[str, str]]:
    """What every form's handler starts with: the signed-in person (who must have ``role``),
    the form's fields, the page's language, and an empty map for the fields' errors."""
    who = role_of(request, role)
    return who, await read_form(request), lang_of(request), {}


def text_field(form: dict[str, str], name: str, fields: dict[str, str], lang: str) -> str:
    value = form.get(name, "")
    if not value or len(value) > MAX_TEXT:
        fields[name] = (
            "必填，最多 100 个字符" if lang == "zh" else "Required, at most 100 characters"
        )
    return value


def yuan_field(form: dict[str, str], name: str, fields: dict[str, str], lang: str) -> int:
    try:
        return yuan_to_fen(name, form.get(name, "").replace(",", ""))
    except errors.InvalidRequest:
        fields[name] = (
            "请填写金额，例如 1200.50" if lang == "zh" else "Enter an amount such as 1200.50"
        )
        return 0


def classes_of(node: Any) -> list[str]:
    """This year's compute classes, for a form's choice."""
    policy = node.policies.maybe_for_year(year_of(node.clock.now_ms()))
    return sorted(policy.compute_classes) if policy is not None else []


def field_of(
    exc: errors.SuanliError, known: tuple[str, ...], message: str | None = None
) -> dict[str, str]:
    """A service's refusal shown beside the field it names (``field: …``), if it names one."""
    name = exc.message.split(":", 1)[0]
    return {name: message or exc.message} if name in known else {}


def error_text(exc: errors.SuanliError, lang: str) -> str:
    """A refusal in the page's language: the plain words written for its code
    (``i18n.ERRORS``), else the service's own sentence, which names the field and figures."""
    from node.web.i18n import ERRORS, pick

    known = ERRORS.get(exc.code)
    return pick(known, lang) if known is not None else exc.message
