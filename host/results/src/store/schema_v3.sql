-- annvil results database, migration 2 -> 3 (see docs/RESULTS_DB.md):
-- how each evaluation's worker ran. Rows of earlier versions keep NULL
-- (unknown) in both columns.

-- 1: the worker that ran the variant's code was sandboxed; 0: it was not
-- (reports mark the row "unsandboxed"); NULL: unknown.
ALTER TABLE evaluations ADD COLUMN sandboxed INTEGER
    CHECK (sandboxed IS NULL OR sandboxed IN (0, 1));

-- Threads the index build ran with; NULL: unknown or no build.
ALTER TABLE evaluations ADD COLUMN build_threads INTEGER
    CHECK (build_threads IS NULL OR build_threads >= 1);
