"""Forward-only migrations. ``PRAGMA user_version`` is the schema version.

Never edit a released migration: add the next one. Money columns are INTEGER fen and carry
CHECK constraints, so even a bug in the code above cannot store a negative balance.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from node.store.catalog import SQLITE_V20
from node.store.ledger import ACCOUNT_CLASS_SQL

V1 = """
CREATE TABLE node_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE policies (
    fiscal_year INTEGER NOT NULL,
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    loaded_at INTEGER NOT NULL,
    loaded_by TEXT NOT NULL,
    PRIMARY KEY (fiscal_year, version)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'holder', 'provider')),
    subject_id TEXT,
    token_sha256 TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE holders (
    id TEXT PRIMARY KEY,
    uscc TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    region TEXT NOT NULL,
    uscc_override TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    uscc TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('computing_centre', 'matchmaking_partner')),
    region TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'suspended')),
    related_uscc TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL
);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL REFERENCES holders(id),
    fiscal_year INTEGER NOT NULL,
    compute_class TEXT NOT NULL,
    estimated_amount_fen INTEGER NOT NULL CHECK (estimated_amount_fen > 0),
    provider_id TEXT REFERENCES providers(id),
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('issued', 'declined')),
    ratio_bp INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen >= 0),
    reasons TEXT NOT NULL,
    voucher_id TEXT,
    policy_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX decisions_holder ON decisions(holder_id, created_at);

CREATE TABLE vouchers (
    id TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL REFERENCES holders(id),
    fiscal_year INTEGER NOT NULL,
    compute_class TEXT NOT NULL,
    ratio_bp INTEGER NOT NULL CHECK (ratio_bp BETWEEN 0 AND 10000),
    face_fen INTEGER NOT NULL CHECK (face_fen > 0),
    available_fen INTEGER NOT NULL CHECK (available_fen >= 0),
    held_fen INTEGER NOT NULL CHECK (held_fen >= 0),
    captured_fen INTEGER NOT NULL CHECK (captured_fen >= 0),
    reclaimed_fen INTEGER NOT NULL CHECK (reclaimed_fen >= 0),
    state TEXT NOT NULL CHECK (state IN ('active', 'expired', 'revoked')),
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions(id),
    record BLOB NOT NULL,
    signature BLOB NOT NULL,
    key_id TEXT NOT NULL,
    CHECK (face_fen = available_fen + held_fen + captured_fen + reclaimed_fen)
);
CREATE INDEX vouchers_holder ON vouchers(holder_id);
CREATE INDEX vouchers_expiry ON vouchers(expires_at) WHERE state = 'active';

-- provider_id is a provider of provider_region: this node's own, or a peer's (not in providers).
CREATE TABLE authorizations (
    id TEXT PRIMARY KEY,
    voucher_id TEXT NOT NULL REFERENCES vouchers(id),
    holder_id TEXT NOT NULL REFERENCES holders(id),
    provider_region TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    max_fen INTEGER NOT NULL CHECK (max_fen > 0),
    code_sha256 TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'used', 'expired', 'cancelled')),
    hold_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX authorizations_voucher ON authorizations(voucher_id);

-- Holds on this node's vouchers. acquirer_region is this node's region for local providers, or
-- the peer whose provider redeems (cross-region; then provider_id is that peer's id).
CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    voucher_id TEXT NOT NULL REFERENCES vouchers(id),
    acquirer_region TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    authorization_id TEXT NOT NULL UNIQUE REFERENCES authorizations(id),
    order_id TEXT NOT NULL,
    order_amount_fen INTEGER NOT NULL CHECK (order_amount_fen > 0),
    compute_class TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    captured_fen INTEGER NOT NULL DEFAULT 0 CHECK (captured_fen >= 0 AND captured_fen <= amount_fen),
    state TEXT NOT NULL CHECK (state IN ('held', 'captured', 'voided', 'expired')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    closed_at INTEGER,
    settlement_window TEXT,
    UNIQUE (acquirer_region, provider_id, order_id)
);
CREATE INDEX holds_voucher ON holds(voucher_id);
CREATE INDEX holds_open_expiry ON holds(expires_at) WHERE state = 'held';

-- Append-only history of every state change of vouchers, authorizations and holds.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_fen INTEGER,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_entity ON events(entity_id);

-- Double-entry ledger: every transfer moves an amount from source to dest, so the
-- sum of all balances is zero by construction. accounts caches each balance.
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    source TEXT NOT NULL,
    dest TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0)
);
CREATE INDEX ledger_ref ON ledger(ref);

CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    balance_fen INTEGER NOT NULL
);

-- Federation ------------------------------------------------------------------------------

-- Peers imported explicitly from their node cards. outbound: this city's vouchers may be spent
-- at the peer's providers; inbound: this city's providers accept the peer's vouchers.
CREATE TABLE peers (
    region TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    card BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    outbound INTEGER NOT NULL DEFAULT 1,
    inbound INTEGER NOT NULL DEFAULT 1,
    exposure_cap_fen INTEGER NOT NULL CHECK (exposure_cap_fen >= 0),
    added_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE peer_keys (
    region TEXT NOT NULL REFERENCES peers(region),
    key_id TEXT NOT NULL,
    public_key BLOB NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,  -- 0: open-ended
    revoked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (region, key_id)
);

-- Issuer side: every request received, with the exact signed reply, for idempotent replays.
CREATE TABLE inbox (
    origin TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type INTEGER NOT NULL,
    payload_sha256 TEXT NOT NULL,
    reply BLOB NOT NULL,
    hold_id TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (origin, message_id)
);

-- Acquirer side: a redemption of a peer's voucher by one of this node's providers.
CREATE TABLE remote_holds (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers(id),
    issuer_region TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('hold', 'redeem')),
    code_sha256 TEXT NOT NULL,
    order_id TEXT NOT NULL,
    order_amount_fen INTEGER NOT NULL CHECK (order_amount_fen > 0),
    compute_class TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'held', 'captured', 'voided', 'expired', 'refused')),
    amount_fen INTEGER NOT NULL DEFAULT 0 CHECK (amount_fen >= 0),
    captured_fen INTEGER NOT NULL DEFAULT 0 CHECK (captured_fen >= 0 AND captured_fen <= amount_fen),
    issuer_hold_id TEXT,
    voucher_id TEXT,
    expires_at INTEGER,
    settlement_window TEXT,
    refusal_code TEXT,
    refusal_message TEXT,
    wanted TEXT CHECK (wanted IN ('capture', 'void')),
    wanted_fen INTEGER,
    created_at INTEGER NOT NULL,
    closed_at INTEGER
);
-- One live subsidy per provider order; a refused attempt leaves the order free.
CREATE UNIQUE INDEX remote_holds_order ON remote_holds(provider_id, order_id) WHERE state != 'refused';
CREATE INDEX remote_holds_issuer ON remote_holds(issuer_region, state);

