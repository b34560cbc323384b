//! A bounded candidate pool kept sorted in one array (GLASS's linear pool):
//! the ef-bounded search's frontier and result set in one structure.

use annvil_core::Candidate;

/// The flag an entry's id carries once the node has been expanded. Ids
/// must stay below it, so a pool holds nodes `0..2^31`.
const EXPANDED: u32 = 1 << 31;

/// The largest node id a [`Pool`] holds.
pub const MAX_POOL_ID: u32 = EXPANDED - 1;

/// The best `capacity` candidates found so far, closest first, each marked
/// expanded or not.
///
/// Where the classic search keeps two binary heaps (the frontier and the
/// result set), the pool keeps one short sorted array: an insertion is a
/// binary search and a `memmove` of a few hundred bytes, the next node to
/// expand is found by a cursor that only moves back when a closer node
/// arrives, and a node pushed out of the best `capacity` is forgotten (it
/// could never be expanded anyway). The expanded mark lives in the top bit
/// of the id, so it moves along with the entry. Ties in distance are
/// broken by id, so the order, and every search using the pool, is
/// deterministic.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    /// Sorted by (distance, id); ids may carry [`EXPANDED`].
    entries: Vec<Candidate>,
    capacity: usize,
    /// No entry before it is unexpanded.
    cursor: usize,
}

impl Pool {
    /// An empty pool of capacity 0; [`reset`](Pool::reset) sizes it.
    pub fn new() -> Pool {
        Pool::default()
    }

    /// Empties the pool and bounds it to the best `capacity` candidates
    /// (at least 1).
    pub fn reset(&mut self, capacity: usize) {
        debug_assert!(capacity > 0, "pool capacity must be positive");
        self.entries.clear();
        // Room for one entry over capacity: an insertion into a full pool
        // never reallocates.
        self.entries.reserve(capacity + 1);
        self.capacity = capacity;
        self.cursor = 0;
    }

    /// Number of candidates held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the pool holds no candidate.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offers node `id` (at most [`MAX_POOL_ID`]) at `distance`; returns
    /// true when it entered the best `capacity` (pushing out the furthest
    /// if the pool was full). The caller offers each node once.
    #[inline]
    pub fn insert(&mut self, id: u32, distance: f32) -> bool {
        debug_assert!(id <= MAX_POOL_ID, "node id {id} too large for a pool");
        let closer = |e: &Candidate| {
            e.distance < distance || (e.distance == distance && (e.id & !EXPANDED) < id)
        };
        if self.entries.len() >= self.capacity {
            match self.entries.last() {
                Some(last) if !closer(last) => {
                    self.entries.pop();
                }
                _ => return false,
            }
        }
        let at = self.entries.partition_point(closer);
        self.entries.insert(at, Candidate { distance, id });
        if at < self.cursor {
            self.cursor = at;
        }
        true
    }

    /// The closest candidate not expanded yet, now marked expanded, or
    /// `None` when every candidate has been expanded.
    #[inline]
    pub fn pop(&mut self) -> Option<Candidate> {
        let entry = self.entries.get_mut(self.cursor)?;
        let popped = *entry;
        entry.id |= EXPANDED;
        self.cursor += 1;
        while self
            .entries
            .get(self.cursor)
            .is_some_and(|e| e.id & EXPANDED != 0)
        {
            self.cursor += 1;
        }
        Some(popped)
    }

    /// The candidate [`pop`](Pool::pop) would return next, without
    /// marking it.
    #[inline]
    pub fn peek(&self) -> Option<Candidate> {
        self.entries.get(self.cursor).copied()
    }

    /// The distance a node must beat to enter a full pool (infinity while
    /// it is not full).
    #[inline]
    pub fn bound(&self) -> f32 {
        match self.entries.last() {
            Some(last) if self.entries.len() >= self.capacity => last.distance,
            _ => f32::INFINITY,
        }
    }

    /// Every candidate, closest first, without the expanded marks.
    pub fn candidates(&self) -> impl ExactSizeIterator<Item = Candidate> + '_ {
        self.entries.iter().map(|e| Candidate {
            distance: e.distance,
            id: e.id & !EXPANDED,
        })
    }

    /// Bytes of memory the pool owns.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Candidate>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pool: &Pool) -> Vec<u32> {
        pool.candidates().map(|c| c.id).collect()
    }

    #[test]
    fn keeps_the_best_sorted_with_ties_by_id() {
        let mut pool = Pool::new();
        pool.reset(3);
        assert_eq!(pool.bound(), f32::INFINITY);
        assert!(pool.insert(5, 2.0));
        assert!(pool.insert(9, 1.0));
        assert!(pool.insert(2, 2.0));
        assert_eq!(ids(&pool), [9, 2, 5]);
        assert_eq!(pool.bound(), 2.0);
        assert!(!pool.insert(7, 2.0), "a tie with a larger id stays out");
        assert!(!pool.insert(8, 3.0));
        assert!(pool.insert(4, 2.0), "a tie with a smaller id gets in");
        assert_eq!(ids(&pool), [9, 2, 4]);
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn pops_closest_unexpanded_first_and_rewinds_for_closer_arrivals() {
        let mut pool = Pool::new();
        pool.reset(4);
        pool.insert(1, 1.0);
        pool.insert(3, 3.0);
        assert_eq!(pool.pop().map(|c| c.id), Some(1));
        assert_eq!(pool.peek().map(|c| c.id), Some(3));
        // A node closer than the cursor is expanded next.
        pool.insert(2, 2.0);
        assert_eq!(pool.pop().map(|c| c.id), Some(2));
        assert_eq!(pool.pop().map(|c| c.id), Some(3));
        assert_eq!(pool.pop(), None);
        // The marks do not show, nor change the order.
        assert_eq!(ids(&pool), [1, 2, 3]);
        pool.insert(0, 0.5);
        assert_eq!(pool.pop().map(|c| c.id), Some(0));
        assert_eq!(pool.pop(), None);
    }

    #[test]
    fn an_evicted_node_is_never_popped() {
        let mut pool = Pool::new();
        pool.reset(2);
        pool.insert(1, 1.0);
        pool.insert(2, 2.0);
        pool.insert(0, 0.0);
        let popped: Vec<u32> = std::iter::from_fn(|| pool.pop()).map(|c| c.id).collect();
        assert_eq!(popped, [0, 1]);
        pool.reset(1);
        assert!(pool.is_empty() && pool.pop().is_none());
    }
}
