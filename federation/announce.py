"""Telling peers about key changes: push the new card; receive theirs.

When this node's keys change (``suanli key rotate`` / ``key revoke``), ``card_version`` goes
up. On each sweep tick the node pushes its card to every peer that has not acknowledged the
current version, signed with the oldest still-valid key (one the peer already trusts, since
the overlap keeps the retired key valid). A peer verifies the push at its door like any
message, then adds the new keys and records ends and revocations. It never un-revokes a key
and never changes what the operator decided may travel to or from the sender.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from pathlib import Path

from google.protobuf.message import DecodeError

from federation.cards import ParsedCard, card_payload, fingerprint
from federation.client import PeerRefused, PeerUnreachable
from federation.envelope import Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from federation.wire import Wire
from node import errors
from node.clock import Clock
from node.domain.model import OwnKey
from node.keys import NodeKey
from node.services.common import new_id
from node.services.directory import Directory
from node.services.ownkeys import announcing_key, card_version
from node.services.ownkeys import load as load_own_keys
from node.store import ledger, peers, registry
from node.store.db import Database

logger = logging.getLogger(__name__)


def _announced(conn: sqlite3.Connection, region: str, version: int) -> None:
    registry.set_meta(conn, f"card_announced:{region}", str(version))


class Announcer:
    def __init__(self, db: Database, wire: Wire, name: str, endpoint: str, data_dir: Path) -> None:
        self._db = db
        self._wire = wire
        self.name = name
        self.endpoint = endpoint
        self._data_dir = data_dir

    async def announce(self) -> int:
        """Push the current card to every peer that lacks it; returns how many acknowledged."""

        def state(conn: sqlite3.Connection) -> tuple[int, list[OwnKey], dict[str, int]]:
            announced = {
                p.region: int(registry.get_meta(conn, f"card_announced:{p.region}") or "0")
                for p in peers.list_peers(conn)
            }
            return card_version(conn), load_own_keys(conn, self._wire.key), announced

        version, keys, announced = await self._db.read("card_state", state)
        if version == 0:
            return 0
        acked = 0
        wire = self._wire
        for peer in wire.directory.all():
            if announced.get(peer.region, 0) >= version:
                continue
            now = wire.clock.now_ms()
            signer = announcing_key(keys, self._data_dir, wire.key, now)
            payload = card_payload(wire.region, self.name, self.endpoint, keys, now)
            try:
                await wire.ask(peer.region, pb.CARD, payload, pb.ACK, key=signer)
            except (PeerUnreachable, PeerRefused, errors.SuanliError) as exc:
                logger.warning("card v%d not yet announced to %s: %s", version, peer.region, exc)
                continue
            await self._db.run(
                "card_announced", functools.partial(_announced, region=peer.region, version=version)
            )
            logger.info("card v%d announced to %s", version, peer.region)
            acked += 1
        return acked


class CardReceiver:
    """Applies a peer's pushed card, verified at the door with a key already trusted."""

    def __init__(
        self, db: Database, clock: Clock, region: str, key: NodeKey, directory: Directory
    ) -> None:
        self._db = db
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
        keys = [(k.key_id, bytes(k.public_key)) for k in card.keys]
        parsed = ParsedCard(card, opened.raw, fingerprint(card.region, keys))
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            current = peers.get_peer(conn, origin)
            peer = parsed.peer(current.outbound, current.inbound, current.exposure_cap_fen)
            peers.upsert_peer(conn, peer, opened.raw, now)
            ledger.audit(
                conn,
                now,
                f"peer:{origin}",
                "peer.card",
                origin,
                keys=[[k.key_id, k.not_after, k.revoked] for k in peer.keys],
                fingerprint=parsed.fingerprint,
            )

        await self._db.run("peer_card", txn)
        await self._directory.refresh()
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
