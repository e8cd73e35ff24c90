-- Every contract's balance, kept. Kept in step with ../sqlite/0011_*.
--
-- The admin balances page sorts every contract by what it has available. Computed from the
-- ledger, that is an aggregate of every credit, reversal and request for each page view (about
-- 800 ms at 100,000 contracts and 1,000,000 rows, BENCHMARKS.md). Kept here, a page is an index
-- range. The sums are moved by triggers in the transaction that inserts the ledger row, so no
-- writer (webhook, return page, reconciliation, replay, the command line) can forget, and a
-- rolled-back insert moves nothing. The ledger stays the truth: spending a revision still
-- counts the contract's own rows under its lock, and `revision-store balances check` (and the
-- worker, daily) recomputes every balance from the rows and reports any difference.
--
-- available = base + Σ purchased − Σ revoked − Σ requested (domain::RevisionBalance).
CREATE TABLE contract_balances (
    contract_id BIGINT PRIMARY KEY REFERENCES contracts (id),
    base        BIGINT NOT NULL,
    purchased   BIGINT NOT NULL DEFAULT 0,
    revoked     BIGINT NOT NULL DEFAULT 0,
    requested   BIGINT NOT NULL DEFAULT 0,
    available   BIGINT GENERATED ALWAYS AS (base + purchased - revoked - requested) STORED
);
CREATE INDEX contract_balances_available ON contract_balances (available, contract_id);

INSERT INTO contract_balances (contract_id, base, purchased, revoked, requested)
SELECT c.id, c.base_revisions,
       COALESCE((SELECT SUM(r.revisions) FROM contract_revisions r WHERE r.contract_id = c.id), 0),
       COALESCE((SELECT SUM(a.revoked) FROM revision_adjustments a WHERE a.contract_id = c.id), 0),
       (SELECT COUNT(*) FROM revision_requests q WHERE q.contract_id = c.id)
FROM contracts c;

CREATE FUNCTION contract_balances_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contract_balances (contract_id, base) VALUES (NEW.id, NEW.base_revisions);
    RETURN NULL;
END $$;
CREATE TRIGGER contract_balances_open AFTER INSERT ON contracts
    FOR EACH ROW EXECUTE FUNCTION contract_balances_open();

CREATE FUNCTION contract_balances_base() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contract_balances SET base = NEW.base_revisions WHERE contract_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER contract_balances_base AFTER UPDATE OF base_revisions ON contracts
    FOR EACH ROW EXECUTE FUNCTION contract_balances_base();

CREATE FUNCTION contract_balances_credit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contract_balances SET purchased = purchased + NEW.revisions WHERE contract_id = NEW.contract_id;
    RETURN NULL;
END $$;
CREATE TRIGGER contract_balances_credit AFTER INSERT ON contract_revisions
    FOR EACH ROW EXECUTE FUNCTION contract_balances_credit();

CREATE FUNCTION contract_balances_adjustment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contract_balances SET revoked = revoked + NEW.revoked WHERE contract_id = NEW.contract_id;
    RETURN NULL;
END $$;
CREATE TRIGGER contract_balances_adjustment AFTER INSERT ON revision_adjustments
    FOR EACH ROW EXECUTE FUNCTION contract_balances_adjustment();

-- Requests are not append-only (nothing deletes one today), so a removal is counted back too.
CREATE FUNCTION contract_balances_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE contract_balances SET requested = requested + 1 WHERE contract_id = NEW.contract_id;
    ELSE
        UPDATE contract_balances SET requested = requested - 1 WHERE contract_id = OLD.contract_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER contract_balances_request AFTER INSERT OR DELETE ON revision_requests
    FOR EACH ROW EXECUTE FUNCTION contract_balances_request();
