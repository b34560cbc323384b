//! Leaderboard assembly: for one scope (dataset version × measurement
//! config × machine type), one row per variant name at its latest version, shown at its
//! best build-parameter set and ranked by reward; variants without a
//! successful set follow with their most recent failure.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{
    BridgeOverhead, EvalId, EvaluationRecord, Implementation, Lineage, ParamMap, RunRecord, Scope,
    Status, SweepPoint,
};
use crate::reward::{self, RecallQps, RewardSummary};
use crate::store::{Result, Store};

/// One row of a leaderboard: a variant name with its latest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    /// Position, 1-based.
    pub rank: usize,
    /// Variant name.
    pub variant_name: String,
    /// Variant content hash (the latest evaluated version of that name).
    pub variant_hash: String,
    /// `Ok` when at least one build-parameter set succeeded; else the status
    /// of the most recent failed or skipped one.
    pub status: Status,
    /// "ok", "ok (1 of 3 build sets failed)", "failed: crash: SIGSEGV", "skipped: …",
    /// followed by " (unsandboxed)" when the shown evaluation ran unsandboxed.
    pub status_text: String,
    /// Reward of the best build set (0 when failed).
    pub reward: f64,
    /// QPS@0.90 of the best build set.
    pub qps_at_090: Option<f64>,
    /// QPS@0.95 of the best build set.
    pub qps_at_095: Option<f64>,
    /// QPS@0.99 of the best build set.
    pub qps_at_099: Option<f64>,
    /// Highest recall of the best build set.
    pub max_recall: Option<f64>,
    /// Build parameters of the best build set (or of the shown failure).
    pub build_params: ParamMap,
    /// Build time of the best build set, seconds.
    pub build_seconds: Option<f64>,
    /// Module-reported index memory of the best build set, bytes.
    pub index_memory_bytes: Option<u64>,
    /// Peak RSS of the best build set, bytes.
    pub rss_bytes: Option<u64>,
    /// Whether the shown evaluation's worker was sandboxed (`None`: unknown).
    pub sandboxed: Option<bool>,
    /// Threads the shown evaluation's build ran with (`None`: unknown).
    pub build_threads: Option<u32>,
    /// Native or Python bridge, as the shown evaluation recorded it (`None`:
    /// unknown or no build).
    pub implementation: Option<Implementation>,
    /// True when a point on the frontier of the best build set had runs that
    /// disagreed: its figures rest on the lowest run's recall. Reports mark
    /// such rows.
    pub runs_disagree: bool,
    /// When the evaluation shown in this row finished (RFC 3339, UTC), so a
    /// table that mixes runs says which row came from which.
    #[serde(default)]
    pub measured_at: Option<String>,
    /// Evaluation shown in this row.
    pub evaluation_id: EvalId,
    /// All evaluations (build sets) of this variant version in the scope, oldest first.
    pub evaluation_ids: Vec<EvalId>,
    /// Parent and changed slot, when the variant was derived from another.
    pub lineage: Option<Lineage>,
}

/// A ranked leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    /// Dataset and config it ranks.
    pub scope: Scope,
    /// Rows, rank order.
    pub rows: Vec<LeaderboardRow>,
    /// The Python bridge's own cost per query in this scope, when a bridged
    /// variant was measured in it.
    pub bridge_overhead: Option<BridgeOverhead>,
}

impl Store {
    /// The leaderboard of the most recently evaluated scope of `dataset` (a
    /// dataset name or content hash), or `None` when nothing finished on it.
    pub fn leaderboard(&self, dataset: &str) -> Result<Option<Leaderboard>> {
        match self.scopes(dataset)?.into_iter().next() {
            Some(scope) => self.leaderboard_for(&scope).map(Some),
            None => Ok(None),
        }
    }

