"""Paying providers (兑付): payments against payout statements, reversals, signed advices, the
ledger moving payable to paid; and every bad request refused with nothing changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from node.clock import MS_PER_DAY, ManualClock
from node.domain.payments import PAYMENT_TAG
from node.keys import canonical_json, verify
from node.node import Node
from tests.conftest import World, order, snapshot
from tests.exposition import samples


async def closed_window(world: World) -> tuple[str, str, dict[str, Any]]:
    """Alicloud captures ¥3,000 of subsidy (two redemptions); the window closes; its payout."""
    v = await world.voucher("acme", 100_000_000)
    p = world.providers["alicloud"]
    for n, amount in enumerate((4_000_000, 6_000_000)):
        code = await world.code("acme", v["id"], "alicloud", 10_000_000)
        await p.post("/v1/redemptions", order(code, f"PAY-{n}", amount), expect=201)
    closed = await world.op.post("/v1/settlement/windows/close", {}, expect=201)
    payout = (await world.op.get(f"/v1/settlement/payouts?window={closed['window']}"))["items"][0]
    return closed["window"], world.provider_ids["alicloud"], payout


def pay(window: str, provider: str, amount: int, reference: str, **extra: Any) -> dict[str, Any]:
    return {
        "window": window,
        "provider_id": provider,
        "amount_fen": amount,
        "value_date": "2026-04-10",
        "bank_reference": reference,
        **extra,
    }


async def test_partial_payments_add_up_and_a_reversal_undoes_one(
    world: World, node: Node, clock: ManualClock
) -> None:
    window, provider, payout = await closed_window(world)
    assert payout["total_fen"] == 3_000_000 and payout["paid_fen"] == 0
    assert payout["unpaid_fen"] == 3_000_000
    clock.advance(3 * MS_PER_DAY)
    seen = samples(node)  # from the books: owed, and for how long since the close
    assert seen[("suanli_payouts_unpaid_fen", (("provider", provider),))] == 3_000_000
    assert seen[("suanli_payouts_oldest_unpaid_seconds", ())] >= 3 * 86_400

    first = (
        await world.op.post(
            "/v1/settlement/payments", pay(window, provider, 1_000_000, "ICBC-001"), expect=201
        )
    )["payment"]
    second = (
        await world.op.post(
            "/v1/settlement/payments", pay(window, provider, 2_000_000, "ICBC-002"), expect=201
        )
    )["payment"]
    shown = (await world.op.get(f"/v1/settlement/payouts?window={window}"))["items"][0]
    assert (shown["paid_fen"], shown["unpaid_fen"]) == (3_000_000, 0)
    assert first["recorded_by"].startswith("operator:")
    seen = samples(node)
    assert seen[("suanli_payouts_unpaid_fen", (("provider", provider),))] == 0
    assert seen[("suanli_payouts_oldest_unpaid_seconds", ())] == 0

    # Nothing more is owed: a third payment is refused, and so is a reference used before.
    await world.op.post(
        "/v1/settlement/payments",
        pay(window, provider, 1, "ICBC-003"),
        expect=409,
        code="overpayment",
    )
    reversal = (
        await world.op.post(
            f"/v1/settlement/payments/{second['id']}/reversal",
            {"reason": "wrong account"},
            expect=201,
        )
    )["payment"]
    assert reversal["kind"] == "reversal" and reversal["reverses"] == second["id"]
    assert reversal["amount_fen"] == 2_000_000 and reversal["reason"] == "wrong account"
    await world.op.post(
        "/v1/settlement/payments",
        pay(window, provider, 2_000_000, "ICBC-002"),
        expect=409,
        code="duplicate_reference",
    )
    await world.op.post(
        f"/v1/settlement/payments/{second['id']}/reversal",
        {"reason": "again"},
        expect=409,
        code="already_reversed",
    )
    await world.op.post(
        f"/v1/settlement/payments/{reversal['id']}/reversal",
        {"reason": "undo the undo"},
        expect=409,
        code="already_reversed",
    )
    await world.op.post(
        "/v1/settlement/payments", pay(window, provider, 2_000_000, "ICBC-004"), expect=201
    )
    shown = (await world.op.get(f"/v1/settlement/payouts?window={window}"))["items"][0]
    assert (shown["paid_fen"], shown["unpaid_fen"]) == (3_000_000, 0)

    # The ledger: paid to the provider, nothing left payable; the books balance (fixture).
    def balances(conn: Any) -> dict[str, int]:
        return dict(
            conn.execute("SELECT name, balance_fen FROM accounts WHERE name LIKE 'pa%'").fetchall()
        )

    assert node.db.run_sync("b", balances) == {
        f"payable:{provider}": 0,
        f"paid:{provider}": 3_000_000,
    }

    # The provider sees its own payments, each with an advice it can verify offline; the
    # advice names the payout statement by the SHA-256 of its signed bytes.
    mine = (await world.providers["alicloud"].get("/v1/settlement/payments"))["items"]
    assert [m["kind"] for m in mine] == ["payment", "payment", "reversal", "payment"]
    statement = canonical_json(payout["statement"])
    for m in mine:
        advice = canonical_json(m["advice"])
        assert verify(node.key.public_key, PAYMENT_TAG, advice, bytes.fromhex(m["signature"]))
        assert m["advice"]["statement_sha256"] == hashlib.sha256(statement).hexdigest()
        assert m["advice"]["amount_fen"] == m["amount_fen"] and m["advice"]["region"] == "330100"
    one = (await world.providers["alicloud"].get(f"/v1/settlement/payments/{first['id']}"))[
        "payment"
    ]
    assert one["advice"]["bank_reference"] == "ICBC-001"
    await world.providers["sugon"].get(
        f"/v1/settlement/payments/{first['id']}", expect=404, code="payment_not_found"
    )
    assert (await world.providers["sugon"].get("/v1/settlement/payments"))["items"] == []
    await world.holders["acme"].get("/v1/settlement/payments", expect=403, code="forbidden")

    # The audit trail names who recorded each.
    audit = (await world.op.get("/v1/journal?kind=audit&limit=500"))["items"]
    actions = [(a["action"], a["actor"]) for a in audit if a["action"].startswith("payment.")]
    assert [a for a, _ in actions] == ["payment.record"] * 2 + ["payment.reverse", "payment.record"]
    assert all(actor.startswith("operator:") for _, actor in actions)


async def test_bad_payments_change_nothing(world: World, node: Node) -> None:
    window, provider, _ = await closed_window(world)
    before = snapshot(node)
    bad: list[tuple[dict[str, Any], int, str]] = [
        (pay(window, provider, 0, "R-1"), 400, "invalid_request"),
        (pay(window, provider, 3_000_001, "R-1"), 409, "overpayment"),
        (pay("2026-Q2", provider, 1, "R-1"), 404, "payout_not_found"),
        (pay(window, world.provider_ids["sugon"], 1, "R-1"), 404, "payout_not_found"),
        (pay(window, provider, 1, "R\n1"), 400, "invalid_request"),
        (pay(window, provider, 1, " R-1"), 400, "invalid_request"),
        (pay(window, provider, 1, "R" * 65), 400, "invalid_request"),
        (pay(window, provider, 1, "R-1", value_date="2026-02-30"), 400, "invalid_request"),
        (pay(window, provider, 1, "R-1", value_date="10/04/2026"), 400, "invalid_request"),
        (pay(window, provider, 1, "R-1", value_date="2099-01-01"), 400, "invalid_request"),
        (pay(window, provider, 1, "R-1", value_date="1999-12-31"), 400, "invalid_request"),
        (pay(window, provider, True, "R-1"), 400, "invalid_request"),
        (pay(window, provider, 1, "R-1", note="x"), 400, "invalid_request"),
    ]
    for body, status, code in bad:
        await world.op.post("/v1/settlement/payments", body, expect=status, code=code)
    await world.providers["alicloud"].post(
        "/v1/settlement/payments", pay(window, provider, 1, "R-1"), expect=403, code="forbidden"
    )
    await world.op.post(
        "/v1/settlement/payments/pay_nope/reversal",
        {"reason": "x"},
        expect=404,
        code="payment_not_found",
    )
    assert snapshot(node) == before


def test_the_payment_advice_vector_in_the_docs() -> None:
    """Anyone can check the vector with its seed alone; and the node's own advice builder makes
    exactly those bytes from those fields."""
    from pathlib import Path

    from node.domain import payments as rules
    from node.keys import NodeKey

    doc = (Path(__file__).resolve().parent.parent / "docs" / "settlement.md").read_text()
    payout = doc.split("### Payout test vector")[1].split("```")[1]
    p = {ln.split(None, 1)[0]: ln.split(None, 1)[1] for ln in payout.strip().splitlines()}
    block = doc.split("### Payment advice test vector")[1].split("```")[1]
    v = {ln.split(None, 1)[0]: ln.split(None, 1)[1] for ln in block.strip().splitlines()}
    key = NodeKey(bytes.fromhex(v["seed"]))
    assert PAYMENT_TAG.hex() == v["tag_hex"]
    assert hashlib.sha256(p["statement"].encode()).hexdigest() == v["statement_sha256"]
    advice = v["advice"].encode()
    assert verify(key.public_key, PAYMENT_TAG, advice, bytes.fromhex(v["signature"]))
    fields = json.loads(advice)
    del fields["type"]
    assert canonical_json(rules.advice(**fields)) == advice
    assert key.sign(PAYMENT_TAG, advice).hex() == v["signature"]


def test_bank_amounts_and_lines_are_read_exactly() -> None:
    from node import errors
    from node.domain.payments import bank_statement, yuan_to_fen

    assert [yuan_to_fen("a", t) for t in ("400", "400.5", "400.05", "0.01")] == [
        40000,
        40050,
        40005,
        1,
    ]
    for bad in ("-1", "1.234", "1,000.00", "1e3", "٣", "0", "0.00", ""):
        try:
            yuan_to_fen("a", bad)
        except errors.InvalidRequest:
            continue
        raise AssertionError(f"{bad!r} was taken")
    ok = "\ufeffDate,Amount,Reference,Counterparty,Memo\n2026-04-10,400.00,R-1,阿里云,x\n"
    assert bank_statement(ok) == [
        {
            "line": 1,
            "date": "2026-04-10",
            "amount_fen": 40000,
            "reference": "R-1",
            "counterparty": "阿里云",
        }
    ]
    for text, says in (
        ("date,amount,reference\n", "counterparty is missing"),
        ("date,amount,reference,counterparty\n2026-02-30,1,R,c\n", "line 1: date"),
        ("date,amount,reference,counterparty\n2026-04-10,1,,c\n", "line 1: reference is empty"),
        ("date,amount,reference,counterparty\n2026-04-10,1.001,R,c\n", "line 1: amount"),
        ("date,amount,reference,counterparty\n2026-04-10,1,R,c,extra\n", "more cells"),
    ):
        try:
            bank_statement(text)
        except errors.InvalidRequest as exc:
            assert says in exc.message, exc.message
        else:
            raise AssertionError(text)


async def test_bank_reconciliation_matches_and_confirms_only_when_asked(
    world: World, node: Node
) -> None:
    window, provider, _ = await closed_window(world)
    op = world.op
    one = (
        await op.post(
            "/v1/settlement/payments", pay(window, provider, 1_000_000, "B-1"), expect=201
        )
    )["payment"]
    two = (
        await op.post("/v1/settlement/payments", pay(window, provider, 500_000, "B-2"), expect=201)
    )["payment"]
    three = (
        await op.post("/v1/settlement/payments", pay(window, provider, 200_000, "B-3"), expect=201)
    )["payment"]
    await op.post(
        f"/v1/settlement/payments/{three['id']}/reversal", {"reason": "never sent"}, expect=201
    )
    csv = (
        "date,amount,reference,counterparty\n"
        "2026-04-10,10000.00,B-1,阿里云\n"  # matches payment one
        "2026-04-10,5000.01,B-2,阿里云\n"  # payment two, but not its amount
        "2026-04-11,99.00,B-9,someone\n"  # nothing recorded has this reference
        "2026-04-10,2000.00,B-3,阿里云\n"  # a reversed payment is not awaiting the bank
    )
    before = snapshot(node)
    dry = await op.post("/v1/settlement/reconciliations", {"csv": csv}, expect=200)
    assert snapshot(node) == before  # matching alone records nothing
    assert [m["payment_id"] for m in dry["matched"]] == [one["id"]] and dry["confirmed"] is False
    whys = {line["reference"]: line["why"] for line in dry["unmatched_lines"]}
    assert "amount_fen 500001 ≠ 500000" in whys["B-2"]
    assert whys["B-9"] == whys["B-3"] == "no payment awaiting the bank has this reference"
    assert [p["id"] for p in dry["unmatched_payments"]] == [two["id"]]

    done = await op.post(
        "/v1/settlement/reconciliations", {"csv": csv, "confirm": True}, expect=200
    )
    assert done["confirmed"] is True and len(done["matched"]) == 1
    shown = {
        p["id"]: p["bank_confirmed"] for p in (await op.get("/v1/settlement/payments"))["items"]
    }
    assert shown[one["id"]] == "2026-04-10" and shown[two["id"]] is None
    again = await op.post(
        "/v1/settlement/reconciliations", {"csv": csv, "confirm": True}, expect=200
    )
    assert again["matched"] == []  # confirmed once
    await world.providers["alicloud"].post(
        "/v1/settlement/reconciliations", {"csv": csv}, expect=403, code="forbidden"
    )
    await op.post(
        "/v1/settlement/reconciliations",
        {"csv": "date,amount\n"},
        expect=400,
        code="invalid_request",
    )


async def test_the_cli_pays_reverses_and_reconciles(
    world: World, node: Node, tmp_path: Any
) -> None:
    from tests.proc import suanli as run

    def suanli(*args: str, check: bool = True) -> Any:  # a process: this test runs in a loop
        return run(*args, check=check, process=True)

    window, provider, _ = await closed_window(world)
    data = str(node.config.data_dir)
    made = suanli(
        "settle",
        "pay",
        window,
        provider,
        "--data",
        data,
        "--operator",
        "Li Wei",
        "--amount-fen",
        "1000000",
        "--value-date",
        "2026-04-10",
        "--reference",
        "CLI-1",
    )
    payment = json.loads(made.stdout)
    assert payment["recorded_by"] == "operator:cli (Li Wei)" and payment["amount_fen"] == 1_000_000
    over = suanli(
        "settle",
        "pay",
        window,
        provider,
        "--data",
        data,
        "--amount-fen",
        "2000001",
        "--value-date",
        "2026-04-10",
        "--reference",
        "CLI-2",
        check=False,
    )
    assert over.returncode == 2 and "exceed the statement by 1 fen" in over.stderr
    statement = tmp_path / "bank.csv"
    statement.write_text("date,amount,reference,counterparty\n2026-04-10,10000.00,CLI-1,阿里云\n")
    matched = json.loads(
        suanli("settle", "reconcile", str(statement), "--data", data, "--confirm").stdout
    )
    assert [m["payment_id"] for m in matched["matched"]] == [payment["id"]]
    reversed_ = json.loads(
        suanli("settle", "reverse", payment["id"], "--data", data, "--reason", "test").stdout
    )
    assert reversed_["kind"] == "reversal"
    listed = json.loads(suanli("settle", "payments", "--data", data, "--window", window).stdout)
    assert [p["kind"] for p in listed] == ["payment", "reversal"]
    assert listed[0]["bank_confirmed"] == "2026-04-10"


async def test_concurrent_payments_never_overpay(world: World, node: Node) -> None:
    """Two payments that fit the statement alone but not together, sent at once: the check
    runs inside each committing transaction, so exactly one is recorded."""
    import asyncio

    window, provider, _ = await closed_window(world)
    answers = await asyncio.gather(
        *(
            world.op.client.post(
                "/v1/settlement/payments",
                json=pay(window, provider, 2_000_000, f"RACE-{n}"),
                headers={"Authorization": f"Bearer {world.op.token}"},
            )
            for n in range(2)
        )
    )
    assert sorted(a.status for a in answers) == [201, 409]
    shown = (await world.op.get(f"/v1/settlement/payouts?window={window}"))["items"][0]
    assert shown["paid_fen"] == 2_000_000


def test_a_payment_answered_or_not_is_recorded_once(tmp_path: Any) -> None:
    """kill -9 after the payment commits, before the answer: the operator, who got no answer,
    sends it again after the restart and is told it is already recorded, naming it; the books
    hold one payment and balance."""
    from pathlib import Path

    from tests.cluster import http, one_city
    from tests.conftest import policy_text
    from tests.proc import NodeProcess, suanli

    root = Path(str(tmp_path))
    (root / "p.toml").write_text(policy_text())
    data = root / "hz"
    made = suanli(
        "init",
        "--data",
        str(data),
        "--region",
        "330100",
        "--name",
        "hz",
        "--policy",
        str(root / "p.toml"),
    )
    op = made.stdout.rsplit(" ", 1)[1].strip()
    node = NodeProcess(data).start(env={"SUANLI_CRASH_AT": "settlement.after_payment"})
    try:
        city = one_city(node.url, op)
        status, _ = http(
            "POST",
            f"{node.url}/v1/redemptions",
            city.provider,
            {
                "code": city.code,
                "order_id": "K-1",
                "order_amount_fen": 1_000_000,
                "compute_class": "model_services",
            },
        )
        assert status == 201
        closed = http("POST", f"{node.url}/v1/settlement/windows/close", op, {})[1]
        body = pay(closed["window"], city.provider_id, 100_000, "KILL-1")
        status, _ = http("POST", f"{node.url}/v1/settlement/payments", op, body)
        assert status == 0  # the process died before answering
        node.wait_exit()
        node.start()
        status, again = http("POST", f"{node.url}/v1/settlement/payments", op, body)
        assert status == 409 and again["error"]["code"] == "duplicate_reference"
        payments = http("GET", f"{node.url}/v1/settlement/payments", op)[1]["items"]
        assert [p["bank_reference"] for p in payments] == ["KILL-1"]
        assert payments[0]["id"] in again["error"]["message"]
    finally:
        node.stop()
    assert "every invariant holds" in suanli("check", "--data", str(data)).stdout