-- Acquirer side: intent written before sending; resent until a definitive answer.
CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY,
    peer TEXT NOT NULL,
    type INTEGER NOT NULL,
    payload BLOB NOT NULL,
    remote_hold_id TEXT REFERENCES remote_holds(id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX outbox_due ON outbox(peer, next_attempt_at) WHERE state = 'pending';

-- Acquirer side: the issuer's signed replies, kept as settlement evidence.
CREATE TABLE receipts (
    message_id TEXT PRIMARY KEY,
    remote_hold_id TEXT NOT NULL REFERENCES remote_holds(id),
    type INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX receipts_hold ON receipts(remote_hold_id);

-- Operator actions that change no money but matter to auditors (overrides, approvals,
-- revocations, policy loads, tokens).
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
"""


V2 = """
-- Settlement (issue 4). A capture's payout window on the acquirer side, and the holder it
-- subsidised, named by the issuer in its receipt.
ALTER TABLE remote_holds ADD COLUMN payout_window TEXT;
ALTER TABLE remote_holds ADD COLUMN holder_uscc TEXT;

-- This node's closed windows (open ones have no row).
CREATE TABLE windows (
    window_id TEXT PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('closed', 'settled')),
    closed_at INTEGER NOT NULL,
    closed_by TEXT NOT NULL,
    settled_at INTEGER
);

-- Signed payout statements for this node's providers, one per provider and window.
CREATE TABLE payouts (
    window_id TEXT NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers(id),
    count INTEGER NOT NULL,
    total_fen INTEGER NOT NULL CHECK (total_fen >= 0),
    statement BLOB NOT NULL,
    signature BLOB NOT NULL,
    key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (window_id, provider_id)
);

-- Pair statements: what issuer owes acquirer for one of the issuer's windows, held by both.
CREATE TABLE statements (
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    window_end INTEGER NOT NULL,
    count INTEGER NOT NULL,
    total_fen INTEGER NOT NULL,
    digest TEXT NOT NULL,
    statement BLOB NOT NULL,
    acquirer_signature BLOB,
    acquirer_key_id TEXT,
    issuer_signature BLOB,
    issuer_key_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('sent', 'agreed', 'disputed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, acquirer, window_id)
);

CREATE TABLE disputes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    resolved_at INTEGER,
    evidence TEXT NOT NULL
);
CREATE UNIQUE INDEX disputes_open ON disputes(issuer, acquirer, window_id) WHERE resolved_at IS NULL
"""


def _script(text: str) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        for statement in text.split(";\n"):
            if statement.strip():
                conn.execute(statement)

    return migrate


V3 = """
-- Performance (issue 6): caches kept in the same transactions as the rows they summarise, so
-- no request scans a table that grows with the books.

-- What this issuer may owe each acquirer city: open holds (window_id '') and captures per window.
CREATE TABLE exposure (
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    fen INTEGER NOT NULL,
    PRIMARY KEY (acquirer, window_id)
);
INSERT INTO exposure (acquirer, window_id, fen)
    SELECT acquirer_region, '', SUM(amount_fen) FROM holds WHERE state = 'held' GROUP BY acquirer_region;
INSERT INTO exposure (acquirer, window_id, fen)
    SELECT acquirer_region, settlement_window, SUM(captured_fen) FROM holds
    WHERE state = 'captured' GROUP BY acquirer_region, settlement_window;

-- Windows with captures (this node's, as issuer or for payouts), and issuer windows this node
-- (as acquirer) holds captures in.
CREATE TABLE window_activity (window_id TEXT PRIMARY KEY);
INSERT OR IGNORE INTO window_activity
    SELECT settlement_window FROM holds WHERE state = 'captured' AND settlement_window IS NOT NULL
    UNION SELECT payout_window FROM remote_holds WHERE state = 'captured' AND payout_window IS NOT NULL;
CREATE TABLE acquired_windows (issuer TEXT NOT NULL, window_id TEXT NOT NULL, PRIMARY KEY (issuer, window_id));
INSERT OR IGNORE INTO acquired_windows
    SELECT issuer_region, settlement_window FROM remote_holds WHERE state = 'captured' AND settlement_window IS NOT NULL;

CREATE INDEX holds_captured_window ON holds(acquirer_region, settlement_window) WHERE state = 'captured';
CREATE INDEX remote_holds_payout ON remote_holds(payout_window) WHERE state = 'captured';
CREATE INDEX remote_holds_statement ON remote_holds(issuer_region, settlement_window) WHERE state = 'captured'
"""

V4 = """
-- Each holder's standing per fiscal year (issued − reclaimed, and the estimates of issued
-- demands), kept with the vouchers and decisions it sums, so issuance reads one row.
CREATE TABLE holder_usage (
    holder_id TEXT NOT NULL,
    fiscal_year INTEGER NOT NULL,
    used_fen INTEGER NOT NULL,
    contracts_fen INTEGER NOT NULL,
    PRIMARY KEY (holder_id, fiscal_year)
);
INSERT INTO holder_usage (holder_id, fiscal_year, used_fen, contracts_fen)
    SELECT d.holder_id, d.fiscal_year, COALESCE(SUM(v.face_fen - v.reclaimed_fen), 0), SUM(d.estimated_amount_fen)
    FROM decisions d LEFT JOIN vouchers v ON v.id = d.voucher_id
    WHERE d.outcome = 'issued' GROUP BY d.holder_id, d.fiscal_year
"""

V5 = """
-- The sweepers find what has expired through partial indexes of what is still open, instead of
-- scanning every spend authorization and remote hold ever written on each sweep.
CREATE INDEX authorizations_open_expiry ON authorizations(expires_at) WHERE state = 'open';
CREATE INDEX remote_holds_open_expiry ON remote_holds(expires_at) WHERE state = 'held';
-- By issuer only: a state change no longer rewrites this index (captured holds by issuer and
-- window have remote_holds_statement).
DROP INDEX remote_holds_issuer;
CREATE INDEX remote_holds_issuer ON remote_holds(issuer_region)
"""

V6 = """
-- A pair statement reads its window's records in record order straight from these indexes:
-- no sort of the window's captures up front, so a statement of millions of records streams in
-- chunks with bounded memory (node/services/statements.py). The issuer's hold id is unique; the
-- acquirer's index holds every column of a record, as its order needs them all.
DROP INDEX holds_captured_window;
CREATE INDEX holds_captured_window ON holds(acquirer_region, settlement_window, id) WHERE state = 'captured';
DROP INDEX remote_holds_statement;
CREATE INDEX remote_holds_statement
    ON remote_holds(issuer_region, settlement_window, issuer_hold_id, provider_id, order_id, captured_fen)
    WHERE state = 'captured'
"""

V7 = """
-- Payouts are signed after the close commits, outside its transaction (a window's captures
-- never change once it is closed): payouts_at is set when they are. Windows closed before v7
-- were signed in their closing transaction.
ALTER TABLE windows ADD COLUMN payouts_at INTEGER;
UPDATE windows SET payouts_at = closed_at;
-- A window's cross-region payout lines in hold-id order, for the streamed payout digest.
DROP INDEX remote_holds_payout;
CREATE INDEX remote_holds_payout ON remote_holds(payout_window, id) WHERE state = 'captured';
-- Answered messages no longer keep their payload (a REDEEM's or AUTHORIZE's one-time code).
UPDATE outbox SET payload = X'' WHERE state = 'done'
"""

V8 = """
-- A countersigned pair statement is final (docs/settlement.md, "Agreed is final"): no message
-- and no code path may change or remove it. The code never tries; these triggers make a bug
-- that did abort its transaction instead of un-agreeing a statement both cities signed.
CREATE TRIGGER statements_agreed_final BEFORE UPDATE ON statements WHEN OLD.state = 'agreed' BEGIN SELECT RAISE(ABORT, 'an agreed statement is final'); END;
CREATE TRIGGER statements_agreed_kept BEFORE DELETE ON statements WHEN OLD.state = 'agreed' BEGIN SELECT RAISE(ABORT, 'an agreed statement is final'); END;
-- Evidence of a statement that differed from an agreed one: every attempt, append-only.
CREATE TABLE statement_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    evidence TEXT NOT NULL
)
"""


def _v9(conn: sqlite3.Connection) -> None:
    """Running totals of the ledger's transfers by kind and account class (node/store/ledger.py),
    filled from the transfers made so far."""
    conn.execute(
        "CREATE TABLE flows (kind TEXT NOT NULL, source TEXT NOT NULL, dest TEXT NOT NULL, "
        "fen INTEGER NOT NULL, PRIMARY KEY (kind, source, dest)) WITHOUT ROWID"
    )
    source, dest = ACCOUNT_CLASS_SQL.format(col="source"), ACCOUNT_CLASS_SQL.format(col="dest")
    conn.execute(
        f"INSERT INTO flows (kind, source, dest, fen) SELECT kind, {source}, {dest}, "
        f"SUM(amount_fen) FROM ledger GROUP BY kind, {source}, {dest}"
    )


def _v10(conn: sqlite3.Connection) -> None:
    """The revoked vouchers alone, for the reclaimed-by-reason gauge: a scrape then reads the
    few revocations instead of every closed voucher (node/store/books.py)."""
    conn.execute("CREATE INDEX vouchers_revoked ON vouchers(reclaimed_fen) WHERE state = 'revoked'")


def _v11(conn: sqlite3.Connection) -> None:
    """The request id an outbox message serves, sent beside its signed body on every attempt
    (resends after a restart too), so that the issuer's log names it."""
    conn.execute("ALTER TABLE outbox ADD COLUMN trace TEXT NOT NULL DEFAULT ''")


