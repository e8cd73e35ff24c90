-- Revenue and the totals-only API. Kept in step with ../sqlite/0004_*.

-- Revenue reads money by date: each dated money table gets an index on its date, so a year's
-- figures are a range scan per table, not a scan of the whole ledger.
CREATE INDEX contract_revisions_created ON contract_revisions (created_at);
CREATE INDEX external_payments_created ON external_payments (created_at);
CREATE INDEX payment_refunds_first_seen ON payment_refunds (first_seen) WHERE status = 'succeeded';
CREATE INDEX payment_disputes_lost ON payment_disputes (updated_at) WHERE status = 'lost';

-- Keys for `GET /api/v1/…`, made with `revision-store api-key create`. Only a SHA-256 of the
-- key is kept; `prefix` (its first characters) tells keys apart in a list. A revoked key stays,
-- so the list shows what existed and when it stopped working.
CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 100),
    key_hash     TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
