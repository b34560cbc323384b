//! The schema: its version, the SQL that creates it step by step
//! (`schema_v1.sql`, then one migration per later version) and the checks
//! that refuse a database this build cannot read.

use super::{Result, Store, StoreError};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 8;
/// `PRAGMA application_id` of an annvil results database (ASCII "annv").
pub const APPLICATION_ID: i64 = 0x616E_6E76;

/// Schema migrations: `MIGRATIONS[i]` takes the database from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
];
const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

impl Store {
    /// Schema version of the open database (always [`SCHEMA_VERSION`] after [`Store::open`]).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Refuses a database of another application or of a newer schema.
    pub(super) fn check_identity(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let app: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))?;
        let display = self.path.display().to_string();
        if app != 0 && app != APPLICATION_ID {
            return Err(StoreError::Foreign {
                path: display,
                reason: format!("application_id {app:#x}"),
            });
        }
        if version < 0 {
            return Err(StoreError::Foreign {
                path: display,
                reason: format!("negative schema version {version}"),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: display,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            let tables: i64 = self.conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::Foreign {
                    path: display,
                    reason: format!("{tables} tables but no schema version"),
                });
            }
        }
        Ok(())
    }

    /// Brings the schema up to [`SCHEMA_VERSION`], one migration at a time,
    /// in one transaction.
    pub(super) fn migrate(&mut self) -> Result<()> {
        if self.schema_version()? == SCHEMA_VERSION {
            return Ok(());
        }
        let path = self.path.display().to_string();
        self.write(|tx| {
            // Re-read under the write lock: another process may have migrated meanwhile.
            let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let Ok(mut version) = usize::try_from(found) else {
                return Err(StoreError::Foreign {
                    path,
                    reason: format!("negative schema version {found}"),
                });
            };
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    path,
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            while version < MIGRATIONS.len() {
                tx.execute_batch(MIGRATIONS[version])?;
                version += 1;
                tx.pragma_update(None, "user_version", version)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::fixtures::{config, env, finished, key, open_tmp, point};
    use crate::model::EvalId;
    use crate::store::count;

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        drop(Store::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("newer than version {SCHEMA_VERSION}")),
            "{err}"
        );
    }

    #[test]
    fn foreign_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Foreign { .. })
        ));
        let path = dir.path().join("other2.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "application_id", 42).unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Foreign { .. })
        ));
    }

    #[test]
    fn database_is_wal_with_foreign_keys() {
        let (_dir, store) = open_tmp();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(count(&store, "PRAGMA foreign_keys"), 1);
        assert_eq!(count(&store, "PRAGMA application_id"), APPLICATION_ID);
    }

    #[test]
    fn version_2_database_is_migrated_and_old_rows_read_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO runs (started_at, command, cpu_model, cpu_flags, logical_cores, \
                 memory_bytes, os, rustc_version, host_version) \
                 VALUES ('2025-01-01T00:00:00.000Z', 'old', 'cpu', 'fpu avx2 avx512f avx512_vnni', \
                 2, 0, 'linux', 'rustc', '0');
                 INSERT INTO evaluations (run_id, variant_name, variant_hash, dataset_name, \
                 dataset_hash, build_params_json, config_json, config_key, k, runs, mode, threads, \
                 query_count, status, build_seconds, started_at, finished_at) \
                 VALUES (1, 'old', 'h', 'synthetic', 'd5a7a5e7', '{{}}', '{}', '{}', 10, 3, \
                 'single', 1, 1000, 'ok', 1.25, '2025-01-01T00:00:00.000Z', \
                 '2025-01-01T00:00:01.000Z');
                 INSERT INTO sweep_points (evaluation_id, ordinal, search_params_json, recall, \
                 recall_min, recall_max, runs_disagree, qps, latency_p50_us, latency_p95_us, \
                 latency_p99_us, runs, invalid_queries, mode, threads) \
                 VALUES (1, 0, '{{\"ef\":\"10\"}}', 0.9, 0.9, 0.9, 0, 100, 1, 2, 3, 3, 0, 'single', 1);",
                config().canonical_json(),
                config().key()
            ))
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let e = store.evaluation(EvalId(1)).unwrap();
        assert_eq!((e.sandboxed, e.build_threads), (None, None));
        assert_eq!(e.build_seconds, Some(1.25));
        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        assert_eq!(lb.rows[0].status_text, "ok");
        // Version 6 takes the machine of the row's run, typed as Rust types it.
        let machine = e.machine.expect("backfilled from the run");
        assert_eq!(machine.cpu_model, "cpu");
        assert_eq!(machine.machine_type(), "cpu (avx512+vnni)");
        assert_eq!(lb.scope.machine_type.as_deref(), Some("cpu (avx512+vnni)"));
        // Version 4's table starts empty: no bridge overhead in old scopes.
        assert_eq!(lb.bridge_overhead, None);
        assert_eq!(
            (lb.rows[0].sandboxed, lb.rows[0].build_threads),
            (None, None)
        );
        // The migrated file takes new rows with the new columns.
        let run = store.begin_run(&env(), "new").unwrap();
        let id = finished(
            &mut store,
            run,
            &key("new", "h", &[]),
            &[point(1, 0.9, 1.0)],
        );
        assert_eq!(store.evaluation(id).unwrap().build_threads, Some(2));
    }

    #[test]
    fn negative_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", -1).unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    }
}
