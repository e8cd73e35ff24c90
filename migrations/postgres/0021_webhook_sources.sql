-- The webhook gateway's sources: senders other than Stripe (Standard Webhooks, Square, PayPal,
-- generic HMAC), each posting to /webhooks/{name}, and what they sent. Kept in step with
-- ../sqlite/0021_*.

-- A source: its name (the URL's last segment; `stripe` is Stripe's own route) and how its
-- deliveries are verified (`senders::Scheme` as JSON, tagged by kind).
CREATE TABLE webhook_sources (
    name        TEXT PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,39}$' AND name <> 'stripe'),
    kind        TEXT NOT NULL CHECK (kind IN ('standard_webhooks', 'square', 'paypal', 'generic_hmac')),
    scheme      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    disabled_at TIMESTAMPTZ
);

-- Its signing secrets. Several are active at once while one is rotated: the old one keeps
-- working until `expires_at`, so no delivery signed just before the switch is refused.
CREATE TABLE webhook_source_secrets (
    id         BIGSERIAL PRIMARY KEY,
    source     TEXT NOT NULL REFERENCES webhook_sources (name),
    secret     TEXT NOT NULL CHECK (length(secret) BETWEEN 1 AND 512),
    added_at   TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE INDEX webhook_source_secrets_source ON webhook_source_secrets (source, added_at);

-- What the gateway received from them, byte for byte, stored before any 2xx: one row per
-- (source, the sender's own event id), so a redelivery stores nothing (insert-or-nothing on the
-- UNIQUE key, never an `if seen` check that two copies could both pass). Append-only evidence,
-- like stripe_events, and sealed with it each hour.
CREATE TABLE gateway_events (
    id             BIGSERIAL PRIMARY KEY,
    source         TEXT NOT NULL REFERENCES webhook_sources (name),
    event_id       TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type     TEXT CHECK (event_type IS NULL OR length(event_type) <= 255),
    occurred_at    TIMESTAMPTZ,                  -- when the sender says it happened
    received_at    TIMESTAMPTZ NOT NULL,
    payload        BYTEA NOT NULL,
    payload_sha256 TEXT NOT NULL CHECK (length(payload_sha256) = 64),
    headers        TEXT NOT NULL,                -- the request's headers that matter, as JSON
    verification   TEXT NOT NULL,                -- the scheme that passed, and with what, as JSON
    UNIQUE (source, event_id)
);
CREATE INDEX gateway_events_received ON gateway_events (received_at, source, event_id);
CREATE INDEX gateway_events_source ON gateway_events (source, received_at);
CREATE TRIGGER gateway_events_append_only BEFORE UPDATE OR DELETE ON gateway_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER gateway_events_no_truncate BEFORE TRUNCATE ON gateway_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
