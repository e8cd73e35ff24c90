-- PostgreSQL indexes the admin search with trigrams here (../postgres/0012_*). SQLite has no
-- trigram index: its search reads the contracts (a few milliseconds at a single process's
-- scale). Nothing to change; kept so both dialects have the same numbered steps.
SELECT 1;
