"""The catalog of compute offers: this city's own and every peer's (issue 20), and how far
this node holds each origin's changes.

``catalog_offers`` keeps one row per offer, its newest version, with the exact signed record
it came in, so that the node can hand it on unchanged (anti-entropy). A withdrawal is kept
too, as a tombstone: it is what stops an old version from coming back. ``catalog_origins``
says, per origin, through which sequence number every change is held (``complete_through``)
and the highest number seen; ``offer_pushes`` says, per peer, through which number of this
city's own changes the peer has acknowledged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from node.domain.offers import Filters, Offer, Signed, Terms

# Version 20, one text for both engines: ``{int}`` and ``{blob}`` are each engine's types.
V20 = """
CREATE TABLE catalog_offers (
    origin TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    seq {int} NOT NULL CHECK (seq > 0),
    version {int} NOT NULL CHECK (version > 0),
    withdrawn {int} NOT NULL CHECK (withdrawn IN (0, 1)),
    provider_id TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    provider_kind TEXT NOT NULL,
    compute_class TEXT NOT NULL,
    accelerator TEXT NOT NULL,
    cards {int} NOT NULL CHECK (cards > 0),
    price_fen {int} NOT NULL CHECK (price_fen > 0),
    min_card_hours {int} NOT NULL CHECK (min_card_hours > 0),
    available_from {int} NOT NULL,
    available_until {int} NOT NULL,
    expires_at {int} NOT NULL,
    data_centre_region TEXT NOT NULL,
    domestic_chips {int} NOT NULL CHECK (domestic_chips IN (0, 1)),
    security_level {int} NOT NULL,
    contact TEXT NOT NULL,
    published_at {int} NOT NULL,
    record {blob} NOT NULL,
    key_id TEXT NOT NULL,
    signature {blob} NOT NULL,
    received_at {int} NOT NULL,
    PRIMARY KEY (origin, offer_id)
);
CREATE UNIQUE INDEX catalog_offers_seq ON catalog_offers (origin, seq);
CREATE INDEX catalog_offers_class_price ON catalog_offers (compute_class, price_fen);
CREATE INDEX catalog_offers_price ON catalog_offers (price_fen);
CREATE INDEX catalog_offers_city_price ON catalog_offers (data_centre_region, price_fen);
CREATE INDEX catalog_offers_accelerator_price ON catalog_offers (accelerator, price_fen);
CREATE INDEX catalog_offers_provider ON catalog_offers (origin, provider_id);
CREATE TABLE catalog_origins (
    origin TEXT PRIMARY KEY,
    complete_through {int} NOT NULL CHECK (complete_through >= 0),
    highest_seen {int} NOT NULL CHECK (highest_seen >= complete_through),
    updated_at {int} NOT NULL
);
CREATE TABLE offer_pushes (
    peer TEXT PRIMARY KEY,
    acked_through {int} NOT NULL CHECK (acked_through >= 0),
    updated_at {int} NOT NULL
);
CREATE TABLE offer_orders (
    id TEXT PRIMARY KEY,
    side TEXT NOT NULL CHECK (side IN ('holder', 'provider', 'local')),
    peer TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    holder_uscc TEXT NOT NULL,
    offer_origin TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    offer_version {int} NOT NULL,
    provider_id TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    compute_class TEXT NOT NULL,
    card_hours {int} NOT NULL CHECK (card_hours > 0),
    price_fen {int} NOT NULL CHECK (price_fen > 0),
    amount_fen {int} NOT NULL CHECK (amount_fen > 0),
    note TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('requested', 'accepted', 'declined', 'refused')),
    order_id TEXT,
    reason TEXT,
    request_message_id TEXT,
    answer_message_id TEXT,
    created_at {int} NOT NULL,
    decided_at {int},
    updated_at {int} NOT NULL
);
CREATE UNIQUE INDEX offer_orders_order ON offer_orders (offer_origin, provider_id, order_id)
    WHERE order_id IS NOT NULL;
