-- Kept in step with ../sqlite/0017_*.
--
-- A contract's balance inputs summed from its ledger rows, as one view: the single definition
-- the store reads a balance from (one contract's, under its lock, before a revision request),
-- and that `contract_balances`' kept sums are checked against and rebuilt from. Before this the
-- columns were a text fragment pasted into three statements. The rules that combine the inputs
-- (available, held, owed) are the domain's (`RevisionBalance`), not the database's.
--
-- disputed: revisions of payments with an open dispute, less what was already revoked from
-- them; refunding: revisions that pending refunds hold (`refund_holds`). CASTs because
-- PostgreSQL's SUM(bigint) is numeric.
CREATE VIEW contract_balance_inputs AS
SELECT c.id AS contract_id,
       c.base_revisions AS base,
       CAST(COALESCE((SELECT SUM(r.revisions) FROM contract_revisions r WHERE r.contract_id = c.id), 0) AS BIGINT)
         AS purchased,
       CAST(COALESCE((SELECT SUM(a.revoked) FROM revision_adjustments a WHERE a.contract_id = c.id), 0) AS BIGINT)
         AS revoked,
       CAST((SELECT COUNT(*) FROM revision_requests q WHERE q.contract_id = c.id) AS BIGINT) AS requested,
       CAST(COALESCE((SELECT SUM(r.revisions - COALESCE((SELECT SUM(a.revoked) FROM revision_adjustments a
                                                          WHERE a.payment_id = r.payment_id), 0))
                      FROM contract_revisions r
                      WHERE r.contract_id = c.id
                        AND EXISTS (SELECT 1 FROM payment_disputes d WHERE d.payment_id = r.payment_id AND d.is_open)),
                     0) AS BIGINT) AS disputed,
       CAST(COALESCE((SELECT SUM(h.revisions) FROM refund_holds h WHERE h.contract_id = c.id), 0) AS BIGINT)
         AS refunding
FROM contracts c;
