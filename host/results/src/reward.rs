//! Reward, QPS@recall and the Pareto frontier (the adaptive sweep rule is
//! in [`crate::sweep`]).
//!
//! Everything here is a pure function of measured sweep points.
//!
//! # Definitions
//!
//! For a set of sweep points `(recall_i, qps_i)`, the *achievable QPS at
//! recall r* is
//!
//! ```text
//! Q(r) = max { qps_i : recall_i >= r }      (0 when no point reaches r)
//! ```
//!
//! `Q` is a non-increasing step function of `r`: it is constant between two
//! consecutive recalls of the Pareto frontier and drops to 0 above the highest
//! recall. The **reward** is the mean of `Q` over the recall band
//! [`BAND_LOW`, `BAND_HIGH`] = [0.85, 0.95]:
//!
//! ```text
//! reward = (1 / 0.10) * integral_{0.85}^{0.95} Q(r) dr
//! ```
//!
//! computed exactly, step by step (no sampling). A variant that never reaches
//! recall 0.85 therefore scores 0; one whose best recall is 0.90 is charged
//! 0 QPS over (0.90, 0.95].
//!
//! `QPS@x` is `Q(x)`; this crate reports it as `None` (shown as "—") when no
//! point reaches recall `x`, never as a misleading 0.
//!
//! Recall is compared exactly, without tolerance: compute recall as
//! `hits as f64 / (queries * k) as f64` in one correctly rounded division and
//! an exact fraction such as 9/10 compares equal to the literal `0.9`.
//!
//! Points whose recall or QPS is not finite, or whose QPS is not positive, are
//! ignored by every function of this module.

use serde::{Deserialize, Serialize};

/// Lower end of the recall band the reward averages over.
pub const BAND_LOW: f64 = 0.85;
/// Upper end of the recall band the reward averages over.
pub const BAND_HIGH: f64 = 0.95;
/// Recall levels at which `QPS@x` is reported.
pub const REPORTED_RECALLS: [f64; 3] = [0.90, 0.95, 0.99];

/// One measured (recall, QPS) pair: the input of the reward.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecallQps {
    /// Mean recall@k over the queries, in [0, 1].
    pub recall: f64,
    /// Queries per second (best of the R runs), > 0.
    pub qps: f64,
}

impl RecallQps {
    /// Creates a point.
    pub fn new(recall: f64, qps: f64) -> Self {
        Self { recall, qps }
    }

    fn is_valid(&self) -> bool {
        self.recall.is_finite() && self.qps.is_finite() && self.qps > 0.0
    }
}

/// The scalar summary of one sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardSummary {
    /// Mean of `Q(r)` over r in [0.85, 0.95] (QPS); 0 when 0.85 is never reached.
    pub reward: f64,
    /// `Q(0.90)`, `None` when no point reaches recall 0.90.
    pub qps_at_090: Option<f64>,
    /// `Q(0.95)`, `None` when no point reaches recall 0.95.
    pub qps_at_095: Option<f64>,
    /// `Q(0.99)`, `None` when no point reaches recall 0.99.
    pub qps_at_099: Option<f64>,
    /// Highest recall among the points, `None` when there are none.
    pub max_recall: Option<f64>,
    /// The Pareto frontier, sorted by increasing recall.
    pub frontier: Vec<RecallQps>,
}

/// The Pareto frontier: points not dominated by another point in both recall
/// and QPS (a point is dominated when another has recall ≥ and QPS ≥ with at
/// least one strict). Exact duplicates are kept once. Sorted by increasing
/// recall, hence strictly decreasing QPS.
pub fn pareto_frontier(points: &[RecallQps]) -> Vec<RecallQps> {
    let mut sorted: Vec<RecallQps> = points.iter().copied().filter(RecallQps::is_valid).collect();
    // Highest recall first; among equal recalls the fastest first.
    sorted.sort_by(|a, b| b.recall.total_cmp(&a.recall).then(b.qps.total_cmp(&a.qps)));
    let mut frontier = Vec::new();
    let mut best_qps = f64::NEG_INFINITY;
    for p in sorted {
        if p.qps > best_qps {
            best_qps = p.qps;
            frontier.push(p);
        }
    }
    frontier.reverse();
    frontier
}

