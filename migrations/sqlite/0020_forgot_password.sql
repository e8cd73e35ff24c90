-- "Forgot your password?". Kept in step with ../postgres/0020_*. (0019 is another change's.)

-- A set-password link may now be the person's own request: purpose 'forgot' (an hour, and the
-- current password keeps working until the new one is set). SQLite cannot change a CHECK in
-- place, so the table is rebuilt with its rows; nothing references it.
CREATE TABLE password_links_new (
    token_hash TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'reset', 'forgot')),
    created_by INTEGER REFERENCES users (id),  -- NULL: the command line, or the forgot form
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
INSERT INTO password_links_new (token_hash, user_id, purpose, created_by, created_at, expires_at, used_at)
    SELECT token_hash, user_id, purpose, created_by, created_at, expires_at, used_at FROM password_links;
DROP TABLE password_links;
ALTER TABLE password_links_new RENAME TO password_links;
CREATE INDEX password_links_user ON password_links (user_id);

-- Requests of the forgot form, shared by every process: one row per request under two keys,
-- the address asked about and the client's address (`domain::people::forgot` holds the limits).
-- `key` is a SHA-256 of what it counts, so the table is not a list of who asked about whom from
-- where. Rows older than the window are deleted by the worker.
CREATE TABLE password_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL CHECK (length(key) = 64),
    requested_at TEXT NOT NULL
);
CREATE INDEX password_requests_key ON password_requests (key, requested_at);
CREATE INDEX password_requests_at ON password_requests (requested_at);
