-- People managed from the admin pages. Kept in step with ../sqlite/0010_*.

-- A deactivated user cannot sign in and every session of theirs ends; the row stays, because
-- contracts, requests and refunds name who they belong to.
ALTER TABLE users ADD COLUMN deactivated_at TIMESTAMPTZ;

-- Whose session a row is, so that deactivating someone or changing their password ends every
-- one of their sessions at once (the record itself is JSON nothing else can search).
ALTER TABLE sessions ADD COLUMN user_id BIGINT;
CREATE INDEX sessions_user ON sessions (user_id);

-- One-time links to set a password: for a new advertiser, or after an admin resets one. Only a
-- SHA-256 of the token is kept, so a copy of the database cannot be used to take an account.
-- A link works once (`used_at`) and until `expires_at`; issuing a new one deletes the person's
-- unused older ones, so one live link per person.
CREATE TABLE password_links (
    token_hash TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id    BIGINT NOT NULL REFERENCES users (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
    created_by BIGINT REFERENCES users (id),  -- NULL: the command line
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX password_links_user ON password_links (user_id);

-- Who did what to whom: every people action of an admin (and of the command line, which has no
-- user: actor_id NULL), written in the same transaction as the action. Append-only.
CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id    BIGINT REFERENCES users (id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('user.create', 'user.deactivate', 'user.reactivate',
                    'user.password_link', 'user.password_set', 'contract.create')),
    user_id     BIGINT REFERENCES users (id),
    contract_id BIGINT REFERENCES contracts (id),
    detail      TEXT NOT NULL CHECK (length(detail) <= 1000),
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_user ON audit_log (user_id, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
