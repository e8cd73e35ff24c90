-- Kept in step with ../postgres/0014_*, which moves a kept balance once per statement instead
-- of once per credited row. SQLite has row triggers only, so its credit trigger (0011) stays;
-- each of its updates is an in-place write of one small row in the writer's transaction.
SELECT 1;
