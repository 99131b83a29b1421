"""A countersigned pair statement is final: a later, different STATEMENT for the same window is
refused with ``statement_already_agreed`` (carrying the agreed statement), kept as evidence and
raised to the operator, and the agreed statement stays in ``Statements`` and in netting. A fake
acquirer with a pre-loaded key speaks to a real issuer over gRPC on loopback."""

from __future__ import annotations

import sqlite3

import pytest

from federation.envelope import seal
from federation.proto.v1 import federation_pb2 as pb
from node.domain.statements import STATEMENT_TAG, statement_bytes, tally
from node.keys import verify
from node.services.common import SYSTEM
from tests import engines
from tests.exposition import samples
from tests.fakepeer import PEER, PEER_KEY, Rig, reply_of, send_statement


async def _statements(rig: Rig, n: int) -> pb.StatementsReply:
    envelope = seal(
        PEER_KEY,
        PEER,
        "330100",
        f"ss-{n}",
        pb.STATEMENTS,
        pb.StatementsRequest().SerializeToString(),
        rig.now(),
    )
    return pb.StatementsReply.FromString(reply_of(rig, await rig.send(envelope, "Statements"))[1])


async def test_an_agreed_statement_is_never_un_agreed_by_a_message(rig: Rig) -> None:
    # A Guiyang provider redeems a Hangzhou voucher: one capture in the issuer's window.
    redeem = seal(PEER_KEY, PEER, "330100", "r-1", pb.REDEEM, rig.authorize("GY-1"), rig.now())
    receipt = pb.Receipt.FromString(reply_of(rig, await rig.send(redeem, "Redeem"))[1])
    assert receipt.state == "captured" and receipt.captured_fen == 300_000
    window = receipt.settlement_window
    await rig.node.settlement.close(SYSTEM, window)
    good = [(receipt.hold_id, "p_gy", "GY-1", 300_000)]

    agreed = await send_statement(rig, good, window, 1)
    assert agreed.agreed and agreed.issuer_key_id == rig.node.key.key_id

    # A later statement for the same window with other records (here, twice the amount).
    late = await send_statement(rig, [(receipt.hold_id, "p_gy", "GY-1", 600_000)], window, 2)
    assert not late.agreed and late.code == "statement_already_agreed"
    carried = late.agreed_statement
    assert carried.statement == statement_bytes("330100", PEER, window, tally(good))
    assert verify(PEER_KEY.public_key, STATEMENT_TAG, carried.statement, carried.acquirer_signature)
    assert verify(
        rig.node.key.public_key, STATEMENT_TAG, carried.statement, carried.issuer_signature
    )

    # The agreed statement stands: still agreed, still served to netting, byte for byte.
    rows = rig.node.db.run_sync(
        "s", lambda c: c.execute("SELECT state, statement FROM statements").fetchall()
    )
    assert [(r[0], bytes(r[1])) for r in rows] == [("agreed", carried.statement)]
    served = await _statements(rig, 1)
    assert [s.statement for s in served.statements] == [carried.statement]

    # The same agreed statement again (an acquirer that lost the answer): the countersignature.
    again = await send_statement(rig, good, window, 3)
    assert again.agreed and again.issuer_signature == agreed.issuer_signature

    # Raised to the operator: the disputes view, the metric, the journal.
    items = await rig.node.settlement_views.disputes(SYSTEM, True)
    conflicts = [i for i in items if i["kind"] == "statement_already_agreed"]
    assert len(conflicts) == 1 and conflicts[0]["window_id"] == window
    assert conflicts[0]["evidence"]["agreed"]["total_fen"] == 300_000
    assert conflicts[0]["evidence"]["received"]["total_fen"] == 600_000
    assert samples(rig.node)[("suanli_settlement_conflicts", ())] == 1
    events = rig.node.db.run_sync(
        "j",
        lambda c: c.execute(
            "SELECT COUNT(*) FROM audit WHERE action = 'statement.conflict_after_agreement'"
        ).fetchone()[0],
    )
    assert events == 1


