-- annvil results database, migration 7 -> 8 (see docs/RESULTS_DB.md): what
-- a derived variant changes relative to its parent, in a few words (from
-- `lineage: {change: ...}` in variant.yaml), for the "what made the
-- difference" tables. NULL: not said (rows written before, evolve
-- candidates).

ALTER TABLE lineage ADD COLUMN change TEXT;
