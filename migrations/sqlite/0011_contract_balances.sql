-- Every contract's balance, kept. Kept in step with ../postgres/0011_*, which says why: the
-- admin balances page sorts every contract by available, and triggers keep the sums in the
-- transaction that inserts the ledger row. The ledger stays the truth (`revision-store balances
-- check` recomputes and compares).
--
-- available = base + Σ purchased − Σ revoked − Σ requested (domain::RevisionBalance).
CREATE TABLE contract_balances (
    contract_id INTEGER PRIMARY KEY REFERENCES contracts (id),
    base        INTEGER NOT NULL,
    purchased   INTEGER NOT NULL DEFAULT 0,
    revoked     INTEGER NOT NULL DEFAULT 0,
    requested   INTEGER NOT NULL DEFAULT 0,
    available   INTEGER GENERATED ALWAYS AS (base + purchased - revoked - requested) STORED
);
CREATE INDEX contract_balances_available ON contract_balances (available, contract_id);

INSERT INTO contract_balances (contract_id, base, purchased, revoked, requested)
SELECT c.id, c.base_revisions,
       COALESCE((SELECT SUM(r.revisions) FROM contract_revisions r WHERE r.contract_id = c.id), 0),
       COALESCE((SELECT SUM(a.revoked) FROM revision_adjustments a WHERE a.contract_id = c.id), 0),
       (SELECT COUNT(*) FROM revision_requests q WHERE q.contract_id = c.id)
FROM contracts c;

CREATE TRIGGER contract_balances_open AFTER INSERT ON contracts BEGIN
    INSERT INTO contract_balances (contract_id, base) VALUES (NEW.id, NEW.base_revisions);
END;
CREATE TRIGGER contract_balances_base AFTER UPDATE OF base_revisions ON contracts BEGIN
    UPDATE contract_balances SET base = NEW.base_revisions WHERE contract_id = NEW.id;
END;
CREATE TRIGGER contract_balances_credit AFTER INSERT ON contract_revisions BEGIN
    UPDATE contract_balances SET purchased = purchased + NEW.revisions WHERE contract_id = NEW.contract_id;
END;
CREATE TRIGGER contract_balances_adjustment AFTER INSERT ON revision_adjustments BEGIN
    UPDATE contract_balances SET revoked = revoked + NEW.revoked WHERE contract_id = NEW.contract_id;
END;
CREATE TRIGGER contract_balances_request AFTER INSERT ON revision_requests BEGIN
    UPDATE contract_balances SET requested = requested + 1 WHERE contract_id = NEW.contract_id;
END;
CREATE TRIGGER contract_balances_request_removed AFTER DELETE ON revision_requests BEGIN
    UPDATE contract_balances SET requested = requested - 1 WHERE contract_id = OLD.contract_id;
END;
