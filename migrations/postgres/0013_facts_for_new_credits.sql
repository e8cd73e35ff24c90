-- Which of the payments an intake batch has just credited already have refunds or disputes
-- stored, asked inside the batch's own statement instead of in a second round trip after its
-- commit (BENCHMARKS.md, webhook intake).
--
-- Why a function: a refund stored while the batch runs must not fall between the two sides. The
-- side that books a refund takes the payment's advisory lock for its whole transaction
-- (`store::adjustments::book`) and looks for the credit. Here the credit, not yet committed, takes
-- the same lock shared, then reads the facts. Either the refund's transaction held the lock first,
-- and this read waits for its commit and then sees it; or this lock came first, and the refund's
-- transaction waits for the batch's commit and then sees the credit. The read must see what
-- committed after the batch's statement began, which only a query of its own does: a VOLATILE
-- PL/pgSQL function takes a fresh snapshot for each of its queries (a plain subquery would read
-- the statement's snapshot, taken before the wait). The facts are the same as
-- `store::adjustments::known_facts_sql`: refunds and disputes by payment id.
CREATE FUNCTION facts_for_new_credits(payments TEXT[]) RETURNS SETOF TEXT
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- The same lock key as `book`'s pg_advisory_xact_lock. In payment order, as every batch
    -- takes them.
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(p, 0)) FROM unnest(payments) AS p ORDER BY p;
    RETURN QUERY SELECT payment_id FROM payment_refunds WHERE payment_id = ANY (payments)
        UNION SELECT payment_id FROM payment_disputes WHERE payment_id = ANY (payments);
END
$$;
