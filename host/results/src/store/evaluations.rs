//! The `evaluations` and `sweep_points` tables: an evaluation is started
//! (`running`), then closed once as `ok` with its sweep points, `failed` or
//! `skipped`; at most one row exists per [`EvaluationKey`]. Also the machine
//! each was measured on and the scopes (dataset version × config × machine
//! type) the finished evaluations fall in.

use rusqlite::{OptionalExtension, Row, ToSql, Transaction, params};

use super::{Result, Store, StoreError};
use crate::model::{
    Completed, EvalId, EvaluationKey, EvaluationOutcome, EvaluationRecord, Failure, Implementation,
    Machine, Mode, ParamMap, RunId, Scope, Status, SweepPoint,
};

/// Longest build log excerpt stored, in bytes; longer logs keep their tail.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// The condition selecting the row of one [`EvaluationKey`] (parameters ?1
/// to ?5: variant name and hash, dataset hash, build parameters, config key).
const KEY_WHERE: &str = "variant_name = ?1 AND variant_hash = ?2 AND dataset_hash = ?3 \
                         AND build_params_json = ?4 AND config_key = ?5";

/// The columns [`RawEvaluation::read`] reads, in its order.
const EVAL_COLUMNS: &str = "id, run_id, variant_name, variant_hash, dataset_name, dataset_hash, \
     build_params_json, config_json, config_key, status, failure_reason, failure_detail, \
     build_seconds, index_memory_bytes, rss_bytes, log, started_at, finished_at, sandboxed, \
     build_threads, implementation, node, cpu_model, cpu_flags";

