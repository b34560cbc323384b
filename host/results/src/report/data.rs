//! What every report is rendered from: a leaderboard with its build sets,
//! their sweep points and the runs that measured them.

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use super::cells::short_hash;
use crate::leaderboard::{Leaderboard, LeaderboardRow, summarize_points};
use crate::model::{EvaluationRecord, RunRecord, Scope, SweepPoint};
use crate::reward::{BAND_HIGH, BAND_LOW, RewardSummary};
use crate::store::Store;

/// One build-parameter set of a variant, with its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildDetail {
    /// The stored evaluation.
    pub evaluation: EvaluationRecord,
    /// Its sweep points, in stored order.
    pub points: Vec<SweepPoint>,
    /// Reward and frontier of the valid points (no invalid queries).
    pub summary: RewardSummary,
}

/// Everything a report shows about one leaderboard row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantDetail {
    /// The row.
    pub row: LeaderboardRow,
    /// All build sets of the row's variant version, oldest first.
    pub builds: Vec<BuildDetail>,
}

impl VariantDetail {
    /// The build set shown in the leaderboard row.
    pub fn shown_build(&self) -> Option<&BuildDetail> {
        self.builds
            .iter()
            .find(|b| b.evaluation.id == self.row.evaluation_id)
    }
}

/// Everything the reports are rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// Dataset and config.
    pub scope: Scope,
    /// What reward and QPS@x mean, and on what they were measured.
    pub explanation: String,
    /// One entry per leaderboard row, rank order.
    pub variants: Vec<VariantDetail>,
    /// The runs (machines, versions) that produced these results.
    pub runs: Vec<RunRecord>,
}

impl ReportData {
    /// Reads the most recent leaderboard of `dataset` (name or content hash)
    /// and everything behind it from `store`.
    pub fn collect(store: &Store, dataset: &str) -> anyhow::Result<Self> {
        let leaderboard = store.leaderboard(dataset)?.ok_or_else(|| {
            anyhow!(
                "no finished evaluation of dataset {dataset:?} in {}",
                store.path().display()
            )
        })?;
        Self::from_leaderboard(store, leaderboard)
    }

    /// Reads everything behind an already computed leaderboard.
    pub fn from_leaderboard(store: &Store, leaderboard: Leaderboard) -> anyhow::Result<Self> {
        let runs = store.runs_of(&leaderboard)?;
        let explanation = explanation(&leaderboard);
        let mut variants = Vec::with_capacity(leaderboard.rows.len());
        for row in leaderboard.rows {
            let mut builds = Vec::with_capacity(row.evaluation_ids.len());
            for id in &row.evaluation_ids {
                let evaluation = store.evaluation(*id)?;
                let points = store.sweep_points(*id)?;
                let summary = summarize_points(&points);
                builds.push(BuildDetail {
                    evaluation,
                    points,
                    summary,
                });
            }
            variants.push(VariantDetail { row, builds });
        }
        Ok(Self {
            explanation,
            scope: leaderboard.scope,
            variants,
            runs,
        })
    }

    /// The leaderboard rows, rank order.
    pub fn rows(&self) -> impl Iterator<Item = &LeaderboardRow> {
        self.variants.iter().map(|v| &v.row)
    }
}

/// The explanation printed under every leaderboard; it says what the
/// Python bridge itself costs when the scope holds that measurement.
pub fn explanation(leaderboard: &Leaderboard) -> String {
    let scope = &leaderboard.scope;
    let mut text = format!(
        "Reward = mean over recall r in [{BAND_LOW:.2}, {BAND_HIGH:.2}] of Q(r), the highest QPS among \
         sweep points with recall >= r (integrated exactly; 0 where recall {BAND_LOW:.2} is never reached). \
         QPS@x = Q(x); \"—\" means recall x was never reached. QPS is the best of R runs. \
         Max recall is the highest recall of any sweep point. \
         Dataset {} ({}), {}, config {}.",
        scope.dataset_name,
        short_hash(&scope.dataset_hash),
        scope.config.describe(),
        scope.config_key
    );
    if let Some(machine_type) = &scope.machine_type {
        text.push_str(&format!(
            " Measured on {machine_type}; figures from other machine types are ranked apart."
        ));
    }
    if let Some(overhead) = leaderboard.bridge_overhead {
        text.push_str(&format!(
            " Variants served through the Python bridge pay its own cost, measured here with a \
             no-op adapter: {:.1} µs per query (included in their QPS; a library's speed is its \
             QPS with that cost taken out).",
            overhead.seconds_per_query * 1e6
        ));
    }
    text
}
