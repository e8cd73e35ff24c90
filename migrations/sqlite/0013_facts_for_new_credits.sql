-- Kept in step with ../postgres/0013_*, which adds a function for a race SQLite cannot have:
-- its one writer stores a refund and a credit one after the other, never at once, so the look-up
-- inside the credit's transaction (`store::events::store_batch`) sees every refund stored before it.
SELECT 1;
