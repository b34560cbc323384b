//! A scored node, and two bounded selections of the `k` nearest of a
//! stream of them: [`TopK`], a heap, for streams that mostly miss, and
//! [`Reservoir`], a buffer trimmed by selection, for long streams of cheap
//! estimates.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use annvil_abi::Neighbors;

/// A node and its distance to the point being searched for, ordered by
/// distance, then id, so that every search is deterministic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Distance to the query.
    pub distance: f32,
    /// Node id.
    pub id: u32,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    #[inline]
    fn partial_cmp(&self, other: &Candidate) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    #[inline]
    fn cmp(&self, other: &Candidate) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// The `k` smallest (distance, id) pairs pushed so far, ties broken by the
/// lower id, so the result does not depend on the push order. Reusable
/// across queries without reallocating.
#[derive(Debug, Default)]
pub struct TopK {
    heap: BinaryHeap<Candidate>,
    k: usize,
}

impl TopK {
    /// An empty selection of capacity 0; call [`TopK::reset`] per query.
    pub fn new() -> TopK {
        TopK::default()
    }

    /// Empties the selection and sets how many pairs it keeps.
    pub fn reset(&mut self, k: usize) {
        self.heap.clear();
        self.heap.reserve(k);
        self.k = k;
    }

    /// Offers a pair; kept when fewer than `k` are held or it beats the
    /// worst one held.
    #[inline]
    pub fn push(&mut self, id: u32, distance: f32) {
        let candidate = Candidate { distance, id };
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate < *worst
        {
            *worst = candidate;
        }
    }

    /// Number of pairs held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Writes the pairs held into `out`, nearest first, and empties the
    /// selection.
    pub fn drain_into(&mut self, out: &mut Neighbors<'_>) {
        let sorted = std::mem::take(&mut self.heap).into_sorted_vec();
        for c in &sorted {
            if !out.push(c.id, c.distance) {
                break;
            }
        }
        // Keep the allocation for the next query.
        let mut storage = sorted;
        storage.clear();
        self.heap = BinaryHeap::from(storage);
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        self.heap.capacity() * size_of::<Candidate>()
    }
}

/// The `k` best pairs of a long stream: offers below the bound go into a
/// buffer of `2k`, which a linear-time selection trims back to the best
/// `k` when it fills, tightening the bound. Cheaper than a heap when many
/// offers are kept early (a scan of code estimates). Pairs order as
/// [`Candidate`]s (ties by the lower id), so the pairs kept do not depend
/// on the order they were offered in.
#[derive(Debug)]
pub struct Reservoir {
    items: Vec<Candidate>,
    k: usize,
    /// The worst pair kept after the last trim: an offer must order
    /// before it.
    bound: Candidate,
}

impl Default for Reservoir {
    fn default() -> Reservoir {
        Reservoir {
            items: Vec::new(),
            k: 0,
            bound: Candidate {
                distance: f32::NEG_INFINITY,
                id: 0,
            },
        }
    }
}

impl Reservoir {
    /// An empty reservoir of capacity 0; call [`Reservoir::reset`] per
    /// query.
    pub fn new() -> Reservoir {
        Reservoir::default()
    }

    /// Empties the reservoir and sets how many pairs it keeps.
    pub fn reset(&mut self, k: usize) {
        self.items.clear();
        self.items.reserve(2 * k);
        self.k = k;
        self.bound = if k == 0 {
            Reservoir::default().bound
        } else {
            Candidate {
                distance: f32::INFINITY,
                id: u32::MAX,
            }
        };
    }

    /// The distance of the bound: an offer farther than it is not kept
    /// (one at it is kept only with a lower id than the bound's).
    #[inline]
    pub fn bound(&self) -> f32 {
        self.bound.distance
    }

    /// Offers a pair; kept while it orders before the bound.
    #[inline]
    pub fn push(&mut self, id: u32, distance: f32) {
        let candidate = Candidate { distance, id };
        if candidate < self.bound {
            self.items.push(candidate);
            if self.items.len() >= 2 * self.k {
                self.trim();
            }
        }
    }

    /// The best `k` pairs offered (all of them when fewer), in no
    /// particular order.
    pub fn best(&mut self) -> &[Candidate] {
        if self.items.len() > self.k {
            self.trim();
        }
        &self.items
    }

    /// Keeps the best `k` and makes the worst of them the bound.
    fn trim(&mut self) {
        let (_, kth, _) = self.items.select_nth_unstable(self.k - 1);
        self.bound = *kth;
        self.items.truncate(self.k);
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        self.items.capacity() * size_of::<Candidate>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_order_by_distance_then_id() {
        let c = |distance, id| Candidate { distance, id };
        let mut all = [c(2.0, 1), c(1.0, 9), c(2.0, 0), c(-0.0, 3), c(0.0, 2)];
        all.sort_unstable();
        assert_eq!(
            all,
            [c(-0.0, 3), c(0.0, 2), c(1.0, 9), c(2.0, 0), c(2.0, 1)]
        );
    }

    #[test]
    fn keeps_the_k_nearest_in_order_with_ties_by_id() {
        let mut top = TopK::new();
        top.reset(3);
        for (id, d) in [(5, 2.0), (1, 9.0), (7, 1.0), (3, 2.0), (2, 2.0), (4, 0.5)] {
            top.push(id, d);
        }
        assert_eq!(top.len(), 3);
        let (mut ids, mut ds) = (vec![0u32; 4], vec![0f32; 4]);
        let mut out = Neighbors::new(&mut ids, &mut ds);
        top.drain_into(&mut out);
        assert_eq!(out.ids(), [4, 7, 2]);
        assert_eq!(out.distances(), [0.5, 1.0, 2.0]);
        assert!(top.is_empty());
        top.reset(0);
        top.push(1, 0.0);
        assert!(top.is_empty());
    }

    #[test]
    fn the_reservoir_keeps_the_k_best_of_a_long_stream_in_any_order() {
        let mut rng = crate::SplitMix64::new(4);
        // Few distinct distances: many ties, broken by id.
        let offers: Vec<Candidate> = (0..1000)
            .map(|id| Candidate {
                distance: (rng.next_u64() % 50) as f32,
                id,
            })
            .collect();
        let mut reservoir = Reservoir::new();
        for k in [1, 7, 100, 2000] {
            let mut want = offers.clone();
            want.sort_unstable();
            want.truncate(k);
            for order in [1, 3, 7] {
                reservoir.reset(k);
                for i in 0..offers.len() {
                    let c = offers[i * order % offers.len()];
                    reservoir.push(c.id, c.distance);
                }
                let mut kept = reservoir.best().to_vec();
                kept.sort_unstable();
                assert_eq!(kept, want, "k = {k}, offered with stride {order}");
            }
        }
        reservoir.reset(0);
        reservoir.push(1, 0.0);
        assert!(reservoir.best().is_empty());
    }
}
