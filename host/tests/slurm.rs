//! `host evaluate --executor slurm` against a real Slurm (the one-node
//! cluster of `scripts/slurm-one-node` in CI): the same figures as the
//! local executor, a cancelled task resubmitted, a killed coordinator
//! resumed. Where no Slurm answers, each test says so and does not run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Small enough that a whole array takes seconds.
const DATASET: &str = "synthetic:n=2000,queries=200,dim=16,clusters=8,seed=5";

/// True when Slurm answers here; otherwise says plainly that the test did
/// not run.
fn slurm_runs(test: &str) -> bool {
    let answers = Command::new("sinfo")
        .args(["-h", "-o", "%P"])
        .output()
        .is_ok_and(|out| out.status.success() && !out.stdout.trim_ascii().is_empty());
    if !answers {
        eprintln!("Slurm is not installed/running: the Slurm test `{test}` did not run");
    }
    answers
}

/// How the tests measure: a declared sweep, one build thread (so the
/// graphs, hence the recalls, do not depend on thread timing), results
/// into `results`.
fn measure_args(results: &Path) -> Vec<String> {
    [
        "--dataset",
        DATASET,
        "--runs",
        "2",
        "--no-adaptive",
        "--build-threads",
        "1",
        "--results",
        results.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `host evaluate` arguments measuring `variants` as [`measure_args`] says.
fn evaluate_args(results: &Path, variants: &[&str], executor: &[&str]) -> Vec<String> {
    let mut args = vec!["evaluate".to_owned()];
    args.extend(measure_args(results));
    args.extend(executor.iter().map(|a| a.to_string()));
    args.extend(variants.iter().map(|v| v.to_string()));
    args
}

fn slurm_executor(shared: &Path) -> Vec<String> {
    vec![
        "--executor".into(),
        "slurm".into(),
        "--shared-dir".into(),
        shared.to_str().unwrap().into(),
    ]
}

fn host(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::host(&args)
}

/// (variant, status, search parameters, recall) of every sweep point, in order.
type Figure = (String, String, Option<String>, Option<f64>);

fn figures(results: &Path) -> Vec<Figure> {
    common::select(
        &results.join("results.sqlite"),
        "SELECT e.variant_name, e.status, p.search_params_json, p.recall \
         FROM evaluations e LEFT JOIN sweep_points p ON p.evaluation_id = e.id \
         ORDER BY e.variant_name, e.build_params_json, p.search_params_json",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// One row of `slurm_attempts`.
#[derive(Debug)]
struct AttemptRow {
    attempt: u32,
    task: String,
    state: String,
    reason: Option<String>,
    node: Option<String>,
    lost: Option<String>,
    started_at: Option<String>,
    ended_at: Option<String>,
}

fn attempt_rows(results: &Path) -> Vec<AttemptRow> {
    common::select(
        &results.join("results.sqlite"),
        "SELECT a.attempt, a.job_id || '_' || a.array_index, a.state, \
         a.reason, a.node, a.lost, a.started_at, a.ended_at \
         FROM slurm_attempts a JOIN evaluations e ON e.id = a.evaluation_id \
         ORDER BY e.variant_name, a.attempt",
        [],
        |r| {
            Ok(AttemptRow {
                attempt: r.get(0)?,
                task: r.get(1)?,
                state: r.get(2)?,
                reason: r.get(3)?,
                node: r.get(4)?,
                lost: r.get(5)?,
                started_at: r.get(6)?,
                ended_at: r.get(7)?,
            })
        },
    )
}

/// True for an attempt that answered to the end on a node.
fn completed(row: &AttemptRow) -> bool {
    row.state == "COMPLETED"
        && row.node.is_some()
        && row.lost.is_none()
        && row.started_at.is_some()
        && row.ended_at.is_some()
}

/// The attempt directories the shared directory holds.
fn attempts(shared: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for evaluation in std::fs::read_dir(shared.join("tasks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for attempt in std::fs::read_dir(evaluation.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(attempt.path());
        }
    }
    found.sort();
    found
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slurm_gives_the_local_statuses_and_recalls() {
    if !slurm_runs("slurm_gives_the_local_statuses_and_recalls") {
        return;
    }
    let variants = [
        "variants/bruteforce",
        "variants/hnsw",
        "variants/glass-style",
    ];
    let local = tempfile::tempdir().unwrap();
    let out = host(&evaluate_args(local.path(), &variants, &[]));
    assert!(out.status.success(), "{}", common::text(&out));

    let results = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let executor = slurm_executor(shared.path());
    let executor: Vec<&str> = executor.iter().map(String::as_str).collect();
    let out = host(&evaluate_args(results.path(), &variants, &executor));
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("submitted 3 Slurm task(s)"), "{text}");
    assert!(text.contains("measured on "), "{text}");

    let remote = figures(results.path());
    assert_eq!(remote, figures(local.path()), "{text}");
    assert!(remote.iter().all(|f| f.1 == "ok"), "{remote:?}");
    assert_eq!(
        attempts(shared.path()).len(),
        3,
        "one attempt per evaluation"
    );
    let rows = attempt_rows(results.path());
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.attempt == 0 && completed(r)),
        "{rows:#?}"
    );
    // Each evaluation records the node its task ran on, and the board is
    // scoped to that node's machine type (here the same as this machine's).
    let machines = |dir: &Path| -> Vec<(String, String)> {
        common::select(
            &dir.join("results.sqlite"),
            "SELECT DISTINCT node, machine_type FROM evaluations ORDER BY node",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    };
    let nodes: Vec<String> = rows.iter().map(|r| r.node.clone().unwrap()).collect();
    assert_eq!(machines(results.path()).len(), 1);
    assert_eq!(machines(results.path())[0].0, nodes[0]);
    assert_eq!(machines(results.path()), machines(local.path()));
    let board = std::fs::read_to_string(
        std::fs::read_dir(results.path())
            .unwrap()
            .map(|e| e.unwrap().path().join("leaderboard.md"))
            .find(|p| p.exists())
            .unwrap(),
    )
    .unwrap();
    let machine_type = &machines(results.path())[0].1;
    assert!(
        board.contains(&format!("Measured on {machine_type};")),
        "{board}"
    );

    // Another results database on the same shared directory measures
    // afresh: the first run's attempts are neither adopted nor recorded.
    let again = tempfile::tempdir().unwrap();
    let out = host(&evaluate_args(again.path(), &variants, &executor));
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("adopting"), "{text}");
    assert_eq!(figures(again.path()), figures(local.path()), "{text}");
    let rows = attempt_rows(again.path());
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.attempt == 0 && completed(r)),
        "{rows:#?}"
    );
    assert_eq!(attempts(shared.path()).len(), 6);
}

