"""A fake peer city for servicer tests: Guiyang (520100) with a pre-loaded key, imported as a
peer of a real Hangzhou node whose gRPC servicer listens on loopback, and a holder with a voucher
and a spend authorization for the fake peer's provider (Synapse's FederatingHomeserverTestCase).
The ``rig`` fixture is registered in conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from federation.cards import build_card, parse_card
from federation.envelope import TAG, seal
from federation.proto.v1 import federation_pb2 as pb
from federation.proto.v1 import federation_pb2_grpc as pb_grpc
from federation.server import start_server
from node.clock import ManualClock
from node.config import FederationConfig
from node.domain.issuance import Demand
from node.domain.model import OwnKey
from node.domain.statements import STATEMENT_TAG, statement_bytes, tally
from node.keys import NodeKey, verify
from node.node import Node
from node.services.common import SYSTEM, Principal
from node.services.peering import Peering
from tests.cluster import free_port
from tests.conftest import HZ_ENTERPRISE, make_node

PEER = "520100"
PEER_KEY = NodeKey(bytes(range(1, 33)))
OLD_KEY = NodeKey(bytes(range(2, 34)))
STRANGER = NodeKey(bytes(range(3, 35)))


@dataclass
class Rig:
    node: Node
    stub: Any
    clock: ManualClock
    code: str
    voucher_id: str
    channel: Any = None

    def now(self) -> int:
        return self.clock.now_ms()

    def authorize(
        self, order_id: str = "O-1", amount: int = 1_000_000, code: str | None = None
    ) -> bytes:
        return pb.AuthorizeRequest(
            code=code or self.code,
            provider=pb.Provider(
                region=PEER,
                id="p_gy",
                uscc="91520100MA6DGY0015",
                name="GY",
                kind="computing_centre",
            ),
            order=pb.Order(
                order_id=order_id, order_amount_fen=amount, compute_class="model_services"
            ),
        ).SerializeToString()

    async def send(self, envelope: bytes, method: str = "Authorize") -> pb.Envelope:
        result: pb.Envelope = await getattr(self.stub, method)(
            pb.Envelope.FromString(envelope), timeout=5
        )
        return result

    async def refused(
        self, envelope: bytes, code: str, method: str = "Authorize"
    ) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await self.send(envelope, method)
        metadata = dict(err.value.trailing_metadata() or ())
        assert metadata.get("suanli-code") == code, (err.value.code(), err.value.details())
        assert err.value.details().startswith(code)
        return err.value.code()


@pytest.fixture
async def rig(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Rig]:
    fed = FederationConfig(port=free_port(), plaintext=True)
    node, _ = make_node(tmp_path, clock, federation=fed)
    assert node.federation is not None
    card = build_card(
        PEER_KEY,
        PEER,
        "Fake Guiyang",
        ("127.0.0.1:1",),
        [
            OwnKey(PEER_KEY.key_id, PEER_KEY.public_key, 0),
            OwnKey(OLD_KEY.key_id, OLD_KEY.public_key, 0, clock.now_ms() - 1000),
        ],
        clock.now_ms(),
    )
    parsed = parse_card(card)
    Peering(node.db, clock, "330100").add(parsed.peer(True, True, 10**12), parsed.envelope, SYSTEM)
    node.federation.directory.load_sync()
    holder, _ = await node.registry.register_holder(
        SYSTEM, HZ_ENTERPRISE, "h", "enterprise", None, None
    )
    who = Principal("holder", holder.id, "t")
    issued = await node.issuance.submit(
        who, Demand(holder.id, "model_services", 100_000_000, None, "2026-01-01", "2026-12-31")
    )
    voucher = issued["voucher"]
    _, code = await node.authorizations.authorize(
        who, voucher.id, "p_gy", 5_000_000, clock.now_ms() + 86_400_000, PEER
    )
    server, port = await start_server(node.federation.servicer, "127.0.0.1", 0, None)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Rig(node, pb_grpc.FederationStub(channel), clock, code, voucher.id, channel)
    finally:
        await channel.close()
        await server.stop(None)
        problems = node.check()
        node.close()
        assert problems == []


def reply_of(rig: Rig, envelope: pb.Envelope) -> tuple[pb.Header, bytes]:
    assert verify(rig.node.key.public_key, TAG, envelope.body, envelope.signature), (
        "reply not signed by the issuer"
    )
    body = pb.Body.FromString(envelope.body)
    return body.header, body.payload


async def send_statement(
    rig: Rig, records: list[tuple[str, str, str, int]], window: str, n: int
) -> pb.StatementReply:
    """The fake acquirer's signed STATEMENT of what Hangzhou owes it for ``window``, with its
    records; the issuer's answer (message id ``st-n``)."""
    statement = statement_bytes("330100", PEER, window, tally(records))
    request = pb.StatementRequest(
        statement=statement,
        acquirer_signature=PEER_KEY.sign(STATEMENT_TAG, statement),
        acquirer_key_id=PEER_KEY.key_id,
        records=[
            pb.StatementRecord(issuer_hold_id=h, provider_id=p, order_id=o, captured_fen=f)
            for h, p, o, f in records
        ],
    )
    envelope = seal(
        PEER_KEY, PEER, "330100", f"st-{n}", pb.STATEMENT, request.SerializeToString(), rig.now()
    )
    header, body = reply_of(rig, await rig.send(envelope, "Settle"))
    assert header.type == pb.STATEMENT_REPLY and header.in_reply_to == f"st-{n}"
    return pb.StatementReply.FromString(body)
