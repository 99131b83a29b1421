"""This node's own signing keys: the current one, retired ones during their overlap, revoked ones.

The current seed is ``node.key``; ``suanli key rotate`` moves it to ``keys/<key id>.key`` and
writes a new ``node.key``. Rotation never cuts a peer off (docs/protocol.md §6, "Key
continuity"): the old key keeps no end (``not_after`` 0) while any peer has not acknowledged
the card that lists the new key, and the card is pushed signed with the old key, one every
peer already trusts, however long a peer is away. Once every peer has acknowledged it
(``finish_retiring_txn``, each sweep), the old key gets its end, the overlap the operator asked
for ahead, in a new card version announced the same way. Revoking a key while a peer has not
acknowledged the current card is refused unless forced, since that peer could then verify
nothing this node signs until its operator re-imports the card by hand. The list of keys, with their validity, lives in ``node_meta`` (``own_keys``), and every
change bumps ``card_version``: the running node then pushes its new card to every peer
(``federation/announce.py``), signed with a key the peer already trusts. A revoked key is listed
as revoked so peers refuse it from then on. Vouchers keep naming the key that signed them and
stay verifiable with it, revoked or not, by anyone holding the card.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path

from node import errors
from node.domain.model import OwnKey
from node.keys import NodeKey
from node.store import ledger, peers, registry
from node.store.engine import Books

KEYS_DIR = "keys"


def load_txn(conn: sqlite3.Connection, current: NodeKey) -> list[OwnKey]:
    raw = registry.get_meta(conn, "own_keys")
    if raw is None:
        return [OwnKey(current.key_id, current.public_key, 0)]
    return [
        OwnKey(
            k["key_id"],
            bytes.fromhex(k["public_key"]),
            k["not_before"],
            k["not_after"],
            k["revoked"],
        )
        for k in json.loads(raw)
    ]


def _save_txn(conn: sqlite3.Connection, keys: list[OwnKey]) -> int:
    registry.set_meta(
        conn,
        "own_keys",
        json.dumps(
            [
                {
                    "key_id": k.key_id,
                    "public_key": k.public_key.hex(),
                    "not_before": k.not_before,
                    "not_after": k.not_after,
                    "revoked": k.revoked,
                }
                for k in keys
            ]
        ),
    )
    return bump_card_version_txn(conn)


def bump_card_version_txn(conn: sqlite3.Connection) -> int:
    """The card changed: a new version, which the serving node pushes to every peer."""
    version = int(registry.get_meta(conn, "card_version") or "0") + 1
    registry.set_meta(conn, "card_version", str(version))
    return version


def card_version_txn(conn: sqlite3.Connection) -> int:
    return int(registry.get_meta(conn, "card_version") or "0")


def seed_for(data_dir: Path, current: NodeKey, key_id: str) -> NodeKey | None:
    if key_id == current.key_id:
        return current
    path = data_dir / KEYS_DIR / f"{key_id}.key"
    return NodeKey.load(path) if path.exists() else None


def announcing_key(keys: list[OwnKey], data_dir: Path, current: NodeKey, now: int) -> NodeKey:
    """The oldest key that is still valid and not revoked: the one every peer already knows."""
    for k in sorted(keys, key=lambda k: k.not_before):
        valid = not k.revoked and k.not_before <= now and (k.not_after == 0 or now < k.not_after)
        seed = seed_for(data_dir, current, k.key_id) if valid else None
        if seed is not None:
            return seed
    return current


def retiring_txn(conn: sqlite3.Connection) -> dict[str, int]:
    """Retired keys still without an end: key id → the overlap to give them, ms."""
    return {k: int(v) for k, v in json.loads(registry.get_meta(conn, "retiring") or "{}").items()}


def unacknowledged_txn(conn: sqlite3.Connection) -> list[str]:
    """Peers that have not acknowledged this node's current card."""
    version = card_version_txn(conn)
    return [
        p.region
        for p in peers.list_peers(conn)
        if int(registry.get_meta(conn, f"card_announced:{p.region}") or "0") < version
    ]


