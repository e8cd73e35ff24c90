-- Revision Store schema, PostgreSQL dialect. Kept in step with ../sqlite/0001_initial.sql:
-- the same tables, columns and constraints, so both databases pass the same tests.

-- Advertisers and admins. Emails are stored lower-cased so UNIQUE means unique to a person.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    role          TEXT NOT NULL CHECK (role IN ('advertiser', 'admin')),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    TIMESTAMPTZ NOT NULL
);

-- An advertiser's ad contract with the publisher; it includes `base_revisions` artwork revisions.
CREATE TABLE contracts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    advertiser_id  BIGINT NOT NULL REFERENCES users (id),
    publication    TEXT NOT NULL CHECK (length(trim(publication)) BETWEEN 1 AND 200),
    ad_size        TEXT NOT NULL CHECK (length(trim(ad_size)) BETWEEN 1 AND 100),
    base_revisions BIGINT NOT NULL CHECK (base_revisions >= 0),
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX contracts_advertiser ON contracts (advertiser_id);

-- Evidence: every authentic Stripe event, exactly as received. One row per event id, so a
-- redelivery cannot make a second row. Never updated or deleted (trigger below).
CREATE TABLE stripe_events (
    event_id         TEXT PRIMARY KEY CHECK (event_id LIKE 'evt\_%' AND length(event_id) <= 255),
    event_type       TEXT NOT NULL,
    livemode         BOOLEAN NOT NULL,
    api_version      TEXT,
    stripe_created   BIGINT NOT NULL,           -- Stripe's event.created, unix seconds
    payload          BYTEA NOT NULL,            -- the raw request body, byte for byte
    signature_header TEXT NOT NULL,             -- the Stripe-Signature header that verified it
    request_headers  TEXT NOT NULL,             -- JSON object: other headers worth keeping
    received_at      TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows are never updated or deleted', TG_TABLE_NAME;
END $$;
CREATE TRIGGER stripe_events_append_only BEFORE UPDATE OR DELETE ON stripe_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
-- TRUNCATE skips row triggers; refuse it too.
CREATE TRIGGER stripe_events_no_truncate BEFORE TRUNCATE ON stripe_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Processing state lives beside the evidence, one row per event, written in the same
-- statement as the event. `next_attempt_at` doubles as the lease of whoever is processing.
CREATE TABLE stripe_event_processing (
    event_id        TEXT PRIMARY KEY REFERENCES stripe_events (event_id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,                        -- why the last attempt did not credit
    outcome         TEXT,                        -- what processing did, in words
    processed_at    TIMESTAMPTZ,
    -- A finished event says when; a failed or ignored one says why.
    CHECK (status = 'pending' OR processed_at IS NOT NULL),
    CHECK (status NOT IN ('failed', 'ignored') OR last_error IS NOT NULL)
);
CREATE INDEX stripe_event_processing_due ON stripe_event_processing (next_attempt_at) WHERE status = 'pending';

-- The revision ledger: one row per credited pack. payment_id (the PaymentIntent id) is UNIQUE,
-- so a payment is credited once however often Stripe delivers it and whoever (webhook, return
-- page, replay) asks first. Append-only.
CREATE TABLE contract_revisions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id     BIGINT NOT NULL REFERENCES contracts (id),
    payment_id      TEXT NOT NULL UNIQUE CHECK (payment_id LIKE 'pi\_%'),
    revisions       BIGINT NOT NULL CHECK (revisions > 0),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    livemode        BOOLEAN NOT NULL,
    stripe_event_id TEXT REFERENCES stripe_events (event_id), -- the event that credited it, if any
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX contract_revisions_contract ON contract_revisions (contract_id);
CREATE TRIGGER contract_revisions_append_only BEFORE UPDATE OR DELETE ON contract_revisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER contract_revisions_no_truncate BEFORE TRUNCATE ON contract_revisions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Each revision request consumes one credit.
CREATE TABLE revision_requests (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id  BIGINT NOT NULL REFERENCES contracts (id),
    requested_by BIGINT NOT NULL REFERENCES users (id),
    notes        TEXT NOT NULL CHECK (length(notes) <= 5000),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX revision_requests_contract ON revision_requests (contract_id);

-- PaymentIntents we created, so every one is known locally before Stripe calls back.
CREATE TABLE purchases (
    payment_intent_id TEXT PRIMARY KEY CHECK (payment_intent_id LIKE 'pi\_%'),
    contract_id       BIGINT NOT NULL REFERENCES contracts (id),
    created_by        BIGINT NOT NULL REFERENCES users (id),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    revisions         BIGINT NOT NULL CHECK (revisions > 0),
    status            TEXT NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation',
                          'requires_action', 'processing', 'requires_capture', 'canceled', 'succeeded')),
    idempotency_key   TEXT NOT NULL UNIQUE,
    livemode          BOOLEAN NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX purchases_contract ON purchases (contract_id);

-- Payments from the external Rate Card Landing Page: recorded and acknowledged; that system
-- fulfils them. One row per PaymentIntent.
CREATE TABLE external_payments (
    payment_id      TEXT PRIMARY KEY CHECK (payment_id LIKE 'pi\_%'),
    advertiser_ref  TEXT NOT NULL,
    size_ref        TEXT NOT NULL,
    publication_ref TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    currency        TEXT NOT NULL,
    livemode        BOOLEAN NOT NULL,
    stripe_event_id TEXT NOT NULL REFERENCES stripe_events (event_id),
    created_at      TIMESTAMPTZ NOT NULL
);
