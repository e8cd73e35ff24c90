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
    period_start  TIMESTAMPTZ PRIMARY KEY,
    period_end    TIMESTAMPTZ NOT NULL CHECK (period_end > period_start),
    event_count   BIGINT NOT NULL CHECK (event_count >= 0),
    digest        TEXT NOT NULL CHECK (length(digest) = 64),  -- over the hour's events
    previous      TEXT CHECK (previous IS NULL OR length(previous) = 64), -- the seal before's chained
    chained       TEXT NOT NULL CHECK (length(chained) = 64), -- over previous, period, count, digest
    sealed_at     TIMESTAMPTZ NOT NULL
);
CREATE TRIGGER event_seals_append_only BEFORE UPDATE OR DELETE ON event_seals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER event_seals_no_truncate BEFORE TRUNCATE ON event_seals
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
