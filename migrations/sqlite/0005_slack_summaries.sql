-- The daily Slack summary: one row per summarised day, so it is sent once however many
-- processes run and however often they restart. A process claims the day by inserting its row
-- (the primary key lets one insert win) or by taking over a failed or abandoned one with a
-- conditional UPDATE; `lease_until` stops two processes sending at once.
CREATE TABLE slack_summaries (
    day             TEXT PRIMARY KEY CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    status          TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_until     TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    CHECK (status <> 'sent' OR sent_at IS NOT NULL),
    CHECK (status <> 'failed' OR last_error IS NOT NULL)
);
