//! The adaptive sweep rule: which search-knob values (ef, nprobe, …) to
//! measure next so that the recall targets are located and the reward band
//! is covered densely, within a budget of points. A pure function of the
//! points measured so far.

use serde::{Deserialize, Serialize};

use crate::reward::{BAND_HIGH, BAND_LOW};

/// One measured point of a sweep over an integer search knob (ef, nprobe, …).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnobPoint {
    /// Knob value the point was measured at.
    pub knob: u64,
    /// Mean recall measured at that knob.
    pub recall: f64,
    /// QPS measured at that knob.
    pub qps: f64,
}

/// Parameters of the adaptive sweep rule ([`propose_knobs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptivePolicy {
    /// Recall levels whose crossing must be located (default 0.85, 0.90, 0.95, 0.99).
    pub targets: Vec<f64>,
    /// Recall band to cover densely (default the reward band [0.85, 0.95]).
    pub band: (f64, f64),
    /// Two adjacent points are refined only if their recalls differ by more
    /// than this (default 0.01).
    pub recall_tolerance: f64,
    /// Smallest knob value the rule may propose (default 1).
    pub min_knob: u64,
    /// Largest knob value the rule may propose (default 4096).
    pub max_knob: u64,
    /// Total number of distinct knob values (measured + proposed) never
    /// exceeded (default 40).
    pub max_points: usize,
}

impl Default for AdaptivePolicy {
    fn default() -> Self {
        Self {
            targets: vec![0.85, 0.90, 0.95, 0.99],
            band: (BAND_LOW, BAND_HIGH),
            recall_tolerance: 0.01,
            min_knob: 1,
            max_knob: 4096,
            max_points: 40,
        }
    }
}

/// Proposes the next knob values to measure, or nothing when the sweep is
/// dense enough (or the budget is spent).
///
/// The rule assumes recall grows with the knob. Points are sorted by knob
/// (for a knob measured twice the first point counts). Then:
///
/// 1. **Upward extrapolation**: if no point reaches the highest target (0.99)
///    and the largest knob is below `max_knob`, propose
///    `min(2 * largest, max_knob)`.
/// 2. **Downward extrapolation**: if the recall at the smallest knob is still
///    ≥ the lowest target (0.85) and the smallest knob is above `min_knob`,
///    propose `max(smallest / 2, min_knob)`.
/// 3. **Bisection**: for each pair of knob-adjacent points `a < b` with
///    `b - a >= 2` whose recalls differ by more than `recall_tolerance`, and
///    whose recall interval `[lo, hi]` either brackets a target
///    (`lo < t <= hi`) or overlaps the band, propose `(a + b) / 2`. Pairs with
///    the widest recall gap come first.
///
/// Extrapolations come before bisections; proposals already measured are
/// dropped, and the list is cut so that measured + proposed never exceeds
/// `max_points`. With no measured point there is nothing to reason from and
/// the result is empty: measure an initial grid first.
///
/// Limits: the rule cannot look past a non-monotone recall (noise between
/// adjacent knobs is treated by the min/max of the pair); a target never
/// reached below `max_knob` stays unreached; integer knobs closer than 2
/// cannot be split, so a recall jump between knobs `n` and `n + 1` remains.
/// Calling it repeatedly, measuring what it returns, terminates because every
/// proposal is a new integer in `[min_knob, max_knob]` and the total is capped.
pub fn propose_knobs(policy: &AdaptivePolicy, measured: &[KnobPoint]) -> Vec<u64> {
    let points = distinct_knobs(measured);
    if points.is_empty() {
        return Vec::new();
    }
    let budget = policy.max_points.saturating_sub(points.len());
    if budget == 0 {
        return Vec::new();
    }
    let mut proposals = extrapolations(policy, &points);
    proposals.extend(bisections(policy, &points));

    let mut out: Vec<u64> = Vec::new();
    for knob in proposals {
        let fresh = !points.iter().any(|p| p.knob == knob) && !out.contains(&knob);
        if fresh && (policy.min_knob..=policy.max_knob).contains(&knob) {
            out.push(knob);
        }
    }
    out.truncate(budget);
    out
}

/// The points with a finite recall, one per knob (the first measured),
/// sorted by knob.
fn distinct_knobs(measured: &[KnobPoint]) -> Vec<KnobPoint> {
    let mut points: Vec<KnobPoint> = Vec::with_capacity(measured.len());
    for p in measured.iter().filter(|p| p.recall.is_finite()) {
        if !points.iter().any(|q| q.knob == p.knob) {
            points.push(*p);
        }
    }
    points.sort_by_key(|p| p.knob);
    points
}

/// Steps 1 and 2 of [`propose_knobs`]: a larger knob while the highest
/// target is unreached, a smaller one while the smallest knob already
/// reaches the lowest target. `points` is sorted by knob and not empty.
fn extrapolations(policy: &AdaptivePolicy, points: &[KnobPoint]) -> Vec<u64> {
    let (first, last) = (points[0], points[points.len() - 1]);
    let top_target = policy
        .targets
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let low_target = policy.targets.iter().copied().fold(f64::INFINITY, f64::min);
    let max_recall = points
        .iter()
        .map(|p| p.recall)
        .fold(f64::NEG_INFINITY, f64::max);

    let mut proposals: Vec<u64> = Vec::new();
    if top_target.is_finite() && max_recall < top_target && last.knob < policy.max_knob {
        proposals.push(
            last.knob
                .saturating_mul(2)
                .clamp(policy.min_knob, policy.max_knob),
        );
    }
    if low_target.is_finite() && first.recall >= low_target && first.knob > policy.min_knob {
        proposals.push((first.knob / 2).max(policy.min_knob));
    }
    proposals
}

