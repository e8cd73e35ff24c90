-- A sender claims a destination's due deliveries oldest first, `ORDER BY next_attempt_at, id`
-- (store::deliveries::claim_due). The fan-out gives a whole batch one next_attempt_at, so on
-- (destination_id, next_attempt_at) alone a claim read and sorted every due delivery to take
-- its first few; with `id` in the index its order is the claim's, and a claim reads only the
-- rows it takes.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (destination_id, next_attempt_at, id) WHERE status = 'pending';
