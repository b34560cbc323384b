-- annvil results database, migration 6 -> 7 (see docs/RESULTS_DB.md): every
-- attempt of `host evaluate --executor slurm` at an evaluation, i.e. every
-- Slurm array task that served (or was to serve) its mailbox, with what
-- Slurm said about it: failed, cancelled, pre-empted and timed-out tasks are
-- kept here with Slurm's state and reason, next to the resubmission that
-- replaced them.

CREATE TABLE slurm_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    -- 0: the first submission; n >= 1: the n-th resubmission
    attempt       INTEGER NOT NULL CHECK (attempt >= 0),
    -- the attempt's mailbox directory on the shared directory
    directory     TEXT    NOT NULL CHECK (directory <> ''),
    job_id        INTEGER NOT NULL CHECK (job_id >= 1),
    array_index   INTEGER NOT NULL CHECK (array_index >= 0),
    -- Slurm's job state as last seen: PENDING, RUNNING, COMPLETED,
    -- CANCELLED, FAILED, TIMEOUT, PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, ...
    state         TEXT    NOT NULL CHECK (state <> ''),
    reason        TEXT,                      -- Slurm's reason; NULL when it gives none
    exit_code     TEXT,                      -- Slurm's `status:signal`
    node          TEXT,                      -- NULL: never ran
    lost          TEXT,                      -- why the coordinator gave the attempt up
    submitted_at  TEXT    NOT NULL,
    started_at    TEXT,
    ended_at      TEXT,
    updated_at    TEXT    NOT NULL,
    CHECK (ended_at IS NULL OR started_at IS NULL OR started_at <= ended_at),
    UNIQUE (evaluation_id, directory)
);
CREATE INDEX slurm_attempts_task ON slurm_attempts (job_id, array_index);
