//! A one-level graph under concurrent construction, and its frozen form.
//!
//! [`ConcurrentGraph`] keeps the adjacency in count-prefixed blocks of
//! [`AtomicU32`] (one [`FixedDegree`] array) with one [`Mutex`] per node,
//! as annvil-hnsw does. Writers lock the one node whose list they change
//! and never hold two node locks at once, so they cannot deadlock. Readers
//! (the searches of concurrent insertions) do not lock: they load the count
//! with `Acquire`, which a writer stores with `Release` after the entries,
//! so every id a reader sees was written into that list. A reader racing a
//! rewrite may see a mix of the old and the new list; that only changes
//! which candidates an insertion explores, like the order of insertions
//! across threads does, and never yields an id out of range.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use annvil_abi::GraphView;
use annvil_beam::{LayerSearch, Space};
use annvil_core::{Candidate, Csr, FixedDegree, Links, Slot, counted, parallel_for};

use crate::prune::robust_prune;

/// Reusable buffers of [`ConcurrentGraph::merge`] and
/// [`ConcurrentGraph::link`], one per building thread.
#[derive(Clone, Debug, Default)]
pub struct PruneScratch {
    pool: Vec<Candidate>,
    kept: Vec<Candidate>,
}

impl PruneScratch {
    /// The neighbours the last [`ConcurrentGraph::merge`] kept, closest
    /// first.
    pub fn kept(&self) -> &[Candidate] {
        &self.kept
    }
}

/// Room for reverse links beyond `max_degree`, as a fraction of it: a list
/// takes new links without pruning until it holds this many more
/// (DiskANN's graph slack factor), so the cost of pruning is spread over
/// many links.
const SLACK: f64 = 0.3;

/// A graph of at most `max_degree` out-neighbours per node (once frozen)
/// that several threads build at once (see the module notes for the
/// locking rules). While it grows, [`link`](ConcurrentGraph::link) lets a
/// list exceed `max_degree` by a slack of 30 % before pruning it back.
pub struct ConcurrentGraph<'a> {
    space: Space<'a>,
    max_degree: usize,
    lists: FixedDegree<AtomicU32>,
    locks: Vec<Mutex<()>>,
}

