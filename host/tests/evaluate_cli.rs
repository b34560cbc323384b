//! `host evaluate` end to end on small synthetic data: reports, failure
//! recording, and resuming after the coordinator is killed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use annvil_results::{Status, Store};

/// 400 generated queries, of which the tests use the first 200 (`--queries`).
const DATASET: &str = "synthetic:n=3000,queries=400,dim=16,clusters=16,seed=11";

/// The `host evaluate` arguments every test uses, then `extra` and `variants`.
fn evaluate_args<'a>(results: &'a Path, variants: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "evaluate",
        "--dataset",
        DATASET,
        "--queries",
        "200",
        "--runs",
        "2",
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(variants);
    args
}

fn evaluate(results: &Path, variants: &[&str], extra: &[&str]) -> std::process::Output {
    common::host(&evaluate_args(results, variants, extra))
}

/// An evaluation row: variant name, status, failure reason.
type Row = (String, String, Option<String>);

/// Every evaluation row, or the error of a database not readable yet (a
/// running host creates the file before its schema).
fn try_rows(results: &Path) -> rusqlite::Result<Vec<Row>> {
    let conn = rusqlite::Connection::open_with_flags(
        results.join("results.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare(
        "SELECT variant_name, status, failure_reason FROM evaluations ORDER BY variant_name",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

/// Every evaluation row of a finished host's database.
fn rows(results: &Path) -> Vec<Row> {
    try_rows(results).unwrap()
}

#[test]
fn failures_are_recorded_with_their_reason_while_the_others_are_ranked() {
    let results = tempfile::tempdir().unwrap();
    let out = evaluate(
        results.path(),
        &[
            "variants/bruteforce",
            "host/tests/fixtures/variants/segfaults",
            "host/tests/fixtures/variants/hangs",
            "host/tests/fixtures/variants/duplicates",
            "host/tests/fixtures/variants/panics",
            "host/tests/fixtures/variants/oom",
        ],
        &["--timeout", "10", "--memory-cap-mb", "2048"],
    );
    let text = common::text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some variants failed, so the exit code says so:\n{text}"
    );
    let rows = rows(results.path());
    let reason = |name: &str| {
        rows.iter()
            .find(|r| r.0 == name)
            .and_then(|r| r.2.clone())
            .unwrap_or_default()
    };
    assert!(reason("segfaults").contains("crash: SIGSEGV"), "{rows:?}");
    assert!(reason("hangs").contains("timeout after 10s"), "{rows:?}");
    assert!(
        reason("duplicates").contains("invalid results")
            && reason("duplicates").contains("returned twice"),
        "{rows:?}"
    );
    assert!(
        reason("panics").contains("deliberate panic in search"),
        "{rows:?}"
    );
    assert!(
        reason("oom").contains("out of memory (cap 2048 MiB)"),
        "{rows:?}"
    );

    // `--queries 200` keeps the first 200 of the 400 queries and says so.
    let dir = results
        .path()
        .join("synthetic-3000x16-euclidean-q400-c16-s11-q200");
    for file in [
        "leaderboard.md",
        "leaderboard.json",
        "leaderboard.csv",
        "qps-recall.svg",
        "qps-recall.png",
        "index.html",
    ] {
        let len = std::fs::metadata(dir.join(file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{file} missing or empty in {}", dir.display());
    }
    let board: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("leaderboard.json")).unwrap())
            .unwrap();
    let ranked = board["variants"].as_array().expect("variants");
    let first = &ranked[0]["row"];
    assert_eq!(first["variant_name"], "bruteforce", "{board:#}");
    assert_eq!(first["status"], "ok");
    assert!(first["reward"].as_f64().unwrap() > 0.0);
    assert!(
        (first["max_recall"].as_f64().unwrap() - 1.0).abs() < 1e-12,
        "exact search has recall 1"
    );
    assert_eq!(ranked.len(), 6);
}

#[test]
fn a_killed_run_keeps_finished_results_and_the_rerun_completes_the_rest() {
    let results = tempfile::tempdir().unwrap();
    let variants = [
        "variants/bruteforce",
        "host/tests/fixtures/variants/hangs",
        "variants/bruteforce-c",
    ];
    let args = evaluate_args(results.path(), &variants, &["--timeout", "60"]);
    let mut child = common::spawn_host(&args);
    // Wait until the first variant is recorded and the hanging one runs.
    let deadline = Instant::now() + Duration::from_secs(300);
    let db = results.path().join("results.sqlite");
    loop {
        assert!(
            Instant::now() < deadline,
            "the first evaluation never finished"
        );
        // Polled while the host writes: a database without its schema yet
        // counts as nothing recorded.
        let now = try_rows(results.path()).unwrap_or_default();
        let done = now.iter().any(|r| r.0 == "bruteforce" && r.1 == "ok");
        let hanging = now.iter().any(|r| r.0 == "hangs" && r.1 == "running");
        if done && hanging {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = Store::open(&db).unwrap();
    let first = rows(results.path());
    assert!(
        first.iter().any(|r| r.0 == "hangs" && r.1 == "running"),
        "{first:?}"
    );
    drop(before);

    let out = evaluate(results.path(), &variants, &["--timeout", "3"]);
    let text = common::text(&out);
    assert!(
        text.contains("bruteforce: already in the database (ok)"),
        "the finished result is kept, not redone:\n{text}"
    );
    let after = rows(results.path());
    let names: Vec<&str> = after.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        ["bruteforce", "bruteforce-c", "hangs"],
        "one row per evaluation, none duplicated: {after:?}"
    );
    assert_eq!(after[0].1, Status::Ok.as_str());
    assert_eq!(
        after[1].1,
        Status::Ok.as_str(),
        "the rest is completed: {after:?}"
    );
    assert!(
        after[2]
            .2
            .as_deref()
            .unwrap_or_default()
            .contains("timeout"),
        "{after:?}"
    );
}

#[test]
fn batch_mode_is_a_separate_measurement_with_its_own_leaderboard() {
    let results = tempfile::tempdir().unwrap();
    let out = evaluate(
        results.path(),
        &["variants/bruteforce"],
        &["--threads", "2"],
    );
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("batch, 2 threads"), "{text}");
    let dir = results
        .path()
        .join("synthetic-3000x16-euclidean-q400-c16-s11-q200-batch2");
    let board: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("leaderboard.json")).unwrap())
            .unwrap();
    assert_eq!(
        board["scope"]["config"]["mode"]["kind"], "batch",
        "{board:#}"
    );
    assert_eq!(board["scope"]["config"]["mode"]["threads"], 2);
    let point = &board["variants"][0]["builds"][0]["points"][0];
    assert_eq!(point["recall"], 1.0, "{point:#}");
    assert!(point["qps"].as_f64().unwrap() > 0.0);
}

