"""Peers and their keys, the issuer's inbox, and the acquirer's outbox, remote holds, receipts."""

from __future__ import annotations

import sqlite3
from typing import Any

from node import errors
from node.domain.model import Peer, PeerKey, RemoteHold
from node.store.rows import from_row, insert


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
        "INSERT INTO peers (region, name, endpoint, card, fingerprint, outbound, inbound, exposure_cap_fen, "
        "added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(region) DO UPDATE SET "
        "name = excluded.name, endpoint = excluded.endpoint, card = excluded.card, "
        "fingerprint = excluded.fingerprint, updated_at = excluded.updated_at",
        (
            peer.region,
            peer.name,
            peer.endpoint,
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
            "revoked = MAX(peer_keys.revoked, excluded.revoked)",
            (
                peer.region,
                key.key_id,
                key.public_key,
                key.not_before,
                key.not_after,
                int(key.revoked),
            ),
        )


def peer_policy(conn: sqlite3.Connection, region: str) -> tuple[bool, int]:
    """(outbound allowed, exposure cap) for a peer, without loading its keys."""
    row = conn.execute(
        "SELECT outbound, exposure_cap_fen FROM peers WHERE region = ?", (region,)
    ).fetchone()
    if row is None:
        raise errors.PeerNotFound(f"{region} is not a peer of this node")
    return bool(row[0]), int(row[1])


def peer_inbound(conn: sqlite3.Connection, region: str) -> bool:
    """Whether this city's providers accept the peer's vouchers (without loading its keys)."""
    row = conn.execute("SELECT inbound FROM peers WHERE region = ?", (region,)).fetchone()
    if row is None:
        raise errors.PeerNotFound(f"{region} is not a peer of this node")
    return bool(row[0])


def set_peer_policy(
    conn: sqlite3.Connection, region: str, outbound: bool, inbound: bool, cap: int
) -> None:
    cur = conn.execute(
        "UPDATE peers SET outbound = ?, inbound = ?, exposure_cap_fen = ? WHERE region = ?",
        (int(outbound), int(inbound), cap, region),
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
        "SELECT COALESCE(SUM(fen), 0) FROM exposure WHERE acquirer = ? AND window_id IN ('', ?)",
        (acquirer, window),
    ).fetchone()
    return int(row[0])


def add_exposure(conn: sqlite3.Connection, acquirer: str, window: str, fen: int) -> None:
    """Keep the exposure cache: ``window`` '' for open holds, else captures in that window."""
    if fen:
        conn.execute(
            "INSERT INTO exposure (acquirer, window_id, fen) VALUES (?, ?, ?) "
            "ON CONFLICT(acquirer, window_id) DO UPDATE SET fen = fen + excluded.fen",
            (acquirer, window, fen),
        )


# Issuer side: the inbox ---------------------------------------------------------------------


def inbox_get(conn: sqlite3.Connection, origin: str, message_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT type, payload_sha256, reply, hold_id FROM inbox WHERE origin = ? AND message_id = ?",
        (origin, message_id),
    ).fetchone()
    return row


def inbox_put(
    conn: sqlite3.Connection,
    origin: str,
    message_id: str,
    kind: int,
    payload_sha256: str,
    reply: bytes,
    hold_id: str | None,
    at: int,
) -> None:
    conn.execute(
        "INSERT INTO inbox (origin, message_id, type, payload_sha256, reply, hold_id, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (origin, message_id, kind, payload_sha256, reply, hold_id, at),
    )


# Acquirer side ------------------------------------------------------------------------------


def insert_remote_hold(conn: sqlite3.Connection, hold: RemoteHold) -> None:
    insert(conn, "remote_holds", hold)


def get_remote_hold(conn: sqlite3.Connection, hold_id: str) -> RemoteHold:
    row = conn.execute("SELECT * FROM remote_holds WHERE id = ?", (hold_id,)).fetchone()
    if row is None:
        raise errors.HoldNotFound(f"no hold {hold_id}")
    return from_row(RemoteHold, row)


def remote_hold_for_order(
    conn: sqlite3.Connection, provider_id: str, order_id: str
) -> RemoteHold | None:
    row = conn.execute(
        "SELECT * FROM remote_holds WHERE provider_id = ? AND order_id = ? AND state != 'refused'",
        (provider_id, order_id),
    ).fetchone()
    return None if row is None else from_row(RemoteHold, row)