impl Store {
    /// Starts an evaluation (status `running`) in `run`. Any earlier row with
    /// the same key — a finished one being redone with `--force`, or one left
    /// `running` by a killed process — is replaced together with its sweep
    /// points, so a key never has more than one row. The Slurm attempts of a
    /// row left `running` move to the new row (it resumes that evaluation);
    /// those of a finished row go with it.
    pub fn start_evaluation(&mut self, key: &EvaluationKey, run: RunId) -> Result<EvalId> {
        let build_params = serde_json::to_string(&key.build_params)?;
        let config_key = key.config.key();
        self.write(|tx| {
        let run_exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)",
            [run.0],
            |r| r.get(0),
        )?;
        if !run_exists {
            return Err(StoreError::UnknownRun(run));
        }
        let key_params = params![
            key.variant_name,
            key.variant_hash,
            key.dataset_hash,
            build_params,
            config_key
        ];
        let interrupted: Option<i64> = tx
            .query_row(
                &format!("SELECT id FROM evaluations WHERE {KEY_WHERE} AND status = 'running'"),
                key_params,
                |r| r.get(0),
            )
            .optional()?;
        let attempts = match interrupted {
            Some(old) => super::attempts::carry_over(tx, EvalId(old))?,
            None => Vec::new(),
        };
        tx.execute(&format!("DELETE FROM evaluations WHERE {KEY_WHERE}"), key_params)?;
        tx.execute(
            "INSERT INTO evaluations (run_id, variant_name, variant_hash, dataset_name, dataset_hash, \
             build_params_json, config_json, config_key, k, runs, mode, threads, query_count, status, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'running', \
             strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
            params![
                run.0,
                key.variant_name,
                key.variant_hash,
                key.dataset_name,
                key.dataset_hash,
                build_params,
                key.config.canonical_json(),
                config_key,
                key.config.k,
                key.config.runs,
                mode_column(key.config.mode),
                key.config.mode.threads(),
                key.config.query_count,
            ],
        )?;
        let id = EvalId(tx.last_insert_rowid());
        super::attempts::restore(tx, id, &attempts)?;
        Ok(id)
        })
    }

    /// Finishes a running evaluation: stores its sweep points and outcome and
    /// sets status `ok`, all in one transaction. Points are validated first
    /// (recall in [0, 1] with min ≤ mean ≤ max, QPS > 0, p50 ≤ p95 ≤ p99, R ≥ 1).
    pub fn finish_evaluation(
        &mut self,
        id: EvalId,
        outcome: &EvaluationOutcome,
        points: &[SweepPoint],
    ) -> Result<()> {
        check_outcome(outcome)?;
        for (i, p) in points.iter().enumerate() {
            check_point(p, i)?;
        }
        self.write(|tx| {
            require_running(tx, id)?;
            insert_points(tx, id, points)?;
            tx.execute(
            "UPDATE evaluations SET status = 'ok', build_seconds = ?2, index_memory_bytes = ?3, \
             rss_bytes = ?4, log = ?5, sandboxed = ?6, build_threads = ?7, implementation = ?8, \
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
            params![
                id.0,
                outcome.build_seconds,
                outcome.index_memory_bytes,
                outcome.rss_bytes,
                outcome.build_log.as_deref().map(log_excerpt),
                outcome.sandboxed,
                outcome.build_threads,
                outcome.implementation.as_str(),
            ],
        )?;
            Ok(())
        })
    }

    /// Records the node a running evaluation is measured on (its machine
    /// type decides the leaderboard scope it is ranked in).
    pub fn record_machine(&mut self, id: EvalId, machine: &Machine) -> Result<()> {
        self.write(|tx| {
            require_running(tx, id)?;
            tx.execute(
                "UPDATE evaluations SET node = ?2, cpu_model = ?3, cpu_flags = ?4, \
                 machine_type = ?5 WHERE id = ?1",
                params![
                    id.0,
                    machine.node,
                    machine.cpu_model,
                    machine.cpu_flags.join(" "),
                    machine.machine_type(),
                ],
            )?;
            Ok(())
        })
    }

    /// Marks a running evaluation as failed, with its reason.
    pub fn fail_evaluation(&mut self, id: EvalId, failure: &Failure) -> Result<()> {
        self.close_unsuccessfully(id, Status::Failed, failure)
    }

    /// Marks a running evaluation as skipped (not attempted), with its reason.
    pub fn skip_evaluation(&mut self, id: EvalId, failure: &Failure) -> Result<()> {
        self.close_unsuccessfully(id, Status::Skipped, failure)
    }

    fn close_unsuccessfully(
        &mut self,
        id: EvalId,
        status: Status,
        failure: &Failure,
    ) -> Result<()> {
        self.write(|tx| {
            require_running(tx, id)?;
            tx.execute(
                "UPDATE evaluations SET status = ?2, failure_reason = ?3, failure_detail = ?4, \
                 log = ?5, sandboxed = ?6, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') \
                 WHERE id = ?1",
                params![
                    id.0,
                    status.as_str(),
                    failure.reason,
                    failure.detail,
                    failure.log.as_deref().map(log_excerpt),
                    failure.sandboxed,
                ],
            )?;
            Ok(())
        })
    }

    /// The finished evaluation of this key, if any, so that a rerun can skip
    /// it. `ok` and `failed` count as finished (a failure is a result: rerun
    /// it with `--force`); `skipped` does not (it depends on the machine) and
    /// neither does `running` (its process was killed).
    pub fn completed(&self, key: &EvaluationKey) -> Result<Option<Completed>> {
        let build_params = serde_json::to_string(&key.build_params)?;
        let found = self
            .conn
            .query_row(
                &format!("SELECT id, status FROM evaluations WHERE {KEY_WHERE} AND status IN ('ok', 'failed')"),
                params![key.variant_name, key.variant_hash, key.dataset_hash, build_params, key.config.key()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        found
            .map(|(id, status)| {
                Ok(Completed {
                    id: EvalId(id),
                    status: status_column(&status)?,
                })
            })
            .transpose()
    }

    /// Reads an evaluation.
    pub fn evaluation(&self, id: EvalId) -> Result<EvaluationRecord> {
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {EVAL_COLUMNS} FROM evaluations WHERE id = ?1"),
                [id.0],
                RawEvaluation::read,
            )
            .optional()?;
        raw.ok_or(StoreError::UnknownEvaluation(id))?.decode()
    }

    /// The sweep points of an evaluation, in the order they were stored.
    pub fn sweep_points(&self, id: EvalId) -> Result<Vec<SweepPoint>> {
        let mut stmt = self.conn.prepare(
            "SELECT search_params_json, recall, recall_min, recall_max, runs_disagree, qps, latency_p50_us, \
             latency_p95_us, latency_p99_us, runs, distance_computations, invalid_queries, mode, threads \
             FROM sweep_points WHERE evaluation_id = ?1 ORDER BY ordinal",
        )?;
        let rows = stmt.query_map([id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                SweepPoint {
                    search_params: ParamMap::new(),
                    recall: r.get(1)?,
                    recall_min: r.get(2)?,
                    recall_max: r.get(3)?,
                    runs_disagree: r.get(4)?,
                    qps: r.get(5)?,
                    latency_p50_us: r.get(6)?,
                    latency_p95_us: r.get(7)?,
                    latency_p99_us: r.get(8)?,
                    runs: r.get(9)?,
                    distance_computations: r.get(10)?,
                    invalid_queries: r.get(11)?,
                    mode: Mode::Single,
                },
                r.get::<_, String>(12)?,
                r.get::<_, u32>(13)?,
            ))
        })?;
        let mut points = Vec::new();
        for row in rows {
            let (params_json, mut point, mode, threads) = row?;
            point.search_params = serde_json::from_str(&params_json)?;
            point.mode = mode_from_columns(&mode, threads)?;
            points.push(point);
        }
        Ok(points)
    }

    /// Every scope (dataset version × config × machine type) with a
    /// finished evaluation, most recently evaluated first.
    pub fn all_scopes(&self) -> Result<Vec<Scope>> {
        self.scopes_where("1", &[])
    }

    /// Every leaderboard scope whose dataset name or hash equals `dataset`,
    /// most recently evaluated first.
    pub fn scopes(&self, dataset: &str) -> Result<Vec<Scope>> {
        self.scopes_where("(dataset_name = ?1 OR dataset_hash = ?1)", &[&dataset])
    }

    /// The scopes of the finished evaluations matching `condition`. Rows
    /// with no machine (never measured: skipped, or failed before a node
    /// reported) form a scope of their own only where nothing of their
    /// dataset and config was measured; otherwise they join every machine's.
    fn scopes_where(&self, condition: &str, args: &[&dyn ToSql]) -> Result<Vec<Scope>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT max(id) AS latest FROM evaluations e WHERE {condition} AND status != 'running' \
             AND (machine_type IS NOT NULL OR NOT EXISTS (SELECT 1 FROM evaluations m \
                  WHERE m.dataset_hash = e.dataset_hash AND m.config_key = e.config_key \
                  AND m.status != 'running' AND m.machine_type IS NOT NULL)) \
             GROUP BY dataset_hash, config_key, machine_type ORDER BY latest DESC"
        ))?;
        let found = stmt
            .query_map(args, |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        found
            .into_iter()
            .map(|latest| Ok(self.evaluation(EvalId(latest))?.scope()))
            .collect()
    }

    /// The evaluations of `scope` that are not `running`, oldest first:
    /// those measured on its machine type and those never measured.
    pub(crate) fn finished_evaluations(&self, scope: &Scope) -> Result<Vec<EvaluationRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVAL_COLUMNS} FROM evaluations WHERE dataset_hash = ?1 AND config_key = ?2 \
             AND status != 'running' AND (machine_type IS ?3 OR machine_type IS NULL) ORDER BY id"
        ))?;
        stmt.query_map(
            params![scope.dataset_hash, scope.config_key, scope.machine_type],
            RawEvaluation::read,
        )?
        .map(|raw| raw?.decode())
        .collect()
    }
}

