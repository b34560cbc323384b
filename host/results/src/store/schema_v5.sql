-- annvil results database, migration 4 -> 5 (see docs/RESULTS_DB.md): how
-- each successful evaluation's variant was implemented, so benchmark tables
-- can tell a library's own compiled code from one served through the
-- Python bridge. NULL on rows written before (unknown) and on failures.

ALTER TABLE evaluations ADD COLUMN implementation TEXT
    CHECK (implementation IS NULL OR implementation IN ('native', 'python-bridge'));
