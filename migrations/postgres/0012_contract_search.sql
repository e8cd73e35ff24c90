-- The admin balances page's search (a substring of the advertiser's email or the publication,
-- any case) as index scans instead of a lower() of every row: about 100 ms a search at 100,000
-- contracts before (BENCHMARKS.md). pg_trgm ships with PostgreSQL and is a trusted extension:
-- the database's owner can create it. Kept in step with ../sqlite/0012_*.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contracts_publication_search ON contracts USING gin (lower(publication) gin_trgm_ops);
CREATE INDEX users_email_search ON users USING gin (lower(email) gin_trgm_ops);
