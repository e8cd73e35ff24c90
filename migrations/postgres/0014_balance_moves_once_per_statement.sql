-- Kept in step with ../sqlite/0014_*. A credit moves its contract's kept balance once per
-- statement, not once per ledger row.
--
-- Intake credits a group-commit batch of payments in one statement (store::events). With a row
-- trigger, every credited row ran its own UPDATE of the kept balance, and as `available` is
-- indexed none of those updates is a HOT update: each wrote a new row version and two index
-- entries, most often of the same contract's row. That was the largest single cost in a batch
-- (about 32 µs of PostgreSQL time per credit, measured with auto_explain's trigger timings).
-- Summed over the statement's new rows (a transition table), a batch moves each contract it
-- credits once.
--
-- Contracts are updated in id order, as the credits themselves are inserted in contract order:
-- two statements crediting the same contracts lock their balances in one order and never
-- deadlock (balances::batches_crediting_the_same_contracts_in_opposite_orders_never_deadlock).
DROP TRIGGER contract_balances_credit ON contract_revisions;

CREATE OR REPLACE FUNCTION contract_balances_credit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved RECORD;
BEGIN
    FOR moved IN
        SELECT contract_id, SUM(revisions) AS revisions FROM credited GROUP BY contract_id ORDER BY contract_id
    LOOP
        UPDATE contract_balances SET purchased = purchased + moved.revisions
        WHERE contract_id = moved.contract_id;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER contract_balances_credit AFTER INSERT ON contract_revisions
    REFERENCING NEW TABLE AS credited FOR EACH STATEMENT EXECUTE FUNCTION contract_balances_credit();
