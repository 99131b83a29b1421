"""The PostgreSQL schema (node/store/pg.py): the same tables, columns, keys, checks and indexes
as SQLite's at the same version, in PostgreSQL's dialect (BIGINT for INTEGER, BYTEA for BLOB,
identity columns for AUTOINCREMENT), and the running totals' triggers in PL/pgSQL.

PostgreSQL support begins at schema version 18: an empty database is created at that version
in one transaction (``BASELINE``). Every later version is a migration in ``MIGRATIONS`` here
*and* in ``node/store/schema.py``, with the same number; the version is kept in
``schema_version``. ``tests/test_pg.py`` holds the two schemas to each other, table by table
and column by column, so a migration written for one engine only fails the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from node.store.catalog import PG_V20
from node.store.db import SchemaTooNew
from node.store.schema import SCHEMA_VERSION

logger = logging.getLogger(__name__)

BASELINE_VERSION = 18
# Advisory lock keys: (namespace, what). One database holds one city's books.
LOCK_SPACE = 0x5375616E  # "Suan"
LEASE_KEY = 1  # session lock on the active node's write connection (node/store/pg.py)
WRITE_KEY = 2  # transaction lock taken by every write transaction
MIGRATE_KEY = 3  # nodes starting together migrate in turn

# Unix milliseconds to a China Standard Time month ('2026-03'), as SQLite's
# strftime('%Y-%m', ms / 1000 + 8 * 3600, 'unixepoch') computes it.
MONTH_FUNCTION = """
CREATE FUNCTION suanli_month(ms BIGINT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT to_char(to_timestamp(ms / 1000 + 8 * 3600) AT TIME ZONE 'UTC', 'YYYY-MM')
$$;
"""

TABLES = """
CREATE TABLE node_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE policies (
    fiscal_year BIGINT NOT NULL,
    version BIGINT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    loaded_at BIGINT NOT NULL,
    loaded_by TEXT NOT NULL,
    PRIMARY KEY (fiscal_year, version)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'holder', 'provider')),
    subject_id TEXT,
    token_sha256 TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE holders (
    id TEXT PRIMARY KEY,
    uscc TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    region TEXT NOT NULL,
    uscc_override TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    uscc TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('computing_centre', 'matchmaking_partner')),
    region TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'suspended')),
    related_uscc TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL REFERENCES holders(id),
    fiscal_year BIGINT NOT NULL,
    compute_class TEXT NOT NULL,
    estimated_amount_fen BIGINT NOT NULL CHECK (estimated_amount_fen > 0),
    provider_id TEXT REFERENCES providers(id),
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('issued', 'declined')),
    ratio_bp BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    reasons TEXT NOT NULL,
    voucher_id TEXT,
    policy_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX decisions_holder ON decisions(holder_id, created_at);

CREATE TABLE vouchers (
    id TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL REFERENCES holders(id),
    fiscal_year BIGINT NOT NULL,
    compute_class TEXT NOT NULL,
    ratio_bp BIGINT NOT NULL CHECK (ratio_bp BETWEEN 0 AND 10000),
    face_fen BIGINT NOT NULL CHECK (face_fen > 0),
    available_fen BIGINT NOT NULL CHECK (available_fen >= 0),
    held_fen BIGINT NOT NULL CHECK (held_fen >= 0),
    captured_fen BIGINT NOT NULL CHECK (captured_fen >= 0),
    reclaimed_fen BIGINT NOT NULL CHECK (reclaimed_fen >= 0),
    state TEXT NOT NULL CHECK (state IN ('active', 'expired', 'revoked')),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions(id),
    record BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    CHECK (face_fen = available_fen + held_fen + captured_fen + reclaimed_fen)
);

CREATE INDEX vouchers_holder ON vouchers(holder_id);

CREATE INDEX vouchers_expiry ON vouchers(expires_at) WHERE state = 'active';

CREATE TABLE authorizations (
    id TEXT PRIMARY KEY,
    voucher_id TEXT NOT NULL REFERENCES vouchers(id),
    holder_id TEXT NOT NULL REFERENCES holders(id),
    provider_region TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    max_fen BIGINT NOT NULL CHECK (max_fen > 0),
    code_sha256 TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'used', 'expired', 'cancelled')),
    hold_id TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX authorizations_voucher ON authorizations(voucher_id);

CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    voucher_id TEXT NOT NULL REFERENCES vouchers(id),
    acquirer_region TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    authorization_id TEXT NOT NULL UNIQUE REFERENCES authorizations(id),
    order_id TEXT NOT NULL,
    order_amount_fen BIGINT NOT NULL CHECK (order_amount_fen > 0),
    compute_class TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    captured_fen BIGINT NOT NULL DEFAULT 0 CHECK (captured_fen >= 0 AND captured_fen <= amount_fen),
    state TEXT NOT NULL CHECK (state IN ('held', 'captured', 'voided', 'expired')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at BIGINT,
    settlement_window TEXT,
    UNIQUE (acquirer_region, provider_id, order_id)
);

CREATE INDEX holds_voucher ON holds(voucher_id);

CREATE INDEX holds_open_expiry ON holds(expires_at) WHERE state = 'held';

CREATE TABLE events (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_fen BIGINT,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX events_entity ON events(entity_id);

CREATE TABLE ledger (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    source TEXT NOT NULL,
    dest TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0)
);

CREATE INDEX ledger_ref ON ledger(ref);

CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    balance_fen BIGINT NOT NULL
);

CREATE TABLE peers (
    region TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    card BYTEA NOT NULL,
    fingerprint TEXT NOT NULL,
    outbound BIGINT NOT NULL DEFAULT 1,
    inbound BIGINT NOT NULL DEFAULT 1,
    exposure_cap_fen BIGINT NOT NULL CHECK (exposure_cap_fen >= 0),
    added_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
, endpoints TEXT NOT NULL DEFAULT '');

CREATE TABLE peer_keys (
    region TEXT NOT NULL REFERENCES peers(region),
    key_id TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,  -- 0: open-ended
    revoked BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (region, key_id)
);

CREATE TABLE inbox (
    origin TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type BIGINT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    reply BYTEA NOT NULL,
    hold_id TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (origin, message_id)
);

CREATE TABLE remote_holds (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers(id),
    issuer_region TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('hold', 'redeem')),
    code_sha256 TEXT NOT NULL,
    order_id TEXT NOT NULL,
    order_amount_fen BIGINT NOT NULL CHECK (order_amount_fen > 0),
    compute_class TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'held', 'captured', 'voided', 'expired', 'refused')),
    amount_fen BIGINT NOT NULL DEFAULT 0 CHECK (amount_fen >= 0),
    captured_fen BIGINT NOT NULL DEFAULT 0 CHECK (captured_fen >= 0 AND captured_fen <= amount_fen),
    issuer_hold_id TEXT,
    voucher_id TEXT,
    expires_at BIGINT,
    settlement_window TEXT,
    refusal_code TEXT,
    refusal_message TEXT,
    wanted TEXT CHECK (wanted IN ('capture', 'void')),
    wanted_fen BIGINT,
    created_at BIGINT NOT NULL,
    closed_at BIGINT
, payout_window TEXT, holder_uscc TEXT);

CREATE UNIQUE INDEX remote_holds_order ON remote_holds(provider_id, order_id) WHERE state != 'refused';

CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY,
    peer TEXT NOT NULL,
    type BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    remote_hold_id TEXT REFERENCES remote_holds(id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT
, trace TEXT NOT NULL DEFAULT '');

CREATE INDEX outbox_due ON outbox(peer, next_attempt_at) WHERE state = 'pending';