impl<'a> ConcurrentGraph<'a> {
    /// An empty graph over the vectors of `space`.
    pub fn new(space: Space<'a>, max_degree: usize) -> ConcurrentGraph<'a> {
        let n = space.len();
        let capacity = max_degree + (max_degree as f64 * SLACK).ceil() as usize;
        ConcurrentGraph {
            space,
            max_degree,
            lists: FixedDegree::empty(n, capacity),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The vectors the graph connects.
    pub fn space(&self) -> &Space<'a> {
        &self.space
    }

    /// The adjacency, for lock-free searches while the graph grows.
    pub fn lists(&self) -> &FixedDegree<AtomicU32> {
        &self.lists
    }

    /// The most out-neighbours a node has once the graph is frozen.
    pub fn max_degree(&self) -> usize {
        self.max_degree
    }

    fn lock(&self, node: u32) -> MutexGuard<'_, ()> {
        // A poisoned lock means another builder thread panicked; the
        // thread scope re-raises that panic, so the graph is never used.
        self.locks[node as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Overwrites the list of `node` with the first `max_degree` of `ids`
    /// as they are (no pruning): for seeding an initial graph.
    pub fn set(&self, node: u32, ids: &[u32]) {
        let _lock = self.lock(node);
        self.store(node, ids.iter().copied());
    }

    /// Writes a list into the block of `node`; the caller holds its lock.
    fn store(&self, node: u32, ids: impl IntoIterator<Item = u32>) {
        let block = self.lists.block(node);
        let mut len = 0;
        for (cell, id) in block[1..=self.max_degree].iter().zip(ids) {
            cell.store(id, Ordering::Relaxed);
            len += 1;
        }
        block[0].store(len, Ordering::Release);
    }

    /// Replaces the list of `node` with [`robust_prune`] of `candidates`
    /// (with their distances to `node`, in any order, repeats and `node`
    /// itself allowed) together with its current neighbours, under the
    /// node's lock. [`PruneScratch::kept`] then holds the new list.
    pub fn merge(
        &self,
        node: u32,
        candidates: &[Candidate],
        alpha: f32,
        scratch: &mut PruneScratch,
    ) {
        let _lock = self.lock(node);
        scratch.pool.clear();
        scratch
            .pool
            .extend(candidates.iter().filter(|c| c.id != node));
        self.prune_with_current(node, alpha, scratch);
    }

    /// Adds the link `node → new` under the node's lock: appended while the
    /// list has room (its slack included), else the list and `new` are cut
    /// back to `max_degree` by [`robust_prune`] (which may drop `new`
    /// again). Nothing happens when the link exists or `new == node`.
    pub fn link(&self, node: u32, new: u32, alpha: f32, scratch: &mut PruneScratch) {
        if new == node {
            return;
        }
        let _lock = self.lock(node);
        let block = self.lists.block(node);
        let current = counted(block);
        if current.iter().any(|slot| slot.get() == new) {
            return;
        }
        let len = current.len();
        if len < self.lists.max_degree() {
            block[1 + len].store(new, Ordering::Relaxed);
            block[0].store(len as u32 + 1, Ordering::Release);
            return;
        }
        scratch.pool.clear();
        scratch.pool.push(Candidate {
            distance: self.space.between(node, new),
            id: new,
        });
        self.prune_with_current(node, alpha, scratch);
    }

    /// Adds the current neighbours of `node` to `scratch.pool`, prunes the
    /// pool and stores the result; the caller holds the node's lock.
    fn prune_with_current(&self, node: u32, alpha: f32, scratch: &mut PruneScratch) {
        let space = &self.space;
        scratch
            .pool
            .extend(self.lists.links(node).iter().map(|slot| {
                let id = slot.get();
                Candidate {
                    distance: space.between(node, id),
                    id,
                }
            }));
        scratch.pool.sort_unstable_by_key(|c| c.id);
        scratch.pool.dedup_by_key(|c| c.id);
        scratch.pool.sort_unstable();
        robust_prune(
            space,
            &scratch.pool,
            alpha,
            self.max_degree,
            &mut scratch.kept,
        );
        self.store(node, scratch.kept.iter().map(|c| c.id));
    }

    /// The read-only graph once construction is over, searched from
    /// `entry_points` (where the medoid should come first). On `threads`
    /// threads, every list longer than `max_degree` is first cut back by
    /// [`robust_prune`] with `alpha`. Then the nodes unreachable from the
    /// entry points are connected, in id order:
    ///
    /// * an **orphan**, a node with an out-link into the reachable part
    ///   but no in-link from it (an outlier whose in-links were all pruned
    ///   away), is linked from the closest reachable node with room in its
    ///   list, found by a search for it from the entry points (NSG's
    ///   repair);
    /// * any other node — the first of a part cut off from the rest, such
    ///   as a well-separated cluster of a K-NN graph — becomes an entry
    ///   point, as does an orphan for which no host turns up.
    ///
    /// Everything the node reaches is reachable from then on.
    pub fn freeze(self, mut entry_points: Vec<u32>, alpha: f32, threads: usize) -> FrozenGraph {
        let n = self.space.len();
        parallel_for(threads, n, PruneScratch::default, |node, scratch| {
            let node = node as u32;
            if self.lists.links(node).len() > self.max_degree {
                let _lock = self.lock(node);
                scratch.pool.clear();
                self.prune_with_current(node, alpha, scratch);
            }
        });
        let mut seen = vec![false; n];
        for &entry in &entry_points {
            mark_reachable(&self.lists, entry, &mut seen);
        }
        let mut search = LayerSearch::new(n);
        let mut seeds = Vec::new();
        for node in 0..n as u32 {
            if seen[node as usize] {
                continue;
            }
            let orphan = self
                .lists
                .links(node)
                .iter()
                .any(|next| seen[next.get() as usize]);
            let host = orphan
                .then(|| {
                    let query = self.space.row(node);
                    seeds.clear();
                    seeds.extend(entry_points.iter().map(|&id| Candidate {
                        distance: self.space.to(query, id),
                        id,
                    }));
                    search.search(&self.lists, &self.space, query, &seeds, REPAIR_LIST_SIZE);
                    search
                        .results()
                        .iter()
                        .find(|c| self.lists.links(c.id).len() < self.max_degree)
                        .map(|c| c.id)
                })
                .flatten();
            match host {
                Some(host) => {
                    let block = self.lists.block(host);
                    let len = counted(block).len();
                    block[1 + len].store(node, Ordering::Relaxed);
                    block[0].store(len as u32 + 1, Ordering::Release);
                }
                None => entry_points.push(node),
            }
            mark_reachable(&self.lists, node, &mut seen);
        }
        FrozenGraph::new(&self.lists.into_plain(), entry_points)
    }
}

/// The list size of the searches that link unreachable nodes.
const REPAIR_LIST_SIZE: usize = 64;

/// Marks `start` and every node reachable from it along `links` in `seen`,
/// not walking on from nodes already marked.
fn mark_reachable<L: Links>(links: &L, start: u32, seen: &mut [bool]) {
    if std::mem::replace(&mut seen[start as usize], true) {
        return;
    }
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        for next in links.links(node) {
            let next = next.get();
            if !std::mem::replace(&mut seen[next as usize], true) {
                stack.push(next);
            }
        }
    }
}

/// A built one-level graph in both read-only forms: the native
/// [`FixedDegree`] array that `annvil_beam::BeamSearch` borrows, and the
/// CSR level of the standard [`GraphView`].
#[derive(Clone, Debug)]
pub struct FrozenGraph {
    level0: FixedDegree,
    csr: Csr,
    entry_points: Vec<u32>,
}

impl FrozenGraph {
    /// Freezes `lists`, whose searches start from `entry_points`, into a
    /// CSR level and a fixed-stride array as wide as the longest list.
    fn new(lists: &FixedDegree, entry_points: Vec<u32>) -> FrozenGraph {
        let n = lists.num_nodes();
        let csr = Csr::collect(n, |node| lists.links(node));
        FrozenGraph {
            level0: FixedDegree::from_level(&csr.level(), n),
            csr,
            entry_points,
        }
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.level0.num_nodes()
    }

    /// The fixed-stride adjacency.
    pub fn level0(&self) -> &FixedDegree {
        &self.level0
    }

    /// The out-neighbours of `node`.
    pub fn neighbors_of(&self, node: u32) -> &[u32] {
        self.level0.links(node)
    }

    /// Where searches start.
    pub fn entry_points(&self) -> &[u32] {
        &self.entry_points
    }

    /// The standard view: one CSR level over all nodes.
    pub fn view(&self) -> GraphView<'_> {
        GraphView {
            num_nodes: self.num_nodes(),
            levels: vec![self.csr.level()],
            entry_points: &self.entry_points,
        }
    }

    /// Per node, whether it can be reached from the entry points along
    /// out-edges.
    pub fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.num_nodes()];
        for &entry in &self.entry_points {
            mark_reachable(&self.level0, entry, &mut seen);
        }
        seen
    }

    /// Bytes of memory the graph owns.
    pub fn memory_bytes(&self) -> usize {
        self.level0.memory_bytes()
            + self.csr.memory_bytes()
            + self.entry_points.capacity() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use annvil_abi::{Metric, Vectors};

    use super::*;

    #[test]
    fn link_appends_then_prunes_and_freeze_matches() {
        // Points on a line; node 0 keeps two neighbours, with room for one
        // more (the slack) while the graph grows.
        let data = [0.0f32, 1.0, 2.0, -1.0, -3.0, 1000.0];
        let space = Space::new(Vectors::new(&data, 1).unwrap(), Metric::L2);
        let graph = ConcurrentGraph::new(space, 2);
        let mut scratch = PruneScratch::default();
        let ids = |graph: &ConcurrentGraph<'_>| {
            let mut ids: Vec<u32> = graph.lists().links(0).iter().map(Slot::get).collect();
            ids.sort_unstable();
            ids
        };
        graph.link(0, 0, 1.0, &mut scratch);
        graph.link(0, 2, 1.0, &mut scratch);
        graph.link(0, 2, 1.0, &mut scratch);
        assert_eq!(ids(&graph), [2]);
        graph.link(0, 1, 1.0, &mut scratch);
        graph.link(0, 4, 1.0, &mut scratch);
        assert_eq!(ids(&graph), [1, 2, 4], "appended into the slack");
        // Full: adding 3 prunes {1, 3, 2, 4}; 1 occludes 2 and 3 occludes 4.
        graph.link(0, 3, 1.0, &mut scratch);
        assert_eq!(ids(&graph), [1, 3]);
        graph.link(0, 4, 1.0, &mut scratch);
        assert_eq!(ids(&graph), [1, 3, 4]);

        let candidate = |distance, id| Candidate { distance, id };
        graph.merge(
            1,
            &[candidate(0.0, 1), candidate(1.0, 2), candidate(1.0, 2)],
            1.0,
            &mut scratch,
        );
        assert_eq!(scratch.kept(), &[candidate(1.0, 2)]);
        graph.link(4, 3, 1.0, &mut scratch);

        // Freezing cuts node 0 back to two neighbours, which leaves node 4
        // an orphan (linked from 3, the closest reachable node with room)
        // and node 5 cut off (an entry point).
        let frozen = graph.freeze(vec![0], 1.0, 2);
        let view = frozen.view();
        view.validate(6).unwrap();
        assert_eq!(view.levels.len(), 1);
        assert_eq!(frozen.neighbors_of(0), [1, 3]);
        assert_eq!(frozen.neighbors_of(3), [4]);
        assert_eq!(frozen.level0().max_degree(), 2);
        for node in 0..6 {
            assert_eq!(view.levels[0].neighbors_of(node), frozen.neighbors_of(node));
        }
        assert_eq!(frozen.reachable(), [true; 6]);
        assert_eq!(frozen.entry_points(), [0, 5]);
        assert!(frozen.memory_bytes() > 0);
    }
}