#[test]
fn a_cancelled_task_is_recorded_and_resubmitted() {
    if !slurm_runs("a_cancelled_task_is_recorded_and_resubmitted") {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let args = evaluate_args(results.path(), &["variants/bruteforce"], &[]);
    let child = Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(common::root())
        .args(&args)
        .args(slurm_executor(shared.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut task = String::new();
    wait_for("the first task's submission", || {
        let Some(attempt) = attempts(shared.path()).pop() else {
            return false;
        };
        task = std::fs::read_to_string(attempt.join("slurm-task")).unwrap_or_default();
        !task.is_empty()
    });
    let cancelled = Command::new("scancel").arg(task.trim()).status().unwrap();
    assert!(cancelled.success());
    let out = child.wait_with_output().unwrap();
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("Slurm task {} ended CANCELLED", task.trim())),
        "Slurm's state is said: {text}"
    );
    assert!(text.contains("resubmitting (1 of 2)"), "{text}");
    assert_eq!(attempts(shared.path()).len(), 2, "{text}");
    let figures = figures(results.path());
    assert!(
        !figures.is_empty() && figures.iter().all(|f| f.1 == "ok"),
        "{figures:?}"
    );
    // Both attempts are in the database: the cancelled one with Slurm's
    // state and reason, as said on the terminal, then its resubmission.
    let rows = attempt_rows(results.path());
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let (cancelled, resubmitted) = (&rows[0], &rows[1]);
    assert_eq!(
        (
            cancelled.attempt,
            cancelled.task.as_str(),
            cancelled.state.as_str()
        ),
        (0, task.trim(), "CANCELLED"),
        "{rows:#?}"
    );
    let reason = cancelled.reason.as_deref().unwrap_or("None");
    let said = format!(
        "Slurm task {} ended CANCELLED (reason: {reason})",
        task.trim()
    );
    assert!(text.contains(&said), "{said}\n{text}");
    assert_eq!(cancelled.lost.as_deref(), Some(said.as_str()), "{rows:#?}");
    assert_eq!(resubmitted.attempt, 1, "{rows:#?}");
    assert_ne!(resubmitted.task, cancelled.task, "{rows:#?}");
    assert!(completed(resubmitted), "{rows:#?}");
}

#[test]
fn a_killed_coordinator_resumes_by_adopting_its_tasks() {
    if !slurm_runs("a_killed_coordinator_resumes_by_adopting_its_tasks") {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let variants = ["variants/bruteforce", "variants/hnsw"];
    let mut args = evaluate_args(results.path(), &variants, &[]);
    args.extend(slurm_executor(shared.path()));
    let mut child = common::spawn_host(&args);
    wait_for("the first reply", || {
        attempts(shared.path())
            .iter()
            .any(|a| a.join("reply-00000.json").exists())
    });
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();
    let answered: Vec<usize> = attempts(shared.path()).iter().map(|a| replies(a)).collect();

    let out = host(&args);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("adopting Slurm task"), "{text}");
    let after = attempts(shared.path());
    assert_eq!(after.len(), 2, "no task was resubmitted: {after:?}\n{text}");
    for (attempt, before) in after.iter().zip(answered) {
        // Every reply of the first coordinator was reused: the task
        // answered each request number once (a replayed request is not
        // sent again), and the journal only grew.
        assert!(replies(attempt) >= before, "{}", attempt.display());
        assert_eq!(replies(attempt), requests(attempt), "{}", attempt.display());
    }
    let figures = figures(results.path());
    assert!(figures.iter().all(|f| f.1 == "ok"), "{figures:?}");
    let names: std::collections::BTreeSet<&str> = figures.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names.len(), 2, "{figures:?}");
    // The attempts the first coordinator submitted stay with the
    // evaluations the second one finished, with Slurm's end.
    let rows = attempt_rows(results.path());
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.attempt == 0 && completed(r)),
        "{rows:#?}"
    );
}