CREATE TABLE receipts (
    message_id TEXT PRIMARY KEY,
    remote_hold_id TEXT NOT NULL REFERENCES remote_holds(id),
    type BIGINT NOT NULL,
    envelope BYTEA NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX receipts_hold ON receipts(remote_hold_id);

CREATE TABLE audit (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE windows (
    window_id TEXT PRIMARY KEY,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('closed', 'settled')),
    closed_at BIGINT NOT NULL,
    closed_by TEXT NOT NULL,
    settled_at BIGINT
, payouts_at BIGINT);

CREATE TABLE payouts (
    window_id TEXT NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers(id),
    count BIGINT NOT NULL,
    total_fen BIGINT NOT NULL CHECK (total_fen >= 0),
    statement BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (window_id, provider_id)
);

CREATE TABLE statements (
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    window_end BIGINT NOT NULL,
    count BIGINT NOT NULL,
    total_fen BIGINT NOT NULL,
    digest TEXT NOT NULL,
    statement BYTEA NOT NULL,
    acquirer_signature BYTEA,
    acquirer_key_id TEXT,
    issuer_signature BYTEA,
    issuer_key_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('sent', 'agreed', 'disputed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, acquirer, window_id)
);

CREATE TABLE disputes (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_at BIGINT,
    evidence TEXT NOT NULL
);

CREATE UNIQUE INDEX disputes_open ON disputes(issuer, acquirer, window_id) WHERE resolved_at IS NULL;

CREATE TABLE exposure (
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    fen BIGINT NOT NULL,
    PRIMARY KEY (acquirer, window_id)
);

CREATE TABLE window_activity (window_id TEXT PRIMARY KEY);

CREATE TABLE acquired_windows (issuer TEXT NOT NULL, window_id TEXT NOT NULL, PRIMARY KEY (issuer, window_id));

CREATE TABLE holder_usage (
    holder_id TEXT NOT NULL,
    fiscal_year BIGINT NOT NULL,
    used_fen BIGINT NOT NULL,
    contracts_fen BIGINT NOT NULL,
    PRIMARY KEY (holder_id, fiscal_year)
);

CREATE INDEX authorizations_open_expiry ON authorizations(expires_at) WHERE state = 'open';

CREATE INDEX remote_holds_open_expiry ON remote_holds(expires_at) WHERE state = 'held';

CREATE INDEX remote_holds_issuer ON remote_holds(issuer_region);

CREATE INDEX holds_captured_window ON holds(acquirer_region, settlement_window, id) WHERE state = 'captured';

CREATE INDEX remote_holds_statement
    ON remote_holds(issuer_region, settlement_window, issuer_hold_id, provider_id, order_id, captured_fen)
    WHERE state = 'captured';

CREATE INDEX remote_holds_payout ON remote_holds(payout_window, id) WHERE state = 'captured';

CREATE TABLE statement_conflicts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    evidence TEXT NOT NULL
);

CREATE TABLE flows (kind TEXT NOT NULL, source TEXT NOT NULL, dest TEXT NOT NULL, fen BIGINT NOT NULL, PRIMARY KEY (kind, source, dest));

CREATE INDEX vouchers_revoked ON vouchers(reclaimed_fen) WHERE state = 'revoked';

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    window_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('payment', 'reversal')),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    value_date TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    reverses TEXT REFERENCES payments(id),
    reason TEXT NOT NULL DEFAULT '',
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    advice BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    FOREIGN KEY (window_id, provider_id) REFERENCES payouts(window_id, provider_id),
    CHECK ((kind = 'reversal') = (reverses IS NOT NULL))
);

CREATE INDEX payments_payout ON payments(window_id, provider_id);

CREATE UNIQUE INDEX payments_reversal ON payments(reverses) WHERE reverses IS NOT NULL;

CREATE UNIQUE INDEX payments_reference ON payments(provider_id, bank_reference) WHERE kind = 'payment';

CREATE TABLE bank_confirmations (
    payment_id TEXT PRIMARY KEY REFERENCES payments(id),
    bank_date TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    bank_reference TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    confirmed_at BIGINT NOT NULL
);

CREATE TABLE window_notices (
    peer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    closed_at BIGINT NOT NULL,
    acked_at BIGINT,
    PRIMARY KEY (peer, window_id)
);

CREATE INDEX window_notices_pending ON window_notices(peer) WHERE acked_at IS NULL;

CREATE TABLE city_transfers (
    id TEXT PRIMARY KEY,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    value_date TEXT NOT NULL,
    reference TEXT NOT NULL,
    netting_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('advised', 'awaiting_confirmation', 'confirmed', 'disputed', 'refused')),
    advice BYTEA NOT NULL,                -- the TransferAdvice payload
    advice_message_id TEXT NOT NULL,
    advice_envelope BYTEA,                -- payee: the payer's signed advice as received
    advice_reply BYTEA,                   -- payer: the payee's signed ACK or REFUSAL
    confirmation BYTEA,                   -- the ReceiptConfirmation payload
    confirmation_message_id TEXT,
    confirmation_envelope BYTEA,          -- payer: the payee's signed confirmation as received
    confirmation_reply BYTEA,             -- payee: the payer's signed ACK or REFUSAL
    code TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    answered_by TEXT,
    answered_at BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX city_transfers_reference ON city_transfers(peer, direction, reference)
    WHERE state != 'refused';

CREATE INDEX city_transfers_open ON city_transfers(state) WHERE state IN ('advised', 'awaiting_confirmation');

CREATE UNIQUE INDEX city_transfers_advice_message ON city_transfers(advice_message_id);

CREATE UNIQUE INDEX city_transfers_confirmation_message ON city_transfers(confirmation_message_id);

