//! `host prompt` as a newcomer runs it: the parent looked up on a dataset
//! given as the same `--dataset` spec `host evaluate` took, and a prompt
//! printed even before the parent has been evaluated.

mod common;

use std::path::Path;

use common::{host, text};

/// The dataset of the README walk-through, as a spec.
const DATASET: &str = "synthetic:n=2000,queries=100,dim=16";
/// The name `host evaluate` records for it.
const DATASET_NAME: &str = "synthetic-2000x16-euclidean-q100";

fn prompt(results: &Path, dataset: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "prompt",
        "--slot",
        "search",
        "--from",
        "variants/hnsw",
        "--results",
        results.to_str().unwrap(),
    ];
    if let Some(dataset) = dataset {
        args.extend(["--dataset", dataset]);
    }
    host(&args)
}

/// The reward of the first leaderboard row in a report directory.
fn reward(report_dir: &Path) -> f64 {
    let board: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report_dir.join("leaderboard.json")).unwrap(),
    )
    .unwrap();
    board["variants"][0]["row"]["reward"].as_f64().unwrap()
}

#[test]
fn the_parent_is_found_on_a_dataset_given_as_the_spec_evaluate_took() {
    let results = tempfile::tempdir().unwrap();
    let r = results.path().to_str().unwrap();
    let evaluated = host(&[
        "evaluate",
        "variants/hnsw",
        "--dataset",
        DATASET,
        "--results",
        r,
    ]);
    assert!(evaluated.status.success(), "{}", text(&evaluated));
    let shown = prompt(results.path(), Some(DATASET));
    let out = text(&shown);
    assert!(shown.status.success(), "{out}");
    let expected = format!(
        "score 1.00 (reward {:.0}",
        reward(&results.path().join(DATASET_NAME))
    );
    assert!(out.contains(&expected), "{expected:?} in\n{out}");
    assert!(
        out.contains(&format!("measured on `{DATASET_NAME}`")),
        "{out}"
    );

    // Measured again on a cut of the same data with other settings: the
    // spec still finds it, and stderr says which settings the score is from.
    let quick = host(&[
        "evaluate",
        "variants/hnsw",
        "--dataset",
        DATASET,
        "--queries",
        "50",
        "--runs",
        "1",
        "--results",
        r,
    ]);
    assert!(quick.status.success(), "{}", text(&quick));
    let shown = prompt(results.path(), Some(DATASET));
    let out = text(&shown);
    assert!(shown.status.success(), "{out}");
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(
        stderr.contains(&format!(
            "{DATASET_NAME}-q50 (k=10, R=1, single thread, 50 queries)"
        )),
        "{out}"
    );
    let expected = format!(
        "score 1.00 (reward {:.0}",
        reward(&results.path().join(format!("{DATASET_NAME}-q50")))
    );
    assert!(out.contains(&expected), "{expected:?} in\n{out}");
}

#[test]
fn before_any_evaluation_the_prompt_comes_with_the_score_unknown() {
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("results");
    let shown = prompt(&results, Some(DATASET));
    let stdout = String::from_utf8_lossy(&shown.stdout);
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(shown.status.success(), "{}", text(&shown));
    for part in [
        "## Code",
        "pub trait Search",
        &format!("score unknown (not yet evaluated on `{DATASET_NAME}`)"),
    ] {
        assert!(stdout.contains(part), "{part:?} in\n{stdout}");
    }
    assert!(
        stderr.contains(&format!(
            "measure it with `host evaluate variants/hnsw --dataset {DATASET} --results {}`",
            results.display()
        )),
        "{stderr}"
    );
    assert!(!results.exists(), "a prompt creates no results database");
}

#[test]
fn a_dataset_neither_stored_nor_a_spec_is_refused() {
    let results = tempfile::tempdir().unwrap();
    let shown = prompt(results.path(), Some("no-such-dataset"));
    let out = text(&shown);
    assert_eq!(shown.status.code(), Some(2), "{out}");
    assert!(
        out.contains("--dataset no-such-dataset") && out.contains("not a dataset spec"),
        "{out}"
    );
}
