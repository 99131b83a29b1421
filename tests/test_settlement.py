"""Settlement between three node processes: windows, payouts, pair statements, disputes, netting."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import engines
from tests.cluster import Cluster
from tests.conftest import HZ_ENTERPRISE, valid_uscc
from tests.proc import wait_until

HZ, QD, GY = "330100", "370200", "520100"
QD_ENTERPRISE = valid_uscc("91370200MA3QD0001")
GY_ENTERPRISE = valid_uscc("91520100MA6GYE001")
GY_CENTRE = valid_uscc("91520100MA6DGY001")
HZ_CENTRE = valid_uscc("91330100MA2B3C4D5")


def order(code: str, order_id: str, amount: int, cls: str = "model_services") -> dict[str, object]:
    return {"code": code, "order_id": order_id, "order_amount_fen": amount, "compute_class": cls}


def populate(c: Cluster) -> None:
    c.holder(HZ, "startup", HZ_ENTERPRISE)
    c.holder(QD, "qd-co", QD_ENTERPRISE)
    c.holder(GY, "gy-co", GY_ENTERPRISE)
    c.provider(GY, "gy-centre", GY_CENTRE)
    c.provider(HZ, "hz-centre", HZ_CENTRE)


def answered(m: Any, path: str, token: str, body: Any, expect: int) -> Any:
    """A cross-region POST. On a slow machine the issuer may not answer within the call's wait
    (1 s here, the first call to a peer opens its connection): the node then says 202 and its
    outbox carries on, as documented. These tests need the answer, so they follow the hold
    until it is in, with the state the issuer gave it."""
    status, data = m.call_raw("POST", path, token, body)
    if status != 202:
        assert status == expect, f"{m.name} POST {path}: expected {expect}, got {status} {data}"
        return data
    hold_id = data["hold"]["id"]

    def in_() -> bool:
        data["hold"] = m.call("GET", f"/v1/holds/{hold_id}", token, expect=200)
        return bool(data["hold"]["state"] != "pending" and data["hold"]["wanted"] is None)

    wait_until(in_, f"the issuer's answer for {hold_id}", timeout=30)
    return data


def verified_payout(m: Any, provider: str, item: dict[str, Any]) -> list[dict[str, str]]:
    """Check a payout statement as its provider would: the city's signature over the exact
    statement, then its count, total and digest against the lines the provider downloads with
    its own token (docs/settlement.md). Returns the lines."""
    import base64
    import csv
    import hashlib

    from node.keys import canonical_json, verify
    from node.services.payouts import PAYOUT_TAG

    card = m.call("GET", "/v1/node", expect=200)
    [key] = [k for k in card["keys"] if k["key_id"] == item["key_id"]]
    statement = item["statement"]
    assert statement["type"] == "suanli.payout.v2" and "lines" not in statement
    assert verify(
        base64.b64decode(key["public_key"]),
        PAYOUT_TAG,
        canonical_json(statement),
        bytes.fromhex(item["signature"]),
    )
    status, text = m.call_raw(
        "GET", f"/v1/settlement/payouts?format=csv&window={item['window']}", m.tokens[provider]
    )
    assert status == 200
    lines = list(csv.DictReader(io.StringIO(text)))
    assert {ln["provider_id"] for ln in lines} == {statement["provider_id"]}
    digest = hashlib.sha256(
        "".join(
            f"{ln['hold_id']}|{ln['order_id']}|{ln['holder_uscc']}|{ln['issuer_region']}|"
            f"{ln['compute_class']}|{ln['captured_fen']}\n"
            for ln in lines
        ).encode()
    ).hexdigest()
    assert [ln["hold_id"] for ln in lines] == sorted(ln["hold_id"] for ln in lines)
    assert (statement["count"], statement["total_fen"], statement["digest"]) == (
        len(lines),
        sum(int(ln["captured_fen"]) for ln in lines),
        digest,
    )
    return lines


def traffic(c: Cluster) -> None:
    """Hangzhou → Guiyang ¥900,000 and ¥30,000; Qingdao → Hangzhou ¥240,000; Guiyang → Hangzhou
    ¥60,000; plus a local redemption in Hangzhou."""
    gy, hz = c[GY], c[HZ]
    v = c.voucher(HZ, "startup", 1_200_000_000)
    for oid, amount in (("G-1", 300_000_000), ("G-2", 10_000_000)):
        code = c.code(HZ, "startup", v, GY, "gy-centre", 100_000_000)
        answered(gy, "/v1/redemptions", gy.tokens["gy-centre"], order(code, oid, amount), 201)
    qv = c.voucher(QD, "qd-co", 200_000_000, "other_compute")
    code = c.code(QD, "qd-co", qv, HZ, "hz-centre", 100_000_000)
    held = answered(
        hz,
        "/v1/holds",
        hz.tokens["hz-centre"],
        order(code, "H-1", 150_000_000, "other_compute"),
        201,
    )
    answered(
        hz,
        f"/v1/holds/{held['hold']['id']}/capture",
        hz.tokens["hz-centre"],
        {"amount_fen": 24_000_000},
        200,
    )
    gv = c.voucher(GY, "gy-co", 500_000_000)
    code = c.code(GY, "gy-co", gv, HZ, "hz-centre", 100_000_000)
    answered(hz, "/v1/redemptions", hz.tokens["hz-centre"], order(code, "H-2", 20_000_000), 201)
    code = c.code(HZ, "startup", v, HZ, "hz-centre", 100_000_000)
    hz.call(
        "POST", "/v1/redemptions", hz.tokens["hz-centre"], order(code, "H-3", 1_000_000), expect=201
    )


def close_all(c: Cluster) -> None:
    for m in c.members:
        m.call("POST", "/v1/settlement/windows/close", body={}, expect=201)


def statements(c: Cluster, region: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = c[region].call("GET", "/v1/settlement/statements", expect=200)[
        "items"
    ]
    return items


def all_agreed(c: Cluster, pairs: set[tuple[str, str]]) -> bool:
    for issuer, acquirer in pairs:
        for side in (issuer, acquirer):
            found = [
                s for s in statements(c, side) if (s["issuer"], s["acquirer"]) == (issuer, acquirer)
            ]
            if not found or any(s["state"] != "agreed" for s in found):
                return False
    return True


PAIRS = {(HZ, GY), (QD, HZ), (GY, HZ)}


@pytest.fixture
def trio(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    # param: records carried with a statement at most (0: count, total and digest only, as for
    # a window too large for one message)
    inline = getattr(request, "param", 2_000)
    # Netting asks each peer for one statement per reply, so every netting here walks pages.
    with Cluster(
        tmp_path, [HZ, QD, GY], statement_inline_records=inline, statements_page=1
    ).session() as cluster:
        yield cluster


@pytest.mark.parametrize("trio", [2_000, 0], indirect=True, ids=["records", "digest-only"])
def test_statements_agree_payouts_and_netting(trio: Cluster) -> None:
    trio.start()
    populate(trio)
    traffic(trio)
    trio.wait_agree()
    close_all(trio)
    wait_until(
        lambda: all_agreed(trio, PAIRS), "every pair statement to be countersigned", timeout=30
    )
    # Both sides hold the same statement, with both signatures.
    gy_side = next(s for s in statements(trio, GY) if s["issuer"] == HZ)
    hz_side = next(s for s in statements(trio, HZ) if s["acquirer"] == GY)
    assert (
        gy_side["statement"] == hz_side["statement"]
        and gy_side["issuer_signature"] == hz_side["issuer_signature"]
    )
    assert gy_side["total_fen"] == 93_000_000 and gy_side["count"] == 2
    # Payouts: Guiyang's centre is paid for Hangzhou's vouchers; Hangzhou's for three cities'.
    gy_pay = trio[GY].call("GET", "/v1/settlement/payouts", expect=200)["items"]
    assert [(p["provider_id"], p["total_fen"], p["count"]) for p in gy_pay] == [
        (trio[GY].ids["gy-centre"], 93_000_000, 2)
    ]
    lines = verified_payout(trio[GY], "gy-centre", gy_pay[0])
    assert {ln["issuer_region"] for ln in lines} == {HZ} and all(
        ln["holder_uscc"] == HZ_ENTERPRISE for ln in lines
    )
    hz_page = trio[HZ].call("GET", "/v1/settlement/payouts?limit=1", expect=200)
    hz_pay = hz_page["items"]
    assert hz_page["next_after"] == hz_pay[0]["cursor"]
    after = f"/v1/settlement/payouts?limit=1&after={urllib.parse.quote(hz_page['next_after'])}"
    assert trio[HZ].call("GET", after, expect=200) == {"items": [], "next_after": None}
    assert hz_pay[0]["total_fen"] == 24_000_000 + 6_000_000 + 300_000
    hz_lines = verified_payout(trio[HZ], "hz-centre", hz_pay[0])
    assert sorted(ln["issuer_region"] for ln in hz_lines) == [HZ, QD, GY]
    csv = trio[HZ].call_raw("GET", "/v1/settlement/payouts?format=csv")[1]
    assert (
        csv.splitlines()[0].startswith("window,provider_id,provider_uscc,hold_id")
        and len(csv.splitlines()) == 4
    )
    # Netting: every node computes the same positions and transfers, from statements alone.
    results = [m.call("GET", "/v1/settlement/netting", expect=200) for m in trio.members]
    assert all(
        r["positions"] == results[0]["positions"] and r["transfers"] == results[0]["transfers"]
        for r in results
    )
    # ... and names the run by the same id, the documented digest of the statements it covers.
    lines = "".join(
        f"{s['issuer']}|{s['acquirer']}|{s['window']}|{s['total_fen']}|{s['digest']}\n"
        for s in results[0]["statements"]
    )
    assert {r["netting_id"] for r in results} == {hashlib.sha256(lines.encode()).hexdigest()}
    assert results[0]["positions"] == {
        HZ: -93_000_000 + 24_000_000 + 6_000_000,
        QD: -24_000_000,
        GY: 93_000_000 - 6_000_000,
    }
    assert results[0]["transfers"] == [
        {"from": HZ, "to": GY, "amount_fen": 63_000_000},
        {"from": QD, "to": GY, "amount_fen": 24_000_000},
    ]
    assert len(results[0]["statements"]) == 3 and results[0]["rejected_statements"] == 0
    # The issuers' windows are settled.
    windows = trio[HZ].call("GET", "/v1/settlement/windows", expect=200)["items"]
    assert [w["state"] for w in windows if w["state"] != "open"] == ["statements_agreed"]
    assert trio[HZ].call("GET", "/v1/settlement/disputes", expect=200)["items"] == []
    # The same from the CLI, beside the running nodes.
    import json

    from tests.proc import suanli

    data = str(trio[GY].data)
    cli_net = json.loads(suanli("settle", "netting", "--data", data).stdout)
    assert cli_net["transfers"] == results[0]["transfers"]
    cli_statements = json.loads(suanli("settle", "statements", "--data", data).stdout)
    assert {s["state"] for s in cli_statements} == {"agreed"}
    csv_lines = suanli("settle", "payouts", "--data", data, "--format", "csv").stdout.splitlines()
    assert len(csv_lines) == 3 and csv_lines[1].split(",")[6] == HZ
    assert json.loads(suanli("settle", "disputes", "--data", data).stdout) == []
    assert any(
        w["state"] == "open" for w in json.loads(suanli("settle", "windows", "--data", data).stdout)
    )
    # The captures report lists every capture in Hangzhou's books, with its kind, and its
    # totals reconcile with the statements and the providers' payouts.
    hz_data = str(trio[HZ].data)
    rows = [
        json.loads(line)
        for line in suanli(
            "export", "captures", "--data", hz_data, "--format", "json"
        ).stdout.splitlines()
    ]
    by_kind: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r["kind"], r["issuer_region"], r["acquirer_region"])
        by_kind[key] = by_kind.get(key, 0) + r["captured_fen"]
        assert r["captured_at"].endswith("Z") and r["settlement_window"]
    assert by_kind == {
        ("local", HZ, HZ): 300_000,
        ("issued_here", HZ, GY): 93_000_000,  # the HZ→GY statement
        ("acquired_here", QD, HZ): 24_000_000,  # the QD→HZ statement
        ("acquired_here", GY, HZ): 6_000_000,  # the GY→HZ statement
    }
    hz_statements = {(s["issuer"], s["acquirer"]): s["total_fen"] for s in statements(trio, HZ)}
    assert hz_statements == {(HZ, GY): 93_000_000, (QD, HZ): 24_000_000, (GY, HZ): 6_000_000}
    here = sum(v for (kind, _, _), v in by_kind.items() if kind != "issued_here")
    assert here == hz_pay[0]["total_fen"]  # what Hangzhou's centre is paid
    trio.check_all()


@pytest.mark.parametrize("trio", [2_000, 0], indirect=True, ids=["records", "digest-only"])
def test_a_corrupted_record_is_a_dispute_with_evidence(
    trio: Cluster, request: pytest.FixtureRequest
) -> None:
    trio.start()
    populate(trio)
    traffic(trio)
    trio.wait_agree()
    gy = trio[GY]
    gy.process.stop()
    with contextlib.closing(engines.open_books(gy.data)) as conn:
        conn.execute(
            "UPDATE remote_holds SET captured_fen = captured_fen + 1000, amount_fen = amount_fen + 1000 WHERE order_id = 'G-2'"
        )
    trio.restart(GY)
    close_all(trio)

    def disputed() -> bool:
        return bool(gy.call("GET", "/v1/settlement/disputes")["items"]) and bool(
            trio[HZ].call("GET", "/v1/settlement/disputes")["items"]
        )

    wait_until(disputed, "both cities to see a dispute", timeout=30)
    dispute = gy.call("GET", "/v1/settlement/disputes", expect=200)["items"][0]
    assert (dispute["issuer"], dispute["acquirer"]) == (HZ, GY)
    evidence = dispute["evidence"]
    issuer_view = trio[HZ].call("GET", "/v1/settlement/disputes", expect=200)["items"][0]
    assert evidence["records_omitted"] is (request.node.callspec.params["trio"] == 0)
    if evidence["records_omitted"]:
        # Too many records to exchange: the summaries say the books differ, and by how much.
        assert evidence["differences"] == [] and issuer_view["evidence"]["records_omitted"]
        assert evidence["ours"]["total_fen"] == evidence["theirs"]["total_fen"] + 1000
        assert evidence["ours"]["count"] == evidence["theirs"]["count"]
        assert evidence["ours"]["digest"] != evidence["theirs"]["digest"]
        assert issuer_view["evidence"]["theirs"] == evidence["ours"]
        # Where: the two cities' exports of the statement records differ in that one line.
        from node.reports import export

        def lines(region: str, role: str) -> set[tuple[Any, ...]]:
            out = io.StringIO()
            conn = engines.open_books(trio[region].data)
            try:
                export(conn, "statement_records", "json", out, region)
            finally:
                conn.close()
            rows = [json.loads(line) for line in out.getvalue().splitlines()]
            return {
                (r["window_id"], r["issuer_hold_id"], r["order_id"], r["captured_fen"])
                for r in rows
                if r["role"] == role and r["partner"] == (GY if role == "issuer" else HZ)
            }

        ours, theirs = lines(GY, "acquirer"), lines(HZ, "issuer")
        [(_, _, order_acquirer, fen_acquirer)] = ours - theirs
        [(_, _, order_issuer, fen_issuer)] = theirs - ours
        assert order_acquirer == order_issuer == "G-2" and fen_acquirer == fen_issuer + 1000
    else:
        [difference] = evidence["differences"]
        assert difference["acquirer"]["captured_fen"] == difference["issuer"]["captured_fen"] + 1000
        assert difference["receipts"], "the issuer's signed receipt is part of the evidence"
        assert (
            issuer_view["evidence"]["differences"][0]["issuer_hold_id"]
            == difference["issuer_hold_id"]
        )
    # Never a silent agreement: the pair statement stays uncountersigned on both sides.
    assert all(s["state"] != "agreed" for s in statements(trio, GY) if s["issuer"] == HZ)
    assert all(s["state"] != "agreed" for s in statements(trio, HZ) if s["acquirer"] == GY)
    # The other pairs settle; the operators' dashboards show the open dispute.
    wait_until(lambda: all_agreed(trio, {(QD, HZ), (GY, HZ)}), "the other statements", timeout=30)
    from tests.exposition import parse

    samples = parse(gy.call_raw("GET", "/metrics")[1], GY)
    assert samples[("suanli_settlement_disputes_open", ())] == 1


@pytest.mark.parametrize(
    ("victim", "point"),
    [
        (HZ, "issuer.after_commit.capture"),
        (GY, "settlement.after_close"),
        (HZ, "issuer.after_statement"),
        (GY, "acquirer.before_statement_store"),
    ],
)
def test_kill9_during_capture_or_close_then_statements_agree(
    trio: Cluster, victim: str, point: str
) -> None:
    trio.start({victim: {"SUANLI_CRASH_AT": point}})
    populate(trio)
    gy, hz = trio[GY], trio[HZ]
    v = trio.voucher(HZ, "startup", 1_200_000_000)
    code = trio.code(HZ, "startup", v, GY, "gy-centre", 100_000_000)
    hold = gy.call(
        "POST", "/v1/holds", gy.tokens["gy-centre"], order(code, "K-1", 300_000_000), expect=201
    )["hold"]
    status, _ = gy.call_raw(
        "POST",
        f"/v1/holds/{hold['id']}/capture",
        gy.tokens["gy-centre"],
        {"amount_fen": 50_000_000},
    )
    if point == "issuer.after_commit.capture":
        assert status == 202
        assert hz.process.wait_exit() == -9
        trio.restart(HZ)
    else:
        assert status == 200
    trio.wait_agree()
    for m in trio.members:
        status, _ = m.call_raw("POST", "/v1/settlement/windows/close", body={})
        if m.region == victim and point == "settlement.after_close":
            assert status == 0 and m.process.wait_exit() == -9
            trio.restart(victim)
    if point in ("issuer.after_statement", "acquirer.before_statement_store"):
        # The first statement exchange may come before or after the closes above: either way
        # the victim dies at its crash point; after its restart every window gets closed.
        assert trio[victim].process.wait_exit(30) == -9
        trio.restart(victim)
        for m in trio.members:
            status, _ = m.call_raw("POST", "/v1/settlement/windows/close", body={})
            assert status in (201, 409), status
    wait_until(
        lambda: all_agreed(trio, {(HZ, GY)}),
        "the statement to be countersigned after the crash",
        timeout=40,
    )
    [st] = [s for s in statements(trio, GY) if s["issuer"] == HZ]
    assert (st["count"], st["total_fen"]) == (1, 50_000_000)  # nothing lost, nothing doubled
    windows = gy.call("GET", "/v1/settlement/windows", expect=200)["items"]
    assert sum(1 for w in windows if w["state"] != "open") == 1
    # After a crash between the close and the payouts, the restarted node's next tick signs
    # them (LocalSettlement.tick), independently of the statement exchange awaited above.
    pay = wait_until(
        lambda: gy.call("GET", "/v1/settlement/payouts", expect=200)["items"],
        "Guiyang's payouts to be signed",
    )
    assert [(p["count"], p["total_fen"]) for p in pay] == [(1, 50_000_000)]
    trio.check_all()


@pytest.mark.parametrize(
    ("key", "value", "bounds"),
    [
        ("statement_inline_records", 0, None),
        ("statement_inline_records", 4_000, None),
        ("statement_inline_records", 4_001, "0 to 4000"),
        ("statement_inline_records", -1, "0 to 4000"),
        ("statements_page", 1, None),
        ("statements_page", 1_000, None),
        ("statements_page", 0, "1 to 1000"),
        ("statements_page", 1_001, "1 to 1000"),
        ("statement_retry_seconds", 0.5, None),
        ("statement_retry_seconds", 0.0, "more than 0"),
    ],
)
def test_settlement_settings_are_bounded(
    tmp_path: Path, key: str, value: float, bounds: str | None
) -> None:
    """More records or statements than fit in a 1 MiB gRPC message would fail every time; a
    retry delay of zero would resend as fast as the loop turns."""
    from node.config import ConfigError, load

    (tmp_path / "node.toml").write_text(
        '[node]\nregion = "330100"\nname = "Hangzhou"\n'
        f"[federation]\nplaintext = true\n{key} = {value}\n"
    )
    if bounds is None:
        config = load(tmp_path).federation
        assert config is not None and getattr(config, key) == value
    else:
        with pytest.raises(ConfigError, match=f"{key}: must be {bounds}"):
            load(tmp_path)


def test_a_statement_goes_again_soon_after_its_issuer_comes_back(trio: Cluster) -> None:
    """However often an open window was rechecked and answered, the delay after an unanswered
    statement starts again from statement_retry_seconds (0.2 s here): it doubles with the
    attempts since the issuer last answered, not with every attempt ever made."""
    trio.start()
    populate(trio)
    traffic(trio)

    def row() -> tuple[int, int, int] | None:
        """HZ's statement to GY: attempts, next attempt, last attempt (ms)."""
        with contextlib.closing(engines.open_books(trio[HZ].data)) as conn:
            r = conn.execute(
                "SELECT attempts, next_attempt_at, updated_at FROM statements "
                "WHERE issuer = ? AND acquirer = ? ORDER BY window_id DESC LIMIT 1",
                (GY, HZ),
            ).fetchone()
        return None if r is None else (int(r[0]), int(r[1]), int(r[2]))

    answers: set[int] = set()

    def four_answers() -> bool:
        r = row()
        if r is not None and r[0] == 0 and r[1] > r[2]:  # window_open, asked again later
            answers.add(r[2])
        return len(answers) >= 4

    wait_until(four_answers, "GY to answer four rechecks of its open window", timeout=30)
    trio.cut(GY)
    wait_until(lambda: (r := row()) is not None and r[0] >= 1, "an unanswered attempt", timeout=20)
    r = row()
    assert r is not None
    attempts, next_at, last = r
    assert next_at - last == 200 * 2 ** (attempts - 1), r
    trio.heal(GY)
    wait_until(lambda: (r := row()) is not None and r[0] == 0, "GY to answer again", timeout=8)
    trio.check_all()


