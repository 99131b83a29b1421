"""The operators' policy page: the current policy, and a new one checked before it is loaded
(GOV.UK's "check your answers"): every problem of the file at once, each shown beside the line
of its key; the changes from the current policy and the budget's move; then "confirm"."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from node import errors
from node.api.appkeys import NODE
from node.clock import year_of
from node.domain.policy import Policy, policy_summary
from node.web.forms import role_of
from node.web.frame import lang_of, render
from node.web.i18n import pick, policy_problem

MAX_POLICY = 200_000
_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|[A-Za-z0-9_\-]+)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Each table's and key's dotted path → its line (from 1) in a TOML policy file, as
    written (tables by ``[a.b]`` headers, keys by ``key =`` lines)."""
    where: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = ".".join(part.strip().strip('"') for part in header.group(1).split("."))
            where.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            name = key.group(1).strip('"')
            where.setdefault(f"{table}.{name}" if table else name, number)
    return where


def annotate(text: str, problems: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The file's lines, each with the problems of the key it holds; and the problems that
    belong to no line (a key or table that is missing)."""
    where = key_lines(text)
    at: dict[int, list[str]] = {}
    nowhere: list[str] = []
    for problem in problems:
        line = where.get(problem.split(":", 1)[0].strip())
        if line is None:
            nowhere.append(problem)
        else:
            at.setdefault(line, []).append(problem)
    lines = [
        {"number": n, "text": line, "problems": at.get(n, [])}
        for n, line in enumerate(text.splitlines(), start=1)
    ]
    return lines, nowhere


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
    node = request.app[NODE]
    role_of(request, "operator")
    policy = node.policies.maybe_for_year(year_of(node.clock.now_ms()))
    current = _flat(policy_summary(policy)) if policy is not None else {}
    context: dict[str, Any] = {
        "current": current,
        "changes": None,
        "text": "",
        "loaded": None,
        "listing": None,
        "budget_move": None,
    }
    context.update(extra)
    return render(request, "operator_policy.html", status, **context)


async def _refused(request: web.Request, exc: errors.SuanliError, text: str) -> web.Response:
    """Every problem in the summary, each linking to its line in the listing of the file."""
    problems = list(exc.details.get("problems") or [exc.message])
    lines, nowhere = annotate(text, problems)
    lang = lang_of(request)
    summary = [
        f"{p.split(':', 1)[0]}：{policy_problem(p, lang)}" if ":" in p else p
        for p in [*nowhere, *(p for line in lines for p in line["problems"])]
    ]
    count = pick(("政策文件有 {} 处问题", "The file has {} problem(s)"), lang)
    return await _policy_page(
        request,
        400,
        errors={"toml": count.format(len(problems))},
        summary=summary,
        listing={"lines": [line for line in lines if line["problems"]], "nowhere": nowhere},
        text=text,
    )


async def operator_policy(request: web.Request) -> web.StreamResponse:
    return await _policy_page(request)


def _changes(policy: Policy, previous: Policy | None) -> list[tuple[str, str, str]]:
    new = _flat(policy_summary(policy))
    old = _flat(policy_summary(previous)) if previous is not None else {}
    return [
        (key, old.get(key, "—"), new.get(key, "—"))
        for key in sorted(set(new) | set(old))
        if old.get(key) != new.get(key) and key != "sha256"
    ]


async def operator_policy_check(request: web.Request) -> web.StreamResponse:
    """Check an uploaded policy and show what would change: nothing is loaded until the
    operator confirms."""
    who = role_of(request, "operator")
    form = await request.post()
    text = str(form.get("toml", ""))
    if not text.strip() or len(text) > MAX_POLICY:
        message = pick(("请粘贴政策文件（TOML）", "Paste the policy (TOML)"), lang_of(request))
        return await _policy_page(request, 400, errors={"toml": message}, summary=[message])
    try:
        policy, previous = request.app[NODE].policies.preview(text, who)
    except errors.SuanliError as exc:
        return await _refused(request, exc, text)
    before = previous.annual_budget_fen if previous is not None else 0
    return await _policy_page(
        request,
        200,
        changes=_changes(policy, previous),
        budget_move=policy.annual_budget_fen - before,
        text=text,
        year=policy.fiscal_year,
    )


async def operator_policy_load(request: web.Request) -> web.StreamResponse:
    who = role_of(request, "operator")
    form = await request.post()
    text = str(form.get("toml", ""))
    if len(text) > MAX_POLICY:
        raise errors.InvalidRequest("toml: at most 200,000 characters")
    try:
        policy, version = await request.app[NODE].policies.load(text, who)
    except errors.SuanliError as exc:
        return await _refused(request, exc, text)
    return await _policy_page(request, 201, loaded={"year": policy.fiscal_year, "version": version})
