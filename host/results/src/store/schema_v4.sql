-- annvil results database, migration 3 -> 4 (see docs/RESULTS_DB.md): the
-- cost of the Python bridge itself, measured with a no-op adapter in the
-- same scope (dataset and config) as the bridged variants it is shown with.

CREATE TABLE bridge_overheads (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            INTEGER NOT NULL REFERENCES runs (id),
    dataset_hash      TEXT    NOT NULL,
    config_key        TEXT    NOT NULL,
    -- wall time per query of the no-op adapter's fastest run
    seconds_per_query REAL    NOT NULL CHECK (seconds_per_query > 0),
    queries           INTEGER NOT NULL CHECK (queries > 0),
    measured_at       TEXT    NOT NULL
);
CREATE INDEX bridge_overheads_scope ON bridge_overheads (dataset_hash, config_key);