V12 = """
-- Payments to providers against their payout statements (兑付): append-only. A payment is never
-- edited; a reversal is a row of its own that names the payment it undoes (at most one).
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    window_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('payment', 'reversal')),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    value_date TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    reverses TEXT REFERENCES payments(id),
    reason TEXT NOT NULL DEFAULT '',
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    advice BLOB NOT NULL,
    signature BLOB NOT NULL,
    key_id TEXT NOT NULL,
    FOREIGN KEY (window_id, provider_id) REFERENCES payouts(window_id, provider_id),
    CHECK ((kind = 'reversal') = (reverses IS NOT NULL))
);
CREATE INDEX payments_payout ON payments(window_id, provider_id);
CREATE UNIQUE INDEX payments_reversal ON payments(reverses) WHERE reverses IS NOT NULL;
CREATE UNIQUE INDEX payments_reference ON payments(provider_id, bank_reference) WHERE kind = 'payment';
CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments
BEGIN SELECT RAISE(ABORT, 'payments are append-only: record a reversal'); END;
CREATE TRIGGER payments_no_delete BEFORE DELETE ON payments
BEGIN SELECT RAISE(ABORT, 'payments are append-only: record a reversal'); END;
"""


V13 = """
-- Payments the bank's own statement confirmed (bank reconciliation), once each, as the operator
-- confirmed the match: the bank line kept beside the payment. Append-only.
CREATE TABLE bank_confirmations (
    payment_id TEXT PRIMARY KEY REFERENCES payments(id),
    bank_date TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    bank_reference TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    confirmed_at INTEGER NOT NULL
);
CREATE TRIGGER bank_confirmations_no_update BEFORE UPDATE ON bank_confirmations
BEGIN SELECT RAISE(ABORT, 'bank confirmations are append-only'); END;
CREATE TRIGGER bank_confirmations_no_delete BEFORE DELETE ON bank_confirmations
BEGIN SELECT RAISE(ABORT, 'bank confirmations are append-only'); END;
"""