    /// The leaderboard of one scope.
    ///
    /// One row per variant name, from the variant hash of that name whose
    /// evaluation in this scope is the most recent (rows still `running` are
    /// ignored). Its reward is the best over its build-parameter sets (ties:
    /// higher max recall, then shorter build, then older evaluation); the row
    /// shows that set. Points with invalid queries are left out of rewards.
    /// Variants without any `ok` set show the most recent failure, reward 0,
    /// and rank after all working variants. Ties are broken by name.
    pub fn leaderboard_for(&self, scope: &Scope) -> Result<Leaderboard> {
        let evaluations = self.finished_evaluations(scope)?;
        let mut working = Vec::new();
        let mut broken = Vec::new();
        for sets in latest_versions(&evaluations) {
            let row = self.variant_row(&sets)?;
            if row.status == Status::Ok {
                working.push(row);
            } else {
                broken.push(row);
            }
        }
        working.sort_by(|a, b| {
            b.reward
                .total_cmp(&a.reward)
                .then_with(|| a.variant_name.cmp(&b.variant_name))
        });
        let mut rows = working;
        rows.extend(broken);
        for (i, row) in rows.iter_mut().enumerate() {
            row.rank = i + 1;
            row.lineage = self.lineage(&row.variant_name)?;
        }
        Ok(Leaderboard {
            bridge_overhead: self.bridge_overhead(scope)?,
            scope: scope.clone(),
            rows,
        })
    }

    /// Distinct runs that produced the evaluations of a leaderboard, oldest first.
    pub fn runs_of(&self, leaderboard: &Leaderboard) -> Result<Vec<RunRecord>> {
        let mut ids = BTreeSet::new();
        for row in &leaderboard.rows {
            for id in &row.evaluation_ids {
                ids.insert(self.evaluation(*id)?.run_id);
            }
        }
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    /// The row of one variant version from its build sets (oldest first):
    /// the best successful set, or else the most recent failure.
    fn variant_row(&self, sets: &[&EvaluationRecord]) -> Result<LeaderboardRow> {
        let latest = sets.last().expect("a variant has at least one evaluation");
        let evaluation_ids = sets.iter().map(|e| e.id).collect();
        let unsuccessful = sets.iter().filter(|e| e.status != Status::Ok).count();
        let mut row = match self.best_build_set(sets)? {
            Some(best) => best_row(best, unsuccessful, sets.len(), evaluation_ids),
            None => failure_row(latest, evaluation_ids),
        };
        row.status_text.push_str(sandbox_note(row.sandboxed));
        Ok(row)
    }

    /// The successful build set with the highest reward (ties: higher max
    /// recall, then shorter build, then the older set), `None` when none
    /// succeeded.
    fn best_build_set<'a>(&self, sets: &[&'a EvaluationRecord]) -> Result<Option<BestBuild<'a>>> {
        let mut best: Option<BestBuild<'a>> = None;
        for e in sets.iter().filter(|e| e.status == Status::Ok) {
            let points = self.sweep_points(e.id)?;
            let summary = summarize_points(&points);
            let better = match &best {
                None => true,
                Some(BestBuild {
                    evaluation: b,
                    summary: s,
                    ..
                }) => summary
                    .reward
                    .total_cmp(&s.reward)
                    .then(
                        summary
                            .max_recall
                            .unwrap_or(-1.0)
                            .total_cmp(&s.max_recall.unwrap_or(-1.0)),
                    )
                    .then(
                        b.build_seconds
                            .unwrap_or(f64::INFINITY)
                            .total_cmp(&e.build_seconds.unwrap_or(f64::INFINITY)),
                    )
                    .is_gt(),
            };
            if better {
                let runs_disagree = frontier_disagrees(&points, &summary);
                best = Some(BestBuild {
                    evaluation: e,
                    summary,
                    runs_disagree,
                });
            }
        }
        Ok(best)
    }
}

/// The best successful build set of a variant, with its figures.
struct BestBuild<'a> {
    evaluation: &'a EvaluationRecord,
    summary: RewardSummary,
    /// [`frontier_disagrees`] of its points.
    runs_disagree: bool,
}

/// For every variant name, in name order, the evaluations (build sets) of
/// the variant hash of that name evaluated most recently, oldest first.
fn latest_versions(evaluations: &[EvaluationRecord]) -> Vec<Vec<&EvaluationRecord>> {
    let mut latest_hash: BTreeMap<&str, &str> = BTreeMap::new();
    for e in evaluations {
        latest_hash.insert(&e.key.variant_name, &e.key.variant_hash);
    }
    latest_hash
        .into_iter()
        .map(|(name, hash)| {
            evaluations
                .iter()
                .filter(|e| e.key.variant_name == name && e.key.variant_hash == hash)
                .collect()
        })
        .collect()
}

