-- People managed from the admin pages. Kept in step with ../postgres/0010_*.

-- A deactivated user cannot sign in and every session of theirs ends; the row stays, because
-- contracts, requests and refunds name who they belong to.
ALTER TABLE users ADD COLUMN deactivated_at TEXT;

-- Whose session a row is, so that deactivating someone or changing their password ends every
-- one of their sessions at once (the record itself is JSON nothing else can search).
ALTER TABLE sessions ADD COLUMN user_id INTEGER;
CREATE INDEX sessions_user ON sessions (user_id);

-- One-time links to set a password: for a new advertiser, or after an admin resets one. Only a
-- SHA-256 of the token is kept, so a copy of the database cannot be used to take an account.
-- A link works once (`used_at`) and until `expires_at`; issuing a new one deletes the person's
-- unused older ones, so one live link per person.
CREATE TABLE password_links (
    token_hash TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
    created_by INTEGER REFERENCES users (id),  -- NULL: the command line
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX password_links_user ON password_links (user_id);

-- Who did what to whom: every people action of an admin (and of the command line, which has no
-- user: actor_id NULL), written in the same transaction as the action. Append-only.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id    INTEGER REFERENCES users (id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('user.create', 'user.deactivate', 'user.reactivate',
                    'user.password_link', 'user.password_set', 'contract.create')),
    user_id     INTEGER REFERENCES users (id),
    contract_id INTEGER REFERENCES contracts (id),
    detail      TEXT NOT NULL CHECK (length(detail) <= 1000),
    created_at  TEXT NOT NULL
);
CREATE INDEX audit_log_user ON audit_log (user_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows are never updated'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows are never deleted'); END;
