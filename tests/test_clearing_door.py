"""TRANSFER_ADVICE and RECEIPT_CONFIRMATION at a real node's door, from a fake peer with a
pre-loaded key: every bad advice gets its signed REFUSAL and changes nothing; a confirmation
is applied once, its resend answered with the stored reply, a modified resend refused."""

from __future__ import annotations

import dataclasses

from federation import convert
from federation.envelope import seal
from federation.proto.v1 import federation_pb2 as pb
from node.domain.clearing import Advice, Confirmation, Covered, covering_id
from node.domain.statements import tally
from node.services.common import SYSTEM
from tests.fakepeer import PEER, PEER_KEY, Rig, reply_of, send_statement

HZ = "330100"


async def agreed_statement(rig: Rig) -> Covered:
    """Guiyang's provider redeems a Hangzhou voucher; the window closes; the statement agrees:
    Hangzhou owes Guiyang 300,000 fen."""
    redeem = seal(PEER_KEY, PEER, HZ, "r-1", pb.REDEEM, rig.authorize("GY-1"), rig.now())
    receipt = pb.Receipt.FromString(reply_of(rig, await rig.send(redeem, "Redeem"))[1])
    window = receipt.settlement_window
    await rig.node.settlement.close(SYSTEM, window)
    records = [(receipt.hold_id, "p_gy", "GY-1", receipt.captured_fen)]
    summary = tally(records)
    assert (await send_statement(rig, records, window, 1)).agreed
    return Covered(HZ, PEER, window, summary["total_fen"], summary["digest"])


async def settle(rig: Rig, kind: int, payload: bytes, message_id: str) -> tuple[int, bytes]:
    envelope = seal(PEER_KEY, PEER, HZ, message_id, kind, payload, rig.now())
    header, body = reply_of(rig, await rig.send(envelope, "Settle"))
    assert header.in_reply_to == message_id
    return header.type, body


def books(rig: Rig) -> tuple[list[tuple[str, int]], int, int]:
    def read(c):  # type: ignore[no-untyped-def]
        accounts = c.execute(
            "SELECT name, balance_fen FROM accounts WHERE name LIKE 'due:%' OR name LIKE 'cleared:%' "
            "ORDER BY name"
        ).fetchall()
        transfers = c.execute("SELECT COUNT(*) FROM city_transfers").fetchone()[0]
        covered = c.execute("SELECT COUNT(*) FROM statement_coverage").fetchone()[0]
        return [tuple(a) for a in accounts], transfers, covered

    result: tuple[list[tuple[str, int]], int, int] = rig.node.db.run_sync("books", read)
    return result


async def test_every_bad_advice_is_refused_with_its_code_and_changes_nothing(rig: Rig) -> None:
    st = await agreed_statement(rig)
    before = books(rig)
    good = Advice(
        "ct_0000000000000000000000a1",
        PEER,
        HZ,
        -st.total_fen,  # Guiyang is owed: it is not the payer
        "2026-12-01",
        "GY-1",
        covering_id([st]),
        (st,),
    )
    other = Covered(PEER, HZ, "2026-Q1", 5, "0" * 64)  # Guiyang would owe: not agreed here
    base = dataclasses.replace(good, amount_fen=0)
    cases = [
        (good, "invalid_request"),  # a negative amount
        (dataclasses.replace(base, amount_fen=0), "amount_mismatch"),
        (dataclasses.replace(base, transfer_id="ct_1"), "invalid_request"),
        (dataclasses.replace(base, payer="370200"), "invalid_request"),  # not the sender
        (dataclasses.replace(base, payee=PEER), "invalid_request"),
        (dataclasses.replace(base, value_date="2026-13-01"), "invalid_request"),
        (dataclasses.replace(base, reference=" padded "), "invalid_request"),
        (dataclasses.replace(base, statements=()), "invalid_request"),
        (dataclasses.replace(base, statements=(st, st)), "invalid_request"),
        (dataclasses.replace(base, netting_id="0" * 64), "netting_mismatch"),
        (
            dataclasses.replace(
                base,
                statements=(dataclasses.replace(st, issuer="370200"),),
            ),
            "invalid_request",
        ),
        (
            dataclasses.replace(
                base, amount_fen=5, statements=(other,), netting_id=covering_id([other])
            ),
            "statement_not_agreed",
        ),
    ]
    for n, (advice, code) in enumerate(cases):
        kind, body = await settle(rig, pb.TRANSFER_ADVICE, convert.advice_payload(advice), f"a-{n}")
        refusal = pb.Refusal.FromString(body)
        assert (kind, refusal.code) == (pb.REFUSAL, code), (n, refusal)
        assert books(rig) == before, n
    # Bytes that are not a TransferAdvice: the door's malformed_message, nothing stored.
    envelope = seal(PEER_KEY, PEER, HZ, "a-x", pb.TRANSFER_ADVICE, b"\xff\xff", rig.now())
    await rig.refused(envelope, "malformed_message", "Settle")
    assert books(rig) == before


