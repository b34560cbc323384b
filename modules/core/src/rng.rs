//! The one seeded generator of the modules: identical streams on every
//! platform and thread count, so a seed names one graph or one clustering.

/// SplitMix64 (Steele, Lea & Flood): a seeded 64-bit generator, small and
/// fast, good enough for initial graphs, level draws, permutations and
/// samples. The same seed always gives the same sequence.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator started from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// A generator for one item of a seeded family (a node in one
    /// iteration, say): independent-looking streams for different `keys`,
    /// the same stream for the same `seed` and `keys`, whichever thread
    /// draws it.
    pub fn keyed(seed: u64, keys: &[u64]) -> SplitMix64 {
        let mut mixed = SplitMix64(seed);
        for &key in keys {
            mixed = SplitMix64(mixed.next_u64() ^ key);
        }
        SplitMix64(mixed.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `(0, 1]`, with 53 random bits: never 0, so its logarithm
    /// is finite (hnswlib's level draw).
    pub fn unit_nonzero(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the bias is below
    /// `bound / 2^64`, negligible here). Panics when `bound` is 0.
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "empty range");
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// Shuffles `items` uniformly (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// Fills `out` with `count` distinct ids of `0..n` other than `node`
    /// (all of them when there are fewer), in the order drawn.
    pub fn distinct_others(&mut self, node: u32, n: usize, count: usize, out: &mut Vec<u32>) {
        out.clear();
        let count = count.min(n.saturating_sub(usize::from((node as usize) < n)));
        while out.len() < count {
            let id = self.below(n) as u32;
            if id != node && !out.contains(&id) {
                out.push(id);
            }
        }
    }

    /// Moves a uniform sample of `count` items to the front of `items`
    /// (a partial Fisher–Yates shuffle) and returns it; all items when
    /// there are fewer.
    pub fn sample<'a, T>(&mut self, items: &'a mut [T], count: usize) -> &'a mut [T] {
        let count = count.min(items.len());
        for i in 0..count {
            let j = i + self.below(items.len() - i);
            items.swap(i, j);
        }
        &mut items[..count]
    }
}

/// `count` distinct indices of `0..n`, drawn uniformly from `rng` and
/// sorted (sorted ids read the vectors in memory order). All of `0..n`
/// when `count >= n`.
pub fn sample_indices(n: usize, count: usize, rng: &mut SplitMix64) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..n as u32).collect();
    if count >= n {
        return ids;
    }
    let count = rng.sample(&mut ids, count).len();
    ids.truncate(count);
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_reference_splitmix64() {
        // The published first outputs of SplitMix64 from seed 0: graphs
        // built from a seed stay the same graphs.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn seeded_and_keyed_streams_repeat() {
        let draw = |mut rng: SplitMix64| (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>();
        assert_eq!(draw(SplitMix64::new(7)), draw(SplitMix64::new(7)));
        assert_ne!(draw(SplitMix64::new(7)), draw(SplitMix64::new(8)));
        assert_eq!(
            draw(SplitMix64::keyed(1, &[2, 3])),
            draw(SplitMix64::keyed(1, &[2, 3]))
        );
        assert_ne!(
            draw(SplitMix64::keyed(1, &[2, 3])),
            draw(SplitMix64::keyed(1, &[3, 2]))
        );
    }

    #[test]
    fn below_shuffle_and_sample_stay_in_range() {
        let mut rng = SplitMix64::new(3);
        let mut counts = [0usize; 5];
        for _ in 0..5000 {
            counts[rng.below(5)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );

        let mut items: Vec<u32> = (0..50).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(items, sorted);

        let picked = rng.sample(&mut items, 10).to_vec();
        assert_eq!(picked.len(), 10);
        let mut unique = picked.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_eq!(rng.sample(&mut items[..3], 10).len(), 3);

        let mut others = Vec::new();
        rng.distinct_others(2, 5, 10, &mut others);
        others.sort_unstable();
        assert_eq!(others, [0, 1, 3, 4]);
        rng.distinct_others(0, 1000, 20, &mut others);
        assert_eq!(others.len(), 20);
        assert!(!others.contains(&0));
    }

    #[test]
    fn samples_are_distinct_sorted_and_seeded() {
        let a = sample_indices(1000, 100, &mut SplitMix64::new(3));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&i| i < 1000));
        assert_eq!(a, sample_indices(1000, 100, &mut SplitMix64::new(3)));
        assert_ne!(a, sample_indices(1000, 100, &mut SplitMix64::new(4)));
        assert_eq!(
            sample_indices(5, 9, &mut SplitMix64::new(3)),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn nonzero_units_stay_in_the_half_open_interval() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..1000 {
            let u = rng.unit_nonzero();
            assert!(u > 0.0 && u <= 1.0, "{u}");
        }
    }
}