CREATE INDEX offer_orders_holder ON offer_orders (holder_id, id);
CREATE INDEX offer_orders_provider ON offer_orders (provider_id, id);
CREATE INDEX offer_orders_offer ON offer_orders (offer_origin, offer_id)
"""

SQLITE_V20 = V20.format(int="INTEGER", blob="BLOB")
PG_V20 = V20.format(int="BIGINT", blob="BYTEA")

COLUMNS = (
    "origin, offer_id, seq, version, withdrawn, provider_id, provider_name, provider_kind, "
    "compute_class, accelerator, cards, price_fen, min_card_hours, available_from, "
    "available_until, expires_at, data_centre_region, domestic_chips, security_level, contact, "
    "published_at"
)
SIGNED = ", record, key_id, signature"


def _offer(row: Sequence[Any]) -> Offer:
    return Offer(
        origin=row[0],
        offer_id=row[1],
        seq=int(row[2]),
        version=int(row[3]),
        withdrawn=bool(row[4]),
        provider_id=row[5],
        provider_name=row[6],
        provider_kind=row[7],
        terms=Terms(
            compute_class=row[8],
            accelerator=row[9],
            cards=int(row[10]),
            price_fen=int(row[11]),
            min_card_hours=int(row[12]),
            available_from=int(row[13]),
            available_until=int(row[14]),
            expires_at=int(row[15]),
            data_centre_region=row[16],
            domestic_chips=bool(row[17]),
            security_level=int(row[18]),
            contact=row[19],
        ),
        published_at=int(row[20]),
    )


def _signed(row: Sequence[Any]) -> Signed:
    return Signed(_offer(row), bytes(row[21]), row[22], bytes(row[23]))


def get_offer(conn: sqlite3.Connection, origin: str, offer_id: str) -> Offer | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM catalog_offers WHERE origin = ? AND offer_id = ?",
        (origin, offer_id),
    ).fetchone()
    return None if row is None else _offer(row)


def current_seqs(conn: sqlite3.Connection, origin: str, offer_ids: Iterable[str]) -> dict[str, int]:
    """The sequence number held for each of ``offer_ids`` of ``origin`` (absent: none)."""
    ids = list(dict.fromkeys(offer_ids))
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for offer_id, seq in conn.execute(
            f"SELECT offer_id, seq FROM catalog_offers WHERE origin = ? AND offer_id IN ({marks})",
            (origin, *chunk),
        ):
            out[offer_id] = int(seq)
    return out


def put_offer(conn: sqlite3.Connection, signed: Signed, now: int) -> None:
    """Keep ``signed`` as its offer's current version (the caller checked it is newer)."""
    o, t = signed.offer, signed.offer.terms
    conn.execute(
        f"INSERT INTO catalog_offers ({COLUMNS}{SIGNED}, received_at) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (origin, offer_id) DO UPDATE SET seq = excluded.seq, "
        "version = excluded.version, withdrawn = excluded.withdrawn, "
        "provider_id = excluded.provider_id, provider_name = excluded.provider_name, "
        "provider_kind = excluded.provider_kind, compute_class = excluded.compute_class, "
        "accelerator = excluded.accelerator, cards = excluded.cards, "
        "price_fen = excluded.price_fen, min_card_hours = excluded.min_card_hours, "
        "available_from = excluded.available_from, available_until = excluded.available_until, "
        "expires_at = excluded.expires_at, data_centre_region = excluded.data_centre_region, "
        "domestic_chips = excluded.domestic_chips, security_level = excluded.security_level, "
        "contact = excluded.contact, published_at = excluded.published_at, "
        "record = excluded.record, key_id = excluded.key_id, signature = excluded.signature, "
        "received_at = excluded.received_at",
        (
            o.origin,
            o.offer_id,
            o.seq,
            o.version,
            int(o.withdrawn),
            o.provider_id,
            o.provider_name,
            o.provider_kind,
            t.compute_class,
            t.accelerator,
            t.cards,
            t.price_fen,
            t.min_card_hours,
            t.available_from,
            t.available_until,
            t.expires_at,
            t.data_centre_region,
            int(t.domestic_chips),
            t.security_level,
            t.contact,
            o.published_at,
            signed.record,
            signed.key_id,
            signed.signature,
            now,
        ),
    )


def signed_since(conn: sqlite3.Connection, origin: str, after: int, limit: int) -> list[Signed]:
    """The current versions of ``origin``'s offers numbered after ``after``, by number."""
    rows = conn.execute(
        f"SELECT {COLUMNS}{SIGNED} FROM catalog_offers WHERE origin = ? AND seq > ? "
        "ORDER BY seq LIMIT ?",
        (origin, after, limit),
    ).fetchall()
    return [_signed(r) for r in rows]


