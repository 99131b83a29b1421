"""docs/protocol.md's test vectors are what this implementation produces and accepts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from federation.envelope import TAG, Door, seal
from federation.proto.v1 import federation_pb2 as pb
from node.domain.model import Peer, PeerKey
from node.keys import NodeKey, verify

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def vectors() -> dict[str, str]:
    block = DOC.read_text().split("## 7. Test vectors")[1].split("```")[1]
    return dict(line.split(None, 1) for line in block.strip().splitlines())


def test_keys_and_signatures() -> None:
    v = vectors()
    acquirer, issuer = (
        NodeKey(bytes.fromhex(v["acquirer_seed"])),
        NodeKey(bytes.fromhex(v["issuer_seed"])),
    )
    assert (
        acquirer.public_key.hex() == v["acquirer_public_key"]
        and acquirer.key_id == v["acquirer_key_id"]
    )
    assert issuer.public_key.hex() == v["issuer_public_key"] and issuer.key_id == v["issuer_key_id"]
    assert TAG.hex() == v["tag_hex"]
    body = bytes.fromhex(v["request_body_hex"])
    assert verify(acquirer.public_key, TAG, body, bytes.fromhex(v["request_signature_hex"]))
    assert acquirer.sign(TAG, body).hex() == v["request_signature_hex"]
    reply_body = bytes.fromhex(v["reply_body_hex"])
    assert issuer.sign(TAG, reply_body).hex() == v["reply_signature_hex"]


def test_request_vector_is_what_the_code_seals_and_the_door_opens() -> None:
    v = vectors()
    acquirer = NodeKey(bytes.fromhex(v["acquirer_seed"]))
    payload = bytes.fromhex(v["request_payload_hex"])
    assert hashlib.sha256(payload).hexdigest() == v["request_payload_sha256"]
    request = pb.AuthorizeRequest.FromString(payload)
    assert (
        request.code == "sac_330100_example-one-time-code"
        and request.order.order_amount_fen == 10_000_000
    )
    envelope = seal(
        acquirer, "520100", "330100", "m_00000000000000a1", pb.AUTHORIZE, payload, 1795000000000
    )
    assert envelope.hex() == v["request_envelope_hex"]
    peer = Peer(
        "520100",
        "Guiyang",
        "x",
        "",
        True,
        True,
        0,
        (PeerKey(acquirer.key_id, acquirer.public_key, 0, 0, False),),
    )
    opened = Door("330100", {"520100": peer}.get, 300_000).open(
        envelope, (pb.AUTHORIZE,), 1795000000000
    )
    assert opened.payload == payload and opened.header.message_id == "m_00000000000000a1"
    reply = pb.Body.FromString(bytes.fromhex(v["reply_body_hex"]))
    assert (
        reply.header.in_reply_to == "m_00000000000000a1"
        and reply.payload.hex() == v["reply_payload_hex"]
    )
    receipt = pb.Receipt.FromString(reply.payload)
    assert (receipt.state, receipt.amount_fen, receipt.ratio_bp) == ("held", 3_000_000, 3000)


def test_reply_vector_fields_digest_and_envelope() -> None:
    """Every value the document gives for the reply is in the reply's bytes."""
    v = vectors()
    body = bytes.fromhex(v["reply_body_hex"])
    reply = pb.Body.FromString(body)
    assert hashlib.sha256(reply.payload).hexdigest() == v["reply_payload_sha256"]
    assert (reply.header.origin, reply.header.destination) == ("330100", "520100")
    assert (reply.header.message_id, reply.header.sent_at_ms) == (
        "m_00000000000000d4",
        1795000000100,
    )
    receipt = pb.Receipt.FromString(reply.payload)
    assert receipt.request_message_id == "m_00000000000000a1"
    assert receipt.request_type == pb.AUTHORIZE
    assert (receipt.hold_id, receipt.voucher_id) == ("hd_00000000000000b2", "v_00000000000000c3")
    assert (receipt.order_id, receipt.provider_id) == ("GY-2026-0001", "p_0000000000000001")
    assert (receipt.decided_at_ms, receipt.expires_at_ms) == (1795000000100, 1795259200000)
    assert (receipt.captured_fen, receipt.settlement_window, receipt.holder_uscc) == (0, "", "")
    assert not receipt.unknown
    envelope = pb.Envelope(
        body=body,
        signer_region="330100",
        key_id=v["issuer_key_id"],
        signature=bytes.fromhex(v["reply_signature_hex"]),
    )
    assert envelope.SerializeToString(deterministic=True).hex() == v["reply_envelope_hex"]


def test_the_receipt_value_has_the_messages_fields() -> None:
    """convert.py maps a Receipt value and the Receipt message field by field, by name."""
    from federation import convert

    assert set(convert.RECEIPT_FIELDS) == {f.name for f in pb.Receipt.DESCRIPTOR.fields}