def list_remote_holds(
    conn: sqlite3.Connection, provider_id: str | None, limit: int, after: str
) -> list[RemoteHold]:
    if provider_id is None:
        rows = conn.execute(
            "SELECT * FROM remote_holds WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
    else:
        rows = conn.execute(
            "SELECT * FROM remote_holds WHERE provider_id = ? AND id > ? ORDER BY id LIMIT ?",
            (provider_id, after, limit),
        )
    return [from_row(RemoteHold, r) for r in rows.fetchall()]


def update_remote_hold(conn: sqlite3.Connection, hold_id: str, **columns: object) -> None:
    allowed = {
        "state",
        "amount_fen",
        "captured_fen",
        "issuer_hold_id",
        "voucher_id",
        "expires_at",
        "settlement_window",
        "refusal_code",
        "refusal_message",
        "wanted",
        "wanted_fen",
        "closed_at",
        "payout_window",
        "holder_uscc",
    }
    if not columns or set(columns) - allowed:
        raise ValueError(f"bad remote hold columns {sorted(columns)}")
    sets = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE remote_holds SET {sets} WHERE id = ?", (*columns.values(), hold_id))


def outbox_put(
    conn: sqlite3.Connection,
    message_id: str,
    peer: str,
    kind: int,
    payload: bytes,
    remote_hold_id: str | None,
    at: int,
    first_attempt_at: int,
) -> dict[str, Any]:
    """Write a message's intent; returns the row as written (for an immediate first attempt)."""
    conn.execute(
        "INSERT INTO outbox (message_id, peer, type, payload, remote_hold_id, state, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
        (message_id, peer, kind, payload, remote_hold_id, first_attempt_at, at),
    )
    return {
        "message_id": message_id,
        "peer": peer,
        "type": kind,
        "payload": payload,
        "remote_hold_id": remote_hold_id,
        "state": "pending",
        "attempts": 0,
    }


def outbox_get(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM outbox WHERE message_id = ?", (message_id,)
    ).fetchone()
    if row is None:
        raise errors.NotFound(f"no outbox message {message_id}")
    return row


def outbox_due(conn: sqlite3.Connection, peer: str, now: int, limit: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM outbox WHERE state = 'pending' AND peer = ? AND next_attempt_at <= ? "
        "ORDER BY created_at, message_id LIMIT ?",
        (peer, now, limit),
    ).fetchall()


def outbox_next_due(conn: sqlite3.Connection, peer: str) -> int | None:
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND peer = ?", (peer,)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def outbox_retry_later(conn: sqlite3.Connection, message_id: str, at: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
        "WHERE message_id = ? AND state = 'pending'",
        (at, error[:500], message_id),
    )


def outbox_done(conn: sqlite3.Connection, message_id: str, at: int) -> bool:
    """Mark a message answered. Its payload goes: an AUTHORIZE or REDEEM carries the
    provider's one-time code, which a refusal leaves valid, and nothing reads an answered
    message again (the hold keeps the code's SHA-256, the receipt is kept as evidence)."""
    cur = conn.execute(
        "UPDATE outbox SET state = 'done', done_at = ?, attempts = attempts + 1, payload = X'' "
        "WHERE message_id = ? AND state = 'pending'",
        (at, message_id),
    )
    return cur.rowcount == 1


def outbox_depth(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """(peer, pending messages, oldest created_at) per peer with anything pending."""
    rows = conn.execute(
        "SELECT peer, COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending' GROUP BY peer"
    ).fetchall()
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


def put_receipt(
    conn: sqlite3.Connection,
    message_id: str,
    remote_hold_id: str,
    kind: int,
    envelope: bytes,
    at: int,
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO receipts (message_id, remote_hold_id, type, envelope, received_at) VALUES (?, ?, ?, ?, ?)",
        (message_id, remote_hold_id, kind, envelope, at),
    )


def expire_remote_holds(conn: sqlite3.Connection, now: int) -> int:
    cur = conn.execute(
        "UPDATE remote_holds SET state = 'expired', closed_at = ? "
        "WHERE state = 'held' AND wanted IS NULL AND expires_at <= ?",
        (now, now),
    )
    return cur.rowcount
