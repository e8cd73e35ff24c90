-- Failed sign-ins, shared by every process. Kept in step with ../postgres/0009_*.
--
-- One row per (email, client address) pair and one per address (`domain::throttle` holds the
-- rules). `key` is a SHA-256 of what it counts, so the table is not a list of who tried to sign
-- in from where. Rows whose failures no longer matter are deleted by the worker, so the table
-- holds at most a quarter hour of attempts.
CREATE TABLE sign_in_throttle (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL CHECK (failures >= 0),
    first_at        TEXT NOT NULL,
    last_at         TEXT NOT NULL,
    next_allowed_at TEXT NOT NULL
);
CREATE INDEX sign_in_throttle_last ON sign_in_throttle (last_at);
