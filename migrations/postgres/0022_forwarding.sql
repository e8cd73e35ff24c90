-- Forwarding: the gateway passes the events it stored (Stripe's and the other sources') on to
-- the publisher's own receivers, signed by us (Standard Webhooks), after our commit and never
-- on the webhook's request path. Kept in step with ../sqlite/0022_*.

-- A destination: where deliveries go, which events it takes (`domain::forwarding::Filter` as
-- JSON), and how hard it may be pushed. `fanned_to` is the fan-out's cursor: the newest
-- received_at it has read (it starts at creation: a new destination gets new events, not the
-- store's history). Paused by an operator, or disabled when the receiver answered 410 Gone:
-- either way nothing is sent until it is resumed or enabled, and its deliveries wait pending.
CREATE TABLE forward_destinations (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 40 AND name ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    url             TEXT NOT NULL CHECK (length(url) BETWEEN 9 AND 2048
                                         AND (url LIKE 'https://%' OR url LIKE 'http://%')),
    filter          TEXT NOT NULL,
    rate_per_second BIGINT NOT NULL CHECK (rate_per_second BETWEEN 1 AND 1000),
    max_in_flight   BIGINT NOT NULL CHECK (max_in_flight BETWEEN 1 AND 64),
    created_at      TIMESTAMPTZ NOT NULL,
    fanned_to       TIMESTAMPTZ NOT NULL,
    paused_at       TIMESTAMPTZ,
    disabled_at     TIMESTAMPTZ,
    disabled_reason TEXT,
    CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL))
);

-- Our signing secrets for it (`whsec_`, made by us). While one is rotated several are active,
-- and a delivery is signed with each (`webhook-signature` holds one `v1,` per secret), so a
-- receiver holding either verifies it; the old one stops at `expires_at`.
CREATE TABLE forward_destination_secrets (
    id             BIGSERIAL PRIMARY KEY,
    destination_id BIGINT NOT NULL REFERENCES forward_destinations (id),
    secret         TEXT NOT NULL CHECK (secret LIKE 'whsec\_%' AND length(secret) <= 512),
    added_at       TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ
);
CREATE INDEX forward_destination_secrets_destination ON forward_destination_secrets (destination_id, added_at);

-- One delivery per (destination, stored event): UNIQUE, and the fan-out inserts or does
-- nothing, so two processes fanning out at once (or one looking back over what it saw) make
-- one row. `source` is `stripe` (event_id is stripe_events' key) or a gateway source
-- (gateway_events' (source, event_id)). A sender claims a due row by a conditional UPDATE that
-- moves `next_attempt_at` to its lease's end and writes its own `claim`; only the holder of
-- that claim may record the result, so two processes never both send one attempt.
CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    destination_id  BIGINT NOT NULL REFERENCES forward_destinations (id),
    source          TEXT NOT NULL,
    event_id        TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type      TEXT,
    received_at     TIMESTAMPTZ NOT NULL,         -- the event's, for the operator's time windows
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claim           TEXT,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    UNIQUE (destination_id, source, event_id),
    CHECK (status <> 'delivered' OR delivered_at IS NOT NULL)
);
-- A sender's look for its destination's due rows.
CREATE INDEX deliveries_due ON deliveries (destination_id, next_attempt_at) WHERE status = 'pending';
-- Listing and replaying a destination's deliveries by time.
CREATE INDEX deliveries_received ON deliveries (destination_id, received_at);

-- Every attempt, kept when a delivery is replayed: what was answered (or why nothing was),
-- how long it took, and the answer's first bytes, for an operator asking "why did it fail".
CREATE TABLE delivery_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES deliveries (id),
    attempted_at TIMESTAMPTZ NOT NULL,
    http_status  BIGINT CHECK (http_status IS NULL OR http_status BETWEEN 100 AND 599),
    error        TEXT,
    latency_ms   BIGINT NOT NULL CHECK (latency_ms >= 0),
    answer       TEXT NOT NULL DEFAULT '',
    CHECK (http_status IS NOT NULL OR error IS NOT NULL)
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempted_at);
