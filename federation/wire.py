"""One request and its signed answer, to one peer: seal, call, verify, match.

Used for the exchanges that are not redemptions (the outbox has its own, durable path):
card announcements, statements and netting queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.client import Clients
from federation.envelope import Door, Opened, seal
from node import errors
from node.clock import Clock
from node.keys import NodeKey
from node.services.common import new_id
from node.services.directory import Directory


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
        raw = await self.clients.call(peer_region, peer.endpoint, kind, envelope, self.timeout)
        opened = self.door.open(raw, (expect,), self.clock.now_ms(), check_skew=False)
        if opened.header.in_reply_to != message_id or opened.header.origin != peer_region:
            raise errors.MalformedMessage(f"{peer_region} answered another message")
        return opened
