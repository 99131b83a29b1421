"""Peers: their cards, keys and what may travel to and from them, and the exposure to each."""

from __future__ import annotations

import json
import sqlite3

from node import errors
from node.domain.model import Peer, PeerKey
from node.store.rows import ahead


def _keys(conn: sqlite3.Connection, region: str) -> tuple[PeerKey, ...]:
    rows = conn.execute(
        "SELECT key_id, public_key, not_before, not_after, revoked FROM peer_keys WHERE region = ? ORDER BY not_before",
        (region,),
    ).fetchall()
    return tuple(PeerKey(r[0], bytes(r[1]), r[2], r[3], bool(r[4])) for r in rows)


def _peer(conn: sqlite3.Connection, row: sqlite3.Row) -> Peer:
    return Peer(
        region=row["region"],
        name=row["name"],
        endpoint=row["endpoint"],
        fingerprint=row["fingerprint"],
        outbound=bool(row["outbound"]),
        inbound=bool(row["inbound"]),
        exposure_cap_fen=row["exposure_cap_fen"],
        keys=_keys(conn, row["region"]),
        endpoints=tuple(json.loads(row["endpoints"])) if row["endpoints"] else (),
    )


def get_peer(conn: sqlite3.Connection, region: str) -> Peer:
    row = conn.execute("SELECT * FROM peers WHERE region = ?", (region,)).fetchone()
    if row is None:
        raise errors.PeerNotFound(f"{region} is not a peer of this node")
    return _peer(conn, row)


def list_peers(conn: sqlite3.Connection) -> list[Peer]:
    return [_peer(conn, r) for r in conn.execute("SELECT * FROM peers ORDER BY region").fetchall()]


def upsert_peer(conn: sqlite3.Connection, peer: Peer, card: bytes, at: int) -> None:
    conn.execute(
        "INSERT INTO peers (region, name, endpoint, endpoints, card, fingerprint, outbound, inbound, "
        "exposure_cap_fen, added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(region) DO UPDATE SET name = excluded.name, endpoint = excluded.endpoint, "
        "endpoints = excluded.endpoints, card = excluded.card, "
        "fingerprint = excluded.fingerprint, updated_at = excluded.updated_at",
        (
            peer.region,
            peer.name,
            peer.endpoint,
            json.dumps(list(peer.endpoints)) if peer.endpoints else "",
            card,
            peer.fingerprint,
            int(peer.outbound),
            int(peer.inbound),
            peer.exposure_cap_fen,
            at,
            at,
        ),
    )
    for key in peer.keys:
        conn.execute(
            "INSERT INTO peer_keys (region, key_id, public_key, not_before, not_after, revoked) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(region, key_id) DO UPDATE SET not_after = excluded.not_after, "
            "revoked = CASE WHEN excluded.revoked > peer_keys.revoked "
            "THEN excluded.revoked ELSE peer_keys.revoked END",
            (
                peer.region,
                key.key_id,
                key.public_key,
                key.not_before,
                key.not_after,
                int(key.revoked),
            ),
        )


PEER_POLICY = "SELECT outbound, exposure_cap_fen FROM peers WHERE region = ?"
PEER_INBOUND = "SELECT inbound FROM peers WHERE region = ?"
EXPOSURE = "SELECT COALESCE(SUM(fen), 0) FROM exposure WHERE acquirer = ? AND window_id IN ('', ?)"


def peer_policy_ahead(conn: sqlite3.Connection, region: str) -> None:
    ahead(conn, PEER_POLICY, (region,))


def peer_inbound_ahead(conn: sqlite3.Connection, region: str) -> None:
    ahead(conn, PEER_INBOUND, (region,))


def exposure_ahead(conn: sqlite3.Connection, acquirer: str, window: str) -> None:
    ahead(conn, EXPOSURE, (acquirer, window))


def peer_policy(conn: sqlite3.Connection, region: str) -> tuple[bool, int]:
    """(outbound allowed, exposure cap) for a peer, without loading its keys."""
    row = conn.execute(PEER_POLICY, (region,)).fetchone()
    if row is None:
        raise errors.PeerNotFound(f"{region} is not a peer of this node")
    return bool(row[0]), int(row[1])


def peer_inbound(conn: sqlite3.Connection, region: str) -> bool:
    """Whether this city's providers accept the peer's vouchers (without loading its keys)."""
    row = conn.execute(PEER_INBOUND, (region,)).fetchone()
    if row is None:
        raise errors.PeerNotFound(f"{region} is not a peer of this node")
    return bool(row[0])


def set_peer_policy(
    conn: sqlite3.Connection, region: str, outbound: bool, inbound: bool, cap: int, at: int
) -> None:
    cur = conn.execute(
        "UPDATE peers SET outbound = ?, inbound = ?, exposure_cap_fen = ?, updated_at = ? "
        "WHERE region = ?",
        (int(outbound), int(inbound), cap, at, region),
    )
    if cur.rowcount != 1:
        raise errors.PeerNotFound(f"{region} is not a peer of this node")


def revoke_peer_key(conn: sqlite3.Connection, region: str, key_id: str) -> None:
    cur = conn.execute(
        "UPDATE peer_keys SET revoked = 1 WHERE region = ? AND key_id = ?", (region, key_id)
    )
    if cur.rowcount != 1:
        raise errors.NotFound(f"no key {key_id} for peer {region}")


def exposure(conn: sqlite3.Connection, acquirer: str, window: str) -> int:
    """What this issuer may owe the acquirer's city in a window: open holds plus captures."""
    row = conn.execute(
        EXPOSURE,
        (acquirer, window),
    ).fetchone()
    return int(row[0])


def outbound_room(conn: sqlite3.Connection, window: str) -> dict[str, int]:
    """For every peer this city's vouchers may go to: its exposure cap less what this city
    may owe it in ``window`` (open holds plus captures), in one read."""
    rows = conn.execute(
        "SELECT p.region, p.exposure_cap_fen - COALESCE(SUM(e.fen), 0) FROM peers p "
        "LEFT JOIN exposure e ON e.acquirer = p.region AND e.window_id IN ('', ?) "
        "WHERE p.outbound = 1 GROUP BY p.region, p.exposure_cap_fen",
        (window,),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def add_exposure(conn: sqlite3.Connection, acquirer: str, window: str, fen: int) -> None:
    """Keep the exposure cache: ``window`` '' for open holds, else captures in that window."""
    if fen:
        conn.execute(
            "INSERT INTO exposure (acquirer, window_id, fen) VALUES (?, ?, ?) "
            "ON CONFLICT(acquirer, window_id) DO UPDATE SET fen = exposure.fen + excluded.fen",
            (acquirer, window, fen),
        )


def signature(conn: sqlite3.Connection) -> tuple[int, ...]:
    """A cheap fingerprint of the peer tables: it changes whenever an operator changes a peer."""
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM peers), (SELECT COALESCE(MAX(updated_at), 0) FROM peers), "
        "(SELECT COUNT(*) FROM peer_keys), (SELECT COALESCE(SUM(revoked), 0) FROM peer_keys), "
        "(SELECT COALESCE(SUM(outbound * 2 + inbound + exposure_cap_fen), 0) FROM peers)"
    ).fetchone()
    return tuple(int(v) for v in row)
