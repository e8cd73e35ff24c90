-- Money moving back: refunds, disputes and fraud warnings as Stripe reports them, the ledger's
-- reversals, and reconciliation runs with their findings. Kept in step with ../postgres/0003_*.

-- How an event reached us: a signed webhook delivery, or fetched by our own authenticated
-- `GET /v1/events/{id}` when reconciliation found Stripe never delivered it.
ALTER TABLE stripe_events ADD COLUMN verified_by TEXT NOT NULL DEFAULT 'signature'
    CHECK (verified_by IN ('signature', 'api_fetch'));

-- Who credited a pack: its webhook, the buyer's return page (the server asked Stripe), or
-- reconciliation (Stripe says paid, no event ever credited it). Older rows: NULL (webhook when
-- stripe_event_id is set, else the return page).
ALTER TABLE contract_revisions ADD COLUMN credited_by TEXT
    CHECK (credited_by IN ('webhook', 'return_page', 'reconciliation'));

-- Refunds of payments, one row per Stripe refund (`re_…`), whoever made them (our admin page,
-- Stripe's dashboard, the API). The status only moves forward (domain::adjustments), so events
-- that arrive late, twice or out of order converge on the same row.
CREATE TABLE payment_refunds (
    refund_id    TEXT PRIMARY KEY CHECK ((refund_id LIKE 're\_%' ESCAPE '\' OR refund_id LIKE 'pyr\_%' ESCAPE '\') AND length(refund_id) <= 255),
    payment_id   TEXT NOT NULL CHECK (payment_id LIKE 'pi\_%' ESCAPE '\'),
    charge_id    TEXT,
    amount       INTEGER NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'requires_action', 'succeeded', 'failed', 'canceled')),
    reason       TEXT,
    livemode     BOOLEAN NOT NULL,
    requested_by TEXT,                -- who asked for it in this app (an admin's email), if we did
    note         TEXT CHECK (length(note) <= 500),
    first_seen   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX payment_refunds_payment ON payment_refunds (payment_id);

-- Disputes (chargebacks and inquiries), one row per `du_…`. `is_open` is decided by the domain's
-- rule when the row is written; while it is true the payment's unused revisions are held.
CREATE TABLE payment_disputes (
    dispute_id TEXT PRIMARY KEY CHECK ((dispute_id LIKE 'du\_%' ESCAPE '\' OR dispute_id LIKE 'dp\_%' ESCAPE '\') AND length(dispute_id) <= 255),
    payment_id TEXT NOT NULL CHECK (payment_id LIKE 'pi\_%' ESCAPE '\'),
    charge_id  TEXT,
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    currency   TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    status     TEXT NOT NULL CHECK (status IN ('warning_needs_response', 'warning_under_review', 'warning_closed',
                   'needs_response', 'under_review', 'won', 'lost', 'prevented')),
    is_open    BOOLEAN NOT NULL,
    reason     TEXT,
    livemode   BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payment_disputes_payment ON payment_disputes (payment_id);

-- Radar's early fraud warnings: shown to admins (a refund now avoids a dispute later).
CREATE TABLE early_fraud_warnings (
    warning_id      TEXT PRIMARY KEY CHECK (warning_id LIKE 'issfr\_%' ESCAPE '\' AND length(warning_id) <= 255),
    payment_id      TEXT CHECK (payment_id LIKE 'pi\_%' ESCAPE '\'),
    charge_id       TEXT NOT NULL,
    fraud_type      TEXT NOT NULL,
    actionable      BOOLEAN NOT NULL,
    livemode        BOOLEAN NOT NULL,
    stripe_event_id TEXT REFERENCES stripe_events (event_id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX early_fraud_warnings_payment ON early_fraud_warnings (payment_id);

-- The ledger's other direction: revisions taken back (a refund, a lost dispute) or given back
-- (a refund that failed). Never an edit of the credit: one append-only row per cause, keyed
-- UNIQUE by what caused it (`re_…`, `re_…:failed`, `du_…:lost`, or a deterministic catch-up key),
-- so a cause is booked once however often it is reported.
-- available = base + Σ purchased − Σ revoked − Σ requested.
CREATE TABLE revision_adjustments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    contract_id     INTEGER NOT NULL REFERENCES contracts (id),
    payment_id      TEXT NOT NULL REFERENCES contract_revisions (payment_id),
    cause_key       TEXT NOT NULL UNIQUE CHECK (length(cause_key) BETWEEN 1 AND 300),
    kind            TEXT NOT NULL CHECK (kind IN ('refund', 'refund_failed', 'dispute_lost', 'catch_up')),
    revoked         INTEGER NOT NULL,  -- revisions taken back; negative: given back
    amount          INTEGER NOT NULL CHECK (amount >= 0), -- the money movement behind it, minor units
    currency        TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    booked_by       TEXT NOT NULL CHECK (booked_by IN ('webhook', 'admin', 'reconciliation', 'payment', 'replay')),
    stripe_event_id TEXT REFERENCES stripe_events (event_id),
    note            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX revision_adjustments_contract ON revision_adjustments (contract_id);
CREATE INDEX revision_adjustments_payment ON revision_adjustments (payment_id);
CREATE TRIGGER revision_adjustments_no_update BEFORE UPDATE ON revision_adjustments
BEGIN SELECT RAISE(ABORT, 'revision_adjustments is an append-only ledger'); END;
CREATE TRIGGER revision_adjustments_no_delete BEFORE DELETE ON revision_adjustments
BEGIN SELECT RAISE(ABORT, 'revision_adjustments is an append-only ledger'); END;

-- Reconciliation: each run compares Stripe with our books over a window of time.
CREATE TABLE reconciliation_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    started_by       TEXT NOT NULL CHECK (started_by IN ('cli', 'schedule', 'admin')),
    window_from      TEXT NOT NULL,
    window_to        TEXT NOT NULL,
    dry_run          BOOLEAN NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'abandoned')),
    api_calls        INTEGER NOT NULL DEFAULT 0,
    payments_checked INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    started_at       TEXT NOT NULL,
    heartbeat_at     TEXT NOT NULL,
    finished_at      TEXT,
    CHECK (status = 'running' OR finished_at IS NOT NULL)
);
-- At most one run at a time across every process sharing this database: the second insert of a
-- 'running' row fails on this index, with no check-then-insert race.
CREATE UNIQUE INDEX reconciliation_runs_one_running ON reconciliation_runs (status) WHERE status = 'running';

CREATE TABLE reconciliation_findings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES reconciliation_runs (id),
    category    TEXT NOT NULL CHECK (category IN ('paid_not_credited', 'refund_not_booked', 'dispute_not_booked',
                    'credited_not_paid', 'mismatch', 'stale_purchase', 'undelivered_event')),
    state       TEXT NOT NULL CHECK (state IN ('healed', 'open', 'would_heal')),
    payment_id  TEXT,
    object_id   TEXT,
    contract_id INTEGER,
    detail      TEXT NOT NULL,
    evidence    TEXT NOT NULL,            -- JSON: what Stripe said and what we hold
    created_at  TEXT NOT NULL
);
CREATE INDEX reconciliation_findings_run ON reconciliation_findings (run_id);
