"""Telling peers about key changes (push the new card; receive theirs) and about this node's
window closes (WINDOW_CLOSED, ``WindowNotifier``).

When this node's keys change (``suanli key rotate`` / ``key revoke``), ``card_version`` goes
up. On each sweep tick the node pushes its card to every peer that has not acknowledged the
current version, signed with the oldest still-valid key (one the peer already trusts, since
the overlap keeps the retired key valid). A peer verifies the push at its door like any
message, then adds the new keys and records ends and revocations. It never un-revokes a key
and never changes what the operator decided may travel to or from the sender.
"""

from __future__ import annotations

import logging
from pathlib import Path

from google.protobuf.message import DecodeError

from federation import convert
from federation.cards import ParsedCard, card_payload, endpoints_of, fingerprint
from federation.client import PeerRefused, PeerUnreachable
from federation.envelope import Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from federation.wire import Wire
from node import errors
from node.clock import Clock
from node.keys import NodeKey
from node.services.common import new_id
from node.services.directory import Directory
from node.services.ownkeys import announcing_key
from node.services.payouts import LocalSettlement
from node.services.peering import Peering

logger = logging.getLogger(__name__)


class Announcer:
    def __init__(
        self, peering: Peering, wire: Wire, name: str, endpoints: tuple[str, ...], data_dir: Path
    ) -> None:
        self._peering = peering
        self._wire = wire
        self.name = name
        self.endpoints = endpoints
        self._data_dir = data_dir

    async def announce(self) -> int:
        """Push the current card to every peer that lacks it; returns how many acknowledged.
        Then, if every peer has it, retired keys get their end (a new version, pushed next)."""
        await self._peering.identity(self.name, " ".join(self.endpoints))
        acked = await self._push()
        await self._peering.finish_retiring(self._wire.key)
        return acked

    async def _push(self) -> int:
        version, keys, announced = await self._peering.announce_state(self._wire.key)
        if version == 0:
            return 0
        acked = 0
        wire = self._wire
        for peer in wire.directory.all():
            if announced.get(peer.region, 0) >= version:
                continue
            now = wire.clock.now_ms()
            signer = announcing_key(keys, self._data_dir, wire.key, now)
            payload = card_payload(wire.region, self.name, self.endpoints, keys, now)
            try:
                await wire.ask(peer.region, pb.CARD, payload, pb.ACK, key=signer)
            except (PeerUnreachable, PeerRefused, errors.SuanliError) as exc:
                logger.warning("card v%d not yet announced to %s: %s", version, peer.region, exc)
                continue
            await self._peering.announced(peer.region, version)
            logger.info("card v%d announced to %s", version, peer.region)
            acked += 1
        return acked


class CardReceiver:
    """Applies a peer's pushed card, verified at the door with a key already trusted."""

    def __init__(
        self, peering: Peering, clock: Clock, region: str, key: NodeKey, directory: Directory
    ) -> None:
        self._peering = peering
        self._clock = clock
        self.region = region
        self._key = key
        self._directory = directory

    async def receive(self, opened: Opened) -> bytes:
        origin = opened.header.origin
        try:
            card = pb.NodeCard.FromString(opened.payload)
        except DecodeError:
            raise errors.MalformedMessage("the pushed card does not parse") from None
        if card.region != origin or not card.endpoint:
            raise errors.MalformedMessage(
                "a pushed card must be the sender's own, with an endpoint"
            )
        endpoints_of(card)
        keys = [(k.key_id, bytes(k.public_key)) for k in card.keys]
        parsed = ParsedCard(card, opened.raw, fingerprint(card.region, keys))
        # the policy fields are the receiving operator's: the service keeps them as they are
        await self._peering.pushed_card(origin, parsed.peer(False, False, 0), opened.raw)
        await self._directory.refresh()
        now = self._clock.now_ms()
        ack = pb.Ack(request_message_id=opened.header.message_id).SerializeToString()
        return seal(
            self._key,
            self.region,
            origin,
            new_id("m"),
            pb.ACK,
            ack,
            now,
            in_reply_to=opened.header.message_id,
        )


class WindowNotifier:
    """Tells each peer, as its issuer, that this node closed a window (WINDOW_CLOSED), until
    the peer acknowledges: the peer then sends its statement for that window at its next
    sweep instead of at its next recheck (docs/protocol.md §5b). Run on every sweep, in the
    background; a peer that is away is told when it is back."""

    def __init__(self, wire: Wire, settlement: LocalSettlement) -> None:
        self._wire = wire
        self._settlement = settlement

    async def notify(self) -> int:
        told = 0
        for peer, window_id, closed_at in await self._settlement.pending_notices():
            if self._wire.directory.get(peer) is None:
                continue
            payload = convert.window_closed_payload(window_id, closed_at)
            try:
                await self._wire.ask(peer, pb.WINDOW_CLOSED, payload, pb.ACK)
            except (PeerUnreachable, PeerRefused, errors.SuanliError) as exc:
                logger.info("window %s close not yet told to %s: %s", window_id, peer, exc)
                continue
            await self._settlement.notice_acked(peer, window_id)
            logger.info("window %s close told to %s", window_id, peer)
            told += 1
        return told
