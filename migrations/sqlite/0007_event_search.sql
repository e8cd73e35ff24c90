-- Event search. Kept in step with ../postgres/0007_*.

-- What a search filters on, read once from each stored event's payload by the indexer
-- (`store::event_search::index_pending`, run by the worker and before each search), never on
-- the webhook's path: intake stores the raw event and answers, and the index follows. A row is
-- derived data: it can be rebuilt from `stripe_events` at any time, so it is not evidence and
-- not append-only.
CREATE TABLE event_search (
    id             INTEGER PRIMARY KEY,          -- the rowid the text index points at
    event_id       TEXT NOT NULL UNIQUE REFERENCES stripe_events (event_id),
    received_at    TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    livemode       BOOLEAN NOT NULL,
    payment_intent TEXT,                         -- the PaymentIntent the event is about, if any
    amount         INTEGER,                      -- minor units, of the object the event carries
    currency       TEXT,
    contract_id    INTEGER                       -- from its metadata, else its purchase or credit
);
-- Newest first, paged by keyset on (received_at, event_id): page 1,000 is an index seek.
CREATE INDEX event_search_recent ON event_search (received_at, event_id);
CREATE INDEX event_search_payment ON event_search (payment_intent, received_at, event_id);
CREATE INDEX event_search_contract ON event_search (contract_id, received_at, event_id);
CREATE INDEX event_search_type ON event_search (event_type, received_at, event_id);

-- Words of each payload, for text search (FTS5, contentless: the text stays in stripe_events
-- and only the index is kept). `_` joins a token, so a Stripe id (`pi_3Ab…`) is one word.
CREATE VIRTUAL TABLE event_search_text USING fts5 (body, content = '', tokenize = "unicode61 tokenchars '_'");

-- A key reads what its scope allows: `revenue` (totals only, no customer data) or `events`
-- (event search and export, which do carry customer data). Keys made before scopes existed
-- were made for the totals-only API.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'revenue' CHECK (scope IN ('revenue', 'events'));