fn count(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .count()
}

fn replies(attempt: &Path) -> usize {
    count(attempt, "reply-")
}

fn requests(attempt: &Path) -> usize {
    count(attempt, "request-")
}

#[test]
fn evolve_on_slurm_measures_finalists_one_at_a_time_on_one_node() {
    if !slurm_runs("evolve_on_slurm_measures_finalists_one_at_a_time_on_one_node") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "evolve",
        "--from",
        "variants/hnsw",
        "--slot",
        "construction",
        "--generator",
        "tune",
        "--budget",
        "2",
        "--parallel",
        "2",
        "--out",
        work.path().join("out").to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(measure_args(&work.path().join("results")));
    args.extend(slurm_executor(shared.path()));
    let out = host(&args);
    let text = common::text(&out);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{text}");
    assert!(text.contains("in the finalists' run"), "{text}");
    // Runs compared side by side (the finalists', the final chain) are
    // arrays of several tasks: one at a time, all on one node.
    let rows = attempt_rows(&work.path().join("results"));
    let mut arrays: std::collections::BTreeMap<&str, Vec<&AttemptRow>> = Default::default();
    for row in &rows {
        let job = row.task.split('_').next().unwrap();
        arrays.entry(job).or_default().push(row);
    }
    arrays.retain(|_, tasks| tasks.len() > 1);
    assert!(!arrays.is_empty(), "{rows:#?}\n{text}");
    for tasks in arrays.values_mut() {
        assert!(tasks.iter().all(|t| completed(t)), "{tasks:#?}");
        assert!(tasks.iter().all(|t| t.node == tasks[0].node), "{tasks:#?}");
        tasks.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        for pair in tasks.windows(2) {
            assert!(
                pair[0].ended_at <= pair[1].started_at,
                "tasks overlap: {pair:#?}"
            );
        }
    }
}
