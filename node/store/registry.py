"""Holders, providers, tokens, policies and node metadata."""

from __future__ import annotations

import json
import sqlite3

from node import errors
from node.domain.model import Holder, Provider
from node.store.rows import ahead, from_row, insert, limit_of


def _holder(row: sqlite3.Row) -> Holder:
    return from_row(Holder, row)


def _provider(row: sqlite3.Row) -> Provider:
    return from_row(Provider, row, related_uscc=tuple(json.loads(row["related_uscc"])))


def insert_holder(conn: sqlite3.Connection, holder: Holder) -> None:
    if conn.execute("SELECT 1 FROM holders WHERE uscc = ?", (holder.uscc,)).fetchone():
        raise errors.AlreadyExists(f"a holder with USCC {holder.uscc} is already registered")
    insert(conn, "holders", holder)


HOLDER = "SELECT * FROM holders WHERE id = ?"
PROVIDER = "SELECT * FROM providers WHERE id = ?"


def get_holder_ahead(conn: sqlite3.Connection, holder_id: str) -> None:
    ahead(conn, HOLDER, (holder_id,))


def get_provider_ahead(conn: sqlite3.Connection, provider_id: str) -> None:
    ahead(conn, PROVIDER, (provider_id,))


def get_holder(conn: sqlite3.Connection, holder_id: str) -> Holder:
    row = conn.execute(HOLDER, (holder_id,)).fetchone()
    if row is None:
        raise errors.HolderNotFound(f"no holder {holder_id}")
    return _holder(row)


def list_holders(conn: sqlite3.Connection, limit: int, after: str) -> list[Holder]:
    rows = conn.execute(
        "SELECT * FROM holders WHERE id > ? ORDER BY id LIMIT ?", (after, limit_of(limit))
    ).fetchall()
    return [_holder(r) for r in rows]


def insert_provider(conn: sqlite3.Connection, provider: Provider) -> None:
    if conn.execute("SELECT 1 FROM providers WHERE uscc = ?", (provider.uscc,)).fetchone():
        raise errors.AlreadyExists(f"a provider with USCC {provider.uscc} is already registered")
    insert(conn, "providers", provider, related_uscc=json.dumps(list(provider.related_uscc)))


def get_provider(conn: sqlite3.Connection, provider_id: str) -> Provider:
    row = conn.execute(PROVIDER, (provider_id,)).fetchone()
    if row is None:
        raise errors.ProviderNotFound(f"no provider {provider_id}")
    return _provider(row)


def provider_usccs(conn: sqlite3.Connection, provider_id: str | None) -> dict[str, str]:
    """Provider id → USCC: every provider's, or one's."""
    rows = conn.execute(
        "SELECT id, uscc FROM providers WHERE CAST(? AS TEXT) IS NULL OR id = ?",
        (provider_id, provider_id),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def list_providers(conn: sqlite3.Connection, limit: int, after: str) -> list[Provider]:
    rows = conn.execute(
        "SELECT * FROM providers WHERE id > ? ORDER BY id LIMIT ?", (after, limit_of(limit))
    ).fetchall()
    return [_provider(r) for r in rows]


def set_provider_state(conn: sqlite3.Connection, provider_id: str, state: str) -> None:
    conn.execute("UPDATE providers SET state = ? WHERE id = ?", (state, provider_id))


def set_provider_related(
    conn: sqlite3.Connection, provider_id: str, related: tuple[str, ...]
) -> None:
    conn.execute(
        "UPDATE providers SET related_uscc = ? WHERE id = ?",
        (json.dumps(list(related)), provider_id),
    )


# Tokens -------------------------------------------------------------------------------------


def is_dishonest(conn: sqlite3.Connection, uscc: str) -> bool:
    return conn.execute("SELECT 1 FROM dishonesty WHERE uscc = ?", (uscc,)).fetchone() is not None


def dishonesty(conn: sqlite3.Connection, limit: int, after: str) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in conn.execute(
            "SELECT uscc, reason, added_by, added_at FROM dishonesty WHERE uscc > ? "
            "ORDER BY uscc LIMIT ?",
            (after, limit_of(limit)),
        )
    ]


def add_dishonest(conn: sqlite3.Connection, uscc: str, reason: str, by: str, at: int) -> bool:
    """False when the code is listed already (its entry is kept as it was)."""
    return (
        conn.execute(
            "INSERT INTO dishonesty (uscc, reason, added_by, added_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (uscc, reason, by, at),
        ).rowcount
        == 1
    )


def remove_dishonest(conn: sqlite3.Connection, uscc: str) -> bool:
    return conn.execute("DELETE FROM dishonesty WHERE uscc = ?", (uscc,)).rowcount == 1


def insert_token(
    conn: sqlite3.Connection,
    token_id: str,
    role: str,
    subject_id: str | None,
    token_sha256: str,
    label: str,
    at: int,
) -> None:
    conn.execute(
        "INSERT INTO tokens (id, role, subject_id, token_sha256, label, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token_id, role, subject_id, token_sha256, label, at),
    )


def find_token(conn: sqlite3.Connection, token_sha256: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, role, subject_id, label FROM tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
        (token_sha256,),
    ).fetchone()
    return row


def list_tokens(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, role, subject_id, label, created_at, revoked_at FROM tokens ORDER BY created_at, id"
    ).fetchall()


def revoke_token(conn: sqlite3.Connection, token_id: str, at: int) -> None:
    cur = conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, token_id)
    )
    if cur.rowcount == 0:
        raise errors.TokenNotFound(f"no active token {token_id}")


# Policies and metadata -----------------------------------------------------------------------


def insert_policy(
    conn: sqlite3.Connection, year: int, source: str, sha256: str, at: int, actor: str
) -> int:
    row = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM policies WHERE fiscal_year = ?", (year,)
    ).fetchone()
    version = int(row[0]) + 1
    conn.execute(
        "INSERT INTO policies (fiscal_year, version, source, sha256, loaded_at, loaded_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (year, version, source, sha256, at, actor),
    )
    return version


def latest_policies(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT p.* FROM policies p JOIN (SELECT fiscal_year, MAX(version) AS v FROM policies "
        "GROUP BY fiscal_year) m ON p.fiscal_year = m.fiscal_year AND p.version = m.v "
        "ORDER BY p.fiscal_year"
    ).fetchall()


def policy_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM policies").fetchone()[0])


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM node_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO node_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
