-- The SHA-256 of each event's raw payload, computed when the event is stored and kept beside it,
-- so an evidence bundle can show that the bytes it carries are the bytes we received. Events
-- stored before this column existed have none (a digest computed now would prove nothing
-- about then); the bundle says so.
ALTER TABLE stripe_events ADD COLUMN payload_sha256 TEXT CHECK (payload_sha256 IS NULL OR length(payload_sha256) = 64);

-- Events by the time we received them: seals cover hours of it, and lists and searches read
-- the newest first.
CREATE INDEX stripe_events_received ON stripe_events (received_at, event_id);

-- Tamper evidence beyond the triggers (a database owner can turn a trigger off): each closed
-- hour of received events is sealed with a SHA-256 over its events in a fixed order, chained to
-- the seal before it. Recomputing the seals (`revision-store evidence verify`) names the first
-- hour whose events were altered, removed or added after it was sealed.
CREATE TABLE event_seals (
    period_start  TEXT PRIMARY KEY,
    period_end    TEXT NOT NULL CHECK (period_end > period_start),
    event_count   INTEGER NOT NULL CHECK (event_count >= 0),
    digest        TEXT NOT NULL CHECK (length(digest) = 64),
    previous      TEXT CHECK (previous IS NULL OR length(previous) = 64),
    chained       TEXT NOT NULL CHECK (length(chained) = 64),
    sealed_at     TEXT NOT NULL
);
CREATE TRIGGER event_seals_no_update BEFORE UPDATE ON event_seals
BEGIN SELECT RAISE(ABORT, 'event_seals is append-only: seals are never changed'); END;
CREATE TRIGGER event_seals_no_delete BEFORE DELETE ON event_seals
BEGIN SELECT RAISE(ABORT, 'event_seals is append-only: seals are never removed'); END;
