//! Entry points spread like the data, by k-means++ seeding (D² sampling).

use annvil_beam::Space;
use annvil_core::SplitMix64;

/// Candidates sampled per requested entry point.
const SAMPLE_PER_ENTRY: usize = 32;

/// Adds up to `count` entry points to `entries` (which holds at least one,
/// the medoid): from a sample of the nodes drawn from `rng`, each next
/// entry point is drawn with probability proportional to its distance to
/// the nearest entry point so far (the seeding of k-means++, Arthur &
/// Vassilvitskii 2007). A region of the data far from every entry point
/// is thus likely to get one; points at the same place never do twice.
/// The distances are the space's own, so angular data is spread by angle.
pub(crate) fn spread(
    space: &Space<'_>,
    count: usize,
    rng: &mut SplitMix64,
    entries: &mut Vec<u32>,
) {
    let mut sample: Vec<u32> = (0..space.len() as u32).collect();
    let taken = rng.sample(&mut sample, count * SAMPLE_PER_ENTRY).len();
    sample.truncate(taken);
    let mut nearest: Vec<f64> = sample
        .iter()
        .map(|&id| {
            entries
                .iter()
                .map(|&entry| f64::from(space.between(entry, id)).max(0.0))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    for _ in 0..count {
        let total: f64 = nearest.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            return;
        }
        let mut target = rng.unit() * total;
        let pick = nearest
            .iter()
            .position(|&d| {
                target -= d;
                target < 0.0
            })
            .unwrap_or(sample.len() - 1);
        let chosen = sample[pick];
        entries.push(chosen);
        for (best, &id) in nearest.iter_mut().zip(&sample) {
            *best = best.min(f64::from(space.between(chosen, id)).max(0.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use annvil_abi::{Metric, Vectors};

    use super::*;

    #[test]
    fn every_separated_cluster_gets_an_entry_point() {
        // Four tight clusters of 50 points, far apart, in 2-d.
        let mut data = Vec::new();
        let mut rng = SplitMix64::new(1);
        for (x, y) in [(0.0f32, 0.0f32), (100.0, 0.0), (0.0, 100.0), (100.0, 100.0)] {
            for _ in 0..50 {
                data.push(x + rng.unit() as f32);
                data.push(y + rng.unit() as f32);
            }
        }
        let space = Space::new(Vectors::new(&data, 2).unwrap(), Metric::L2);
        let spread_from = |seed| {
            let mut entries = vec![0];
            spread(&space, 3, &mut SplitMix64::new(seed), &mut entries);
            entries
        };
        for seed in 0..20 {
            let entries = spread_from(seed);
            let mut clusters: Vec<u32> = entries.iter().map(|&id| id / 50).collect();
            clusters.sort_unstable();
            assert_eq!(clusters, [0, 1, 2, 3], "seed {seed}: entries {entries:?}");
            assert_eq!(entries, spread_from(seed));
        }
        // Nothing left to spread over: all points coincide.
        let same = Space::new(Vectors::new(&[1.0; 8], 2).unwrap(), Metric::L2);
        let mut entries = vec![0];
        spread(&same, 3, &mut SplitMix64::new(1), &mut entries);
        assert_eq!(entries, [0]);
    }
}
