//! The seeded generator and the one threading pattern of the crate: a map
//! over an index range whose result never depends on the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// SplitMix64 (Steele, Lea and Flood): a tiny seeded generator, good enough
/// for sampling, and identical on every platform.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose stream is a pure function of `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..bound` (Lemire's multiply-shift, whose bias
    /// is below 2^-32 for the bounds used here). Panics when `bound` is 0.
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "empty range");
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// A uniform value in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
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
    // A partial Fisher-Yates shuffle: the first `count` slots are a
    // uniform sample without replacement.
    for i in 0..count {
        let j = i + rng.below(n - i);
        ids.swap(i, j);
    }
    ids.truncate(count);
    ids.sort_unstable();
    ids
}

/// Most indices a worker takes at once in [`parallel_map`]: enough to make
/// the shared counter cheap.
const MAX_BLOCK: usize = 64;

/// `f(i)` for every `i` in `0..count`, in index order, computed on up to
/// `threads` threads (the caller's among them). Workers take blocks of
/// indices off a shared counter (blocks of at most 64 indices, small
/// enough to give each thread about 16), so uneven items balance; the
/// result never depends on the thread count or the timing.
pub fn parallel_map<T: Send>(
    count: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.max(1);
    let block = (count / (threads * 16)).clamp(1, MAX_BLOCK);
    let workers = threads.min(count.div_ceil(block).max(1));
    if workers == 1 {
        return (0..count).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let start = next.fetch_add(block, Ordering::Relaxed);
            if start >= count {
                return done;
            }
            done.push((start, (start..(start + block).min(count)).map(&f).collect()));
        }
    };
    let mut blocks: Vec<(usize, Vec<T>)> = thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut blocks = work();
        for helper in helpers {
            blocks.extend(helper.join().expect("a parallel_map worker panicked"));
        }
        blocks
    });
    blocks.sort_unstable_by_key(|&(start, _)| start);
    blocks.into_iter().flat_map(|(_, block)| block).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_index_order_for_any_thread_count() {
        let expected: Vec<usize> = (0..1000).map(|i| i * i).collect();
        for threads in [0, 1, 2, 3, 8] {
            assert_eq!(parallel_map(1000, threads, |i| i * i), expected);
        }
        assert!(parallel_map(0, 4, |i| i).is_empty());
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
}