def test_window_closed_vector_with_its_trace() -> None:
    """§7.1: what this implementation seals for WINDOW_CLOSED with a trace, and what its door
    opens, the trace kept beside the verified body and left out of the signature."""
    v = vectors()
    block = DOC.read_text().split("### 7.1 WINDOW_CLOSED, with a trace")[1].split("```")[1]
    w = dict(line.split(None, 1) for line in block.strip().splitlines())
    issuer = NodeKey(bytes.fromhex(v["issuer_seed"]))
    payload = pb.WindowClosed(window="2026-Q4", closed_at_ms=1795000000150).SerializeToString(
        deterministic=True
    )
    assert payload.hex() == w["window_closed_payload_hex"]
    envelope = seal(
        issuer,
        "330100",
        "520100",
        "m_00000000000000e5",
        pb.WINDOW_CLOSED,
        payload,
        1795000000200,
        trace="op-close-2026-Q4",
    )
    assert envelope.hex() == w["window_closed_envelope_hex"]
    parsed = pb.Envelope.FromString(envelope)
    assert parsed.body.hex() == w["window_closed_body_hex"]
    assert parsed.signature.hex() == w["window_closed_signature_hex"]
    bare = pb.Envelope(
        body=parsed.body,
        signer_region=parsed.signer_region,
        key_id=parsed.key_id,
        signature=parsed.signature,
    )
    hz = Peer(
        "330100",
        "Hangzhou",
        "x",
        "",
        True,
        True,
        0,
        (PeerKey(issuer.key_id, issuer.public_key, 0, 0, False),),
    )
    door = Door("520100", {"330100": hz}.get, 300_000)
    for raw, trace in ((envelope, "op-close-2026-Q4"), (bare.SerializeToString(), "")):
        opened = door.open(raw, (pb.WINDOW_CLOSED,), 1795000000200)
        assert opened.trace == trace and opened.payload == payload


def test_card_with_two_endpoints_vector() -> None:
    """§7.2: the card this implementation builds with two endpoints, byte for byte, and what a
    reader takes from it; and the reader's refusals of endpoints that break §6's rules."""
    import pytest

    from federation.cards import build_card, card_payload, card_text, endpoints_of, parse_card
    from node import errors
    from node.domain.model import OwnKey

    v = vectors()
    block = DOC.read_text().split("### 7.2 A node card with two endpoints")[1].split("```")[1]
    c = dict(line.split(None, 1) for line in block.strip().splitlines())
    issuer = NodeKey(bytes.fromhex(v["issuer_seed"]))
    keys = [OwnKey(issuer.key_id, issuer.public_key, 0)]
    endpoints = ("hz-a.example.cn:7443", "hz-b.example.cn:7443")
    payload = card_payload("330100", "Hangzhou", endpoints, keys, 1795000000000)
    assert payload.hex() == c["card_payload_hex"]
    text = card_text(build_card(issuer, "330100", "Hangzhou", endpoints, keys, 1795000000000))
    assert text == c["card_file"] + "\n"
    parsed = parse_card(c["card_file"])
    assert parsed.fingerprint == c["card_fingerprint"]
    assert endpoints_of(parsed.card) == endpoints
    assert parsed.peer(True, True, 0).dial == endpoints
    # One endpoint: field 6 stays empty, the bytes as before it existed.
    single = pb.NodeCard.FromString(card_payload("330100", "H", ("a.cn:1",), keys, 1))
    assert list(single.endpoints) == [] and single.endpoint == "a.cn:1"
    for bad in (
        pb.NodeCard(endpoint="a.cn:1", endpoints=["b.cn:1", "a.cn:1"]),  # first ≠ endpoint
        pb.NodeCard(endpoint="a.cn:1", endpoints=["a.cn:1", "a.cn:1"]),  # twice
        pb.NodeCard(endpoint="a.cn:1", endpoints=["a.cn:1", "b.cn"]),  # no port
        pb.NodeCard(endpoint="a.cn:1", endpoints=["a.cn:1", "b.cn:70000"]),  # port too big
        pb.NodeCard(endpoint="a.cn:1", endpoints=[f"h{i}.cn:1" for i in range(9)]),  # over 8
        pb.NodeCard(endpoint="a b:1"),
    ):
        with pytest.raises(errors.MalformedMessage):
            endpoints_of(bad)