V14 = """
-- Peers to tell that this node (their issuer) closed a window, until each acknowledges: the
-- acquirers then send their statements at once (docs/protocol.md §5b, WINDOW_CLOSED).
CREATE TABLE window_notices (
    peer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    closed_at INTEGER NOT NULL,
    acked_at INTEGER,
    PRIMARY KEY (peer, window_id)
);
CREATE INDEX window_notices_pending ON window_notices(peer) WHERE acked_at IS NULL;
"""


V15 = """
-- Settling between cities (docs/settlement.md, "Settling between cities"): one row per transfer,
-- at the payer (direction 'out') and at the payee ('in'), with the exact advice and confirmation
-- payloads; the signed envelopes are the evidence.
CREATE TABLE city_transfers (
    id TEXT PRIMARY KEY,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    amount_fen INTEGER NOT NULL CHECK (amount_fen >= 0),
    value_date TEXT NOT NULL,
    reference TEXT NOT NULL,
    netting_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('advised', 'awaiting_confirmation', 'confirmed', 'disputed', 'refused')),
    advice BLOB NOT NULL,                -- the TransferAdvice payload
    advice_message_id TEXT NOT NULL,
    advice_envelope BLOB,                -- payee: the payer's signed advice as received
    advice_reply BLOB,                   -- payer: the payee's signed ACK or REFUSAL
    confirmation BLOB,                   -- the ReceiptConfirmation payload
    confirmation_message_id TEXT,
    confirmation_envelope BLOB,          -- payer: the payee's signed confirmation as received
    confirmation_reply BLOB,             -- payee: the payer's signed ACK or REFUSAL
    code TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    answered_by TEXT,
    answered_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX city_transfers_reference ON city_transfers(peer, direction, reference)
    WHERE state != 'refused';
CREATE INDEX city_transfers_open ON city_transfers(state) WHERE state IN ('advised', 'awaiting_confirmation');
CREATE UNIQUE INDEX city_transfers_advice_message ON city_transfers(advice_message_id);
CREATE UNIQUE INDEX city_transfers_confirmation_message ON city_transfers(confirmation_message_id);

-- Which live transfer holds each agreed statement: at most one (the primary key). A refused or
-- disputed transfer lets its statements go; a confirmed one keeps them for good.
CREATE TABLE statement_coverage (
    issuer TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    window_id TEXT NOT NULL,
    transfer_id TEXT NOT NULL REFERENCES city_transfers(id),
    PRIMARY KEY (issuer, acquirer, window_id)
);
CREATE INDEX statement_coverage_transfer ON statement_coverage(transfer_id);
"""


