-- Alerts: the worker's rules (`domain::alerts`), their state and history, the per-minute fault
-- tallies they read, and who wants them by email. Kept in step with ../postgres/0019_*.
-- (0018 is the email outbox.)

-- Faults that happen in a request and are counted only in memory there (a webhook answered 503,
-- a signature refused), gathered here by each process's worker once a sweep: one upsert per
-- (minute, kind) however many requests failed, so 10,000 bad signatures from anyone on the
-- internet cost a process one write, never 10,000. The alert rules sum the last minutes across
-- every process. Old minutes are removed by the worker.
CREATE TABLE webhook_faults (
    minute TEXT NOT NULL,                       -- the UTC minute the worker gathered them in
    kind   TEXT NOT NULL CHECK (kind IN ('store_unavailable', 'missing_header', 'malformed_header',
               'no_match', 'outside_tolerance')),
    count  INTEGER NOT NULL CHECK (count > 0),
    PRIMARY KEY (minute, kind)
);

-- One row per rule once it has been evaluated: firing since when (the latest episode's start,
-- kept after it resolves), resolved when (NULL while firing), and the notice still owed to the
-- team (`owed`: the start or the resolution, cleared only once a notice went out, so a failed
-- send is tried again at the next evaluation, never lost and never sent twice). Rule names are
-- the domain's; they are not constrained here so a new rule needs no migration.
CREATE TABLE alert_state (
    rule             TEXT PRIMARY KEY,
    firing_since     TEXT,
    resolved_at      TEXT,
    count            INTEGER NOT NULL DEFAULT 0,
    peak             INTEGER NOT NULL DEFAULT 0,
    detail           TEXT NOT NULL DEFAULT '',
    owed             TEXT CHECK (owed IN ('started', 'resolved')),
    last_notified_at TEXT,
    notify_error     TEXT,                      -- why the last send of the owed notice failed
    evaluated_at     TEXT NOT NULL,
    CHECK (resolved_at IS NULL OR firing_since IS NOT NULL)
);

-- Every episode of every rule: when it started and resolved, its largest count, its last word.
CREATE TABLE alert_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    resolved_at TEXT,
    peak        INTEGER NOT NULL,
    detail      TEXT NOT NULL,
    UNIQUE (rule, started_at)
);
CREATE INDEX alert_history_started ON alert_history (started_at);

-- One evaluation at a time across every process: the one row is claimed with a conditional
-- UPDATE (its lease has run out), and given back when the evaluation ends; a process that died
-- holding it loses it when the lease runs out.
CREATE TABLE alert_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    lease_until TEXT NOT NULL,
    generation  INTEGER NOT NULL
);
INSERT INTO alert_lease (id, lease_until, generation) VALUES (1, '1970-01-01T00:00:00+00:00', 0);

-- What the rules read once a minute, by index rather than by scanning: purchases started in the
-- last hours (the silence rule) and events dead-lettered in the last day.
CREATE INDEX purchases_created ON purchases (created_at);
CREATE INDEX stripe_event_processing_failed ON stripe_event_processing (processed_at) WHERE status = 'failed';

-- Admins who want alerts by email as well as in Slack (each opts in on the Alerts page).
ALTER TABLE users ADD COLUMN alert_emails BOOLEAN NOT NULL DEFAULT 0;