/// Stores the sweep points of evaluation `id`, in order, inside `tx`.
fn insert_points(tx: &Transaction<'_>, id: EvalId, points: &[SweepPoint]) -> Result<()> {
    let mut insert = tx.prepare(
                "INSERT INTO sweep_points (evaluation_id, ordinal, search_params_json, recall, recall_min, \
                 recall_max, runs_disagree, qps, latency_p50_us, latency_p95_us, latency_p99_us, runs, \
                 distance_computations, invalid_queries, mode, threads) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
    for (i, p) in points.iter().enumerate() {
        insert.execute(params![
            id.0,
            i as i64,
            serde_json::to_string(&p.search_params)?,
            p.recall,
            p.recall_min,
            p.recall_max,
            p.runs_disagree,
            p.qps,
            p.latency_p50_us,
            p.latency_p95_us,
            p.latency_p99_us,
            p.runs,
            p.distance_computations,
            p.invalid_queries,
            mode_column(p.mode),
            p.mode.threads(),
        ])?;
    }
    Ok(())
}

/// Fails unless `outcome` keeps the invariants of the schema (build seconds
/// finite and >= 0, at least one build thread).
fn check_outcome(outcome: &EvaluationOutcome) -> Result<()> {
    let bad_outcome = |reason: String| {
        Err(StoreError::Invalid {
            what: "outcome".to_string(),
            reason,
        })
    };
    if !(outcome.build_seconds.is_finite() && outcome.build_seconds >= 0.0) {
        return bad_outcome(format!(
            "build seconds {} must be finite and >= 0",
            outcome.build_seconds
        ));
    }
    if outcome.build_threads == 0 {
        return bad_outcome("build threads must be >= 1".to_string());
    }
    Ok(())
}

/// Fails unless sweep point number `index` keeps the invariants of the schema.
fn check_point(point: &SweepPoint, index: usize) -> Result<()> {
    let bad = |reason: String| {
        Err(StoreError::Invalid {
            what: format!("sweep point {index}"),
            reason,
        })
    };
    let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
    let slack = 1e-9;
    if !(unit(point.recall) && unit(point.recall_min) && unit(point.recall_max)) {
        return bad(format!(
            "recall {}, min {}, max {} must lie in [0, 1]",
            point.recall, point.recall_min, point.recall_max
        ));
    }
    if point.recall_min > point.recall + slack || point.recall > point.recall_max + slack {
        return bad(format!(
            "recall min {} <= mean {} <= max {} does not hold",
            point.recall_min, point.recall, point.recall_max
        ));
    }
    if !(point.qps.is_finite() && point.qps > 0.0) {
        return bad(format!("qps {} must be finite and > 0", point.qps));
    }
    let lat = [
        point.latency_p50_us,
        point.latency_p95_us,
        point.latency_p99_us,
    ];
    if lat.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || lat[0] > lat[1] || lat[1] > lat[2] {
        return bad(format!(
            "latencies p50 {} <= p95 {} <= p99 {} (finite, >= 0) do not hold",
            lat[0], lat[1], lat[2]
        ));
    }
    if point.runs == 0 {
        return bad("runs must be >= 1".to_string());
    }
    if let Some(d) = point
        .distance_computations
        .filter(|d| !(d.is_finite() && *d >= 0.0))
    {
        return bad(format!("distance computations {d} must be finite and >= 0"));
    }
    if point.mode.threads() == 0 {
        return bad("batch mode needs at least one thread".to_string());
    }
    Ok(())
}

/// Decodes the `status` column.
fn status_column(s: &str) -> Result<Status> {
    Status::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown status {s:?}")))
}

/// The `mode` column of a mode (its thread count goes to `threads`).
fn mode_column(mode: Mode) -> &'static str {
    match mode {
        Mode::Single => "single",
        Mode::Batch { .. } => "batch",
    }
}

