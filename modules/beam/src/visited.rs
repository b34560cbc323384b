//! An epoch-tagged visited set: O(1) clearing between searches.

use annvil_distance::prefetch;

/// A set of node ids `0..n` that is emptied in O(1).
///
/// Every node holds the tag of the epoch in which it was last inserted; the
/// set holds exactly the nodes tagged with the current epoch. [`clear`]
/// starts a new epoch, so nothing n-sized is touched per search. Only when
/// the 16-bit epoch wraps around (once every 65,535 clears) are the tags
/// reset, so that a node last visited 65,536 epochs ago cannot look visited.
///
/// [`clear`]: VisitedSet::clear
#[derive(Clone, Debug)]
pub struct VisitedSet {
    tags: Vec<u16>,
    epoch: u16,
}

impl VisitedSet {
    /// An empty set over nodes `0..num_nodes`.
    pub fn new(num_nodes: usize) -> VisitedSet {
        VisitedSet {
            tags: vec![0; num_nodes],
            epoch: 1,
        }
    }

    /// Number of nodes the set ranges over.
    pub fn capacity(&self) -> usize {
        self.tags.len()
    }

    /// Empties the set: a new epoch, and a full reset only on wrap-around.
    #[inline]
    pub fn clear(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.tags.fill(0);
            self.epoch = 1;
        }
    }

    /// Adds `id`; returns true when it was not in the set yet.
    #[inline]
    pub fn insert(&mut self, id: u32) -> bool {
        let tag = &mut self.tags[id as usize];
        let fresh = *tag != self.epoch;
        *tag = self.epoch;
        fresh
    }

    /// True when `id` is in the set.
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.tags[id as usize] == self.epoch
    }

    /// Asks the CPU to load the tag of `id`.
    #[inline]
    pub fn prefetch(&self, id: u32) {
        if let Some(tag) = self.tags.get(id as usize) {
            prefetch(tag);
        }
    }

    /// Bytes of memory the set owns.
    pub fn memory_bytes(&self) -> usize {
        self.tags.capacity() * size_of::<u16>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_and_clear() {
        let mut set = VisitedSet::new(5);
        assert!(!set.contains(3));
        assert!(set.insert(3));
        assert!(!set.insert(3));
        assert!(set.contains(3) && !set.contains(2));
        set.clear();
        assert!(!set.contains(3));
        assert!(set.insert(3));
    }

    #[test]
    fn survives_epoch_wrap_around() {
        let mut set = VisitedSet::new(4);
        // Node 0 is visited once, in the first epoch only; node 1 in every
        // epoch. After a full cycle of epochs, node 0 must not look visited
        // again when the epoch counter comes back to its old tag.
        set.insert(0);
        for round in 0..3 * u16::MAX as usize {
            set.clear();
            assert!(
                !set.contains(0),
                "stale tag seen as visited at round {round}"
            );
            assert!(!set.contains(1), "previous epoch leaked at round {round}");
            assert!(set.insert(1));
            assert!(!set.insert(1));
        }
    }

    #[test]
    fn wrap_resets_tags_exactly_once_per_cycle() {
        let mut set = VisitedSet::new(3);
        set.epoch = u16::MAX;
        set.insert(2);
        set.clear();
        assert_eq!(set.epoch, 1, "the zero epoch is skipped");
        assert!(set.tags.iter().all(|&t| t == 0));
        assert!(set.insert(2));
    }
}