V16 = """
-- The platform's sign-in sessions (node/services/sessions.py): the session id and the CSRF
-- token are random; only the id's SHA-256 is kept, so a copy of the database signs nobody in.
CREATE TABLE web_sessions (
    id_sha256 TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens(id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

-- A holder's open authorizations, for its page (one indexed read, however many vouchers).
CREATE INDEX authorizations_holder_open ON authorizations(holder_id, expires_at) WHERE state = 'open';

-- One-time sign-in links an operator issues (to a holder, say): the code's SHA-256, the token
-- whose role the session gets, used once, within its expiry.
CREATE TABLE signin_links (
    code_sha256 TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens(id),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
"""

V17 = """
-- The dishonesty list (失信名单) kept by the operators between policy versions
-- (node/services/registry.py): a demand from a listed holder is declined, as it is for one in
-- the policy's [dishonesty] list. Removing an entry deletes its row; the audit trail keeps both.
CREATE TABLE dishonesty (
    uscc TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A provider's redemptions still waiting for the issuing city's answer, for its page.
CREATE INDEX remote_holds_unanswered ON remote_holds(provider_id, id)
    WHERE state = 'pending' OR wanted IS NOT NULL;

-- Running totals of this city's vouchers by fiscal year (node/store/totals.py), kept by the
-- triggers below in the transaction that changes a voucher or a hold, so that the operators'
-- overview reads a small table however many vouchers there are; ``suanli check`` recomputes
-- them from the vouchers and holds. dim/key: category/<holder category>, district/<USCC
-- characters 3-8>, month/<YYYY-MM, China Standard Time>, acquirer/<region of the provider>.
-- measure: issued (face value, ``count`` vouchers), captured, reclaimed (fen).
CREATE TABLE voucher_totals (
    fiscal_year INTEGER NOT NULL,
    dim TEXT NOT NULL,
    key TEXT NOT NULL,
    measure TEXT NOT NULL,
    fen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (fiscal_year, dim, key, measure)
) WITHOUT ROWID;

-- What the books held before the triggers.
INSERT INTO voucher_totals
SELECT v.fiscal_year, 'category', h.category, 'issued', SUM(v.face_fen), COUNT(*)
    FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3
UNION ALL SELECT v.fiscal_year, 'category', h.category, 'captured', SUM(v.captured_fen), 0
    FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3
UNION ALL SELECT v.fiscal_year, 'category', h.category, 'reclaimed', SUM(v.reclaimed_fen), 0
    FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3
UNION ALL SELECT v.fiscal_year, 'district', substr(h.uscc, 3, 6), 'issued', SUM(v.face_fen), COUNT(*)
    FROM vouchers v JOIN holders h ON h.id = v.holder_id GROUP BY 1, 3
UNION ALL SELECT v.fiscal_year, 'month', strftime('%Y-%m', v.issued_at / 1000 + 8 * 3600, 'unixepoch'),
    'issued', SUM(v.face_fen), COUNT(*) FROM vouchers v GROUP BY 1, 3
UNION ALL SELECT v.fiscal_year, 'acquirer', o.acquirer_region, 'captured', SUM(o.captured_fen), COUNT(*)
    FROM holds o JOIN vouchers v ON v.id = o.voucher_id WHERE o.state = 'captured' GROUP BY 1, 3
UNION ALL SELECT v.fiscal_year, 'month', strftime('%Y-%m', COALESCE(o.closed_at, o.created_at) / 1000 + 8 * 3600, 'unixepoch'),
    'captured', SUM(o.captured_fen), COUNT(*)
    FROM holds o JOIN vouchers v ON v.id = o.voucher_id WHERE o.state = 'captured' GROUP BY 1, 3
"""
V18 = """
-- Every endpoint of a peer's node when its card lists several (docs/protocol.md §6), as a
-- JSON list in the card's order; '' for a card with one, which is ``endpoint``.
ALTER TABLE peers ADD COLUMN endpoints TEXT NOT NULL DEFAULT ''
"""