/// Decodes the `mode` and `threads` columns.
fn mode_from_columns(kind: &str, threads: u32) -> Result<Mode> {
    match kind {
        "single" => Ok(Mode::Single),
        "batch" => Ok(Mode::Batch { threads }),
        other => Err(StoreError::Corrupt(format!("unknown mode {other:?}"))),
    }
}

/// Fails unless evaluation `id` is `running`.
fn require_running(tx: &Transaction<'_>, id: EvalId) -> Result<()> {
    let status: Option<String> = tx
        .query_row(
            "SELECT status FROM evaluations WHERE id = ?1",
            [id.0],
            |r| r.get(0),
        )
        .optional()?;
    match status {
        None => Err(StoreError::UnknownEvaluation(id)),
        Some(s) => match status_column(&s)? {
            Status::Running => Ok(()),
            status => Err(StoreError::NotRunning { id, status }),
        },
    }
}

/// The last [`MAX_LOG_BYTES`] of a log, cut at a character boundary, with a
/// marker saying how much was dropped.
fn log_excerpt(log: &str) -> String {
    if log.len() <= MAX_LOG_BYTES {
        return log.to_string();
    }
    let mut start = log.len() - MAX_LOG_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]\n{}", &log[start..])
}

/// A row of `evaluations` as read, before its JSON columns are decoded.
struct RawEvaluation {
    id: i64,
    run_id: i64,
    variant_name: String,
    variant_hash: String,
    dataset_name: String,
    dataset_hash: String,
    build_params_json: String,
    config_json: String,
    config_key: String,
    status: String,
    failure_reason: Option<String>,
    failure_detail: Option<String>,
    build_seconds: Option<f64>,
    index_memory_bytes: Option<u64>,
    rss_bytes: Option<u64>,
    log: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    sandboxed: Option<bool>,
    build_threads: Option<u32>,
    implementation: Option<String>,
    node: Option<String>,
    cpu_model: Option<String>,
    cpu_flags: Option<String>,
}

