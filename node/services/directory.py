"""The peers this node knows, cached in memory, refreshed when the operator changes them.

``suanli peer add`` may run in another process while the node serves; the node notices the
change (a cheap fingerprint of the peers tables) on its sweep tick and reloads.
"""

from __future__ import annotations

from node.domain.model import Peer
from node.store import peers
from node.store.engine import Books


class Directory:
    def __init__(self, db: Books) -> None:
        self._db = db
        self._peers: dict[str, Peer] = {}
        self._signature: tuple[int, ...] = ()

    def load_sync(self) -> None:
        self._peers = {p.region: p for p in self._db.run_sync("peers_load", peers.list_peers)}
        self._signature = self._db.run_sync("peers_signature", peers.signature)

    async def refresh(self) -> bool:
        signature = await self._db.read("peers_signature", peers.signature)
        if signature == self._signature:
            return False
        self._peers = {p.region: p for p in await self._db.read("peers_load", peers.list_peers)}
        self._signature = signature
        return True

    def get(self, region: str) -> Peer | None:
        return self._peers.get(region)

    def all(self) -> list[Peer]:
        return sorted(self._peers.values(), key=lambda p: p.region)

    def regions(self) -> frozenset[str]:
        return frozenset(self._peers)
