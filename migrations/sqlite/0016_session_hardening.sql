-- Sessions that end when the account's credentials change. Kept in step with ../postgres/0016_*.
--
-- `credential_version` moves on with every password set or reset and every deactivation. A
-- sign-in reads it together with the password hash it verifies and stamps the session with it;
-- the session is loaded only while the stamp is the account's current version. So a sign-in that
-- verified the old password while a reset was committing gets a session that is dead on its next
-- request, and deleting sessions (which a save racing the reset could undo) is no longer the
-- only guard.
ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 1;

-- The stamp, and when the person signed in: a session lives at most 30 days from its sign-in
-- however often it is used (the idle expiry alone could be extended for ever).
ALTER TABLE sessions ADD COLUMN credential_version INTEGER;
ALTER TABLE sessions ADD COLUMN signed_in_at TEXT;
CREATE INDEX sessions_signed_in_at ON sessions (signed_in_at);
-- Signed-in sessions made before this migration carry no stamp: they end (everyone signs in
-- once more) rather than living on unchecked.
DELETE FROM sessions WHERE user_id IS NOT NULL;

-- Key material made by the first process that needs it and shared by every process of this
-- database (the signed device cookie, sealed values in sessions). Random bytes, hex; only the
-- server reads them.
CREATE TABLE server_keys (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL CHECK (length(secret) = 64),
    created_at TEXT NOT NULL
);
