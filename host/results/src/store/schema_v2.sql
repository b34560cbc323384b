-- annvil results database, migration 1 -> 2 (see docs/RESULTS_DB.md):
-- the program database of `host evolve` and variant lineage.

-- Where a variant came from: its parent and the slot it changed (from
-- `lineage:` in variant.yaml, or recorded by `host evolve`).
CREATE TABLE lineage (
    variant_name  TEXT PRIMARY KEY,
    parent_name   TEXT NOT NULL,
    slot          TEXT NOT NULL CHECK (slot IN ('construction', 'search', 'refinement')),
    recorded_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Every candidate `host evolve` generated, evaluated or not.
CREATE TABLE candidates (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    session        TEXT    NOT NULL,          -- evolve session key (see store::program)
    name           TEXT    NOT NULL UNIQUE,   -- variant name (its directory name)
    dir            TEXT    NOT NULL,          -- variant directory
    content_hash   TEXT    NOT NULL,          -- hash of what was generated (slot code + slot config)
    parent_name    TEXT    NOT NULL,
    slot           TEXT    NOT NULL CHECK (slot IN ('construction', 'search', 'refinement')),
    generator      TEXT    NOT NULL,          -- llm, cmd, tune, recombine
    prompt         TEXT,                      -- what the generator was asked (NULL for offline generators)
    response       TEXT,                      -- the raw answer (or the mutation, for offline generators)
    slot_code      TEXT,                      -- the slot's source as materialised (NULL: configuration only)
    language       TEXT,                      -- rust, c, cpp (NULL: configuration only)
    build_log      TEXT,                      -- compiler output of a failed build
    status         TEXT    NOT NULL CHECK (status IN
                       ('generated', 'ok', 'invalid_response', 'build_failed', 'check_failed', 'evaluation_failed')),
    failure        TEXT,                      -- the artifact fed back to the next prompt
    reward         REAL,
    parent_reward  REAL,                      -- the parent's reward in the same scope when evaluated
    metrics_json   TEXT,                      -- QPS@0.90/0.95/0.99, max recall, build seconds, ...
    dataset_hash   TEXT,
    config_key     TEXT,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at    TEXT,
    UNIQUE (session, content_hash)
);
CREATE INDEX candidates_slot ON candidates (slot, status);
