-- Outgoing email, as a durable outbox. A message is written here (in its cause's transaction,
-- or by the worker from the ledger row it is about) and sent afterwards by the worker, so no
-- request ever waits for a mail server, a mail survives a crash or an outage of the mail
-- server, and it is retried with backoff until it is sent or given up.
--
-- (kind, ref_id, recipient) is UNIQUE: a receipt or a revocation notice is keyed by its ledger
-- row (`contract_revisions.id`, `revision_adjustments.id`), an alert message by its episode,
-- so however often the worker looks, the same credit is mailed once. Links (invitations,
-- resets) have no ref_id: NULLs never collide, each link is its own message.
CREATE TABLE mail_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('invitation', 'reset', 'forgot', 'receipt', 'revoked',
                                                  'alert_started', 'alert_resolved')),
    ref_id          BIGINT,
    recipient       TEXT NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    subject         TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    UNIQUE (kind, ref_id, recipient),
    CHECK (status <> 'sent' OR sent_at IS NOT NULL),
    CHECK (status <> 'failed' OR last_error IS NOT NULL)
);
-- The worker's look for due messages.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status IN ('queued', 'sending');

-- Since when ledger rows get a receipt or a notice: set the first time the worker looks with a
-- mail server configured, so turning mail on (or deploying it) never mails a backlog of old
-- credits. One row at most.
CREATE TABLE mail_state (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    receipts_from  TIMESTAMPTZ NOT NULL
);