async def test_a_confirmation_settles_once_and_a_contradiction_is_refused(rig: Rig) -> None:
    st = await agreed_statement(rig)
    clearing = rig.node.federation.clearing  # type: ignore[union-attr]
    due = await clearing.due(SYSTEM)
    assert [(d["payer"], d["amount_fen"]) for d in due] == [(HZ, st.total_fen)]
    # Hangzhou records its transfer; the fake Guiyang is unreachable, so it stays advised.
    t = await clearing.record(SYSTEM, PEER, st.total_fen, "2026-12-01", "ICBC-1")
    assert t["state"] == "advised" and t["statements"][0]["digest"] == st.digest
    confirm = Confirmation(t["id"], HZ, PEER, st.total_fen, t["netting_id"], True, "")
    unknown = dataclasses.replace(confirm, transfer_id="ct_" + "f" * 24)
    kind, body = await settle(
        rig, pb.RECEIPT_CONFIRMATION, convert.confirmation_payload(unknown), "c-0"
    )
    assert (kind, pb.Refusal.FromString(body).code) == (pb.REFUSAL, "transfer_not_found")
    wrong = dataclasses.replace(confirm, amount_fen=1)
    kind, body = await settle(
        rig, pb.RECEIPT_CONFIRMATION, convert.confirmation_payload(wrong), "c-1"
    )
    assert (kind, pb.Refusal.FromString(body).code) == (pb.REFUSAL, "transfer_conflict")
    no_reason = dataclasses.replace(confirm, confirmed=False)
    kind, body = await settle(
        rig, pb.RECEIPT_CONFIRMATION, convert.confirmation_payload(no_reason), "c-2"
    )
    assert (kind, pb.Refusal.FromString(body).code) == (pb.REFUSAL, "invalid_request")
    assert books(rig)[0] == [(f"due:{PEER}", st.total_fen)]
    # The confirmation: Hangzhou books the settlement and answers ACK.
    payload = convert.confirmation_payload(confirm)
    envelope = seal(PEER_KEY, PEER, HZ, "c-3", pb.RECEIPT_CONFIRMATION, payload, rig.now())
    first = await rig.send(envelope, "Settle")
    header, body = reply_of(rig, first)
    assert header.type == pb.ACK and pb.Ack.FromString(body).request_message_id == "c-3"
    settled = books(rig)
    assert settled[0] == [(f"cleared:{PEER}", st.total_fen), (f"due:{PEER}", 0)]
    assert (await clearing.get(SYSTEM, t["id"]))["state"] == "confirmed"
    # The same message again: the stored reply, byte for byte, and nothing booked twice.
    assert (await rig.send(envelope, "Settle")).SerializeToString() == first.SerializeToString()
    assert books(rig) == settled
    # The same id with another payload: the door's modified_replay.
    disputed = dataclasses.replace(confirm, confirmed=False, reason="no money")
    changed = seal(
        PEER_KEY,
        PEER,
        HZ,
        "c-3",
        pb.RECEIPT_CONFIRMATION,
        convert.confirmation_payload(disputed),
        rig.now(),
    )
    await rig.refused(changed, "modified_replay", "Settle")
    # A later dispute of a confirmed transfer: refused, the settlement stands.
    kind, body = await settle(
        rig, pb.RECEIPT_CONFIRMATION, convert.confirmation_payload(disputed), "c-4"
    )
    assert (kind, pb.Refusal.FromString(body).code) == (pb.REFUSAL, "transfer_conflict")
    assert books(rig) == settled


def test_the_transfer_vector_in_the_docs() -> None:
    """docs/settlement.md's transfer vector is what this implementation seals, and what its
    arithmetic and its door accept."""
    import hashlib
    from pathlib import Path

    from node.domain.clearing import check_advice, owed_by
    from node.keys import NodeKey

    doc = (Path(__file__).resolve().parent.parent / "docs" / "settlement.md").read_text()
    block = doc.split("### Transfer test vector")[1].split("```")[1]
    v = dict(line.split(None, 1) for line in block.strip().splitlines())
    assert hashlib.sha256((v["line2"] + "\n").encode()).hexdigest() == v["digest2"]
    first = v["netting_line1"].split("|")
    second = v["netting_line2"].split("|")
    statements = tuple(Covered(i, a, w, int(t), d) for i, a, w, t, d in (first, second))
    lines = "".join(f"{x}\n" for x in (v["netting_line1"], v["netting_line2"]))
    assert covering_id(statements) == hashlib.sha256(lines.encode()).hexdigest() == v["netting_id"]
    assert owed_by(HZ, statements) == int(v["amount_fen"]) == 3_000_000
    advice = Advice(
        "ct_0000000000000000000000a1",
        HZ,
        PEER,
        3_000_000,
        "2027-01-15",
        "ICBC-20270115-0001",
        v["netting_id"],
        statements,
    )
    check_advice(advice)
    payload = convert.advice_payload(advice)
    assert payload.hex() == v["advice_payload_hex"]
    assert convert.transfer_advice(payload) == advice
    hz_key, gy_key = NodeKey(bytes([0x33] * 32)), NodeKey(bytes([0x52] * 32))
    envelope = seal(
        hz_key,
        HZ,
        PEER,
        v["advice_message_id"],
        pb.TRANSFER_ADVICE,
        payload,
        int(v["advice_sent_at_ms"]),
    )
    assert envelope.hex() == v["advice_envelope_hex"]
    confirmation = Confirmation(advice.transfer_id, HZ, PEER, 3_000_000, v["netting_id"], True, "")
    payload = convert.confirmation_payload(confirmation)
    assert payload.hex() == v["confirmation_payload_hex"]
    assert convert.receipt_confirmation(payload) == confirmation
    envelope = seal(
        gy_key,
        PEER,
        HZ,
        v["confirmation_message_id"],
        pb.RECEIPT_CONFIRMATION,
        payload,
        int(v["confirmation_sent_at_ms"]),
    )
    assert envelope.hex() == v["confirmation_envelope_hex"]
