//! How far ahead the packed level-0 search asks for memory, and the choice
//! of it by timing searches on the machine at prepare time (as GLASS tunes
//! its prefetch before the first query).

use std::time::Duration;

/// Prefetch settings of a [`PackedLevel`](crate::PackedLevel) search: while
/// a node's neighbours are measured, the code of the neighbour `ahead`
/// places on is requested, `lines` cache lines of it (each only when the
/// neighbour is not visited yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefetch {
    /// Neighbours ahead of the one being measured whose codes are requested
    /// (at least 1).
    pub ahead: usize,
    /// Cache lines requested of each such code (at least 1).
    pub lines: usize,
}

impl Default for Prefetch {
    /// Eight neighbours ahead, whole codes (up to [`MAX_PREFETCH_LINES`]):
    /// the settings of an index too small for timing to matter (its
    /// records stay in cache), and the `ahead` that timing starts from.
    fn default() -> Prefetch {
        Prefetch {
            ahead: 8,
            lines: MAX_PREFETCH_LINES,
        }
    }
}

/// The `ahead` values tried, where the degree allows.
const AHEAD_CHOICES: [usize; 7] = [1, 2, 4, 6, 8, 12, 16];

/// The `lines` values tried, where the code is that long (its whole length
/// is always tried).
const LINE_CHOICES: [usize; 4] = [1, 2, 4, 8];

/// Most cache lines of a code one prefetch asks for: the hardware
/// prefetcher streams the rest once a code is being read.
pub const MAX_PREFETCH_LINES: usize = 16;

/// Largest `ahead` accepted.
pub const MAX_PREFETCH_AHEAD: usize = 64;

impl Prefetch {
    /// The settings worth timing for records of `max_degree` neighbours and
    /// codes of `code_lines` cache lines: every pair of the usual `ahead`
    /// and `lines` values within those bounds, with `ahead` fixed when
    /// `fixed_ahead` is given and `lines` when `fixed_lines` is. Never
    /// empty.
    pub fn candidates(
        max_degree: usize,
        code_lines: usize,
        fixed_ahead: Option<usize>,
        fixed_lines: Option<usize>,
    ) -> Vec<Prefetch> {
        let most_lines = code_lines.clamp(1, MAX_PREFETCH_LINES);
        let aheads: Vec<usize> = match fixed_ahead {
            Some(ahead) => vec![ahead],
            None => AHEAD_CHOICES
                .into_iter()
                .filter(|&ahead| ahead == 1 || ahead < max_degree)
                .collect(),
        };
        let lines: Vec<usize> = match fixed_lines {
            Some(lines) => vec![lines],
            None => LINE_CHOICES
                .into_iter()
                .filter(|&lines| lines < most_lines)
                .chain([most_lines])
                .collect(),
        };
        aheads
            .iter()
            .flat_map(|&ahead| lines.iter().map(move |&lines| Prefetch { ahead, lines }))
            .collect()
    }

    /// The candidate whose best time over `rounds` rounds is the least:
    /// each round calls `time` once per candidate, in order, so that a
    /// slow spell of the machine falls on every candidate alike. Panics
    /// when `candidates` is empty.
    pub fn fastest(
        candidates: &[Prefetch],
        rounds: usize,
        mut time: impl FnMut(Prefetch) -> Duration,
    ) -> Prefetch {
        let mut best = vec![Duration::MAX; candidates.len()];
        for _ in 0..rounds.max(1) {
            for (best, &candidate) in best.iter_mut().zip(candidates) {
                *best = (*best).min(time(candidate));
            }
        }
        let fastest = (0..candidates.len())
            .min_by_key(|&i| best[i])
            .expect("at least one prefetch candidate");
        candidates[fastest]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stay_within_the_degree_and_the_code() {
        let all = Prefetch::candidates(32, 6, None, None);
        let aheads: Vec<usize> = all.iter().map(|p| p.ahead).collect();
        assert!(aheads.contains(&16) && aheads.contains(&1));
        assert!(all.iter().all(|p| (1..=6).contains(&p.lines)));
        assert!(all.iter().any(|p| p.lines == 6), "the whole code is tried");
        // A short list and a one-line code leave little to try.
        let small = Prefetch::candidates(2, 1, None, None);
        assert_eq!(small, vec![Prefetch { ahead: 1, lines: 1 }]);
        // A long code is capped.
        let long = Prefetch::candidates(32, 40, None, None);
        assert_eq!(long.iter().map(|p| p.lines).max(), Some(MAX_PREFETCH_LINES));
    }

    #[test]
    fn fixed_settings_are_kept() {
        let fixed = Prefetch::candidates(32, 13, Some(5), None);
        assert!(fixed.iter().all(|p| p.ahead == 5));
        let lines: Vec<usize> = fixed.iter().map(|p| p.lines).collect();
        assert_eq!(lines, [1, 2, 4, 8, 13]);
        let both = Prefetch::candidates(32, 13, Some(5), Some(2));
        assert_eq!(both, vec![Prefetch { ahead: 5, lines: 2 }]);
    }

    #[test]
    fn the_fastest_is_the_least_best_time_over_rounds() {
        let candidates = Prefetch::candidates(32, 4, None, None);
        let target = Prefetch { ahead: 4, lines: 2 };
        let mut calls = 0;
        let chosen = Prefetch::fastest(&candidates, 3, |candidate| {
            calls += 1;
            // The target is the slowest of all in the first round (a slow
            // spell of the machine) and the fastest in the others.
            let round = (calls - 1) / candidates.len();
            let micros = match (round, candidate == target) {
                (0, true) => 1_000,
                (_, true) => 10,
                _ => 20 + candidate.lines as u64,
            };
            Duration::from_micros(micros)
        });
        assert_eq!(chosen, target);
        assert_eq!(calls, 3 * candidates.len());
    }
}
