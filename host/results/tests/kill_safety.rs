//! Kill-safety: a writer process is SIGKILLed at an arbitrary moment; the
//! database must stay consistent (every `ok` evaluation has all its points,
//! no `running` one has any), nothing committed is lost, and redoing an
//! interrupted evaluation leaves exactly one row for its key.
//!
//! The writer is this test binary re-executed with an environment variable
//! naming the database; without it the helper test returns at once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use annvil_results::{
    Environment, EvalConfig, EvaluationKey, EvaluationOutcome, Implementation, Mode, ParamMap,
    Status, Store, SweepPoint,
};

const DB_VAR: &str = "ANNVIL_RESULTS_KILL_TEST_DB";
const ROUND_VAR: &str = "ANNVIL_RESULTS_KILL_TEST_ROUND";
const POINTS: usize = 200;

fn key(round: usize, i: usize) -> EvaluationKey {
    EvaluationKey {
        variant_name: format!("r{round}-v{i}"),
        variant_hash: "hash".to_string(),
        dataset_name: "synthetic".to_string(),
        dataset_hash: "dhash".to_string(),
        build_params: ParamMap::from([("M".to_string(), "16".to_string())]),
        config: EvalConfig {
            k: 10,
            runs: 3,
            mode: Mode::Single,
            query_count: 100,
            extra: ParamMap::new(),
        },
    }
}

fn points() -> Vec<SweepPoint> {
    (0..POINTS)
        .map(|i| {
            let recall = i as f64 / POINTS as f64;
            SweepPoint {
                search_params: ParamMap::from([("ef".to_string(), i.to_string())]),
                recall,
                recall_min: recall,
                recall_max: recall,
                runs_disagree: false,
                qps: 1000.0 - i as f64,
                latency_p50_us: 1.0,
                latency_p95_us: 2.0,
                latency_p99_us: 3.0,
                runs: 3,
                distance_computations: None,
                invalid_queries: 0,
                mode: Mode::Single,
            }
        })
        .collect()
}

fn outcome() -> EvaluationOutcome {
    EvaluationOutcome {
        build_seconds: 0.5,
        index_memory_bytes: None,
        rss_bytes: None,
        build_log: None,
        sandboxed: true,
        build_threads: 1,
        implementation: Implementation::Native,
    }
}

/// The child side: writes evaluations until killed (bounded to 60 s),
/// printing a line after each commit.
#[test]
fn writer_child() {
    let (Ok(path), Ok(round)) = (std::env::var(DB_VAR), std::env::var(ROUND_VAR)) else {
        return;
    };
    let round: usize = round.parse().unwrap();
    let mut store = Store::open(&path).unwrap();
    let run = store
        .begin_run(&Environment::default(), "kill test writer")
        .unwrap();
    let outcome = outcome();
    let points = points();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(60) {
        let id = store.start_evaluation(&key(round, i), run).unwrap();
        if i % 3 == 2 {
            println!("\nSTARTED {i}");
        } else {
            store.finish_evaluation(id, &outcome, &points).unwrap();
            println!("\nDONE {i}");
        }
        if i == 2 {
            println!("\nKILL-TEST-READY");
        }
        i += 1;
    }
}

/// Runs the writer, SIGKILLs it `after` it is ready, and returns the indices
/// it reported as finished and as started-only.
fn spawn_and_kill(db: &Path, round: usize, after: Duration) -> (Vec<usize>, Vec<usize>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(DB_VAR, db)
        .env(ROUND_VAR, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut done, mut started) = (Vec::new(), Vec::new());
    let mut record = |line: &str| {
        if let Some(i) = line.strip_prefix("DONE ") {
            done.push(i.parse().unwrap());
        } else if let Some(i) = line.strip_prefix("STARTED ") {
            started.push(i.parse().unwrap());
        }
    };
    loop {
        let line = lines
            .next()
            .expect("child exited before it was ready")
            .unwrap();
        record(&line);
        if line.contains("KILL-TEST-READY") {
            break;
        }
    }
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer must have been killed, not finished"
    );
    for line in lines {
        record(&line.unwrap());
    }
    (done, started)
}

fn check_consistent(store_path: &Path) -> (usize, usize) {
    let conn = rusqlite::Connection::open(store_path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut stmt = conn
        .prepare(
            "SELECT e.status, (SELECT count(*) FROM sweep_points p WHERE p.evaluation_id = e.id) \
             FROM evaluations e",
        )
        .unwrap();
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (mut ok, mut running) = (0, 0);
    for (status, n) in rows {
        match status.as_str() {
            "ok" => {
                assert_eq!(n, POINTS as i64, "an ok evaluation lost points");
                ok += 1;
            }
            "running" => {
                assert_eq!(n, 0, "a running evaluation has points");
                running += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, running)
}

#[test]
fn sigkill_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.sqlite");
    drop(Store::open(&db).unwrap());
    let mut interrupted = Vec::new();
    for (round, ms) in [150u64, 30, 275, 90, 10, 200, 55, 120]
        .into_iter()
        .enumerate()
    {
        let (done, started) = spawn_and_kill(&db, round, Duration::from_millis(ms));
        assert!(done.len() >= 2 && !started.is_empty(), "round {round}");
        check_consistent(&db);
        // Nothing the writer saw committed is lost.
        let store = Store::open(&db).unwrap();
        for &i in &done {
            let c = store.completed(&key(round, i)).unwrap();
            let c = c.unwrap_or_else(|| panic!("round {round}: committed evaluation {i} lost"));
            assert_eq!(c.status, Status::Ok);
            assert_eq!(store.sweep_points(c.id).unwrap().len(), POINTS);
        }
        for &i in &started {
            assert_eq!(store.completed(&key(round, i)).unwrap(), None);
            interrupted.push(key(round, i));
        }
    }

    // Redo every interrupted evaluation: exactly one row per key afterwards.
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&Environment::default(), "redo").unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = || -> i64 {
        conn.query_row("SELECT count(*) FROM evaluations", [], |r| r.get(0))
            .unwrap()
    };
    let before = count();
    for k in &interrupted {
        assert_eq!(store.completed(k).unwrap(), None);
        let id = store.start_evaluation(k, run).unwrap();
        store.finish_evaluation(id, &outcome(), &points()).unwrap();
        assert_eq!(
            store.completed(k).unwrap().map(|c| (c.id, c.status)),
            Some((id, Status::Ok))
        );
    }
    assert_eq!(before, count(), "redo must replace, not duplicate");
    let (ok, running) = check_consistent(&db);
    assert!(
        running <= 8,
        "only the evaluation each writer was killed in may remain running"
    );
    assert_eq!((ok + running) as i64, count());
}