def test_offer_vector_is_what_the_code_signs_pushes_and_takes() -> None:
    """§7.3: the offer record, its signature by its origin, the OFFERS envelope and an
    OFFER_QUERY are what this implementation produces, and what it verifies and parses."""
    from federation.convert import offer_message
    from federation.offers import OFFER_TAG, open_offer
    from node.domain.offers import Offer, Terms

    v = vectors()
    block = DOC.read_text().split("### 7.3 An offer, and its push")[1].split("```")[1]
    w = dict(line.split(None, 1) for line in block.strip().splitlines())
    guiyang = NodeKey(bytes.fromhex(v["acquirer_seed"]))
    assert OFFER_TAG.hex() == w["offer_tag_hex"]
    terms = Terms(
        "domestic_chips",
        "Ascend 910B",
        128,
        1800,
        100,
        1795000000000,
        1797592000000,
        1797592000000,
        "520100",
        True,
        3,
        "sales@gycc.example.cn",
    )
    offer = Offer(
        "520100",
        "of_0000000000000001",
        7,
        2,
        False,
        "p_0000000000000001",
        "Guiyang Computing Centre",
        "computing_centre",
        terms,
        1795000000000,
    )
    record = offer_message(offer).SerializeToString(deterministic=True)
    assert record.hex() == w["offer_record_hex"]
    assert guiyang.sign(OFFER_TAG, record).hex() == w["offer_signature_hex"]
    envelope = bytes.fromhex(w["offers_envelope_hex"])
    peer = Peer(
        "520100",
        "Guiyang",
        "x",
        "",
        True,
        True,
        0,
        (PeerKey(guiyang.key_id, guiyang.public_key, 0, 0, False),),
    )
    opened = Door("330100", {"520100": peer}.get, 300_000).open(
        envelope, (pb.OFFERS,), 1795000000000
    )
    assert opened.header.type == pb.OFFERS and opened.payload.hex() == w["offers_payload_hex"]
    batch = pb.OfferBatch.FromString(opened.payload)
    assert [(m.origin, m.after, m.through) for m in batch.marks] == [("520100", 6, 7)]
    taken = open_offer(batch.offers[0], peer)
    assert taken.offer == offer and taken.record == record
    sealed = seal(
        guiyang, "520100", "330100", "m_00000000000000f6", pb.OFFERS, opened.payload, 1795000000000
    )
    assert sealed.hex() == w["offers_envelope_hex"]
    query = pb.OfferQuery(
        have=[pb.OriginMark(origin="520100", after=6), pb.OriginMark(origin="370200", after=0)],
        limit=500,
    )
    assert query.SerializeToString(deterministic=True).hex() == w["offer_query_payload_hex"]


def test_order_vectors_are_what_the_code_seals_and_the_door_opens() -> None:
    """§7.4: an ORDER_REQUEST and an ORDER_ANSWER, sealed and opened as the code does."""
    from federation import convert
    from node.domain.orders import OrderAnswer, OrderRequest

    v = vectors()
    block = DOC.read_text().split("### 7.4 An order request and its answer")[1].split("```")[1]
    w = dict(line.split(None, 1) for line in block.strip().splitlines())
    hangzhou = NodeKey(bytes.fromhex(v["issuer_seed"]))
    guiyang = NodeKey(bytes.fromhex(v["acquirer_seed"]))
    request = OrderRequest(
        "or_00000000000000a7",
        "of_0000000000000001",
        2,
        400,
        720_000,
        "h_00000000000000b1",
        "杭州云智科技有限公司",
        "91330100716105852F",
        "fine-tuning",
    )
    payload = convert.order_request_payload(request)
    assert payload.hex() == w["order_request_payload_hex"]
    envelope = seal(
        hangzhou, "330100", "520100", "m_00000000000000a8", pb.ORDER_REQUEST, payload, 1795000000300
    )
    assert envelope.hex() == w["order_request_envelope_hex"]

    def peer(region: str, key: NodeKey) -> Peer:
        return Peer(
            region,
            region,
            "x",
            "",
            True,
            True,
            0,
            (PeerKey(key.key_id, key.public_key, 0, 0, False),),
        )

    opened = Door("520100", {"330100": peer("330100", hangzhou)}.get, 300_000).open(
        envelope, (pb.ORDER_REQUEST,), 1795000000300
    )
    assert convert.inbound(opened).body == request
    answer = OrderAnswer("or_00000000000000a7", True, "GA-2026-0100", "")
    payload = convert.order_answer_payload(answer)
    assert payload.hex() == w["order_answer_payload_hex"]
    envelope = seal(
        guiyang, "520100", "330100", "m_00000000000000a9", pb.ORDER_ANSWER, payload, 1795000000400
    )
    assert envelope.hex() == w["order_answer_envelope_hex"]
    opened = Door("330100", {"520100": peer("520100", guiyang)}.get, 300_000).open(
        envelope, (pb.ORDER_ANSWER,), 1795000000400
    )
    assert convert.inbound(opened).body == answer
