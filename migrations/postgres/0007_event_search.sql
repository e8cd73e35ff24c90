-- Event search. Kept in step with ../sqlite/0007_*.

-- What a search filters on, read once from each stored event's payload by the indexer
-- (`store::event_search::index_pending`, run by the worker and before each search), never on
-- the webhook's path: intake stores the raw event and answers, and the index follows. A row is
-- derived data: it can be rebuilt from `stripe_events` at any time, so it is not evidence and
-- not append-only.
CREATE TABLE event_search (
    event_id       TEXT PRIMARY KEY REFERENCES stripe_events (event_id),
    received_at    TIMESTAMPTZ NOT NULL,
    event_type     TEXT NOT NULL,
    livemode       BOOLEAN NOT NULL,
    payment_intent TEXT,                         -- the PaymentIntent the event is about, if any
    amount         BIGINT,                       -- minor units, of the object the event carries
    currency       TEXT,
    contract_id    BIGINT,                       -- from its metadata, else its purchase or credit
    -- Words of the payload ('simple': no stemming, no stop words; ids and emails stay whole
    -- or split the same way in the query), for phrase search through the GIN index.
    body           TSVECTOR NOT NULL
);
-- Newest first, paged by keyset on (received_at, event_id): page 1,000 is an index seek.
CREATE INDEX event_search_recent ON event_search (received_at, event_id);
CREATE INDEX event_search_payment ON event_search (payment_intent, received_at, event_id);
CREATE INDEX event_search_contract ON event_search (contract_id, received_at, event_id);
CREATE INDEX event_search_type ON event_search (event_type text_pattern_ops, received_at, event_id);
CREATE INDEX event_search_body ON event_search USING GIN (body);

-- A key reads what its scope allows: `revenue` (totals only, no customer data) or `events`
-- (event search and export, which do carry customer data). Keys made before scopes existed
-- were made for the totals-only API.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'revenue' CHECK (scope IN ('revenue', 'events'));
