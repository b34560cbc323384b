//! Values and stores the unit tests of several modules share.

use std::path::Path;

use crate::model::{
    Environment, EvalConfig, EvalId, EvaluationKey, EvaluationOutcome, Failure, Implementation,
    Mode, ParamMap, RunId, SweepPoint,
};
use crate::store::Store;

/// A made-up machine.
pub(crate) fn env() -> Environment {
    Environment {
        cpu_model: "Test CPU @ 3.0GHz".to_string(),
        cpu_flags: vec!["sse2".to_string(), "avx2".to_string()],
        logical_cores: 2,
        memory_bytes: 24 << 30,
        os: "linux 6.1".to_string(),
        rustc_version: "rustc 1.95.0".to_string(),
        host_version: "0.1.0".to_string(),
        git_commit: Some("abc123".to_string()),
        extra: ParamMap::from([("note".to_string(), "unit test".to_string())]),
    }
}

/// k=10, R=3, single thread, 1000 queries.
pub(crate) fn config() -> EvalConfig {
    EvalConfig {
        k: 10,
        runs: 3,
        mode: Mode::Single,
        query_count: 1000,
        extra: ParamMap::new(),
    }
}

/// The key of `variant` (hash `hash`) built with `build` on the dataset
/// "synthetic" under [`config`].
pub(crate) fn key(variant: &str, hash: &str, build: &[(&str, &str)]) -> EvaluationKey {
    EvaluationKey {
        variant_name: variant.to_string(),
        variant_hash: hash.to_string(),
        dataset_name: "synthetic".to_string(),
        dataset_hash: "d5a7a5e7".to_string(),
        build_params: build
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        config: config(),
    }
}

/// A point at `ef` whose runs agree.
pub(crate) fn point(ef: u32, recall: f64, qps: f64) -> SweepPoint {
    SweepPoint {
        search_params: ParamMap::from([("ef".to_string(), ef.to_string())]),
        recall,
        recall_min: recall,
        recall_max: recall,
        runs_disagree: false,
        qps,
        latency_p50_us: 1e6 / qps,
        latency_p95_us: 1.5e6 / qps,
        latency_p99_us: 2e6 / qps,
        runs: 3,
        distance_computations: Some(123.5),
        invalid_queries: 0,
        mode: Mode::Single,
    }
}

/// A sandboxed build of 1.25 s on 2 threads.
pub(crate) fn outcome() -> EvaluationOutcome {
    EvaluationOutcome {
        build_seconds: 1.25,
        index_memory_bytes: Some(10 << 20),
        rss_bytes: Some(50 << 20),
        build_log: Some("built".to_string()),
        sandboxed: true,
        build_threads: 2,
        implementation: Implementation::Native,
    }
}

/// A new store in a temporary directory.
pub(crate) fn open_tmp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("results.sqlite")).unwrap();
    (dir, store)
}

/// Stores one finished evaluation and returns its id.
pub(crate) fn finished(
    store: &mut Store,
    run: RunId,
    key: &EvaluationKey,
    points: &[SweepPoint],
) -> EvalId {
    let id = store.start_evaluation(key, run).unwrap();
    store.finish_evaluation(id, &outcome(), points).unwrap();
    id
}

/// Stores one evaluation failed with `reason` and returns its id.
pub(crate) fn failed(store: &mut Store, run: RunId, key: &EvaluationKey, reason: &str) -> EvalId {
    let id = store.start_evaluation(key, run).unwrap();
    store
        .fail_evaluation(id, &Failure::new(reason, "detail"))
        .unwrap();
    id
}

/// A store in `dir` with four variants of one scope: two working, one
/// that never reaches recall 0.85 and one unsandboxed crash.
pub(crate) fn populated(dir: &Path) -> Store {
    let mut store = Store::open(dir.join("results.sqlite")).unwrap();
    let run: RunId = store
        .begin_run(&env(), "host run --dataset synthetic")
        .unwrap();
    let mut add = |name: &str, build: &[(&str, &str)], points: &[SweepPoint]| {
        let id = store.start_evaluation(&key(name, "h", build), run).unwrap();
        store.finish_evaluation(id, &outcome(), points).unwrap();
    };
    add(
        "hnsw, \"quoted\"",
        &[("M", "16")],
        &[
            point(10, 0.80, 9000.0),
            point(20, 0.90, 6000.0),
            point(40, 0.97, 3000.0),
            point(80, 0.995, 1200.0),
        ],
    );
    add(
        "ivf|flat <b>",
        &[("nlist", "64")],
        &[point(1, 0.86, 20000.0), point(4, 0.93, 8000.0)],
    );
    add(
        "too-fast",
        &[],
        &[point(1, 0.4, 90000.0), point(2, 0.6, 50000.0)],
    );
    let id = store
        .start_evaluation(&key("crashy", "h", &[]), run)
        .unwrap();
    store
        .fail_evaluation(
            id,
            &Failure {
                reason: "crash: SIGSEGV".to_string(),
                detail: "worker died, line1\nline2".to_string(),
                log: Some("building <graph> & stuff".to_string()),
                sandboxed: Some(false),
            },
        )
        .unwrap();
    store.end_run(run).unwrap();
    store
}
