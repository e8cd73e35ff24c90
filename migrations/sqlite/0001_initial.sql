-- Revision Store schema, SQLite dialect. Kept in step with ../postgres/0001_initial.sql:
-- the same tables, columns and constraints, so both databases pass the same tests.
-- Times are RFC 3339 UTC text as sqlx writes chrono values; they sort as they compare.

-- Advertisers and admins. Emails are stored lower-cased so UNIQUE means unique to a person.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    role          TEXT NOT NULL CHECK (role IN ('advertiser', 'admin')),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    TEXT NOT NULL
);

-- An advertiser's ad contract with the publisher; it includes `base_revisions` artwork revisions.
CREATE TABLE contracts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    advertiser_id  INTEGER NOT NULL REFERENCES users (id),
    publication    TEXT NOT NULL CHECK (length(trim(publication)) BETWEEN 1 AND 200),
    ad_size        TEXT NOT NULL CHECK (length(trim(ad_size)) BETWEEN 1 AND 100),
    base_revisions INTEGER NOT NULL CHECK (base_revisions >= 0),
    created_at     TEXT NOT NULL
);
CREATE INDEX contracts_advertiser ON contracts (advertiser_id);

-- Evidence: every authentic Stripe event, exactly as received. One row per event id, so a
-- redelivery cannot make a second row. Never updated or deleted (triggers below).
CREATE TABLE stripe_events (
    event_id         TEXT PRIMARY KEY CHECK (event_id LIKE 'evt\_%' ESCAPE '\' AND length(event_id) <= 255),
    event_type       TEXT NOT NULL,
    livemode         BOOLEAN NOT NULL,
    api_version      TEXT,
    stripe_created   INTEGER NOT NULL,          -- Stripe's event.created, unix seconds
    payload          BLOB NOT NULL,             -- the raw request body, byte for byte
    signature_header TEXT NOT NULL,             -- the Stripe-Signature header that verified it
    request_headers  TEXT NOT NULL,             -- JSON object: other headers worth keeping
    received_at      TEXT NOT NULL
);
CREATE TRIGGER stripe_events_no_update BEFORE UPDATE ON stripe_events
BEGIN SELECT RAISE(ABORT, 'stripe_events is append-only evidence: rows are never updated'); END;
CREATE TRIGGER stripe_events_no_delete BEFORE DELETE ON stripe_events
BEGIN SELECT RAISE(ABORT, 'stripe_events is append-only evidence: rows are never deleted'); END;

-- Processing state lives beside the evidence, one row per event, written in the same
-- transaction as the event. `next_attempt_at` doubles as the lease of whoever is processing.
CREATE TABLE stripe_event_processing (
    event_id        TEXT PRIMARY KEY REFERENCES stripe_events (event_id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,                        -- why the last attempt did not credit
    outcome         TEXT,                        -- what processing did, in words
    processed_at    TEXT,
    -- A finished event says when; a failed or ignored one says why.
    CHECK (status = 'pending' OR processed_at IS NOT NULL),
    CHECK (status NOT IN ('failed', 'ignored') OR last_error IS NOT NULL)
);
CREATE INDEX stripe_event_processing_due ON stripe_event_processing (next_attempt_at) WHERE status = 'pending';

-- The revision ledger: one row per credited pack. payment_id (the PaymentIntent id) is UNIQUE,
-- so a payment is credited once however often Stripe delivers it and whoever (webhook, return
-- page, replay) asks first. Append-only.
CREATE TABLE contract_revisions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    contract_id     INTEGER NOT NULL REFERENCES contracts (id),
    payment_id      TEXT NOT NULL UNIQUE CHECK (payment_id LIKE 'pi\_%' ESCAPE '\'),
    revisions       INTEGER NOT NULL CHECK (revisions > 0),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    livemode        BOOLEAN NOT NULL,
    stripe_event_id TEXT REFERENCES stripe_events (event_id), -- the event that credited it, if any
    created_at      TEXT NOT NULL
);
CREATE INDEX contract_revisions_contract ON contract_revisions (contract_id);
CREATE TRIGGER contract_revisions_no_update BEFORE UPDATE ON contract_revisions
BEGIN SELECT RAISE(ABORT, 'contract_revisions is an append-only ledger'); END;
CREATE TRIGGER contract_revisions_no_delete BEFORE DELETE ON contract_revisions
BEGIN SELECT RAISE(ABORT, 'contract_revisions is an append-only ledger'); END;

-- Each revision request consumes one credit.
CREATE TABLE revision_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    contract_id  INTEGER NOT NULL REFERENCES contracts (id),
    requested_by INTEGER NOT NULL REFERENCES users (id),
    notes        TEXT NOT NULL CHECK (length(notes) <= 5000),
    created_at   TEXT NOT NULL
);
CREATE INDEX revision_requests_contract ON revision_requests (contract_id);

-- PaymentIntents we created, so every one is known locally before Stripe calls back.
CREATE TABLE purchases (
    payment_intent_id TEXT PRIMARY KEY CHECK (payment_intent_id LIKE 'pi\_%' ESCAPE '\'),
    contract_id       INTEGER NOT NULL REFERENCES contracts (id),
    created_by        INTEGER NOT NULL REFERENCES users (id),
    amount            INTEGER NOT NULL CHECK (amount > 0),
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    revisions         INTEGER NOT NULL CHECK (revisions > 0),
    status            TEXT NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation',
                          'requires_action', 'processing', 'requires_capture', 'canceled', 'succeeded')),
    idempotency_key   TEXT NOT NULL UNIQUE,
    livemode          BOOLEAN NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX purchases_contract ON purchases (contract_id);

-- Payments from the external Rate Card Landing Page: recorded and acknowledged; that system
-- fulfils them. One row per PaymentIntent.
CREATE TABLE external_payments (
    payment_id      TEXT PRIMARY KEY CHECK (payment_id LIKE 'pi\_%' ESCAPE '\'),
    advertiser_ref  TEXT NOT NULL,
    size_ref        TEXT NOT NULL,
    publication_ref TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    currency        TEXT NOT NULL,
    livemode        BOOLEAN NOT NULL,
    stripe_event_id TEXT NOT NULL REFERENCES stripe_events (event_id),
    created_at      TEXT NOT NULL
);