/// Step 3 of [`propose_knobs`]: the midpoints of knob-adjacent pairs worth
/// splitting, the widest recall gap first. `points` is sorted by knob.
fn bisections(policy: &AdaptivePolicy, points: &[KnobPoint]) -> Vec<u64> {
    let (band_low, band_high) = policy.band;
    let mut splits: Vec<(f64, u64)> = points
        .windows(2)
        .filter_map(|pair| {
            let (a, b) = (pair[0], pair[1]);
            let lo = a.recall.min(b.recall);
            let hi = a.recall.max(b.recall);
            let gap = hi - lo;
            let brackets = policy.targets.iter().any(|&t| lo < t && t <= hi);
            let overlaps_band = lo < band_high && hi > band_low;
            (b.knob - a.knob >= 2 && gap > policy.recall_tolerance && (brackets || overlaps_band))
                .then(|| (gap, a.knob + (b.knob - a.knob) / 2))
        })
        .collect();
    splits.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    splits.into_iter().map(|(_, knob)| knob).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(knob: u64, recall: f64) -> KnobPoint {
        KnobPoint {
            knob,
            recall,
            qps: 1000.0 / knob as f64,
        }
    }

    #[test]
    fn propose_empty_input_is_empty() {
        assert!(propose_knobs(&AdaptivePolicy::default(), &[]).is_empty());
    }

    #[test]
    fn propose_extrapolates_up_and_down() {
        let policy = AdaptivePolicy::default();
        // All recalls between 0.86 and 0.93: need higher knobs and lower knobs.
        let m = [kp(16, 0.86), kp(32, 0.93)];
        let p = propose_knobs(&policy, &m);
        assert_eq!(p[0], 64, "{p:?}");
        assert_eq!(p[1], 8, "{p:?}");
        assert!(p.contains(&24), "{p:?}");
    }

    #[test]
    fn propose_caps_upward_at_max_knob() {
        let policy = AdaptivePolicy {
            max_knob: 100,
            ..AdaptivePolicy::default()
        };
        assert_eq!(propose_knobs(&policy, &[kp(80, 0.5)]), vec![100]);
        assert!(propose_knobs(&policy, &[kp(100, 0.5)]).is_empty());
    }

    #[test]
    fn propose_bisects_band_and_targets_only() {
        let policy = AdaptivePolicy::default();
        let m = [
            kp(10, 0.30),
            kp(20, 0.60),
            kp(40, 0.80),
            kp(80, 0.90),
            kp(160, 0.97),
            kp(320, 0.995),
        ];
        let p = propose_knobs(&policy, &m);
        // 10-20 and 20-40 are below the band and bracket no target.
        assert!(!p.contains(&15) && !p.contains(&30), "{p:?}");
        // 40-80 brackets 0.85 and 0.90, 80-160 overlaps the band/brackets 0.95,
        // 160-320 brackets 0.99.
        assert_eq!(p, vec![60, 120, 240], "{p:?}");
    }

    #[test]
    fn propose_respects_tolerance_and_adjacency() {
        let policy = AdaptivePolicy::default();
        // Gap 0.005 < tolerance; knobs 1 apart cannot be split.
        let m = [
            kp(2, 0.84),
            kp(20, 0.895),
            kp(22, 0.90),
            kp(23, 0.96),
            kp(4000, 0.995),
        ];
        let p = propose_knobs(&policy, &m);
        assert!(!p.contains(&21), "{p:?}");
        assert!(p.contains(&11), "{p:?}"); // 2-20 brackets 0.85
        assert!(!p.iter().any(|&k| k == 22 || k == 23), "{p:?}");
    }

    #[test]
    fn propose_respects_budget_and_terminates() {
        let policy = AdaptivePolicy {
            max_points: 12,
            ..AdaptivePolicy::default()
        };
        // Simulated index: recall = 1 - exp(-knob/40).
        let sim = |k: u64| kp(k, 1.0 - (-(k as f64) / 40.0).exp());
        let mut measured: Vec<KnobPoint> = [10, 40, 160].iter().map(|&k| sim(k)).collect();
        let mut rounds = 0;
        loop {
            let next = propose_knobs(&policy, &measured);
            if next.is_empty() {
                break;
            }
            for k in next {
                assert!(!measured.iter().any(|p| p.knob == k), "re-proposed {k}");
                measured.push(sim(k));
            }
            rounds += 1;
            assert!(rounds < 100);
        }
        assert!(measured.len() <= 12, "{}", measured.len());
        assert_eq!(measured.len(), 12);
        assert!(measured.iter().any(|p| p.recall >= 0.99));
    }

    #[test]
    fn propose_converges_without_budget_pressure() {
        let policy = AdaptivePolicy::default();
        let sim = |k: u64| kp(k, 1.0 - (-(k as f64) / 40.0).exp());
        let mut measured: Vec<KnobPoint> = [10, 20, 40].iter().map(|&k| sim(k)).collect();
        for _ in 0..100 {
            let next = propose_knobs(&policy, &measured);
            if next.is_empty() {
                break;
            }
            measured.extend(next.into_iter().map(sim));
        }
        assert!(propose_knobs(&policy, &measured).is_empty());
        measured.sort_by_key(|p| p.knob);
        // Every adjacent pair touching the band is now within tolerance or adjacent.
        for w in measured.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (lo, hi) = (a.recall.min(b.recall), a.recall.max(b.recall));
            if lo < 0.95 && hi > 0.85 {
                assert!(hi - lo <= 0.01 || b.knob - a.knob < 2, "{a:?} {b:?}");
            }
        }
        assert!(measured.len() < 40);
    }
}
