//! The recall axis of the plot: logit (the default) or linear, as a plotters
//! coordinate whose values stay recalls.

use plotters::prelude::Ranged;

/// How the plot's recall axis is scaled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecallAxis {
    /// logit(r) = ln(r / (1 − r)), as ann-benchmarks draws recall: 0.9,
    /// 0.99 and 0.999 are about evenly spaced, so the high-recall regime where
    /// variants differ most gets a readable share of the width. The axis
    /// ends at [`LOGIT_TOP`]; recall 1 is drawn at that edge.
    #[default]
    Logit,
    /// Linear, from a multiple of 0.05 at or below the lowest recall to 1.
    Linear,
}

/// The highest recall the logit axis shows apart; higher recalls (1 among
/// them) are drawn at its right edge.
pub const LOGIT_TOP: f64 = 0.9999;
/// Labelled ticks of the logit axis (those inside its range).
const LOGIT_TICKS: [f64; 7] = [0.01, 0.1, 0.5, 0.9, 0.99, 0.999, LOGIT_TOP];
/// Unlabelled grid lines of the logit axis.
const LOGIT_MINOR: [f64; 14] = [
    0.02, 0.05, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.95, 0.98, 0.995, 0.998, 0.9995, 0.9998,
];

/// The recall axis as a plotters coordinate: values stay recalls (so the
/// band, the curves and the markers are given in recall), the mapping to
/// pixels applies the scale.
#[derive(Debug, Clone)]
pub(super) struct RecallCoord {
    axis: RecallAxis,
    /// Recalls are clamped into `low..=high` before mapping.
    low: f64,
    high: f64,
    /// The scaled values at the left and right ends of the axis (a little
    /// beyond `low` and `high`, so edge markers are not cut).
    left: f64,
    right: f64,
}

impl RecallCoord {
    /// The axis for frontier points whose lowest recall is `min_recall`.
    pub(super) fn new(axis: RecallAxis, min_recall: f64) -> RecallCoord {
        let (low, high) = match axis {
            // The lowest labelled tick at or below the data (0.5 at most).
            RecallAxis::Logit => (
                LOGIT_TICKS[..3]
                    .iter()
                    .rev()
                    .copied()
                    .find(|&t| t <= min_recall)
                    .unwrap_or(LOGIT_TICKS[0]),
                LOGIT_TOP,
            ),
            RecallAxis::Linear => (((min_recall * 20.0).floor() / 20.0).clamp(0.0, 0.8), 1.0),
        };
        let mut coord = RecallCoord {
            axis,
            low,
            high,
            left: 0.0,
            right: 0.0,
        };
        let (a, b) = (coord.scaled(low), coord.scaled(high));
        let pad = (b - a) * 0.02;
        (coord.left, coord.right) = (a - pad, b + pad);
        coord
    }

    /// `recall` clamped to the axis and scaled.
    fn scaled(&self, recall: f64) -> f64 {
        let r = recall.clamp(self.low, self.high);
        match self.axis {
            RecallAxis::Logit => (r / (1.0 - r)).ln(),
            RecallAxis::Linear => r,
        }
    }

    /// The tick label of `recall`: as few decimals as the tick needs.
    pub(super) fn label(&self, recall: f64) -> String {
        match self.axis {
            RecallAxis::Logit => format!("{recall}"),
            RecallAxis::Linear => format!("{recall:.2}"),
        }
    }

    /// What the axis title adds to "Recall@k".
    pub(super) fn description(&self) -> &'static str {
        match self.axis {
            RecallAxis::Logit => " (logit scale; recall 1 is drawn at the right edge)",
            RecallAxis::Linear => "",
        }
    }

    /// The `ticks` inside the axis.
    fn within(&self, ticks: impl IntoIterator<Item = f64>) -> Vec<f64> {
        ticks
            .into_iter()
            .filter(|t| (self.low..=self.high).contains(t))
            .collect()
    }
}

impl Ranged for RecallCoord {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let at = (self.scaled(*value) - self.left) / (self.right - self.left);
        limit.0 + (at * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let light = hint.weight().allow_light_points();
        match self.axis {
            RecallAxis::Logit if light => self.within(LOGIT_MINOR),
            RecallAxis::Logit => self.within(LOGIT_TICKS),
            RecallAxis::Linear => {
                let steps = if light { 100 } else { 20 };
                self.within((0..=steps).map(|i| f64::from(i) / f64::from(steps)))
            }
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.low..self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logit_axis_gives_the_high_recall_regime_a_readable_share() {
        let logit = RecallCoord::new(RecallAxis::Logit, 0.6);
        let linear = RecallCoord::new(RecallAxis::Linear, 0.6);
        let share = |x: &RecallCoord, from: f64, to: f64| {
            f64::from(x.map(&to, (0, 1000)) - x.map(&from, (0, 1000))) / 1000.0
        };
        assert!(share(&linear, 0.95, 0.999) < 0.15);
        assert!(share(&logit, 0.95, 0.999) > 0.35);
        // 0.9, 0.99, 0.999 and 0.9999 are about evenly spaced, and labelled so.
        let steps: Vec<i32> = [0.9, 0.99, 0.999, LOGIT_TOP]
            .windows(2)
            .map(|w| logit.map(&w[1], (0, 1000)) - logit.map(&w[0], (0, 1000)))
            .collect();
        assert!(
            steps.iter().all(|s| (s - steps[0]).abs() * 20 <= steps[0]),
            "{steps:?}"
        );
        let ticks: Vec<String> = logit
            .key_points(plotters::coord::ranged1d::BoldPoints(10))
            .iter()
            .map(|t| logit.label(*t))
            .collect();
        assert_eq!(ticks, ["0.5", "0.9", "0.99", "0.999", "0.9999"]);
        // Recall 1 is drawn at the right edge, inside the axis.
        let edge = logit.map(&1.0, (0, 1000));
        assert_eq!(edge, logit.map(&LOGIT_TOP, (0, 1000)));
        assert!(edge > 950 && edge < 1000);
        // Lower recalls widen the axis down to the next labelled tick.
        assert_eq!(RecallCoord::new(RecallAxis::Logit, 0.3).low, 0.1);
        assert_eq!(RecallCoord::new(RecallAxis::Logit, 0.0).low, 0.01);
        assert!(logit.map(&0.0, (0, 1000)) > 0, "clamped into the axis");
    }
}