def test_cities_with_different_cycles_settle_together(tmp_path: Path) -> None:
    """Hangzhou settles quarterly, Guiyang monthly (issue 17 item 6). Each pair statement is
    the issuer's window (Hangzhou's quarter for Hangzhou's vouchers, Guiyang's month for
    Guiyang's), each acquirer pays its providers in its own window, and both cities agree on
    the statements and the netting."""

    def monthly_guiyang(region: str, text: str) -> str:
        if region != GY:
            return text
        return text.replace('settlement_cycle = "quarterly"', 'settlement_cycle = "monthly"')

    with Cluster(tmp_path, [HZ, GY], policy_edit=monthly_guiyang).session() as c:
        c.start()
        c.holder(HZ, "startup", HZ_ENTERPRISE)
        c.holder(GY, "gy-co", GY_ENTERPRISE)
        c.provider(GY, "gy-centre", GY_CENTRE)
        c.provider(HZ, "hz-centre", HZ_CENTRE)
        gy, hz = c[GY], c[HZ]
        v = c.voucher(HZ, "startup", 1_000_000_000)
        code = c.code(HZ, "startup", v, GY, "gy-centre", 100_000_000)
        answered(
            gy, "/v1/redemptions", gy.tokens["gy-centre"], order(code, "C-1", 300_000_000), 201
        )
        gv = c.voucher(GY, "gy-co", 500_000_000)
        code = c.code(GY, "gy-co", gv, HZ, "hz-centre", 100_000_000)
        answered(hz, "/v1/redemptions", hz.tokens["hz-centre"], order(code, "C-2", 20_000_000), 201)
        c.wait_agree()
        windows = {
            m.region: m.call("POST", "/v1/settlement/windows/close", body={}, expect=201)["window"]
            for m in c.members
        }
        assert re.fullmatch(r"\d{4}-Q[1-4]", windows[HZ]) and re.fullmatch(
            r"\d{4}-\d{2}", windows[GY]
        )
        wait_until(lambda: all_agreed(c, {(HZ, GY), (GY, HZ)}), "both pair statements", timeout=60)
        by_pair = {(s["issuer"], s["acquirer"]): s for s in statements(c, HZ)}
        assert by_pair[(HZ, GY)]["window"] == windows[HZ]  # the issuer's quarter
        assert by_pair[(GY, HZ)]["window"] == windows[GY]  # the issuer's month
        assert by_pair[(HZ, GY)]["total_fen"] == 90_000_000  # 30% of ¥3,000,000
        assert by_pair[(GY, HZ)]["total_fen"] == 6_000_000  # Guiyang's 30%
        # Each acquirer paid its provider in its own window.
        assert [
            p["window"] for p in gy.call("GET", "/v1/settlement/payouts", expect=200)["items"]
        ] == [windows[GY]]
        assert [
            p["window"] for p in hz.call("GET", "/v1/settlement/payouts", expect=200)["items"]
        ] == [windows[HZ]]
        nettings = [m.call("GET", "/v1/settlement/netting", expect=200) for m in c.members]
        assert nettings[0]["transfers"] == nettings[1]["transfers"]
        assert nettings[0]["transfers"] == [{"from": HZ, "to": GY, "amount_fen": 84_000_000}]
        c.check_all()


