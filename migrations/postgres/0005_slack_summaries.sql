-- The daily Slack summary: one row per summarised day, so it is sent once however many
-- processes run and however often they restart. A process claims the day by inserting its row
-- (the primary key lets one insert win) or by taking over a failed or abandoned one with a
-- conditional UPDATE; `lease_until` stops two processes sending at once.
CREATE TABLE slack_summaries (
    day             DATE PRIMARY KEY,
    status          TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_until     TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ,
    CHECK (status <> 'sent' OR sent_at IS NOT NULL),
    CHECK (status <> 'failed' OR last_error IS NOT NULL)
);
