-- "Forgot your password?". Kept in step with ../sqlite/0020_*. (0019 is another change's.)

-- A set-password link may now be the person's own request: purpose 'forgot' (an hour, and the
-- current password keeps working until the new one is set). created_by NULL: the command line,
-- or the forgot form.
ALTER TABLE password_links DROP CONSTRAINT password_links_purpose_check;
ALTER TABLE password_links ADD CONSTRAINT password_links_purpose_check
    CHECK (purpose IN ('invite', 'reset', 'forgot'));

-- Requests of the forgot form, shared by every process: one row per request under two keys,
-- the address asked about and the client's address (`domain::people::forgot` holds the limits).
-- `key` is a SHA-256 of what it counts, so the table is not a list of who asked about whom from
-- where. Rows older than the window are deleted by the worker.
CREATE TABLE password_requests (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          TEXT NOT NULL CHECK (length(key) = 64),
    requested_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX password_requests_key ON password_requests (key, requested_at);
CREATE INDEX password_requests_at ON password_requests (requested_at);
