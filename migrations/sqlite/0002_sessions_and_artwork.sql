-- Sign-in sessions (tower-sessions records), kept in the app's database so a restart or a
-- second server process keeps everyone signed in. `data` is the record as JSON.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- A revision request's artwork file: stored under the data directory, named by the server
-- (never by the uploader), with the uploader's name, type and size kept for display.
ALTER TABLE revision_requests ADD COLUMN artwork_path TEXT;
ALTER TABLE revision_requests ADD COLUMN artwork_name TEXT CHECK (length(artwork_name) <= 255);
ALTER TABLE revision_requests ADD COLUMN artwork_type TEXT;
ALTER TABLE revision_requests ADD COLUMN artwork_size INTEGER CHECK (artwork_size > 0);
