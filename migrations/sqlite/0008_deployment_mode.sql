-- The Stripe mode this database is served in. Kept in step with ../postgres/0008_*.
--
-- A database stays with the mode it was first served in (`domain::deployment::start_in`): a
-- start in another mode is refused unless the operator passes --switch-mode, which appends a
-- row. So the table is the history of the database's modes, newest last; `seq` is unique, so two
-- processes starting at once cannot both record a first (or next) mode.
CREATE TABLE deployment_modes (
    seq           INTEGER PRIMARY KEY CHECK (seq >= 1),
    mode          TEXT NOT NULL CHECK (mode IN ('simulator', 'test', 'live')),
    switched_from TEXT CHECK (switched_from IN ('simulator', 'test', 'live')),
    recorded_at   TEXT NOT NULL,
    CHECK ((seq = 1) = (switched_from IS NULL))
);
