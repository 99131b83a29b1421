"""Whatever bytes reach the federation port go through the door: every method, given bytes
that are not its message, answers the documented status with a ``suanli-code`` and no internal
text; an oversized request says so with its own code; and a caller that has proven nothing
cannot tell which regions and keys this node knows. Raw bytes are sent over real gRPC on
loopback, without the generated stub's serializers."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from federation.envelope import seal
from federation.proto.v1 import federation_pb2 as pb
from federation.server import MAX_MESSAGE_BYTES, METHODS
from node import errors
from node.keys import NodeKey
from tests.conftest import snapshot
from tests.fakepeer import PEER, PEER_KEY, STRANGER, Rig

SERVICE = "/suanli.federation.v1.Federation/"
# Bytes that are no protobuf message at all, and bytes that parse as another message or not.
GARBAGE = [
    b"\xff\xff\xff\xff",  # a field tag that never ends
    b"\x0a\x05abc",  # a length past the end
    b"\x0b",  # a start-group tag without its end
    b"\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # a length varint over 64 bits
]
INTERNAL = ("DecodeError", "Traceback", "google.protobuf", "Error parsing", "Exception", ".py")


async def _raw(rig: Rig, method: str, data: bytes) -> grpc.aio.AioRpcError:
    assert rig.channel is not None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        if METHODS[method] == "stream":
            call = rig.channel.stream_stream(SERVICE + method)(timeout=5)
            await call.write(data)
            await call.read()
        else:
            await rig.channel.unary_unary(SERVICE + method)(data, timeout=5)
    return err.value


def _code(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get("suanli-code")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", sorted(METHODS))
async def test_bytes_that_do_not_parse_are_refused_at_the_door(rig: Rig, method: str) -> None:
    before = snapshot(rig.node)
    for data in GARBAGE:
        err = await _raw(rig, method, data)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (data, err.details())
        assert _code(err) == "malformed_message"
        details = err.details() or ""
        assert details.startswith("malformed_message: ")
        assert not any(word in details for word in INTERNAL), details
    assert snapshot(rig.node) == before


@pytest.mark.parametrize("method", sorted(METHODS))
async def test_an_oversized_request_carries_its_code(rig: Rig, method: str) -> None:
    before = snapshot(rig.node)
    big = pb.Envelope(body=b"x" * (MAX_MESSAGE_BYTES + 1), signer_region=PEER).SerializeToString()
    if method in ("Exchange", "Stream"):
        big = pb.Batch(envelopes=[big]).SerializeToString()
    err = await _raw(rig, method, big)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _code(err) == "message_too_large"
    assert (err.details() or "").startswith("message_too_large: ")
    assert snapshot(rig.node) == before


async def test_an_unauthenticated_caller_cannot_tell_peers_from_strangers(rig: Rig) -> None:
    """Not a peer, a peer with a key id it never published, a peer's real key id with a
    signature by another key: the same status, code and sentence for all three (the node's log
    and its refusals metric say which)."""
    now = rig.now()
    payload = rig.authorize()

    def forged(region: str, key_id: str, key: NodeKey) -> bytes:
        envelope = pb.Envelope.FromString(
            seal(key, region, "330100", "e-1", pb.AUTHORIZE, payload, now)
        )
        envelope.key_id = key_id
        return envelope.SerializeToString()

    cases = {
        "not a peer": forged("440300", STRANGER.key_id, STRANGER),
        "not a peer, a real key id": forged("440300", PEER_KEY.key_id, STRANGER),
        "a peer, an unknown key": forged(PEER, STRANGER.key_id, STRANGER),
        "a peer's key id, another key's signature": forged(PEER, PEER_KEY.key_id, STRANGER),
    }
    seen: dict[str, Any] = {}
    for what, data in cases.items():
        err = await _raw(rig, "Authorize", data)
        seen[what] = (err.code(), _code(err), err.details())
    assert len(set(seen.values())) == 1, seen
    status, code, details = next(iter(seen.values()))
    assert status == grpc.StatusCode.UNAUTHENTICATED and code == "unknown_signer"
    assert PEER not in (details or "") and "440300" not in (details or "")
    # In a batch too: the same answer for each.
    batch = pb.Batch(envelopes=list(cases.values())).SerializeToString()
    assert rig.channel is not None
    raw = await rig.channel.unary_unary(SERVICE + "Exchange")(batch, timeout=5)
    answers = pb.Answers.FromString(raw).answers
    assert len({(a.code, a.message, a.reply) for a in answers}) == 1
    assert answers[0].code == "unknown_signer"
    # The operator sees which: the refusals metric by reason, with bounded peer labels.
    from prometheus_client import generate_latest

    from tests.exposition import samples

    seen = samples(rig.node)
    for peer, reason in (
        ("unknown", "unknown_origin"),
        (PEER, "unknown_key"),
        (PEER, "bad_signature"),
    ):
        assert seen[("suanli_envelope_refusals_total", (("peer", peer), ("reason", reason)))] >= 1
    assert "440300" not in generate_latest(rig.node.metrics.registry).decode()


async def test_the_health_service_refuses_garbage_the_same_way(rig: Rig) -> None:
    from grpc_health.v1 import health_pb2

    assert rig.channel is not None
    check = rig.channel.unary_unary("/grpc.health.v1.Health/Check")
    for data in GARBAGE:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await check(data, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _code(err.value) == "malformed_message"
        assert not any(word in (err.value.details() or "") for word in INTERNAL)
    ok = await check(health_pb2.HealthCheckRequest(service="").SerializeToString(), timeout=5)
    assert (
        health_pb2.HealthCheckResponse.FromString(ok).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    watch = rig.channel.unary_stream("/grpc.health.v1.Health/Watch")
    call = watch(health_pb2.HealthCheckRequest(service="").SerializeToString(), timeout=5)
    first = await call.read()
    assert (
        health_pb2.HealthCheckResponse.FromString(first).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    call.cancel()


def test_every_unauthenticated_refusal_pays_for_one_signature_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a timing test: the door verifies one signature for an unknown region, an unknown key
    and a bad signature alike (against a decoy key when there is no real one), so the three take
    the same work and their timing does not tell them apart."""
    from federation import envelope as door_module
    from federation.envelope import Door
    from node.domain.model import Peer, PeerKey

    calls: list[bytes] = []
    real = door_module.verify

    def counting(public: bytes, tag: bytes, body: bytes, signature: bytes) -> bool:
        calls.append(public)
        return real(public, tag, body, signature)

    monkeypatch.setattr(door_module, "verify", counting)
    peer = Peer(
        PEER,
        "GY",
        "x",
        "",
        True,
        True,
        0,
        (PeerKey(PEER_KEY.key_id, PEER_KEY.public_key, 0, 0, False),),
    )
    door = Door("330100", {PEER: peer}.get, 300_000)
    now = 1_795_000_000_000
    payload = b"x"
    for region, key in (("440300", STRANGER), (PEER, STRANGER)):
        with pytest.raises(errors.UnknownSigner):
            door.open(
                seal(key, region, "330100", "m", pb.AUTHORIZE, payload, now), (pb.AUTHORIZE,), now
            )
    forged = pb.Envelope.FromString(seal(STRANGER, PEER, "330100", "m", pb.AUTHORIZE, payload, now))
    forged.key_id = PEER_KEY.key_id
    with pytest.raises(errors.UnknownSigner):
        door.open(forged.SerializeToString(), (pb.AUTHORIZE,), now)
    assert len(calls) == 3 and calls[2] == PEER_KEY.public_key
    assert calls[0] == calls[1] != PEER_KEY.public_key  # the decoy