#[test]
fn single_thread_batch_mode_answers_each_run_in_one_batched_call() {
    // bruteforce (Rust: the SDK's search_batch) and bruteforce-c (C: no
    // search_batch, so the worker calls search per query) are both exact.
    let results = tempfile::tempdir().unwrap();
    let variants = ["variants/bruteforce", "variants/bruteforce-c"];
    let out = evaluate(results.path(), &variants, &["--batch"]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("batch, 1 thread,"), "{text}");
    let dir = results
        .path()
        .join("synthetic-3000x16-euclidean-q400-c16-s11-q200-batch1");
    let board: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("leaderboard.json")).unwrap())
            .unwrap();
    assert_eq!(board["scope"]["config"]["mode"]["threads"], 1, "{board:#}");
    for variant in board["variants"].as_array().unwrap() {
        let point = &variant["builds"][0]["points"][0];
        assert_eq!(point["recall"], 1.0, "{variant:#}");
    }
    assert_eq!(board["variants"].as_array().unwrap().len(), 2, "{board:#}");
}

#[test]
fn invalid_results_of_a_variant_without_a_knob_name_its_only_sweep_point() {
    let results = tempfile::tempdir().unwrap();
    let out = evaluate(
        results.path(),
        &["host/tests/fixtures/variants/duplicates-no-sweep"],
        &[],
    );
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let rows = rows(results.path());
    let reason = rows[0].2.clone().unwrap_or_default();
    assert!(
        reason.contains("invalid results at the only sweep point: query "),
        "the point is named, not left blank: {rows:?}"
    );
}