impl RawEvaluation {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            run_id: r.get(1)?,
            variant_name: r.get(2)?,
            variant_hash: r.get(3)?,
            dataset_name: r.get(4)?,
            dataset_hash: r.get(5)?,
            build_params_json: r.get(6)?,
            config_json: r.get(7)?,
            config_key: r.get(8)?,
            status: r.get(9)?,
            failure_reason: r.get(10)?,
            failure_detail: r.get(11)?,
            build_seconds: r.get(12)?,
            index_memory_bytes: r.get(13)?,
            rss_bytes: r.get(14)?,
            log: r.get(15)?,
            started_at: r.get(16)?,
            finished_at: r.get(17)?,
            sandboxed: r.get(18)?,
            build_threads: r.get(19)?,
            implementation: r.get(20)?,
            node: r.get(21)?,
            cpu_model: r.get(22)?,
            cpu_flags: r.get(23)?,
        })
    }

    fn decode(self) -> Result<EvaluationRecord> {
        Ok(EvaluationRecord {
            id: EvalId(self.id),
            run_id: RunId(self.run_id),
            key: EvaluationKey {
                variant_name: self.variant_name,
                variant_hash: self.variant_hash,
                dataset_name: self.dataset_name,
                dataset_hash: self.dataset_hash,
                build_params: serde_json::from_str(&self.build_params_json)?,
                config: serde_json::from_str(&self.config_json)?,
            },
            config_key: self.config_key,
            status: status_column(&self.status)?,
            failure_reason: self.failure_reason,
            failure_detail: self.failure_detail,
            build_seconds: self.build_seconds,
            index_memory_bytes: self.index_memory_bytes,
            rss_bytes: self.rss_bytes,
            sandboxed: self.sandboxed,
            build_threads: self.build_threads,
            implementation: self
                .implementation
                .map(|s| {
                    Implementation::parse(&s).ok_or_else(|| StoreError::Invalid {
                        what: "evaluation".to_string(),
                        reason: format!("unknown implementation {s:?}"),
                    })
                })
                .transpose()?,
            machine: self.cpu_model.map(|cpu_model| Machine {
                node: self.node.unwrap_or_default(),
                cpu_model,
                cpu_flags: self
                    .cpu_flags
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            }),
            log: self.log,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{config, env, failed, finished, key, open_tmp, outcome, point};
    use crate::store::{SCHEMA_VERSION, count};

    #[test]
    fn round_trip() {
        let (dir, mut store) = open_tmp();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let run = store
            .begin_run(&env(), "host run --dataset synthetic")
            .unwrap();
        let k = key("hnsw", "h1", &[("M", "16"), ("ef_construction", "200")]);
        assert_eq!(store.completed(&k).unwrap(), None);
        let id = store.start_evaluation(&k, run).unwrap();
        assert_eq!(store.evaluation(id).unwrap().status, Status::Running);
        let mut points = vec![
            point(10, 0.8, 5000.0),
            point(20, 0.9, 3000.0),
            point(40, 0.97, 1500.0),
        ];
        points[1].runs_disagree = true;
        points[1].recall_min = 0.89;
        points[1].recall_max = 0.91;
        points[2].distance_computations = None;
        points[2].mode = Mode::Batch { threads: 2 };
        store.finish_evaluation(id, &outcome(), &points).unwrap();
        store.end_run(run).unwrap();
        drop(store);

        let store = Store::open(dir.path().join("results.sqlite")).unwrap();
        assert_eq!(
            store.completed(&k).unwrap(),
            Some(Completed {
                id,
                status: Status::Ok
            })
        );
        let e = store.evaluation(id).unwrap();
        assert_eq!(e.key, k);
        assert_eq!(e.run_id, run);
        assert_eq!(e.config_key, config().key());
        assert_eq!(e.build_seconds, Some(1.25));
        assert_eq!(e.index_memory_bytes, Some(10 << 20));
        assert_eq!(e.rss_bytes, Some(50 << 20));
        assert_eq!(e.log.as_deref(), Some("built"));
        assert!(e.finished_at.is_some());
        assert_eq!(store.sweep_points(id).unwrap(), points);
        let r = store.run(run).unwrap();
        assert_eq!(r.environment, env());
        assert_eq!(r.command, "host run --dataset synthetic");
        assert!(
            r.started_at.ends_with('Z') && r.finished_at.is_some(),
            "{r:?}"
        );
        assert!(matches!(
            store.run(RunId(999)),
            Err(StoreError::UnknownRun(_))
        ));
        assert!(matches!(
            store.evaluation(EvalId(999)),
            Err(StoreError::UnknownEvaluation(_))
        ));
    }

    #[test]
    fn unfinished_evaluation_is_not_completed_and_redo_replaces_it() {
        let (dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let k = key("ivf", "h1", &[("nlist", "64")]);
        let abandoned = store.start_evaluation(&k, run).unwrap();
        drop(store); // the process "dies" here

        let mut store = Store::open(dir.path().join("results.sqlite")).unwrap();
        assert_eq!(store.completed(&k).unwrap(), None);
        assert_eq!(store.evaluation(abandoned).unwrap().status, Status::Running);
        assert!(
            store.leaderboard("synthetic").unwrap().is_none(),
            "running rows are not ranked"
        );
        let run2 = store.begin_run(&env(), "host run").unwrap();
        let redo = store.start_evaluation(&k, run2).unwrap();
        assert_ne!(redo, abandoned);
        assert!(matches!(
            store.evaluation(abandoned),
            Err(StoreError::UnknownEvaluation(_))
        ));
        assert!(matches!(
            store.finish_evaluation(abandoned, &outcome(), &[]),
            Err(StoreError::UnknownEvaluation(_))
        ));
        store
            .finish_evaluation(redo, &outcome(), &[point(10, 0.9, 100.0)])
            .unwrap();
        assert_eq!(count(&store, "SELECT count(*) FROM evaluations"), 1);
        assert_eq!(store.completed(&k).unwrap().map(|c| c.id), Some(redo));
    }

    #[test]
    fn forced_redo_replaces_row_and_points() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let k = key("hnsw", "h1", &[]);
        let first = finished(
            &mut store,
            run,
            &k,
            &[point(10, 0.9, 100.0), point(20, 0.95, 50.0)],
        );
        let second = finished(&mut store, run, &k, &[point(10, 0.91, 110.0)]);
        assert_ne!(first, second);
        assert_eq!(count(&store, "SELECT count(*) FROM evaluations"), 1);
        assert_eq!(count(&store, "SELECT count(*) FROM sweep_points"), 1);
        assert_eq!(store.sweep_points(first).unwrap(), vec![]);
        // Another build-param set is another key.
        finished(
            &mut store,
            run,
            &key("hnsw", "h1", &[("M", "8")]),
            &[point(10, 0.9, 1.0)],
        );
        assert_eq!(count(&store, "SELECT count(*) FROM evaluations"), 2);
    }

    #[test]
    fn final_states_are_final() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let ok = finished(&mut store, run, &key("a", "h", &[]), &[point(1, 0.9, 1.0)]);
        assert!(matches!(
            store.finish_evaluation(ok, &outcome(), &[]),
            Err(StoreError::NotRunning {
                status: Status::Ok,
                ..
            })
        ));
        assert!(matches!(
            store.fail_evaluation(ok, &Failure::new("x", "y")),
            Err(StoreError::NotRunning { .. })
        ));
        let bad = failed(&mut store, run, &key("b", "h", &[]), "crash: SIGSEGV");
        assert!(matches!(
            store.finish_evaluation(bad, &outcome(), &[]),
            Err(StoreError::NotRunning {
                status: Status::Failed,
                ..
            })
        ));
        assert_eq!(
            store.completed(&key("b", "h", &[])).unwrap(),
            Some(Completed {
                id: bad,
                status: Status::Failed
            })
        );
        let e = store.evaluation(bad).unwrap();
        assert_eq!(e.failure_reason.as_deref(), Some("crash: SIGSEGV"));
        assert_eq!(e.failure_detail.as_deref(), Some("detail"));
        let skipped = store.start_evaluation(&key("c", "h", &[]), run).unwrap();
        store
            .skip_evaluation(
                skipped,
                &Failure::new("missing package libfoo-dev", "apt-get install libfoo-dev"),
            )
            .unwrap();
        assert_eq!(
            store.completed(&key("c", "h", &[])).unwrap(),
            None,
            "skipped is retried"
        );
        assert!(matches!(
            store.start_evaluation(&key("d", "h", &[]), RunId(77)),
            Err(StoreError::UnknownRun(_))
        ));
    }

    #[test]
    fn invalid_points_are_rejected_whole() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store.start_evaluation(&key("a", "h", &[]), run).unwrap();
        let mut cases = Vec::new();
        let mut p = point(1, 0.9, 100.0);
        p.recall = 1.2;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.qps = 0.0;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.recall_min = 0.95;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.latency_p99_us = 0.0;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.runs = 0;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.distance_computations = Some(f64::NAN);
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.mode = Mode::Batch { threads: 0 };
        cases.push(p);
        for bad in cases {
            let err = store
                .finish_evaluation(id, &outcome(), &[point(2, 0.5, 10.0), bad.clone()])
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("sweep point 1"), "{err}");
        }
        let bad_outcome = EvaluationOutcome {
            build_seconds: f64::NAN,
            ..outcome()
        };
        assert!(store.finish_evaluation(id, &bad_outcome, &[]).is_err());
        assert_eq!(count(&store, "SELECT count(*) FROM sweep_points"), 0);
        assert_eq!(store.evaluation(id).unwrap().status, Status::Running);
    }

    #[test]
    fn figures_of_different_machine_types_are_ranked_apart() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        let node = |name: &str, flags: &str| Machine {
            node: name.into(),
            cpu_model: "Xeon".into(),
            cpu_flags: flags.split_whitespace().map(str::to_string).collect(),
        };
        let measured = |store: &mut Store, variant: &str, machine: &Machine| {
            let id = store
                .start_evaluation(&key(variant, "h", &[]), run)
                .unwrap();
            store.record_machine(id, machine).unwrap();
            store
                .finish_evaluation(id, &outcome(), &[point(10, 0.9, 100.0)])
                .unwrap();
        };
        measured(&mut store, "a", &node("n1", "avx2 avx512f"));
        measured(&mut store, "b", &node("n2", "avx2 avx512f"));
        measured(&mut store, "c", &node("n3", "avx2"));
        // Never measured: belongs to every machine's board.
        let id = store
            .start_evaluation(&key("skipped", "h", &[]), run)
            .unwrap();
        store
            .skip_evaluation(id, &Failure::new("missing", ""))
            .unwrap();

        let scopes = store.scopes("synthetic").unwrap();
        let types: Vec<_> = scopes.iter().map(|s| s.machine_type.clone()).collect();
        assert_eq!(
            types,
            [
                Some("Xeon (avx2)".to_string()),
                Some("Xeon (avx512)".to_string())
            ]
        );
        let names = |scope: &Scope| -> Vec<String> {
            let mut names: Vec<String> = store
                .finished_evaluations(scope)
                .unwrap()
                .into_iter()
                .map(|e| e.key.variant_name)
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&scopes[0]), ["c", "skipped"]);
        assert_eq!(names(&scopes[1]), ["a", "b", "skipped"]);
        let recorded = store.evaluation(EvalId(2)).unwrap().machine.unwrap();
        assert_eq!(recorded.node, "n2");
        assert_eq!(store.all_scopes().unwrap().len(), 2);
    }

    #[test]
    fn a_scope_of_unmeasured_rows_stands_alone_only_while_nothing_was_measured() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        failed(&mut store, run, &key("broken", "h", &[]), "build failed");
        let scopes = store.scopes("synthetic").unwrap();
        assert_eq!(scopes.len(), 1);
        assert_eq!(scopes[0].machine_type, None);
        let id = store.start_evaluation(&key("a", "h", &[]), run).unwrap();
        store.record_machine(id, &Machine::detect()).unwrap();
        store
            .finish_evaluation(id, &outcome(), &[point(10, 0.9, 100.0)])
            .unwrap();
        let scopes = store.scopes("synthetic").unwrap();
        assert_eq!(scopes.len(), 1);
        assert_eq!(
            scopes[0].machine_type,
            Some(Machine::detect().machine_type())
        );
    }

    #[test]
    fn long_logs_keep_their_tail() {
        let log = format!("{}END", "é".repeat(MAX_LOG_BYTES));
        let cut = log_excerpt(&log);
        assert!(cut.ends_with("END"));
        assert!(cut.starts_with("[… "));
        assert!(cut.len() < MAX_LOG_BYTES + 64);
        assert_eq!(log_excerpt("short"), "short");
    }
}
