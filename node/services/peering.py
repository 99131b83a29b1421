"""Operator actions on peers: import a card, set what may travel, revoke a key. All audited."""

from __future__ import annotations

import base64
import builtins
import dataclasses
import sqlite3
from collections.abc import Sequence
from typing import Any

from node import errors
from node.clock import Clock, iso
from node.domain.model import OwnKey, Peer, PeerKey, key_states
from node.keys import NodeKey
from node.services import ownkeys
from node.services.common import Principal, require_operator
from node.store import books, ledger, peers, registry
from node.store.engine import Books


class Peering:
    def __init__(self, db: Books, clock: Clock, region: str) -> None:
        self._db = db
        self._clock = clock
        self.region = region

    def add(self, card: Peer, envelope: bytes, who: Principal) -> None:
        """Import a peer's card (``card``: the peer it describes, with the policy to apply;
        ``envelope``: the signed card as received, kept). Re-importing adds keys and updates
        the endpoint; it never un-revokes a key."""
        require_operator(who)
        if card.region == self.region:
            raise errors.InvalidRequest("that is this node's own card")
        if card.exposure_cap_fen < 0:
            raise errors.InvalidRequest("exposure cap: must not be negative")
        now = self._clock.now_ms()
        peer = card
        outbound, inbound, cap = peer.outbound, peer.inbound, peer.exposure_cap_fen

        def txn(conn: sqlite3.Connection) -> None:
            peers.upsert_peer(conn, peer, envelope, now)
            ledger.audit(
                conn,
                now,
                who.actor,
                "peer.add",
                peer.region,
                name=peer.name,
                endpoint=peer.endpoint,
                endpoints=list(peer.dial),
                fingerprint=peer.fingerprint,
                keys=[k.key_id for k in peer.keys],
                outbound=outbound,
                inbound=inbound,
                exposure_cap_fen=cap,
            )

        self._db.run_sync("peer_add", txn)

    def set_policy(
        self,
        region: str,
        outbound: bool | None,
        inbound: bool | None,
        cap: int | None,
        who: Principal,
    ) -> None:
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            peer = peers.get_peer(conn, region)
            out = peer.outbound if outbound is None else outbound
            inn = peer.inbound if inbound is None else inbound
            new_cap = peer.exposure_cap_fen if cap is None else cap
            if new_cap < 0:
                raise errors.InvalidRequest("exposure cap: must not be negative")
            peers.set_peer_policy(conn, region, out, inn, new_cap, now)
            ledger.audit(
                conn,
                now,
                who.actor,
                "peer.policy",
                region,
                outbound=out,
                inbound=inn,
                exposure_cap_fen=new_cap,
            )

        self._db.run_sync("peer_policy", txn)

    def revoke_key(self, region: str, key_id: str, who: Principal) -> None:
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            peers.revoke_peer_key(conn, region, key_id)
            ledger.audit(conn, now, who.actor, "peer.revoke_key", region, key_id=key_id)

        self._db.run_sync("peer_revoke_key", txn)

    def list(self) -> list[dict[str, Any]]:
        out = []
        for p in self._db.run_sync("peer_list", peers.list_peers):
            out.append(
                {
                    "region": p.region,
                    "name": p.name,
                    "endpoint": p.endpoint,
                    "endpoints": list(p.dial),
                    "fingerprint": p.fingerprint,
                    "outbound": p.outbound,
                    "inbound": p.inbound,
                    "exposure_cap_fen": p.exposure_cap_fen,
                    "keys": [
                        {
                            "key_id": k.key_id,
                            "public_key": base64.b64encode(k.public_key).decode(),
                            "not_before": iso(k.not_before),
                            "not_after": iso(k.not_after) if k.not_after else None,
                            "revoked": k.revoked,
                        }
                        for k in p.keys
                    ],
                }
            )
        return out

    def status(self, current: NodeKey) -> builtins.list[dict[str, Any]]:
        """Per peer: whether it has acknowledged this node's current card (the keys it may
        verify), and its backlog: what ``suanli peer status`` shows."""
        return self._db.run_sync("peer_status", self._status_txn)

    async def status_for(self, who: Principal) -> builtins.list[dict[str, Any]]:
        """The same, for an operator on the platform's pages."""
        require_operator(who)
        return await self._db.read("peer_status", self._status_txn)

    def _status_txn(self, conn: sqlite3.Connection) -> builtins.list[dict[str, Any]]:
        version = ownkeys.card_version_txn(conn)
        backlog = books.outbox_backlog(conn)
        now = self._clock.now_ms()
        out = []
        for p in peers.list_peers(conn):
            acked = int(registry.get_meta(conn, f"card_announced:{p.region}") or "0")
            pending, oldest = backlog.get(p.region, (0, now))
            out.append(
                {
                    "region": p.region,
                    "name": p.name,
                    "endpoint": p.endpoint,
                    "endpoints": list(p.dial),
                    "fingerprint": p.fingerprint,
                    "card_version": version,
                    "acknowledged_version": acked,
                    "acknowledged": acked >= version,
                    "outbox_pending": pending,
                    "outbox_oldest_seconds": max(0, now - oldest) // 1000,
                    "keys": _keys(p.keys, now, None),
                }
            )
        return out

    async def own_keys_for(self, who: Principal, current: NodeKey) -> dict[str, Any]:
        """This node's own keys and where each is in its rotation, its card's version and
        the peers that have not yet acknowledged it (a retiring key keeps no end until they
        have: node/services/ownkeys.py)."""
        require_operator(who)

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            return {
                "card_version": ownkeys.card_version_txn(conn),
                "keys": _keys(
                    ownkeys.load_txn(conn, current), self._clock.now_ms(), current.key_id
                ),
                "unacknowledged": ownkeys.unacknowledged_txn(conn),
            }

        return await self._db.read("own_keys", txn)

    # A serving node's side of card announcements (federation/announce.py carries them) -----

    async def finish_retiring(self, current: NodeKey) -> int:
        """Give retired keys their end once every peer has the current card (ownkeys). A
        read first: most ticks have nothing to do, and need no write transaction."""
        if not await self._db.read("key_retiring", ownkeys.retiring_txn):
            return 0
        now = self._clock.now_ms()
        return await self._db.run(
            "key_retire", lambda c: ownkeys.finish_retiring_txn(c, current, now)
        )

    async def identity(self, name: str, endpoint: str) -> int:
        """The card's name and endpoint as served now: when they differ from the last card
        (a node restored on another machine, a new address), the card version goes up so
        that peers are told; returns the new version, or 0."""
        now = self._clock.now_ms()
        shown = f"{name}\n{endpoint}"
        if (
            await self._db.read("card_identity", lambda c: registry.get_meta(c, "card_identity"))
            == shown
        ):
            return 0  # the usual tick: nothing to write

        def txn(conn: sqlite3.Connection) -> int:
            before = registry.get_meta(conn, "card_identity")
            registry.set_meta(conn, "card_identity", shown)
            if before is None or before == shown:
                return 0  # the first card (peers imported it) or nothing new
            version = ownkeys.bump_card_version_txn(conn)
            ledger.audit(
                conn, now, "system:keys", "card.identity", endpoint, name=name, card_version=version
            )
            return version

        return await self._db.run("card_identity", txn)

    async def announce_state(
        self, current: NodeKey
    ) -> tuple[int, builtins.list[OwnKey], dict[str, int]]:
        """This node's card version, its own keys, and the version each peer acknowledged."""

        def state_txn(
            conn: sqlite3.Connection,
        ) -> tuple[int, builtins.list[OwnKey], dict[str, int]]:
            announced = {
                p.region: int(registry.get_meta(conn, f"card_announced:{p.region}") or "0")
                for p in peers.list_peers(conn)
            }
            return ownkeys.card_version_txn(conn), ownkeys.load_txn(conn, current), announced

        return await self._db.read("card_state", state_txn)

    async def announced(self, region: str, version: int) -> None:
        """``region`` acknowledged this node's card ``version``."""
        await self._db.run(
            "card_announced",
            lambda c: registry.set_meta(c, f"card_announced:{region}", str(version)),
        )

    async def pushed_card(self, origin: str, card: Peer, envelope: bytes) -> None:
        """A peer's own new card, verified at the door: its keys, ends and revocations are
        taken (never un-revoking), while what this operator decided may travel to and from it
        stays as it is."""
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            current = peers.get_peer(conn, origin)
            peer = dataclasses.replace(
                card,
                outbound=current.outbound,
                inbound=current.inbound,
                exposure_cap_fen=current.exposure_cap_fen,
            )
            peers.upsert_peer(conn, peer, envelope, now)
            ledger.audit(
                conn,
                now,
                f"peer:{origin}",
                "peer.card",
                origin,
                keys=[[k.key_id, k.not_after, k.revoked] for k in peer.keys],
                fingerprint=peer.fingerprint,
            )

        await self._db.run("peer_card", txn)


def _keys(keys: Sequence[PeerKey | OwnKey], now: int, current: str | None) -> list[dict[str, Any]]:
    states = key_states(keys, now, current)
    return [
        {
            "key_id": k.key_id,
            "not_before": iso(k.not_before) if k.not_before else None,  # 0: from the start
            "not_after": iso(k.not_after) if k.not_after else None,
            "state": states[k.key_id],
        }
        for k in keys
    ]