def max_seq(conn: sqlite3.Connection, origin: str) -> int:
    """The highest sequence number of ``origin``'s this node holds signed (0: none)."""
    row = conn.execute("SELECT MAX(seq) FROM catalog_offers WHERE origin = ?", (origin,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def marks(
    conn: sqlite3.Connection, origins: Sequence[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Per origin (every one, or those of ``origins``): (complete_through, highest_seen)."""
    query = "SELECT origin, complete_through, highest_seen FROM catalog_origins"
    if origins is None:
        rows = conn.execute(query).fetchall()
    else:
        rows = []
        for start in range(0, len(origins), 500):
            chunk = origins[start : start + 500]
            rows += conn.execute(
                f"{query} WHERE origin IN ({', '.join('?' * len(chunk))})", tuple(chunk)
            ).fetchall()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def mark_of(conn: sqlite3.Connection, origin: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT complete_through, highest_seen FROM catalog_origins WHERE origin = ?", (origin,)
    ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def set_mark(
    conn: sqlite3.Connection, origin: str, complete_through: int, highest_seen: int, now: int
) -> None:
    conn.execute(
        "INSERT INTO catalog_origins (origin, complete_through, highest_seen, updated_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET "
        "complete_through = excluded.complete_through, highest_seen = excluded.highest_seen, "
        "updated_at = excluded.updated_at",
        (origin, complete_through, max(highest_seen, complete_through), now),
    )


def pushes(conn: sqlite3.Connection) -> dict[str, int]:
    """Per peer: through which of this city's sequence numbers it has acknowledged."""
    return {
        r[0]: int(r[1])
        for r in conn.execute("SELECT peer, acked_through FROM offer_pushes").fetchall()
    }


def set_pushed(conn: sqlite3.Connection, peer: str, through: int, now: int) -> None:
    conn.execute(
        "INSERT INTO offer_pushes (peer, acked_through, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (peer) DO UPDATE SET updated_at = excluded.updated_at, acked_through = "
        "CASE WHEN excluded.acked_through > offer_pushes.acked_through "
        "THEN excluded.acked_through ELSE offer_pushes.acked_through END",
        (peer, through, now),
    )


def offers_of_provider(conn: sqlite3.Connection, origin: str, provider_id: str) -> list[Offer]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM catalog_offers WHERE origin = ? AND provider_id = ? "
        "ORDER BY offer_id",
        (origin, provider_id),
    ).fetchall()
    return [_offer(r) for r in rows]


def offers_of_origin(conn: sqlite3.Connection, origin: str) -> list[Offer]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM catalog_offers WHERE origin = ? ORDER BY provider_id, offer_id",
        (origin,),
    ).fetchall()
    return [_offer(r) for r in rows]


def _where(filters: Filters, now: int) -> tuple[list[str], list[Any]]:
    where = ["withdrawn = 0", "expires_at > ?"]
    params: list[Any] = [now]
    for column, op, value in (
        ("compute_class", "=", filters.compute_class),
        ("accelerator", "=", filters.accelerator),
        ("data_centre_region", "=", filters.region),
        ("price_fen", "<=", filters.max_price_fen),
        ("cards", ">=", filters.min_cards),
        ("available_from", "<=", filters.available_from),
        ("available_until", ">=", filters.available_until),
        ("security_level", ">=", filters.min_security_level),
    ):
        if value is not None:
            where.append(f"{column} {op} ?")
            params.append(value)
    if filters.domestic_chips:
        where.append("domestic_chips = 1")
    return where, params


def cheapest(
    conn: sqlite3.Connection,
    filters: Filters,
    now: int,
    limit: int,
    *,
    classes: tuple[str, ...] | None = None,
    origins: tuple[str, ...] | None = None,
    exclude: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
    below_fen: int | None = None,
) -> list[Offer]:
    """The live offers matching ``filters``, cheapest list price first, at most ``limit``.

    ``classes`` and ``origins`` narrow to those classes and origin cities; ``exclude``
    (classes, origins) leaves out the offers of those classes in those cities; ``below_fen``
    keeps prices at most that. The service merges such slices into one order by the price
    after the voucher (node/services/catalog.py)."""
    where, params = _where(filters, now)
    if classes is not None:
        where.append(f"compute_class IN ({', '.join('?' * len(classes))})")
        params.extend(classes)
    if origins is not None:
        where.append(f"origin IN ({', '.join('?' * len(origins))})")
        params.extend(origins)
    if exclude is not None:
        ex_classes, ex_origins = exclude
        if ex_classes and ex_origins:
            where.append(
                f"NOT (compute_class IN ({', '.join('?' * len(ex_classes))}) "
                f"AND origin IN ({', '.join('?' * len(ex_origins))}))"
            )
            params.extend(ex_classes)
            params.extend(ex_origins)
    if below_fen is not None:
        where.append("price_fen <= ?")
        params.append(below_fen)
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM catalog_offers WHERE {' AND '.join(where)} "
        "ORDER BY price_fen, origin, offer_id LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_offer(r) for r in rows]


# Card-hours a live offer still has: its cards over what is left of its window.
_LEFT = (
    "cards * ((available_until - CASE WHEN available_from > :now THEN available_from "
    "ELSE :now END) / 3600000)"
)


def capacity(conn: sqlite3.Connection, now: int) -> list[tuple[str, str, int, int, int]]:
    """Live offered capacity in every city of the catalog, from the signed offers:
    (city, compute_class, offers, cards, card-hours left), by city and class."""
    return [
        (r[0], r[1], int(r[2]), int(r[3]), int(r[4]))
        for r in conn.execute(
            f"SELECT origin, compute_class, COUNT(*), SUM(cards), SUM({_LEFT}) "
            "FROM catalog_offers WHERE withdrawn = 0 AND expires_at > :now "
            "GROUP BY origin, compute_class ORDER BY origin, compute_class",
            {"now": now},
        ).fetchall()
    ]


def provider_capacity(
    conn: sqlite3.Connection, origin: str, now: int
) -> list[tuple[str, str, str, int, int, int]]:
    """This city's live offers by provider and class: (provider id, name, class, offers,
    cards, card-hours left)."""
    return [
        (r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]))
        for r in conn.execute(
            f"SELECT provider_id, MAX(provider_name), compute_class, COUNT(*), SUM(cards), "
            f"SUM({_LEFT}) FROM catalog_offers WHERE origin = :origin AND withdrawn = 0 "
            "AND expires_at > :now GROUP BY provider_id, compute_class",
            {"origin": origin, "now": now},
        ).fetchall()
    ]


