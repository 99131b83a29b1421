"""Settling between cities with real node processes: the payer records its transfer, the payee
confirms or disputes it, both books settle exactly the statements it covers, across kill -9 at
every step of the exchange (docs/settlement.md, "Settling between cities")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster, Member
from tests.exposition import parse
from tests.proc import suanli, wait_until
from tests.test_settlement import GY, HZ, QD, all_agreed, close_all, populate, traffic


def transfers(m: Member, **query: str) -> list[dict[str, Any]]:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    items: list[dict[str, Any]] = m.call("GET", f"/v1/settlement/transfers?{q}", expect=200)[
        "items"
    ]
    return items


def state_of(m: Member, transfer_id: str) -> str:
    status, data = m.call_raw("GET", f"/v1/settlement/transfers/{transfer_id}")
    return str(data["transfer"]["state"]) if status == 200 else f"http {status}"


def positions(m: Member) -> dict[str, int]:
    """The books' accounts with other cities (due:, issuer:, cleared:), from the node's DB."""
    with m.db() as conn:
        return {
            name: fen
            for name, fen in conn.execute(
                "SELECT name, balance_fen FROM accounts WHERE name LIKE 'due:%' "
                "OR name LIKE 'issuer:%' OR name LIKE 'cleared:%'"
            )
        }


def closed_window(m: Member) -> dict[str, Any]:
    [w] = [
        w
        for w in m.call("GET", "/v1/settlement/windows", expect=200)["items"]
        if w["state"] != "open"
    ]
    return w


def metric(m: Member, name: str, **labels: str) -> float:
    status, text = m.call_raw("GET", "/metrics")
    assert status == 200
    key = (name, tuple(sorted(labels.items())))
    return parse(text, m.region).get(key, 0.0)


def wait_state(m: Member, transfer_id: str, state: str, timeout: float = 30) -> None:
    wait_until(
        lambda: state_of(m, transfer_id) == state,
        f"{m.name}: transfer {transfer_id} {state} (is {state_of(m, transfer_id)})",
        timeout=timeout,
    )


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path, [HZ, QD, GY]).session() as cluster:
        yield cluster


def agreed_trio(c: Cluster, env: dict[str, dict[str, str]] | None = None) -> None:
    c.start(env)
    populate(c)
    traffic(c)
    c.wait_agree()
    close_all(c)
    pairs = {(HZ, GY), (QD, HZ), (GY, HZ)}
    wait_until(lambda: all_agreed(c, pairs), "every pair statement countersigned", timeout=30)


def test_two_cities_settle_their_net_and_a_dispute_frees_the_statements(trio: Cluster) -> None:
    agreed_trio(trio)
    hz, qd, gy = trio[HZ], trio[QD], trio[GY]
    # Every window closed with its statements agreed; Hangzhou's waits for a transfer.
    w = closed_window(hz)
    assert w["state"] == "statements_agreed" and w["missing"] == [
        f"statement with {GY} (93000000 fen) is in no transfer",
        f"payout to {hz.ids['hz-centre']}: 30300000 of 30300000 fen unpaid",
    ]
    # What is due, as each side sees it: the bilateral nets of the agreed statements.
    [hz_gy] = [
        d
        for d in hz.call("GET", "/v1/settlement/transfers/due", expect=200)["items"]
        if d["peer"] == GY
    ]
    assert (hz_gy["payer"], hz_gy["payee"], hz_gy["amount_fen"]) == (HZ, GY, 87_000_000)
    [gy_hz] = gy.call("GET", "/v1/settlement/transfers/due", expect=200)["items"]
    assert {k: gy_hz[k] for k in ("payer", "payee", "amount_fen", "netting_id")} == {
        k: hz_gy[k] for k in ("payer", "payee", "amount_fen", "netting_id")
    }
    # The payee cannot send the advice, and the amount must be the net exactly.
    body = {"peer": HZ, "amount_fen": 87_000_000, "value_date": "2026-12-01", "reference": "R1"}
    status, data = gy.call_raw("POST", "/v1/settlement/transfers", body=body)
    assert status == 409 and data["error"]["code"] == "not_payer"
    body = {"peer": GY, "amount_fen": 86_999_999, "value_date": "2026-12-01", "reference": "R1"}
    status, data = hz.call_raw("POST", "/v1/settlement/transfers", body=body)
    assert status == 422 and data["error"]["code"] == "amount_mismatch"
    assert transfers(hz) == [] and transfers(gy) == []
    before = positions(hz), positions(gy)
    # Hangzhou pays Guiyang the net and advises it; Guiyang's node accepts the advice.
    body["amount_fen"] = 87_000_000
    t = hz.call("POST", "/v1/settlement/transfers", body=body, expect=201)["transfer"]
    assert (t["payer"], t["payee"], t["netting_id"]) == (HZ, GY, hz_gy["netting_id"])
    assert len(t["statements"]) == 2 and t["recorded_by"].startswith("operator:")
    wait_state(hz, t["id"], "awaiting_confirmation")
    wait_state(gy, t["id"], "awaiting_confirmation")
    assert (positions(hz), positions(gy)) == before  # nothing settles before the payee confirms
    assert metric(hz, "suanli_transfers_unconfirmed_fen", peer=GY, direction="out") == 87_000_000
    assert metric(gy, "suanli_transfers_unconfirmed_fen", peer=HZ, direction="in") == 87_000_000
    assert (
        f"transfer for the statement with {GY} is awaiting_confirmation"
        in (closed_window(hz)["missing"])
    )
    status, data = hz.call_raw("POST", "/v1/settlement/transfers", body=body)
    assert status == 409 and data["error"]["code"] == "nothing_to_settle"
    status, data = hz.call_raw("POST", f"/v1/settlement/transfers/{t['id']}/confirmation", body={})
    assert status == 409 and data["error"]["code"] == "transfer_not_awaiting"  # not its to confirm
    # Guiyang finds the money and confirms: both books settle exactly those statements.
    gy.call("POST", f"/v1/settlement/transfers/{t['id']}/confirmation", body={}, expect=200)
    wait_state(hz, t["id"], "confirmed")
    hz_books, gy_books = positions(hz), positions(gy)
    assert hz_books[f"due:{GY}"] == 0 and hz_books[f"issuer:{GY}"] == 0
    assert hz_books[f"cleared:{GY}"] == 87_000_000 and gy_books[f"cleared:{HZ}"] == -87_000_000
    assert gy_books[f"due:{HZ}"] == 0 and gy_books[f"issuer:{HZ}"] == 0
    assert hz_books[f"issuer:{QD}"] == -24_000_000  # Qingdao's debt is still open
    assert metric(hz, "suanli_transfers_unconfirmed_fen", peer=GY, direction="out") == 0
    assert metric(hz, "suanli_settlement_position_fen", peer=GY, direction="we_owe") == 0
    # Hangzhou's window is netted and its statement settled; once its provider is paid, it
    # is settled.
    w = closed_window(hz)
    assert (w["state"], len(w["missing"])) == ("netted", 1)
    payment = {
        "window": w["window_id"],
        "provider_id": hz.ids["hz-centre"],
        "amount_fen": 30_300_000,
        "value_date": "2026-12-01",
        "bank_reference": "P-1",
    }
    hz.call("POST", "/v1/settlement/payments", body=payment, expect=201)
    assert {k: v for k, v in closed_window(hz).items() if k in ("state", "missing")} == {
        "state": "settled",
        "missing": [],
    }
    # Qingdao pays Hangzhou; Hangzhou disputes (the bank shows nothing); the statements are
    # free again and Qingdao records the transfer again, which Hangzhou confirms.
    qd_body = {"peer": HZ, "amount_fen": 24_000_000, "value_date": "2026-12-01", "reference": "Q1"}
    q1 = qd.call("POST", "/v1/settlement/transfers", body=qd_body, expect=201)["transfer"]
    wait_state(hz, q1["id"], "awaiting_confirmation")
    status, data = hz.call_raw(
        "POST", f"/v1/settlement/transfers/{q1['id']}/confirmation", body={"confirmed": False}
    )
    assert status == 400 and data["error"]["code"] == "invalid_request"  # a reason is required
    hz.call(
        "POST",
        f"/v1/settlement/transfers/{q1['id']}/confirmation",
        body={"confirmed": False, "reason": "nothing on the account on 2026-12-01"},
        expect=200,
    )
    wait_state(qd, q1["id"], "disputed")
    assert positions(qd)[f"due:{HZ}"] == 24_000_000
    qd_body["reference"] = "Q2"
    q2 = qd.call("POST", "/v1/settlement/transfers", body=qd_body, expect=201)["transfer"]
    wait_state(hz, q2["id"], "awaiting_confirmation")
    data = str(hz.data)
    out = json.loads(suanli("settle", "confirm", q2["id"], "--data", data).stdout)
    assert out["state"] == "confirmed" and out["answered_by"].startswith("operator:cli")
    wait_state(qd, q2["id"], "confirmed")
    assert positions(qd)[f"due:{HZ}"] == 0 and positions(qd)[f"cleared:{HZ}"] == 24_000_000
    assert positions(hz)[f"cleared:{QD}"] == -24_000_000
    # Nothing is left to settle anywhere; the audit trail names who did what.
    for m in trio.members:
        assert m.call("GET", "/v1/settlement/transfers/due", expect=200)["items"] == []
    listing = json.loads(suanli("settle", "transfers", "--data", data).stdout)
    assert [(x["id"], x["state"]) for x in listing] == [
        (t["id"], "confirmed"),
        (q1["id"], "disputed"),
        (q2["id"], "confirmed"),
    ]
    with hz.db() as conn:
        actions = [
            (a, who.split(":")[0])
            for a, who in conn.execute(
                "SELECT action, actor FROM audit WHERE action LIKE 'transfer.%' ORDER BY seq"
            )
        ]
    assert actions == [
        ("transfer.record", "operator"),
        ("transfer.confirm", "peer"),
        ("transfer.advice", "peer"),
        ("transfer.dispute", "operator"),
        ("transfer.advice", "peer"),
        ("transfer.confirm", "operator"),
    ]
    trio.check_all()
