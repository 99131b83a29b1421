"""Paying providers (兑付): payments against payout statements, reversals, signed advices, the
ledger moving payable to paid; and every bad request refused with nothing changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from node.domain.payments import PAYMENT_TAG
from node.keys import canonical_json, verify
from node.node import Node
from tests.conftest import World, order, snapshot


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


async def test_partial_payments_add_up_and_a_reversal_undoes_one(world: World, node: Node) -> None:
    window, provider, payout = await closed_window(world)
    assert payout["total_fen"] == 3_000_000 and payout["paid_fen"] == 0
    assert payout["unpaid_fen"] == 3_000_000

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