def provider_orders(
    conn: sqlite3.Connection, origin: str
) -> list[tuple[str, str, int, int, int, int]]:
    """What was ordered and captured against this city's offers, by provider and class:
    (provider id, class, accepted orders, card-hours, ordered fen, captured fen). A capture
    counts when its redemption names an accepted order's id (a voucher of this city: its
    hold; of another: its remote hold)."""
    return [
        (r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in conn.execute(
            "SELECT o.provider_id, o.compute_class, COUNT(*), SUM(o.card_hours), "
            "SUM(o.amount_fen), SUM(COALESCE(h.captured_fen, 0) + COALESCE(r.captured_fen, 0)) "
            "FROM offer_orders o "
            "LEFT JOIN holds h ON h.acquirer_region = o.offer_origin "
            "AND h.provider_id = o.provider_id AND h.order_id = o.order_id "
            "AND h.state = 'captured' "
            "LEFT JOIN remote_holds r ON r.provider_id = o.provider_id "
            "AND r.order_id = o.order_id AND r.state = 'captured' "
            "WHERE o.offer_origin = ? AND o.side IN ('provider', 'local') "
            "AND o.state = 'accepted' GROUP BY o.provider_id, o.compute_class",
            (origin,),
        ).fetchall()
    ]


def own_providers_not_approved(
    conn: sqlite3.Connection, origin: str, now: int
) -> list[tuple[str, str]]:
    """This city's providers that have live offers but are no longer approved: (id, state)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT DISTINCT p.id, p.state FROM catalog_offers o JOIN providers p "
            "ON p.id = o.provider_id WHERE o.origin = ? AND o.withdrawn = 0 "
            "AND o.expires_at > ? AND p.state != 'approved'",
            (origin, now),
        ).fetchall()
    ]


def analyze(conn: sqlite3.Connection) -> None:
    """Refresh the planner's statistics of the catalog (the same statement on both engines):
    with them it picks the most selective index for a search (a city, say, over an
    accelerator model), which at 300,000 offers is the difference between a few milliseconds
    and a few hundred."""
    conn.execute("ANALYZE catalog_offers")
