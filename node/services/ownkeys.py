"""This node's own signing keys: the current one, retired ones during their overlap, revoked ones.

The current seed is ``node.key``; ``suanli key rotate`` moves it to ``keys/<key id>.key``,
writes a new ``node.key``, and gives the old key an end (``not_after``) an overlap period
ahead, so that messages and vouchers signed with it stay verifiable while peers learn the new
key. The list of keys, with their validity, lives in ``node_meta`` (``own_keys``), and every
change bumps ``card_version``: the running node then pushes its new card to every peer
(``federation/announce.py``), signed with a key the peer already trusts. A revoked key is listed
as revoked so peers refuse it from then on. Vouchers keep naming the key that signed them and
stay verifiable with it, revoked or not, by anyone holding the card.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from node import errors
from node.domain.model import OwnKey
from node.keys import NodeKey
from node.store import ledger, registry
from node.store.db import Database

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


def rotate(
    db: Database, data_dir: Path, key_path: Path, overlap_ms: int, now: int, actor: str
) -> tuple[str, str]:
    """Retire the current key (valid ``overlap_ms`` more) and start signing with a new one."""
    current = NodeKey.load(key_path)
    fresh = NodeKey.generate()
    keys_dir = data_dir / KEYS_DIR
    keys_dir.mkdir(mode=0o700, exist_ok=True)

    def txn(conn: sqlite3.Connection) -> None:
        keys = load_txn(conn, current)
        updated = [
            OwnKey(
                k.key_id,
                k.public_key,
                k.not_before,
                now + overlap_ms if k.key_id == current.key_id else k.not_after,
                k.revoked,
            )
            for k in keys
        ]
        updated.append(OwnKey(fresh.key_id, fresh.public_key, now))
        version = _save_txn(conn, updated)
        ledger.audit(
            conn,
            now,
            actor,
            "key.rotate",
            current.key_id,
            new_key_id=fresh.key_id,
            old_not_after=now + overlap_ms,
            card_version=version,
        )

    retired = keys_dir / f"{current.key_id}.key"
    os.link(key_path, retired)  # the old seed stays readable (0600) for announcements
    tmp = data_dir / "node.key.new"
    tmp.unlink(missing_ok=True)
    fresh.save(tmp)
    db.run_sync("key_rotate", txn)
    os.replace(tmp, key_path)
    return current.key_id, fresh.key_id


def revoke(db: Database, key_path: Path, key_id: str, now: int, actor: str) -> None:
    current = NodeKey.load(key_path)
    if key_id == current.key_id:
        raise errors.InvalidRequest("that is the current signing key: rotate first, then revoke it")

    def txn(conn: sqlite3.Connection) -> None:
        keys = load_txn(conn, current)
        if key_id not in {k.key_id for k in keys}:
            raise errors.NotFound(f"no own key {key_id}")
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
        ledger.audit(conn, now, actor, "key.revoke", key_id, card_version=version)

    db.run_sync("key_revoke", txn)