def test_an_issuers_early_close_is_pushed_to_its_acquirers(tmp_path: Path) -> None:
    """Hangzhou (the issuer) closes its window early. Guiyang (the acquirer) had been told
    window_open and would ask again only at its recheck, ten minutes here; the close reaches it
    as a WINDOW_CLOSED message, and its statement goes at its next sweep (issue 17 item 6)."""
    with Cluster(tmp_path, [HZ, GY], statement_recheck_seconds=600.0).session() as c:
        c.start()
        c.holder(HZ, "startup", HZ_ENTERPRISE)
        c.provider(GY, "gy-centre", GY_CENTRE)
        gy = c[GY]
        v = c.voucher(HZ, "startup", 1_000_000_000)
        code = c.code(HZ, "startup", v, GY, "gy-centre", 100_000_000)
        answered(
            gy, "/v1/redemptions", gy.tokens["gy-centre"], order(code, "P-1", 100_000_000), 201
        )
        c.wait_agree()
        gy.call("POST", "/v1/settlement/windows/close", body={}, expect=201)

        def told_open() -> bool:  # Guiyang asked once and was told to wait
            return any(s["state"] != "agreed" for s in statements(c, GY))

        wait_until(told_open, "Guiyang's statement to be answered window_open")
        c[HZ].call("POST", "/v1/settlement/windows/close", body={}, expect=201)
        wait_until(
            lambda: all_agreed(c, {(HZ, GY)}), "the statement, well before the recheck", timeout=30
        )
        # Hangzhou books Guiyang's acknowledgement after the answer came back, so the
        # statement the notice set off may be agreed before that line is written.
        wait_until(
            lambda: "close told to 520100" in c[HZ].process.log(),
            "Hangzhou to book that Guiyang was told",
        )
        assert "accepted WINDOW_CLOSED" in gy.process.log()