/// `Q(r)`: the highest QPS among points with recall ≥ `r`, 0 when none.
pub fn achievable_qps(points: &[RecallQps], r: f64) -> f64 {
    points
        .iter()
        .filter(|p| p.is_valid() && p.recall >= r)
        .map(|p| p.qps)
        .fold(0.0, f64::max)
}

/// `Q(r)` as an option: `None` when no point reaches recall `r`.
pub fn qps_at(points: &[RecallQps], r: f64) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.is_valid() && p.recall >= r)
        .map(|p| p.qps)
        .reduce(f64::max)
}

/// Exact integral of `Q(r)` over `[low, high]` (`low <= high`).
///
/// On the frontier sorted by recall `r_0 < r_1 < … < r_m` with QPS
/// `q_0 > q_1 > … > q_m`, `Q(r) = q_j` for `r` in `(r_{j-1}, r_j]` (with
/// `r_{-1} = -∞`) and 0 above `r_m`; the integral is the sum of `q_j` times
/// the length of that interval clipped to `[low, high]`.
pub fn integral_of_q(points: &[RecallQps], low: f64, high: f64) -> f64 {
    if high <= low {
        return 0.0;
    }
    let frontier = pareto_frontier(points);
    let mut total = 0.0;
    let mut previous = f64::NEG_INFINITY;
    for p in &frontier {
        let start = previous.max(low);
        let end = p.recall.min(high);
        if end > start {
            total += p.qps * (end - start);
        }
        previous = p.recall;
    }
    total
}

/// The reward: mean of `Q` over [0.85, 0.95], integrated exactly.
pub fn reward(points: &[RecallQps]) -> f64 {
    integral_of_q(points, BAND_LOW, BAND_HIGH) / (BAND_HIGH - BAND_LOW)
}