#[test]
fn a_variant_missing_a_package_is_skipped_with_its_hint_said_once() {
    let results = tempfile::tempdir().unwrap();
    let out = evaluate(
        results.path(),
        &[
            "variants/bruteforce",
            "host/tests/fixtures/variants/needs-package",
        ],
        &[],
    );
    let text = common::text(&out);
    assert!(out.status.success(), "a skip is not a failure:\n{text}");
    let rows = rows(results.path());
    let skipped = rows.iter().find(|r| r.0 == "needs-package").unwrap();
    assert_eq!(skipped.1, Status::Skipped.as_str(), "{rows:?}");
    assert!(
        skipped
            .2
            .as_deref()
            .is_some_and(|r| r.starts_with("libannvil-absent-dev missing (")),
        "the reason is the hint, without the status word: {rows:?}"
    );
    let board = std::fs::read_to_string(
        results
            .path()
            .join("synthetic-3000x16-euclidean-q400-c16-s11-q200/leaderboard.md"),
    )
    .unwrap();
    for report in [&text, &board] {
        assert!(
            report.contains("skipped: libannvil-absent-dev missing ("),
            "{report}"
        );
        assert!(!report.contains("skipped: skipped"), "{report}");
    }
    // The printed table's rule is as wide as its widest line, however long
    // the install hint is.
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Rank "))
        .take_while(|l| !l.starts_with("Reward = "))
        .collect();
    let rule = table[1];
    assert!(rule.chars().all(|c| c == '-'), "{text}");
    let widest = table.iter().map(|l| l.chars().count()).max().unwrap();
    assert_eq!(rule.chars().count(), widest, "{text}");
}

#[test]
fn a_variant_of_prebuilt_libraries_is_evaluated_from_any_directory() {
    // A variant outside any cargo workspace, naming a built library by path,
    // evaluated from a directory of its own: the caches the workers read go
    // under that directory's target/annvil, by absolute path (the sandbox
    // mounts them).
    let library = common::pipelines(&["variants/bruteforce"])[0].libraries()[0].clone();
    let elsewhere = tempfile::tempdir().unwrap();
    let variant = elsewhere.path().join("prebuilt");
    std::fs::create_dir(&variant).unwrap();
    std::fs::write(
        variant.join("variant.yaml"),
        format!(
            "construction: {{library: {0}}}\nsearch: {{library: {0}}}\n",
            library.display()
        ),
    )
    .unwrap();
    let results = elsewhere.path().join("results");
    let args = evaluate_args(&results, &["prebuilt"], &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(elsewhere.path())
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(
        rows(&results),
        [("prebuilt".to_string(), "ok".to_string(), None)]
    );
    assert!(elsewhere.path().join("target/annvil/vectors").is_dir());
    let conn = rusqlite::Connection::open(results.join("results.sqlite")).unwrap();
    let implementation: String = conn
        .query_row("SELECT implementation FROM evaluations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(implementation, "native");
    // The node that measured it, and the machine type its board is scoped to.
    let (node, machine_type): (String, String) = conn
        .query_row("SELECT node, machine_type FROM evaluations", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(node, hostname.trim());
    let board = std::fs::read_dir(&results)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("leaderboard.md"))
        .find(|path| path.exists())
        .unwrap();
    let board = std::fs::read_to_string(board).unwrap();
    assert!(
        board.contains(&format!("Measured on {machine_type};")),
        "{board}"
    );
}
