-- The webhook gateway's sources: senders other than Stripe (Standard Webhooks, Square, PayPal,
-- generic HMAC), each posting to /webhooks/{name}, and what they sent. Kept in step with
-- ../postgres/0021_*.

-- A source: its name (the URL's last segment; `stripe` is Stripe's own route) and how its
-- deliveries are verified (`senders::Scheme` as JSON, tagged by kind).
CREATE TABLE webhook_sources (
    name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 40 AND name NOT GLOB '*[^a-z0-9-]*'
                                        AND name NOT GLOB '-*' AND name <> 'stripe'),
    kind        TEXT NOT NULL CHECK (kind IN ('standard_webhooks', 'square', 'paypal', 'generic_hmac')),
    scheme      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);

-- Its signing secrets. Several are active at once while one is rotated: the old one keeps
-- working until `expires_at`, so no delivery signed just before the switch is refused.
CREATE TABLE webhook_source_secrets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    source     TEXT NOT NULL REFERENCES webhook_sources (name),
    secret     TEXT NOT NULL CHECK (length(secret) BETWEEN 1 AND 512),
    added_at   TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX webhook_source_secrets_source ON webhook_source_secrets (source, added_at);

-- What the gateway received from them, byte for byte, stored before any 2xx: one row per
-- (source, the sender's own event id), so a redelivery stores nothing (insert-or-nothing on the
-- UNIQUE key, never an `if seen` check that two copies could both pass). Append-only evidence,
-- like stripe_events, and sealed with it each hour.
CREATE TABLE gateway_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source         TEXT NOT NULL REFERENCES webhook_sources (name),
    event_id       TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type     TEXT CHECK (event_type IS NULL OR length(event_type) <= 255),
    occurred_at    TEXT,                         -- when the sender says it happened
    received_at    TEXT NOT NULL,
    payload        BLOB NOT NULL,
    payload_sha256 TEXT NOT NULL CHECK (length(payload_sha256) = 64),
    headers        TEXT NOT NULL,                -- the request's headers that matter, as JSON
    verification   TEXT NOT NULL,                -- the scheme that passed, and with what, as JSON
    UNIQUE (source, event_id)
);
CREATE INDEX gateway_events_received ON gateway_events (received_at, source, event_id);
CREATE INDEX gateway_events_source ON gateway_events (source, received_at);
CREATE TRIGGER gateway_events_no_update BEFORE UPDATE ON gateway_events
BEGIN SELECT RAISE(ABORT, 'gateway_events is append-only evidence: rows are never updated'); END;
CREATE TRIGGER gateway_events_no_delete BEFORE DELETE ON gateway_events
BEGIN SELECT RAISE(ABORT, 'gateway_events is append-only evidence: rows are never deleted'); END;