/// The row of a variant shown at its best build set; `unsuccessful` of its
/// `total` sets failed or were skipped.
fn best_row(
    best: BestBuild<'_>,
    unsuccessful: usize,
    total: usize,
    evaluation_ids: Vec<EvalId>,
) -> LeaderboardRow {
    let BestBuild {
        evaluation: e,
        summary: s,
        runs_disagree,
    } = best;
    LeaderboardRow {
        rank: 0,
        variant_name: e.key.variant_name.clone(),
        variant_hash: e.key.variant_hash.clone(),
        status: Status::Ok,
        status_text: if unsuccessful == 0 {
            "ok".to_string()
        } else {
            format!("ok ({unsuccessful} of {total} build sets failed)")
        },
        reward: s.reward,
        qps_at_090: s.qps_at_090,
        qps_at_095: s.qps_at_095,
        qps_at_099: s.qps_at_099,
        max_recall: s.max_recall,
        build_params: e.key.build_params.clone(),
        build_seconds: e.build_seconds,
        index_memory_bytes: e.index_memory_bytes,
        rss_bytes: e.rss_bytes,
        sandboxed: e.sandboxed,
        build_threads: e.build_threads,
        implementation: e.implementation,
        runs_disagree,
        measured_at: e.finished_at.clone(),
        evaluation_id: e.id,
        evaluation_ids,
        lineage: None,
    }
}

/// The row of a variant without a successful build set: its most recent
/// failure or skip, reward 0.
fn failure_row(latest: &EvaluationRecord, evaluation_ids: Vec<EvalId>) -> LeaderboardRow {
    LeaderboardRow {
        rank: 0,
        variant_name: latest.key.variant_name.clone(),
        variant_hash: latest.key.variant_hash.clone(),
        status: latest.status,
        status_text: failure_text(latest.status, latest.failure_reason.as_deref()),
        reward: 0.0,
        qps_at_090: None,
        qps_at_095: None,
        qps_at_099: None,
        max_recall: None,
        build_params: latest.key.build_params.clone(),
        build_seconds: latest.build_seconds,
        index_memory_bytes: latest.index_memory_bytes,
        rss_bytes: latest.rss_bytes,
        sandboxed: latest.sandboxed,
        build_threads: latest.build_threads,
        implementation: latest.implementation,
        runs_disagree: false,
        measured_at: latest.finished_at.clone(),
        evaluation_id: latest.id,
        evaluation_ids,
        lineage: None,
    }
}

/// "failed: crash: SIGSEGV", "skipped: libfoo-dev missing (…)": the status
/// and its reason, with the status word once even where the stored reason
/// already starts with it (older hosts recorded skips as "skipped: …").
fn failure_text(status: Status, reason: Option<&str>) -> String {
    let prefix = format!("{status}: ");
    let reason = reason.unwrap_or("no reason recorded");
    format!("{prefix}{}", reason.strip_prefix(&prefix).unwrap_or(reason))
}

/// What follows the status of an evaluation whose worker ran unsandboxed:
/// " (unsandboxed)"; nothing when it was sandboxed or it is unknown.
pub(crate) fn sandbox_note(sandboxed: Option<bool>) -> &'static str {
    if sandboxed == Some(false) {
        " (unsandboxed)"
    } else {
        ""
    }
}

/// Reward, QPS@x, max recall and frontier of one build set's sweep points;
/// points with invalid queries take no part.
pub(crate) fn summarize_points(points: &[SweepPoint]) -> RewardSummary {
    let valid: Vec<RecallQps> = points
        .iter()
        .filter(|p| p.is_valid())
        .map(SweepPoint::recall_qps)
        .collect();
    reward::summarize(&valid)
}