def test_the_books_refuse_to_change_an_agreed_statement(rig: Rig) -> None:
    """The backstop under the code: a trigger aborts any update or delete of an agreed row."""

    def put(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO statements (issuer, acquirer, window_id, window_end, count, total_fen, "
            "digest, statement, state, updated_at) VALUES ('330100', ?, '2026-Q1', 1, 1, 5, 'd', "
            "?, 'agreed', 0)",
            (PEER, b"\x00"),
        )

    rig.node.db.run_sync("put", put)
    for sql in (
        "UPDATE statements SET state = 'disputed'",
        "UPDATE statements SET total_fen = 6",
        "DELETE FROM statements",
    ):
        with pytest.raises(engines.INTEGRITY_ERRORS, match="agreed statement is final"):
            rig.node.db.run_sync("edit", lambda c, sql=sql: c.execute(sql))


def test_the_pair_statement_vector_in_the_docs() -> None:
    """docs/settlement.md's pair-statement vector: the lines, digest, bytes and both
    signatures are what this implementation computes from the records and the seeds."""
    import hashlib
    from pathlib import Path

    from node.keys import NodeKey

    doc = (Path(__file__).resolve().parent.parent / "docs" / "settlement.md").read_text()
    block = doc.split("### Pair statement test vector")[1].split("```")[1]
    v = {ln.split(None, 1)[0]: ln.split(None, 1)[1] for ln in block.strip().splitlines()}
    acquirer, issuer = NodeKey(b"\x52" * 32), NodeKey(b"\x33" * 32)
    records = [
        ("hd_00000000000000b7", "p_0000000000000001", "GY-2026-0002|b", 1_234_567),
        ("hd_00000000000000b2", "p_0000000000000001", "GY-2026-0001", 3_000_000),
    ]
    lines = (v["line1"] + "\n" + v["line2"] + "\n").encode()
    assert hashlib.sha256(lines).hexdigest() == v["digest"] == tally(records)["digest"]
    statement = statement_bytes("330100", PEER, "2026-Q4", tally(records))
    assert statement == v["statement"].encode() and STATEMENT_TAG.hex() == v["tag_hex"]
    assert acquirer.key_id == v["acquirer_key_id"] and issuer.key_id == v["issuer_key_id"]
    assert acquirer.sign(STATEMENT_TAG, statement).hex() == v["acquirer_signature"]
    assert issuer.sign(STATEMENT_TAG, statement).hex() == v["issuer_signature"]
    request = pb.StatementRequest.FromString(bytes.fromhex(v["request_payload_hex"]))
    assert request.statement == statement and not request.records_omitted
    assert [(r.issuer_hold_id, r.captured_fen) for r in request.records] == [
        ("hd_00000000000000b2", 3_000_000),
        ("hd_00000000000000b7", 1_234_567),
    ]


@pytest.mark.parametrize(
    ("statement", "records", "omitted", "why"),
    [
        (b"[1, 2]", [], False, "signed JSON that is not a statement object"),
        (b"\xff\xfe", [], False, "signed bytes that are not JSON"),
        (None, [("hd_x", "p_gy", "GY-1", 1)], True, "records sent and said to be omitted"),
        (None, [("hd_x", "p_gy", "GY-1", 1)], False, "records that do not match the statement"),
    ],
)
async def test_a_signed_but_malformed_statement_is_refused_and_changes_nothing(
    rig: Rig,
    statement: bytes | None,
    records: list[tuple[str, str, str, int]],
    omitted: bool,
    why: str,
) -> None:
    """Signed by the peer's real key, so only the content is wrong: each gets
    ``malformed_message`` (never an internal error), and no statement or dispute is kept."""
    body = statement or statement_bytes("330100", PEER, "2026-Q4", tally([]))
    request = pb.StatementRequest(
        statement=body,
        acquirer_signature=PEER_KEY.sign(STATEMENT_TAG, body),
        acquirer_key_id=PEER_KEY.key_id,
        records=[
            pb.StatementRecord(issuer_hold_id=h, provider_id=p, order_id=o, captured_fen=f)
            for h, p, o, f in records
        ],
        records_omitted=omitted,
    )
    envelope = seal(
        PEER_KEY, PEER, "330100", "st-bad", pb.STATEMENT, request.SerializeToString(), rig.now()
    )
    status = await rig.refused(envelope, "malformed_message", "Settle")
    assert status.name == "INVALID_ARGUMENT", why

    def count(conn: sqlite3.Connection) -> tuple[int, int]:
        return (
            conn.execute("SELECT count(*) FROM statements").fetchone()[0],
            conn.execute("SELECT count(*) FROM disputes").fetchone()[0],
        )

    assert await rig.node.db.read("count", count) == (0, 0), why


@pytest.mark.parametrize(
    ("field", "value"),
    [("total_fen", "300"), ("total_fen", -1), ("count", 1.5), ("window", 7), ("total_fen", True)],
)
async def test_netting_uses_no_statement_of_the_wrong_shape_even_if_both_signed(
    rig: Rig, field: str, value: object
) -> None:
    """Both cities' signatures on a statement whose fields are not what the protocol says
    (a total as text, negative, a boolean…) do not make it usable: netting rejects it."""
    from node.domain.statements import SignedStatement
    from node.keys import canonical_json

    fields = {
        "type": "suanli.statement.v1",
        "issuer": "330100",
        "acquirer": PEER,
        "window": "2026-Q4",
        "count": 1,
        "total_fen": 300,
        "digest": "0" * 64,
    }
    netting = rig.node.federation.netting  # type: ignore[union-attr]

    def signed(body: bytes) -> SignedStatement:
        return SignedStatement(
            body,
            PEER_KEY.sign(STATEMENT_TAG, body),
            PEER_KEY.key_id,
            rig.node.key.sign(STATEMENT_TAG, body),
            rig.node.key.key_id,
        )

    assert netting.verified(signed(canonical_json(fields))) is not None  # the well-formed one
    assert netting.verified(signed(canonical_json({**fields, field: value}))) is None


async def test_window_closed_is_acknowledged_and_bad_names_refused(rig: Rig) -> None:
    """WINDOW_CLOSED through the door (protocol §5b): a canonical window name is answered
    with a signed ACK and makes this node's statement for it due; anything else is
    malformed_message; and it is not accepted on a method that does not carry it."""

    def closed(window: str, n: int, kind: int = pb.WINDOW_CLOSED) -> bytes:
        payload = pb.WindowClosed(window=window, closed_at_ms=rig.now()).SerializeToString()
        return seal(PEER_KEY, PEER, "330100", f"wc-{n}", kind, payload, rig.now())

    header, body = reply_of(rig, await rig.send(closed("2026-Q1", 1), "Settle"))
    assert header.type == pb.ACK and pb.Ack.FromString(body).request_message_id == "wc-1"
    for n, bad in enumerate(("2026-Q5", "2026-Q1 ", "", "x" * 41), start=2):
        await rig.refused(closed(bad, n), "malformed_message", "Settle")
    await rig.refused(closed("2026-Q1", 9), "wrong_message_type", "Statements")
    garbage = seal(PEER_KEY, PEER, "330100", "wc-10", pb.WINDOW_CLOSED, b"\xff\xff", rig.now())
    await rig.refused(garbage, "malformed_message", "Settle")
