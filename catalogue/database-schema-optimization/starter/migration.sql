-- migration.sql: the forward migration, in the order you would run it against the live primary.
--
-- The tests and graders run it with `psql -X -v ON_ERROR_STOP=1 -f migration.sql` (autocommit, not
-- inside one transaction) on a database built from schema.sql and seed.sql, then run it a second
-- time: a rerun after a failure part-way must succeed and change nothing.

