//! The `bridge_overheads` table: what the Python bridge costs per query.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError};
use crate::model::{BridgeOverhead, RunId, Scope};

impl Store {
    /// Records the bridge's overhead measured in `scope` (on its machine
    /// type) during `run`.
    pub fn record_bridge_overhead(
        &mut self,
        run: RunId,
        scope: &Scope,
        overhead: BridgeOverhead,
    ) -> Result<()> {
        if !(overhead.seconds_per_query > 0.0 && overhead.seconds_per_query.is_finite())
            || overhead.queries == 0
        {
            return Err(StoreError::Invalid {
                what: format!("bridge overhead {overhead:?}"),
                reason: "needs a positive, finite time and a query count".into(),
            });
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO bridge_overheads (run_id, dataset_hash, config_key, machine_type, \
                 seconds_per_query, queries, measured_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
                 strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                params![
                    run.0,
                    scope.dataset_hash,
                    scope.config_key,
                    scope.machine_type,
                    overhead.seconds_per_query,
                    overhead.queries as i64
                ],
            )?;
            Ok(())
        })
    }

    /// The latest bridge overhead measured in `scope` (on its machine
    /// type), if any.
    pub fn bridge_overhead(&self, scope: &Scope) -> Result<Option<BridgeOverhead>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seconds_per_query, queries FROM bridge_overheads \
                 WHERE dataset_hash = ?1 AND config_key = ?2 AND machine_type IS ?3 \
                 ORDER BY id DESC LIMIT 1",
                params![scope.dataset_hash, scope.config_key, scope.machine_type],
                |r| {
                    Ok(BridgeOverhead {
                        seconds_per_query: r.get(0)?,
                        queries: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{env, open_tmp, populated};

    #[test]
    fn the_latest_overhead_of_a_scope_is_read_back_and_shown_under_its_leaderboard() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = populated(dir.path());
        let board = store.leaderboard("synthetic").unwrap().unwrap();
        assert_eq!(board.bridge_overhead, None);
        assert!(!crate::report::explanation(&board).contains("no-op adapter"));
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        for seconds in [4e-6, 3e-6] {
            let overhead = BridgeOverhead {
                seconds_per_query: seconds,
                queries: 100,
            };
            store
                .record_bridge_overhead(run, &board.scope, overhead)
                .unwrap();
        }
        let board = store.leaderboard("synthetic").unwrap().unwrap();
        assert_eq!(
            board.bridge_overhead.map(|o| o.seconds_per_query),
            Some(3e-6)
        );
        let text = crate::report::explanation(&board);
        assert!(text.contains("no-op adapter: 3.0 µs per query"), "{text}");
    }

    #[test]
    fn an_impossible_overhead_is_refused() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        let scope = Scope {
            dataset_name: "d".into(),
            dataset_hash: "h".into(),
            config_key: "c".into(),
            config: crate::fixtures::config(),
            machine_type: None,
        };
        for (seconds_per_query, queries) in [(0.0, 10), (f64::NAN, 10), (1e-6, 0)] {
            let overhead = BridgeOverhead {
                seconds_per_query,
                queries,
            };
            let err = store
                .record_bridge_overhead(run, &scope, overhead)
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        }
        assert_eq!(store.bridge_overhead(&scope).unwrap(), None);
    }
}
