-- Issue 22 §1, money. Kept in step with ../sqlite/0015_*.

-- An admin's refund confirmation, kept server-side. The page shows a token; the submit consumes
-- the row (a conditional UPDATE: a reload or a second tab finds it consumed) and goes ahead only
-- if the payment is still as it was when quoted (`moment`: the domain's fingerprint of what was
-- refunded, disputed and revoked then). `claim` is set on consumption to the payment and that
-- moment, and is UNIQUE: two confirmations quoted at the same moment cannot both be spent, even
-- submitted at the same instant at two processes (the first refund changes the moment, so a
-- later quote claims a different one). The idempotency key sent to Stripe derives from the
-- token, so a retried submit of one confirmation is one refund at Stripe as well. A consumed
-- row always holds its claim; a row given back after Stripe's answer to it was lost, while what
-- Stripe holds is unknown, keeps its claim unconsumed (`store::refund_quotes::reopen`), so only
-- that confirmation, with the same idempotency key, can be submitted again.
CREATE TABLE refund_quotes (
    token       TEXT PRIMARY KEY CHECK (length(token) BETWEEN 16 AND 64),
    payment_id  TEXT NOT NULL CHECK (payment_id LIKE 'pi\_%'),
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    ask         TEXT NOT NULL CHECK (length(ask) <= 20),      -- `all`, or a number of revisions
    amount      BIGINT NOT NULL CHECK (amount > 0),            -- what the page showed, minor units
    moment      TEXT NOT NULL CHECK (length(moment) <= 200),
    quoted_by   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    consumed_at TIMESTAMPTZ,
    claim       TEXT UNIQUE,
    CHECK (consumed_at IS NULL OR claim IS NOT NULL)
);
CREATE INDEX refund_quotes_payment ON refund_quotes (payment_id);

-- Revisions held while refunds of a credited payment are pending (the domain's
-- `Revocation::refunding`, rewritten by `store::adjustments::book` under the payment's lock each
-- time the payment's facts are booked). A contract's balance holds their sum like an open
-- dispute's revisions: they cannot be spent while the money is on its way back.
CREATE TABLE refund_holds (
    payment_id  TEXT PRIMARY KEY REFERENCES contract_revisions (payment_id),
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    revisions   BIGINT NOT NULL CHECK (revisions >= 0),
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX refund_holds_contract ON refund_holds (contract_id) WHERE revisions > 0;