CREATE TABLE statement_coverage (
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    transfer_id TEXT NOT NULL REFERENCES city_transfers(id),
    PRIMARY KEY (issuer, acquirer, window_id)
);

CREATE INDEX statement_coverage_transfer ON statement_coverage(transfer_id);

CREATE TABLE web_sessions (
    id_sha256 TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens(id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

CREATE INDEX authorizations_holder_open ON authorizations(holder_id, expires_at) WHERE state = 'open';

CREATE TABLE signin_links (
    code_sha256 TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens(id),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE dishonesty (
    uscc TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL
);

CREATE INDEX remote_holds_unanswered ON remote_holds(provider_id, id)
    WHERE state = 'pending' OR wanted IS NOT NULL;

CREATE TABLE voucher_totals (
    fiscal_year BIGINT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT NOT NULL,
    measure TEXT NOT NULL,
    fen BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (fiscal_year, dim, key, measure)
);

"""

# voucher_totals kept in the transaction that changes a voucher or a hold, as SQLite's
# V17_TRIGGERS keep it (node/store/schema.py); the audit compares both with ``recompute``.
_ADD = (
    "ON CONFLICT (fiscal_year, dim, key, measure) DO UPDATE SET "
    "fen = voucher_totals.fen + excluded.fen, count = voucher_totals.count + excluded.count"
)
TRIGGERS = f"""
CREATE FUNCTION voucher_totals_issue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO voucher_totals
    SELECT NEW.fiscal_year, 'category', h.category, 'issued', NEW.face_fen, 1
        FROM holders h WHERE h.id = NEW.holder_id
    UNION ALL SELECT NEW.fiscal_year, 'district', substr(h.uscc, 3, 6), 'issued', NEW.face_fen, 1
        FROM holders h WHERE h.id = NEW.holder_id
    UNION ALL SELECT NEW.fiscal_year, 'month', suanli_month(NEW.issued_at), 'issued',
        NEW.face_fen, 1
    {_ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER voucher_totals_issue AFTER INSERT ON vouchers
    FOR EACH ROW EXECUTE FUNCTION voucher_totals_issue();

CREATE FUNCTION voucher_totals_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO voucher_totals
    SELECT NEW.fiscal_year, 'category', h.category, 'captured',
        NEW.captured_fen - OLD.captured_fen, 0
        FROM holders h WHERE h.id = NEW.holder_id
    UNION ALL SELECT NEW.fiscal_year, 'category', h.category, 'reclaimed',
        NEW.reclaimed_fen - OLD.reclaimed_fen, 0
        FROM holders h WHERE h.id = NEW.holder_id
    {_ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER voucher_totals_move AFTER UPDATE OF captured_fen, reclaimed_fen ON vouchers
    FOR EACH ROW WHEN (NEW.captured_fen <> OLD.captured_fen OR NEW.reclaimed_fen <> OLD.reclaimed_fen)
    EXECUTE FUNCTION voucher_totals_move();

CREATE FUNCTION voucher_totals_captured() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO voucher_totals
    SELECT v.fiscal_year, 'acquirer', NEW.acquirer_region, 'captured', NEW.captured_fen, 1
        FROM vouchers v WHERE v.id = NEW.voucher_id
    UNION ALL SELECT v.fiscal_year, 'month', suanli_month(COALESCE(NEW.closed_at, NEW.created_at)),
        'captured', NEW.captured_fen, 1
        FROM vouchers v WHERE v.id = NEW.voucher_id
    {_ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER voucher_totals_captured AFTER UPDATE OF state ON holds
    FOR EACH ROW WHEN (NEW.state = 'captured' AND OLD.state <> 'captured')
    EXECUTE FUNCTION voucher_totals_captured();
CREATE TRIGGER voucher_totals_redeemed AFTER INSERT ON holds
    FOR EACH ROW WHEN (NEW.state = 'captured')
    EXECUTE FUNCTION voucher_totals_captured();
"""

# What the books refuse to change, as SQLite's triggers refuse it (schema.py): an agreed
# statement between cities is final; payments and bank confirmations are append-only.
FINAL = """
CREATE FUNCTION suanli_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER statements_agreed_final BEFORE UPDATE ON statements
    FOR EACH ROW WHEN (OLD.state = 'agreed')
    EXECUTE FUNCTION suanli_refuse('an agreed statement is final');
CREATE TRIGGER statements_agreed_kept BEFORE DELETE ON statements
    FOR EACH ROW WHEN (OLD.state = 'agreed')
    EXECUTE FUNCTION suanli_refuse('an agreed statement is final');
CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION suanli_refuse('payments are append-only: record a reversal');
CREATE TRIGGER payments_no_delete BEFORE DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION suanli_refuse('payments are append-only: record a reversal');
CREATE TRIGGER bank_confirmations_no_update BEFORE UPDATE ON bank_confirmations
    FOR EACH ROW EXECUTE FUNCTION suanli_refuse('bank confirmations are append-only');
CREATE TRIGGER bank_confirmations_no_delete BEFORE DELETE ON bank_confirmations
    FOR EACH ROW EXECUTE FUNCTION suanli_refuse('bank confirmations are append-only');
"""

BASELINE = MONTH_FUNCTION + TABLES + TRIGGERS + FINAL

# Version 19: the same results, cheaper for the server (measured with pg_stat_statements at
# 64 clients, docs/benchmarks.md). The month function is written with immutable functions only
# (``to_char`` is stable), so that the planner inlines it instead of calling a SQL function,
# about 20 µs a call; each running-total trigger looks its voucher or holder up once, not once
# per row it adds.
V19 = f"""
CREATE OR REPLACE FUNCTION suanli_month(ms BIGINT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT lpad(CAST(CAST(date_part('year', to_timestamp(ms / 1000 + 8 * 3600) AT TIME ZONE 'UTC')
            AS INT) AS TEXT), 4, '0')
        || '-' || lpad(CAST(CAST(date_part('month',
            to_timestamp(ms / 1000 + 8 * 3600) AT TIME ZONE 'UTC') AS INT) AS TEXT), 2, '0')
$$;

CREATE OR REPLACE FUNCTION voucher_totals_issue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO voucher_totals
    SELECT NEW.fiscal_year, x.dim, x.key, 'issued', NEW.face_fen, 1
        FROM holders h CROSS JOIN LATERAL (VALUES ('category', h.category),
            ('district', substr(h.uscc, 3, 6)), ('month', suanli_month(NEW.issued_at))) x(dim, key)
        WHERE h.id = NEW.holder_id
    {_ADD};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION voucher_totals_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO voucher_totals
    SELECT NEW.fiscal_year, 'category', h.category, x.measure, x.fen, 0
        FROM holders h CROSS JOIN LATERAL (VALUES
            ('captured', NEW.captured_fen - OLD.captured_fen),
            ('reclaimed', NEW.reclaimed_fen - OLD.reclaimed_fen)) x(measure, fen)
        WHERE h.id = NEW.holder_id
    {_ADD};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION voucher_totals_captured() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO voucher_totals
    SELECT v.fiscal_year, x.dim, x.key, 'captured', NEW.captured_fen, 1
        FROM vouchers v CROSS JOIN LATERAL (VALUES ('acquirer', NEW.acquirer_region),
            ('month', suanli_month(COALESCE(NEW.closed_at, NEW.created_at)))) x(dim, key)
        WHERE v.id = NEW.voucher_id
    {_ADD};
    RETURN NULL;
END $$;
"""


def _v19(conn: Any) -> None:
    conn.raw.execute(V19)


# Versions after the baseline, each also in node/store/schema.py under the same number.
def _v20(conn: Any) -> None:
    for statement in PG_V20.split(";\n"):
        if statement.strip():
            conn.raw.execute(statement)


MIGRATIONS: dict[int, Callable[[Any], None]] = {19: _v19, 20: _v20}

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"


def migrate(conn: Any) -> int:
    """Bring a PostgreSQL database to SCHEMA_VERSION (creating it if empty); return the
    version it is now at. Nodes starting together take turns (an advisory lock)."""
    raw = conn.raw
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, MIGRATE_KEY))
        raw.execute(VERSION_TABLE)
        row = raw.execute("SELECT version FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database schema version {current} is newer than this node's {SCHEMA_VERSION}; "
                "upgrade the node, never downgrade a database"
            )
        if current == 0:
            raw.execute(BASELINE)
            raw.execute("INSERT INTO schema_version (version) VALUES (%s)", (BASELINE_VERSION,))
            current = BASELINE_VERSION
            logger.info("created the PostgreSQL schema at version %d", current)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
            raw.execute("UPDATE schema_version SET version = %s", (version,))
            logger.info("migrated the PostgreSQL schema to version %d", version)
    return SCHEMA_VERSION
