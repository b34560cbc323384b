-- annvil results database, schema version 1 (see docs/RESULTS_DB.md).
-- Applied inside one transaction by Store::open on an empty database.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at    TEXT    NOT NULL,              -- UTC, RFC 3339 with milliseconds
    finished_at   TEXT,                          -- NULL: killed or still going
    command       TEXT    NOT NULL,              -- command line of the host invocation
    cpu_model     TEXT    NOT NULL,
    cpu_flags     TEXT    NOT NULL,              -- space-separated
    logical_cores INTEGER NOT NULL CHECK (logical_cores >= 0),
    memory_bytes  INTEGER NOT NULL CHECK (memory_bytes >= 0),
    os            TEXT    NOT NULL,
    rustc_version TEXT    NOT NULL,
    host_version  TEXT    NOT NULL,
    git_commit    TEXT,
    extra_json    TEXT    NOT NULL DEFAULT '{}'  -- JSON object of strings
);

CREATE TABLE evaluations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id             INTEGER NOT NULL REFERENCES runs (id),
    variant_name       TEXT    NOT NULL,
    variant_hash       TEXT    NOT NULL,
    dataset_name       TEXT    NOT NULL,
    dataset_hash       TEXT    NOT NULL,
    build_params_json  TEXT    NOT NULL,         -- canonical JSON object of strings (sorted keys)
    config_json        TEXT    NOT NULL,         -- canonical JSON of EvalConfig
    config_key         TEXT    NOT NULL,         -- 16 hex digits, FNV-1a 64 of config_json
    k                  INTEGER NOT NULL CHECK (k >= 1),
    runs               INTEGER NOT NULL CHECK (runs >= 1),
    mode               TEXT    NOT NULL CHECK (mode IN ('single', 'batch')),
    threads            INTEGER NOT NULL CHECK (threads >= 1),
    query_count        INTEGER NOT NULL CHECK (query_count >= 0),
    status             TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    failure_reason     TEXT,
    failure_detail     TEXT,
    build_seconds      REAL    CHECK (build_seconds IS NULL OR build_seconds >= 0),
    index_memory_bytes INTEGER CHECK (index_memory_bytes IS NULL OR index_memory_bytes >= 0),
    rss_bytes          INTEGER CHECK (rss_bytes IS NULL OR rss_bytes >= 0),
    log                TEXT,                     -- build or failure log excerpt (tail, <= 64 KiB)
    started_at         TEXT    NOT NULL,
    finished_at        TEXT,
    CHECK ((status = 'running') = (finished_at IS NULL)),
    CHECK ((status IN ('failed', 'skipped')) = (failure_reason IS NOT NULL))
);

-- One row per evaluation key: a redo replaces the previous row.
CREATE UNIQUE INDEX evaluations_key
    ON evaluations (variant_name, variant_hash, dataset_hash, build_params_json, config_key);
CREATE INDEX evaluations_scope ON evaluations (dataset_hash, config_key, status);
CREATE INDEX evaluations_dataset_name ON evaluations (dataset_name);

CREATE TABLE sweep_points (
    id                    INTEGER PRIMARY KEY,
    evaluation_id         INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    ordinal               INTEGER NOT NULL CHECK (ordinal >= 0),
    search_params_json    TEXT    NOT NULL,      -- canonical JSON object of strings
    recall                REAL    NOT NULL CHECK (recall BETWEEN 0 AND 1),
    recall_min            REAL    NOT NULL CHECK (recall_min BETWEEN 0 AND 1),
    recall_max            REAL    NOT NULL CHECK (recall_max BETWEEN 0 AND 1),
    runs_disagree         INTEGER NOT NULL CHECK (runs_disagree IN (0, 1)),
    qps                   REAL    NOT NULL CHECK (qps > 0),
    latency_p50_us        REAL    NOT NULL CHECK (latency_p50_us >= 0),
    latency_p95_us        REAL    NOT NULL CHECK (latency_p95_us >= latency_p50_us),
    latency_p99_us        REAL    NOT NULL CHECK (latency_p99_us >= latency_p95_us),
    runs                  INTEGER NOT NULL CHECK (runs >= 1),
    distance_computations REAL    CHECK (distance_computations IS NULL OR distance_computations >= 0),
    invalid_queries       INTEGER NOT NULL CHECK (invalid_queries >= 0),
    mode                  TEXT    NOT NULL CHECK (mode IN ('single', 'batch')),
    threads               INTEGER NOT NULL CHECK (threads >= 1),
    UNIQUE (evaluation_id, ordinal)
);
