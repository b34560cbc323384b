-- annvil results database, migration 5 -> 6 (see docs/RESULTS_DB.md): the
-- node each evaluation was measured on, its CPU, and the machine type a
-- leaderboard is scoped to (figures of different machine types are never
-- ranked together). Rows written before take the machine of their run;
-- machine_type is the CPU model and its widest SIMD level, derived as
-- annvil_results::simd_level does.

ALTER TABLE evaluations ADD COLUMN node TEXT;
ALTER TABLE evaluations ADD COLUMN cpu_model TEXT;
ALTER TABLE evaluations ADD COLUMN cpu_flags TEXT;
ALTER TABLE evaluations ADD COLUMN machine_type TEXT;

UPDATE evaluations SET
    cpu_model = (SELECT cpu_model FROM runs WHERE runs.id = evaluations.run_id),
    cpu_flags = (SELECT cpu_flags FROM runs WHERE runs.id = evaluations.run_id);

UPDATE evaluations SET machine_type =
    (CASE WHEN cpu_model = '' THEN 'unknown CPU' ELSE cpu_model END) || ' (' ||
    (CASE
        WHEN ' ' || cpu_flags || ' ' LIKE '% avx512f %'
         AND ' ' || cpu_flags || ' ' LIKE '% avx512_vnni %' THEN 'avx512+vnni'
        WHEN ' ' || cpu_flags || ' ' LIKE '% avx512f %' THEN 'avx512'
        WHEN ' ' || cpu_flags || ' ' LIKE '% avx2 %' THEN 'avx2'
        ELSE 'baseline'
    END) || ')'
WHERE cpu_model IS NOT NULL;

CREATE INDEX evaluations_by_scope ON evaluations (dataset_hash, config_key, machine_type);

-- The Python bridge's own cost is a property of the machine too.
ALTER TABLE bridge_overheads ADD COLUMN machine_type TEXT;
UPDATE bridge_overheads SET machine_type =
    (SELECT machine_type FROM evaluations e
     WHERE e.run_id = bridge_overheads.run_id AND e.machine_type IS NOT NULL LIMIT 1);