# Triggers hold statements of their own, so they are run one by one, not split on ";".
# A hold captured later, or placed captured (a one-step redemption), adds the same totals.
_HOLD_CAPTURED = """    INSERT INTO voucher_totals
    SELECT v.fiscal_year, 'acquirer', NEW.acquirer_region, 'captured', NEW.captured_fen, 1
        FROM vouchers v WHERE v.id = NEW.voucher_id
    UNION ALL SELECT v.fiscal_year, 'month',
        strftime('%Y-%m', COALESCE(NEW.closed_at, NEW.created_at) / 1000 + 8 * 3600, 'unixepoch'), 'captured',
        NEW.captured_fen, 1
        FROM vouchers v WHERE v.id = NEW.voucher_id
    ON CONFLICT (fiscal_year, dim, key, measure)
        DO UPDATE SET fen = fen + excluded.fen, count = count + 1;
"""
V17_TRIGGERS = (
    """
CREATE TRIGGER voucher_totals_issue AFTER INSERT ON vouchers BEGIN
    INSERT INTO voucher_totals
    SELECT NEW.fiscal_year, 'category', h.category, 'issued', NEW.face_fen, 1
        FROM holders h WHERE h.id = NEW.holder_id
    UNION ALL SELECT NEW.fiscal_year, 'district', substr(h.uscc, 3, 6), 'issued', NEW.face_fen, 1
        FROM holders h WHERE h.id = NEW.holder_id
    UNION ALL SELECT NEW.fiscal_year, 'month',
        strftime('%Y-%m', NEW.issued_at / 1000 + 8 * 3600, 'unixepoch'), 'issued', NEW.face_fen, 1
    ON CONFLICT (fiscal_year, dim, key, measure)
        DO UPDATE SET fen = fen + excluded.fen, count = count + 1;
END""",
    """
CREATE TRIGGER voucher_totals_move AFTER UPDATE OF captured_fen, reclaimed_fen ON vouchers
WHEN NEW.captured_fen != OLD.captured_fen OR NEW.reclaimed_fen != OLD.reclaimed_fen BEGIN
    INSERT INTO voucher_totals
    SELECT * FROM (
        SELECT NEW.fiscal_year, 'category', h.category, 'captured',
            NEW.captured_fen - OLD.captured_fen, 0
            FROM holders h WHERE h.id = NEW.holder_id
        UNION ALL SELECT NEW.fiscal_year, 'category', h.category, 'reclaimed',
            NEW.reclaimed_fen - OLD.reclaimed_fen, 0
            FROM holders h WHERE h.id = NEW.holder_id
    ) WHERE true
    ON CONFLICT (fiscal_year, dim, key, measure) DO UPDATE SET fen = fen + excluded.fen;
END""",
    f"""
CREATE TRIGGER voucher_totals_captured AFTER UPDATE OF state ON holds
WHEN NEW.state = 'captured' AND OLD.state != 'captured' BEGIN
{_HOLD_CAPTURED}END""",
    f"""
CREATE TRIGGER voucher_totals_redeemed AFTER INSERT ON holds WHEN NEW.state = 'captured' BEGIN
{_HOLD_CAPTURED}END""",
)


def _v17(conn: sqlite3.Connection) -> None:
    _script(V17)(conn)
    for trigger in V17_TRIGGERS:
        conn.execute(trigger)


def _v19(conn: sqlite3.Connection) -> None:
    """Version 19 made PostgreSQL's month function and running-total triggers cheaper for
    its server, with the same results (node/store/pgschema.py); SQLite's are unchanged, and
    its version moves with PostgreSQL's."""


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _script(V1),
    2: _script(V2),
    3: _script(V3),
    4: _script(V4),
    5: _script(V5),
    6: _script(V6),
    7: _script(V7),
    8: _script(V8),
    9: _v9,
    10: _v10,
    11: _v11,
    12: _script(V12),
    13: _script(V13),
    14: _script(V14),
    15: _script(V15),
    16: _script(V16),
    17: _v17,
    18: _script(V18),
    19: _v19,
    20: _script(SQLITE_V20),  # the catalog of compute offers (node/store/catalog.py)
}
SCHEMA_VERSION = max(MIGRATIONS)