/// Whether a point on the frontier of `points` had runs that disagreed: then
/// a figure computed from them (reward, QPS@x, max recall) rests on the lowest
/// run's recall.
pub(crate) fn frontier_disagrees(points: &[SweepPoint], summary: &RewardSummary) -> bool {
    points
        .iter()
        .any(|p| p.runs_disagree && p.on_frontier(summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{env, failed, finished, key, open_tmp, outcome, point};
    use crate::model::{EvaluationOutcome, Failure};

    #[test]
    fn leaderboard_semantics() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        // alpha: two build sets, rewards 500 and 1000; the best is shown.
        finished(
            &mut store,
            run,
            &key("alpha", "a1", &[("M", "8")]),
            &[point(10, 0.9, 1000.0)],
        );
        let alpha_best = finished(
            &mut store,
            run,
            &key("alpha", "a1", &[("M", "16")]),
            &[point(10, 0.96, 1000.0)],
        );
        // beta: reward 1000 too: tie broken by name (alpha first).
        finished(
            &mut store,
            run,
            &key("beta", "b1", &[]),
            &[point(10, 0.95, 1000.0)],
        );
        // gamma: reward 2000 but one build set failed.
        finished(
            &mut store,
            run,
            &key("gamma", "g1", &[("M", "8")]),
            &[point(10, 0.99, 2000.0)],
        );
        failed(
            &mut store,
            run,
            &key("gamma", "g1", &[("M", "64")]),
            "out of memory (cap 8 GiB)",
        );
        // delta: works but never reaches 0.85: reward 0, still above failures.
        finished(
            &mut store,
            run,
            &key("delta", "d1", &[]),
            &[point(10, 0.5, 9000.0)],
        );
        // epsilon: the old version was good, the newest version crashes.
        finished(
            &mut store,
            run,
            &key("epsilon", "e1", &[]),
            &[point(10, 0.99, 5000.0)],
        );
        failed(
            &mut store,
            run,
            &key("epsilon", "e2", &[]),
            "crash: SIGSEGV",
        );
        // zeta: skipped; eta: only running (ignored).
        let z = store
            .start_evaluation(&key("zeta", "z1", &[]), run)
            .unwrap();
        store
            .skip_evaluation(z, &Failure::new("missing package libfoo-dev", ""))
            .unwrap();
        store.start_evaluation(&key("eta", "t1", &[]), run).unwrap();
        // theta: points with invalid queries do not count.
        let mut invalid = point(10, 0.99, 1e6);
        invalid.invalid_queries = 3;
        finished(
            &mut store,
            run,
            &key("theta", "t1", &[]),
            &[invalid, point(20, 0.9, 100.0)],
        );
        // A different config is another leaderboard.
        let mut other = key("alpha", "a1", &[]);
        other.config.k = 100;
        finished(&mut store, run, &other, &[point(10, 0.99, 1.0)]);

        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        assert_eq!(lb.scope.config.k, 100, "the most recent scope is chosen");
        let scopes = store.scopes("d5a7a5e7").unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0].config.k, 100);
        let lb = store.leaderboard_for(&scopes[1]).unwrap();
        let names: Vec<&str> = lb.rows.iter().map(|r| r.variant_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gamma", "alpha", "beta", "theta", "delta", "epsilon", "zeta"
            ]
        );
        assert_eq!(
            lb.rows.iter().map(|r| r.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        let row = |name: &str| lb.rows.iter().find(|r| r.variant_name == name).unwrap();

        assert!((row("gamma").reward - 2000.0).abs() < 1e-9);
        assert_eq!(row("gamma").status_text, "ok (1 of 2 build sets failed)");
        assert_eq!(row("gamma").evaluation_ids.len(), 2);
        let alpha = row("alpha");
        assert_eq!(alpha.evaluation_id, alpha_best);
        assert_eq!(alpha.build_params.get("M").map(String::as_str), Some("16"));
        assert_eq!(alpha.qps_at_095, Some(1000.0));
        assert_eq!(alpha.qps_at_099, None);
        assert_eq!(alpha.build_seconds, Some(1.25));
        assert_eq!(alpha.index_memory_bytes, Some(10 << 20));
        assert_eq!(alpha.status, Status::Ok);
        assert!(
            (row("theta").reward - 50.0).abs() < 1e-9,
            "invalid point excluded"
        );
        assert_eq!(row("delta").reward, 0.0);
        assert_eq!(row("delta").status, Status::Ok);
        assert_eq!(row("delta").max_recall, Some(0.5));
        let eps = row("epsilon");
        assert_eq!(eps.variant_hash, "e2");
        assert_eq!(eps.status, Status::Failed);
        assert_eq!(eps.status_text, "failed: crash: SIGSEGV");
        assert_eq!(eps.reward, 0.0);
        assert_eq!(row("zeta").status, Status::Skipped);
        assert_eq!(
            row("zeta").status_text,
            "skipped: missing package libfoo-dev"
        );
        assert!(!names.contains(&"eta"));

        let runs = store.runs_of(&lb).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, run);
        assert!(store.leaderboard("no-such-dataset").unwrap().is_none());
    }

    #[test]
    fn sandboxing_and_build_threads_are_stored_and_shown() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store.start_evaluation(&key("open", "h", &[]), run).unwrap();
        let unsandboxed = EvaluationOutcome {
            sandboxed: false,
            build_threads: 4,
            implementation: Implementation::PythonBridge,
            ..outcome()
        };
        store
            .finish_evaluation(id, &unsandboxed, &[point(10, 0.9, 100.0)])
            .unwrap();
        let e = store.evaluation(id).unwrap();
        assert_eq!((e.sandboxed, e.build_threads), (Some(false), Some(4)));
        finished(
            &mut store,
            run,
            &key("boxed", "h", &[]),
            &[point(10, 0.9, 90.0)],
        );
        let crash = store
            .start_evaluation(&key("crash", "h", &[]), run)
            .unwrap();
        let failure = Failure {
            sandboxed: Some(false),
            ..Failure::new("crash: SIGSEGV", "")
        };
        store.fail_evaluation(crash, &failure).unwrap();
        let unknown = store
            .start_evaluation(&key("unknown", "h", &[]), run)
            .unwrap();
        store
            .skip_evaluation(unknown, &Failure::new("missing package libfoo-dev", ""))
            .unwrap();
        // An older host recorded skips with the status word in the reason.
        let older = store
            .start_evaluation(&key("older", "h", &[]), run)
            .unwrap();
        store
            .skip_evaluation(older, &Failure::new("skipped: libbar-dev missing", ""))
            .unwrap();
        assert_eq!(store.evaluation(crash).unwrap().sandboxed, Some(false));
        assert_eq!(store.evaluation(unknown).unwrap().sandboxed, None);

        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        let row = |name: &str| lb.rows.iter().find(|r| r.variant_name == name).unwrap();
        assert_eq!(row("open").status_text, "ok (unsandboxed)");
        assert_eq!(row("open").sandboxed, Some(false));
        assert_eq!(row("open").build_threads, Some(4));
        assert_eq!(
            row("open").implementation,
            Some(Implementation::PythonBridge)
        );
        assert_eq!(row("boxed").status_text, "ok");
        assert_eq!(row("boxed").sandboxed, Some(true));
        assert_eq!(row("boxed").implementation, Some(Implementation::Native));
        assert_eq!(row("crash").implementation, None);
        assert_eq!(
            row("crash").status_text,
            "failed: crash: SIGSEGV (unsandboxed)"
        );
        assert_eq!(
            row("unknown").status_text,
            "skipped: missing package libfoo-dev"
        );
        assert_eq!(row("older").status_text, "skipped: libbar-dev missing");

        let id = store.start_evaluation(&key("zero", "h", &[]), run).unwrap();
        let zero_threads = EvaluationOutcome {
            build_threads: 0,
            ..outcome()
        };
        let err = store.finish_evaluation(id, &zero_threads, &[]).unwrap_err();
        assert!(
            err.to_string().contains("build threads must be >= 1"),
            "{err}"
        );
    }

    #[test]
    fn rows_whose_frontier_rests_on_disagreeing_runs_are_flagged() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let disagreeing = |ef, recall, qps| SweepPoint {
            recall_min: recall,
            recall_max: recall + 0.01,
            runs_disagree: true,
            ..point(ef, recall, qps)
        };
        // On the frontier: flagged.
        finished(
            &mut store,
            run,
            &key("flaky", "h", &[]),
            &[point(10, 0.9, 100.0), disagreeing(20, 0.95, 50.0)],
        );
        // Dominated (lower recall and QPS than another point): not flagged.
        finished(
            &mut store,
            run,
            &key("steady", "h", &[]),
            &[point(10, 0.9, 100.0), disagreeing(5, 0.8, 90.0)],
        );
        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        let row = |name: &str| lb.rows.iter().find(|r| r.variant_name == name).unwrap();
        assert!(row("flaky").runs_disagree);
        assert!(!row("steady").runs_disagree);
    }
}
