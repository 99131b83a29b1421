"""The federation door, tested with a fake peer holding a pre-loaded key and hand-made
envelopes sent over real gRPC on loopback to a real servicer (Synapse's
FederatingHomeserverTestCase does the same). Every refusal has its own code and changes
nothing; a replay gets the original signed reply."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from federation.envelope import TAG, seal
from federation.proto.v1 import federation_pb2 as pb
from federation.server import start_server
from node.services.common import SYSTEM
from node.services.peering import Peering
from tests.conftest import snapshot
from tests.fakepeer import OLD_KEY, PEER, PEER_KEY, STRANGER, Rig, reply_of


async def test_authorize_receipt_and_replays(rig: Rig) -> None:
    payload = rig.authorize()
    first = await rig.send(seal(PEER_KEY, PEER, "330100", "m-1", pb.AUTHORIZE, payload, rig.now()))
    header, body = reply_of(rig, first)
    assert header.type == pb.RECEIPT and header.in_reply_to == "m-1" and header.destination == PEER
    receipt = pb.Receipt.FromString(body)
    assert receipt.state == "held" and receipt.amount_fen == 300_000 and receipt.ratio_bp == 3000
    # A retry: the same id and payload, freshly signed a little later: the very same reply.
    rig.clock.advance(5_000)
    again = await rig.send(seal(PEER_KEY, PEER, "330100", "m-1", pb.AUTHORIZE, payload, rig.now()))
    assert again.body == first.body and again.signature == first.signature
    # The same id with another payload is a modified replay, refused, changing nothing.
    before = snapshot(rig.node)
    changed = rig.authorize(amount=2_000_000)
    code = await rig.refused(
        seal(PEER_KEY, PEER, "330100", "m-1", pb.AUTHORIZE, changed, rig.now()), "modified_replay"
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert snapshot(rig.node) == before
    # Capture through the federation, by the issuer's hold id.
    capture = pb.CaptureRequest(hold_id=receipt.hold_id, amount_fen=250_000).SerializeToString()
    captured = pb.Receipt.FromString(
        reply_of(
            rig,
            await rig.send(
                seal(PEER_KEY, PEER, "330100", "m-2", pb.CAPTURE, capture, rig.now()), "Capture"
            ),
        )[1]
    )
    assert (
        captured.state == "captured"
        and captured.captured_fen == 250_000
        and captured.settlement_window == "2026-Q1"
    )
    status = pb.StatusRequest(request_message_id="m-1").SerializeToString()
    known = pb.Receipt.FromString(
        reply_of(
            rig,
            await rig.send(
                seal(PEER_KEY, PEER, "330100", "m-3", pb.STATUS, status, rig.now()), "Status"
            ),
        )[1]
    )
    assert known.state == "captured" and known.hold_id == receipt.hold_id
    unknown = pb.StatusRequest(request_message_id="never").SerializeToString()
    nothing = pb.Receipt.FromString(
        reply_of(
            rig,
            await rig.send(
                seal(PEER_KEY, PEER, "330100", "m-4", pb.STATUS, unknown, rig.now()), "Status"
            ),
        )[1]
    )
    assert nothing.unknown


async def test_business_refusal_is_signed_and_stored(rig: Rig) -> None:
    bad_code = rig.authorize(code="sac_330100_forged")
    reply = await rig.send(seal(PEER_KEY, PEER, "330100", "m-9", pb.AUTHORIZE, bad_code, rig.now()))
    header, body = reply_of(rig, reply)
    refusal = pb.Refusal.FromString(body)
    assert (
        header.type == pb.REFUSAL
        and refusal.code == "authorization_invalid"
        and refusal.request_message_id == "m-9"
    )
    again = await rig.send(seal(PEER_KEY, PEER, "330100", "m-9", pb.AUTHORIZE, bad_code, rig.now()))
    assert again.body == reply.body


async def test_every_bad_envelope_is_refused_with_its_own_code(rig: Rig) -> None:
    payload = rig.authorize()
    now = rig.now()
    before = snapshot(rig.node)

    def sealed(**kw: Any) -> bytes:
        args = {
            "key": PEER_KEY,
            "origin": PEER,
            "destination": "330100",
            "message_id": "x",
            "kind": pb.AUTHORIZE,
            "payload": payload,
            "sent_at_ms": now,
        }
        args.update(kw)
        return seal(**args)

    assert (
        await rig.refused(sealed(origin="440300"), "unknown_signer")
        == grpc.StatusCode.UNAUTHENTICATED
    )
    await rig.refused(sealed(key=STRANGER), "unknown_signer")
    await rig.refused(sealed(key=OLD_KEY), "key_expired")
    tampered = pb.Envelope.FromString(sealed())
    tampered.signature = bytes([tampered.signature[0] ^ 1]) + tampered.signature[1:]
    await rig.refused(tampered.SerializeToString(), "unknown_signer")
    body_swapped = pb.Envelope.FromString(sealed())
    body_swapped.body = pb.Envelope.FromString(sealed(message_id="y")).body
    await rig.refused(body_swapped.SerializeToString(), "unknown_signer")
    lying = pb.Body(
        header=pb.Header(
            origin="370200", destination="330100", message_id="z", sent_at_ms=now, type=pb.AUTHORIZE
        ),
        payload=payload,
    ).SerializeToString()
    await rig.refused(
        pb.Envelope(
            body=lying,
            signer_region=PEER,
            key_id=PEER_KEY.key_id,
            signature=PEER_KEY.sign(TAG, lying),
        ).SerializeToString(),
        "origin_mismatch",
    )
    assert (
        await rig.refused(sealed(destination="370200"), "wrong_destination")
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await rig.refused(sealed(sent_at_ms=now - 301_000), "clock_skew")
        == grpc.StatusCode.OUT_OF_RANGE
    )
    await rig.refused(sealed(sent_at_ms=now + 301_000), "clock_skew")
    garbage = b"\xff\xff\xff not a body"
    await rig.refused(
        pb.Envelope(
            body=garbage,
            signer_region=PEER,
            key_id=PEER_KEY.key_id,
            signature=PEER_KEY.sign(TAG, garbage),
        ).SerializeToString(),
        "malformed_message",
    )
    assert (
        await rig.refused(sealed(kind=pb.CAPTURE), "wrong_message_type")
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    await rig.refused(sealed(), "wrong_message_type", method="Capture")
    # Revoked: the operator stops trusting the key; the node picks it up.
    Peering(rig.node.db, rig.clock, "330100").revoke_key(PEER, PEER_KEY.key_id, SYSTEM)
    assert rig.node.federation is not None
    await rig.node.federation.directory.refresh()
    await rig.refused(sealed(), "key_revoked")
    after = snapshot(rig.node)
    assert after["audit"][-1][3] == "peer.revoke_key"
    after["audit"] = after["audit"][:-1]
    assert after == before


async def test_grpc_health_service(rig: Rig) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(rig.channel)
    for service in ("", "suanli.federation.v1.Federation"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_batch_answers_each_envelope_as_if_it_came_alone(rig: Rig) -> None:
    """Exchange: one call, each envelope verified and answered on its own, in order; an
    envelope refused at the door changes nothing and does not spoil its neighbours."""
    now = rig.now()
    good = seal(PEER_KEY, PEER, "330100", "b-1", pb.AUTHORIZE, rig.authorize("B-1"), now)
    forged = bytearray(seal(PEER_KEY, PEER, "330100", "b-2", pb.AUTHORIZE, rig.authorize(), now))
    forged[-1] ^= 1  # the last byte is the signature's
    stranger = seal(STRANGER, PEER, "330100", "b-3", pb.AUTHORIZE, rig.authorize(), now)
    card = seal(PEER_KEY, PEER, "330100", "b-4", pb.CARD, b"", now)
    garbage = b"\xff\x00 not an envelope"
    status = seal(
        PEER_KEY,
        PEER,
        "330100",
        "b-5",
        pb.STATUS,
        pb.StatusRequest(request_message_id="b-1").SerializeToString(),
        now,
    )
    batch = pb.Batch(envelopes=[good, bytes(forged), stranger, card, garbage, status])
    answers = (await rig.stub.Exchange(batch, timeout=5)).answers
    assert [a.code for a in answers] == [
        "",
        "unknown_signer",
        "unknown_signer",
        "wrong_message_type",
        "malformed_message",
        "",
    ]
    assert all(a.message.startswith(a.code) for a in answers if a.code)
    header, body = reply_of(rig, pb.Envelope.FromString(answers[0].reply))
    held = pb.Receipt.FromString(body)
    assert header.in_reply_to == "b-1" and held.state == "held" and held.amount_fen == 300_000
    # the STATUS in the same batch sees the AUTHORIZE before it: they ran in order
    assert pb.Receipt.FromString(
        reply_of(rig, pb.Envelope.FromString(answers[5].reply))[1]
    ).state == ("held")
    # A replay through the lone method gets the very reply the batch gave.
    again = await rig.send(good)
    assert again.SerializeToString(deterministic=True) == answers[0].reply
    # Too many envelopes: the whole call is refused, nothing applied.
    before = snapshot(rig.node)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rig.stub.Exchange(pb.Batch(envelopes=[good] * 257), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert snapshot(rig.node) == before


async def test_a_stream_answers_each_batch_by_its_id(rig: Rig) -> None:
    """Stream: batches on one long-lived call, each answered by one Answers with its id, each
    envelope exactly as Exchange (and a lone call) would answer it; the call ends cleanly."""
    now = rig.now()
    good = seal(PEER_KEY, PEER, "330100", "s-1", pb.AUTHORIZE, rig.authorize("S-1"), now)
    forged = bytearray(seal(PEER_KEY, PEER, "330100", "s-2", pb.AUTHORIZE, rig.authorize(), now))
    forged[-1] ^= 1
    card = seal(PEER_KEY, PEER, "330100", "s-3", pb.CARD, b"", now)
    call = rig.stub.Stream(timeout=10)
    await call.write(pb.Batch(id=7, envelopes=[good, bytes(forged)]))
    await call.write(pb.Batch(id=9, envelopes=[card]))
    got = {}
    for _ in range(2):
        answers = await call.read()
        got[answers.id] = list(answers.answers)
    assert sorted(got) == [7, 9]
    assert [a.code for a in got[7]] == ["", "unknown_signer"]
    assert [a.code for a in got[9]] == ["wrong_message_type"]
    header, body = reply_of(rig, pb.Envelope.FromString(got[7][0].reply))
    assert header.in_reply_to == "s-1" and pb.Receipt.FromString(body).state == "held"
    # The same message again, on the same call: the stored reply, byte for byte.
    await call.write(pb.Batch(id=10, envelopes=[good]))
    again = await call.read()
    assert again.id == 10 and again.answers[0].reply == got[7][0].reply
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_an_oversized_batch_ends_the_stream_and_changes_nothing(rig: Rig) -> None:
    good = seal(PEER_KEY, PEER, "330100", "s-9", pb.AUTHORIZE, rig.authorize("S-9"), rig.now())
    before = snapshot(rig.node)
    call = rig.stub.Stream(timeout=10)
    await call.write(pb.Batch(id=1, envelopes=[good] * 257))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed_message" in (err.value.details() or "")
    assert snapshot(rig.node) == before


async def test_the_client_keeps_one_stream_and_reopens_it_after_the_peer_restarts(
    rig: Rig,
) -> None:
    """Clients.call sends redemption messages on one open Stream per peer; when the peer goes
    away, what was waiting fails as unreachable (the outbox retries it) and the next message
    opens a new stream."""
    from federation.client import Clients, PeerRefused, PeerUnreachable

    servicer = rig.node.federation.servicer  # type: ignore[union-attr]
    server, port = await start_server(servicer, "127.0.0.1", 0, None)
    endpoint = f"127.0.0.1:{port}"
    clients = Clients(None)
    try:
        now = rig.now()
        first = seal(PEER_KEY, PEER, "330100", "c-1", pb.AUTHORIZE, rig.authorize("C-1"), now)
        forged = bytearray(seal(PEER_KEY, PEER, "330100", "c-2", pb.AUTHORIZE, b"", now))
        forged[-1] ^= 1
        replies = await asyncio.gather(
            clients.call("330100", (endpoint,), pb.AUTHORIZE, first, 5),
            clients.call("330100", (endpoint,), pb.AUTHORIZE, bytes(forged), 5),
            return_exceptions=True,
        )
        assert isinstance(replies[1], PeerRefused) and replies[1].code == "unknown_signer"
        assert isinstance(replies[0], bytes)
        assert reply_of(rig, pb.Envelope.FromString(replies[0]))[0].in_reply_to == "c-1"
        stream = clients._streams["330100"]
        again = await clients.call("330100", (endpoint,), pb.AUTHORIZE, first, 5)
        assert again == replies[0] and clients._streams["330100"] is stream
        await server.stop(None)
        with pytest.raises(PeerUnreachable):
            await clients.call("330100", (endpoint,), pb.AUTHORIZE, first, 5)
        server, _ = await start_server(servicer, "127.0.0.1", port, None)
        # The channel may still be backing off from the refused connection: like the outbox,
        # retry (bounded) until it reconnects.
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                again = await clients.call("330100", (endpoint,), pb.AUTHORIZE, first, 5)
                break
            except PeerUnreachable:
                assert asyncio.get_running_loop().time() < deadline, "never reconnected"
                await asyncio.sleep(0.2)
        assert again == replies[0] and clients._streams["330100"] is not stream
    finally:
        await clients.close()
        await server.stop(None)


async def test_a_peer_without_stream_is_sent_exchange_calls(rig: Rig) -> None:
    """A peer that answers Stream with UNIMPLEMENTED (an older node) gets the same batches as
    unary Exchange calls: the message waiting when that was found out is answered too."""
    import grpc

    from federation.client import Clients
    from federation.server import FEDERATION_SERVICE, handlers

    # An older node's server has no Stream method at all: gRPC answers UNIMPLEMENTED itself.
    # (A servicer whose Stream raises NotImplementedError races its own status: under load
    # the caller sometimes saw INTERNAL instead.)
    table = handlers(rig.node.federation.servicer)  # type: ignore[union-attr]
    del table["Stream"]
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(FEDERATION_SERVICE, table),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    clients = Clients(None)
    try:
        now = rig.now()
        endpoint = f"127.0.0.1:{port}"
        for n in (1, 2):
            envelope = seal(
                PEER_KEY, PEER, "330100", f"u-{n}", pb.AUTHORIZE, rig.authorize(f"U-{n}"), now
            )
            reply = await clients.call("330100", (endpoint,), pb.AUTHORIZE, envelope, 5)
            assert reply_of(rig, pb.Envelope.FromString(reply))[0].in_reply_to == f"u-{n}"
        assert "330100" in clients._unary_only
    finally:
        await clients.close()
        await server.stop(None)


@pytest.mark.parametrize("accepts_pings", [True, False])
async def test_an_idle_stream_survives_keepalive_pings(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, accepts_pings: bool
) -> None:
    """The sender pings an idle Stream (so a vanished peer is noticed); the server must accept
    pings that often, or it closes the connection with GOAWAY too_many_pings. Time scaled
    down: pings every second; the control is gRPC's default (5 minutes), which breaks it."""
    from federation import client, server
    from federation.client import Clients

    monkeypatch.setattr(client, "KEEPALIVE_MS", 1_000)
    monkeypatch.setattr(server, "MIN_PING_INTERVAL_MS", 500 if accepts_pings else 300_000)
    servicer = rig.node.federation.servicer  # type: ignore[union-attr]
    grpc_server, port = await start_server(servicer, "127.0.0.1", 0, None)
    clients = Clients(None)
    endpoint = f"127.0.0.1:{port}"
    try:
        now = rig.now()
        first = seal(PEER_KEY, PEER, "330100", "k-1", pb.AUTHORIZE, rig.authorize("K-1"), now)
        reply = await clients.call("330100", (endpoint,), pb.AUTHORIZE, first, 5)
        stream = clients._streams["330100"]
        await asyncio.sleep(5)  # five pings without data
        assert await clients.call("330100", (endpoint,), pb.AUTHORIZE, first, 5) == reply
        assert (clients._streams["330100"] is stream) is accepts_pings
    finally:
        await clients.close()
        await grpc_server.stop(None)


