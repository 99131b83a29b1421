"""One request and its signed answer, to one peer: seal, call, verify, match.

Used for the exchanges that are not redemptions (the outbox has its own, durable path):
card announcements, statements and netting queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from federation import convert
from federation.client import Clients, PeerRefused, PeerUnreachable
from federation.envelope import Door, Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.clock import Clock
from node.domain.statements import SignedStatement, StatementAnswer, StatementClaim
from node.keys import NodeKey
from node.services.common import new_id
from node.services.directory import Directory
from node.services.statements import NoAnswer


@dataclass(frozen=True)
class Wire:
    region: str
    key: NodeKey
    clock: Clock
    directory: Directory
    door: Door
    clients: Clients
    timeout: float

    async def ask(
        self, peer_region: str, kind: int, payload: bytes, expect: int, key: NodeKey | None = None
    ) -> Opened:
        """Send ``payload`` as ``kind`` and return the peer's verified answer of type ``expect``.

        Raises PeerUnreachable, PeerRefused, or a SuanliError when the answer is not acceptable.
        """
        peer = self.directory.get(peer_region)
        if peer is None:
            raise errors.PeerNotFound(f"{peer_region} is not a peer of this node")
        message_id = new_id("m")
        envelope = seal(
            key or self.key,
            self.region,
            peer_region,
            message_id,
            kind,
            payload,
            self.clock.now_ms(),
        )
        raw = await self.clients.call(peer_region, peer.dial, kind, envelope, self.timeout)
        opened = self.door.open(raw, (expect,), self.clock.now_ms(), check_skew=False)
        if opened.header.in_reply_to != message_id or opened.header.origin != peer_region:
            raise errors.MalformedMessage(f"{peer_region} answered another message")
        return opened


class PeerStatements:
    """The statement services' ``StatementLink``: STATEMENT and STATEMENTS over the wire."""

    def __init__(self, wire: Wire) -> None:
        self._wire = wire

    async def send(self, issuer: str, claim: StatementClaim) -> tuple[StatementAnswer, bytes]:
        payload = convert.statement_request(claim)
        try:
            opened = await self._wire.ask(issuer, pb.STATEMENT, payload, pb.STATEMENT_REPLY)
            return convert.statement_answer(opened.payload), opened.raw
        except (PeerUnreachable, PeerRefused, errors.SuanliError, DecodeError) as exc:
            raise NoAnswer(str(exc)) from exc

    async def page(
        self, region: str, until_ms: int, after: str, limit: int
    ) -> tuple[list[SignedStatement], str]:
        payload = convert.statements_request(until_ms, after, limit)
        try:
            opened = await self._wire.ask(region, pb.STATEMENTS, payload, pb.STATEMENTS_REPLY)
            return convert.statements_page(opened.payload)
        except (PeerUnreachable, PeerRefused, errors.SuanliError, DecodeError) as exc:
            raise NoAnswer(str(exc)) from exc