def finish_retiring_txn(conn: sqlite3.Connection, current: NodeKey, now: int) -> int:
    """Give every retiring key its end (now + its overlap) once no peer lacks the current
    card; returns the new card version, or 0 if nothing changed."""
    retiring = retiring_txn(conn)
    if not retiring or unacknowledged_txn(conn):
        return 0
    keys = [
        dataclasses.replace(k, not_after=now + retiring[k.key_id])
        if k.key_id in retiring and k.not_after == 0
        else k
        for k in load_txn(conn, current)
    ]
    registry.set_meta(conn, "retiring", "{}")
    version = _save_txn(conn, keys)
    for key_id, overlap in sorted(retiring.items()):
        ledger.audit(
            conn,
            now,
            "system:keys",
            "key.retire",
            key_id,
            not_after=now + overlap,
            card_version=version,
            reason="every peer acknowledged the card listing its successor",
        )
    return version


def rotate(
    db: Books, data_dir: Path, key_path: Path, overlap_ms: int, now: int, actor: str
) -> tuple[str, str]:
    """Start signing with a new key. The old one keeps no end until every peer has
    acknowledged the new card, then stays valid ``overlap_ms`` more."""
    current = NodeKey.load(key_path)
    fresh = NodeKey.generate()
    keys_dir = data_dir / KEYS_DIR
    keys_dir.mkdir(mode=0o700, exist_ok=True)

    def txn(conn: sqlite3.Connection) -> None:
        keys = load_txn(conn, current)
        keys.append(OwnKey(fresh.key_id, fresh.public_key, now))
        registry.set_meta(
            conn, "retiring", json.dumps({**retiring_txn(conn), current.key_id: overlap_ms})
        )
        version = _save_txn(conn, keys)
        ledger.audit(
            conn,
            now,
            actor,
            "key.rotate",
            current.key_id,
            new_key_id=fresh.key_id,
            overlap_ms=overlap_ms,
            card_version=version,
        )
        finish_retiring_txn(conn, current, now)  # no peer to wait for: the end is set now

    retired = keys_dir / f"{current.key_id}.key"
    os.link(key_path, retired)  # the old seed stays readable (0600) for announcements
    tmp = data_dir / "node.key.new"
    tmp.unlink(missing_ok=True)
    fresh.save(tmp)
    db.run_sync("key_rotate", txn)
    os.replace(tmp, key_path)
    return current.key_id, fresh.key_id


def revoke(
    db: Books, key_path: Path, key_id: str, now: int, actor: str, force: bool = False
) -> None:
    """Revoke one of this node's retired keys. Refused while a peer has not acknowledged the
    current card (it would verify nothing this node signs), unless ``force``."""
    current = NodeKey.load(key_path)
    if key_id == current.key_id:
        raise errors.InvalidRequest("that is the current signing key: rotate first, then revoke it")

    def txn(conn: sqlite3.Connection) -> None:
        keys = load_txn(conn, current)
        if key_id not in {k.key_id for k in keys}:
            raise errors.NotFound(f"no own key {key_id}")
        behind = unacknowledged_txn(conn)
        if behind and not force:
            raise errors.InvalidRequest(
                f"peer(s) {', '.join(behind)} have not acknowledged this node's current card "
                f"(suanli peer status): revoking {key_id} now would cut them off, refusing "
                "everything this node signs until their operators re-import its card by hand. "
                "Wait until they have, or pass --force to do it anyway"
            )
        registry.set_meta(
            conn,
            "retiring",
            json.dumps({k: v for k, v in retiring_txn(conn).items() if k != key_id}),
        )
        version = _save_txn(
            conn,
            [
                OwnKey(
                    k.key_id,
                    k.public_key,
                    k.not_before,
                    k.not_after,
                    k.revoked or k.key_id == key_id,
                )
                for k in keys
            ],
        )
        ledger.audit(conn, now, actor, "key.revoke", key_id, card_version=version, forced=force)

    db.run_sync("key_revoke", txn)