/// Reward, QPS@0.90/0.95/0.99, best recall and frontier in one pass.
pub fn summarize(points: &[RecallQps]) -> RewardSummary {
    let [r90, r95, r99] = REPORTED_RECALLS;
    RewardSummary {
        reward: reward(points),
        qps_at_090: qps_at(points, r90),
        qps_at_095: qps_at(points, r95),
        qps_at_099: qps_at(points, r99),
        max_recall: points
            .iter()
            .filter(|p| p.is_valid())
            .map(|p| p.recall)
            .reduce(f64::max),
        frontier: pareto_frontier(points),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(f64, f64)]) -> Vec<RecallQps> {
        v.iter().map(|&(r, q)| RecallQps::new(r, q)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn single_point_at_090_gives_half() {
        let p = pts(&[(0.9, 1000.0)]);
        assert!(close(reward(&p), 500.0), "{}", reward(&p));
    }

    #[test]
    fn single_point_above_band_gives_full_qps() {
        assert!(close(reward(&pts(&[(0.97, 1000.0)])), 1000.0));
        assert!(close(reward(&pts(&[(0.95, 1000.0)])), 1000.0));
    }

    #[test]
    fn nothing_reaching_085_scores_zero() {
        assert_eq!(reward(&pts(&[(0.84, 1e6), (0.5, 1e7)])), 0.0);
        assert_eq!(reward(&[]), 0.0);
        let s = summarize(&pts(&[(0.84, 1e6)]));
        assert_eq!(s.reward, 0.0);
        assert_eq!(s.qps_at_090, None);
        assert_eq!(s.max_recall, Some(0.84));
    }

    #[test]
    fn point_exactly_at_085_contributes_nothing() {
        // Q(r) = 1000 only on [.., 0.85]: a set of measure zero in the band.
        assert_eq!(reward(&pts(&[(0.85, 1000.0)])), 0.0);
    }

    #[test]
    fn two_points_hand_computed() {
        // Q = 2000 on (.., 0.88], 1000 on (0.88, 0.96].
        // integral over [0.85, 0.95] = 2000*0.03 + 1000*0.07 = 60 + 70 = 130.
        let p = pts(&[(0.88, 2000.0), (0.96, 1000.0)]);
        assert!(close(reward(&p), 1300.0), "{}", reward(&p));
        assert_eq!(qps_at(&p, 0.90), Some(1000.0));
        assert_eq!(qps_at(&p, 0.88), Some(2000.0));
        assert_eq!(qps_at(&p, 0.99), None);
    }

    #[test]
    fn two_points_with_gap_above_top() {
        // Q = 3000 on (.., 0.86], 1500 on (0.86, 0.92], 0 above.
        // 3000*0.01 + 1500*0.06 = 30 + 90 = 120 -> 1200.
        let p = pts(&[(0.86, 3000.0), (0.92, 1500.0)]);
        assert!(close(reward(&p), 1200.0), "{}", reward(&p));
        assert_eq!(qps_at(&p, 0.95), None);
    }

    #[test]
    fn dominated_points_do_not_change_reward() {
        let base = pts(&[(0.88, 2000.0), (0.96, 1000.0)]);
        let mut more = base.clone();
        more.extend(pts(&[(0.87, 1500.0), (0.90, 900.0), (0.96, 999.0)]));
        assert!(close(reward(&more), reward(&base)));
    }

    #[test]
    fn reward_is_q_sampled_mean_limit() {
        // Cross-check the exact integral against a fine Riemann sum.
        let p = pts(&[
            (0.80, 9000.0),
            (0.861, 5000.0),
            (0.9, 4000.0),
            (0.933, 2500.0),
            (0.99, 500.0),
        ]);
        let n = 200_000;
        let mut sum = 0.0;
        for i in 0..n {
            let r = BAND_LOW + (BAND_HIGH - BAND_LOW) * (i as f64 + 0.5) / n as f64;
            sum += achievable_qps(&p, r);
        }
        let sampled = sum / n as f64;
        assert!(
            (reward(&p) - sampled).abs() < 1.0,
            "{} vs {sampled}",
            reward(&p)
        );
        // Exact: 5000*0.011 + 4000*0.039 + 2500*0.033 + 500*0.017 = 55+156+82.5+8.5 = 302.
        assert!(close(reward(&p), 3020.0), "{}", reward(&p));
    }

    #[test]
    fn invalid_points_are_ignored() {
        let p = pts(&[
            (f64::NAN, 1e9),
            (0.9, f64::INFINITY),
            (0.9, -5.0),
            (0.9, 0.0),
            (0.9, 1000.0),
        ]);
        assert!(close(reward(&p), 500.0));
        assert_eq!(pareto_frontier(&p), pts(&[(0.9, 1000.0)]));
    }

    #[test]
    fn frontier_sorted_and_non_dominated() {
        let p = pts(&[
            (0.5, 100.0),
            (0.9, 50.0),
            (0.7, 80.0),
            (0.7, 60.0),
            (0.6, 70.0),
            (0.9, 50.0),
            (0.95, 10.0),
            (0.4, 90.0),
        ]);
        let f = pareto_frontier(&p);
        assert_eq!(
            f,
            pts(&[(0.5, 100.0), (0.7, 80.0), (0.9, 50.0), (0.95, 10.0)])
        );
    }

    #[test]
    fn summary_fields() {
        let s = summarize(&pts(&[(0.91, 800.0), (0.995, 100.0), (0.96, 300.0)]));
        assert_eq!(s.qps_at_090, Some(800.0));
        assert_eq!(s.qps_at_095, Some(300.0));
        assert_eq!(s.qps_at_099, Some(100.0));
        assert_eq!(s.max_recall, Some(0.995));
        assert_eq!(s.frontier.len(), 3);
        // 800*(0.91-0.85) + 300*(0.95-0.91) = 48 + 12 = 60 -> 600.
        assert!(close(s.reward, 600.0), "{}", s.reward);
    }

    #[test]
    fn qps_at_exact_fraction() {
        let recall = 9.0 / 10.0;
        assert_eq!(qps_at(&pts(&[(recall, 10.0)]), 0.90), Some(10.0));
        let recall = 9_000.0 / 10_000.0;
        assert_eq!(qps_at(&pts(&[(recall, 10.0)]), 0.90), Some(10.0));
    }
}