async def test_statements_come_in_pages_each_once_in_order(rig: Rig) -> None:
    """STATEMENTS pages by (issuer, acquirer, window): ``next`` until the last page; a peer
    that does not page (limit 0) gets them all at once; a forged cursor is refused."""
    from node.store import settlement as store

    def put(conn: Any) -> None:
        for i in range(7):
            for state in ("agreed", "disputed"):
                window = f"2026-W{i:02d}" if state == "agreed" else f"2025-W{i:02d}"
                store.put_statement(
                    conn,
                    issuer="330100",
                    acquirer=PEER,
                    window_id=window,
                    window_end=1_000 * (i + 1),
                    count=1,
                    total_fen=i,
                    digest="d",
                    statement=f"statement {window}".encode(),
                    acquirer_signature=b"a",
                    acquirer_key_id="k",
                    issuer_signature=b"i",
                    issuer_key_id="k",
                    state=state,
                    updated_at=0,
                )

    rig.node.db.run_sync("put", put)
    serial = iter(range(100))

    async def ask(after: str, limit: int, until_ms: int = 0) -> pb.StatementsReply:
        payload = pb.StatementsRequest(until_ms=until_ms, after=after, limit=limit)
        envelope = seal(
            PEER_KEY,
            PEER,
            "330100",
            f"s-{next(serial)}",
            pb.STATEMENTS,
            payload.SerializeToString(),
            rig.now(),
        )
        header, body = reply_of(rig, await rig.send(envelope, "Statements"))
        assert header.type == pb.STATEMENTS_REPLY
        return pb.StatementsReply.FromString(body)

    pages, after = [], ""
    while True:
        reply = await ask(after, 3)
        pages.append([s.statement.decode() for s in reply.statements])
        if not reply.next:
            break
        after = reply.next
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [s for p in pages for s in p] == [f"statement 2026-W{i:02d}" for i in range(7)]  # agreed
    everything = await ask("", 0)
    assert not everything.next and len(everything.statements) == 7
    ended_by_3000 = await ask("", 2, until_ms=3_000)
    assert len(ended_by_3000.statements) == 2 and ended_by_3000.next
    assert len((await ask(ended_by_3000.next, 2, until_ms=3_000)).statements) == 1
    await rig.refused(
        seal(
            PEER_KEY,
            PEER,
            "330100",
            "s-bad",
            pb.STATEMENTS,
            pb.StatementsRequest(after="[1, 2]", limit=3).SerializeToString(),
            rig.now(),
        ),
        "malformed_message",
        "Statements",
    )
