//! The searches on one level of a graph: greedy descent and the ef-bounded
//! best-first search, shared by query time (annvil-beam) and graph
//! construction (annvil-hnsw, annvil-vamana, annvil-nndescent).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::mem;

use annvil_abi::Level;
use annvil_core::{Candidate, Links, Slot};

use crate::space::Space;
use crate::visited::VisitedSet;

/// Reusable scratch for [`LayerSearch::search`]: the visited set and both
/// heaps live as long as the searching thread, so a search allocates
/// nothing once the buffers have grown.
#[derive(Clone, Debug)]
pub struct LayerSearch {
    visited: VisitedSet,
    /// Nodes still to expand, closest first.
    frontier: BinaryHeap<Reverse<Candidate>>,
    /// The best `ef` nodes found so far, furthest on top.
    best: BinaryHeap<Candidate>,
    /// The result of the last search, closest first.
    results: Vec<Candidate>,
}

impl LayerSearch {
    /// Scratch for searching graphs of `num_nodes` nodes.
    pub fn new(num_nodes: usize) -> LayerSearch {
        LayerSearch {
            visited: VisitedSet::new(num_nodes),
            frontier: BinaryHeap::new(),
            best: BinaryHeap::new(),
            results: Vec::new(),
        }
    }

    /// Best-first search of `layer` for `query`, starting from `seeds`
    /// (distances already known), keeping the `ef` closest nodes found (as
    /// hnswlib's `searchBaseLayer`): stops when the closest unexpanded node
    /// is further than the furthest of the `ef` best. Returns the number of
    /// distances computed; [`results`](LayerSearch::results) holds the
    /// nodes found, closest first. `ef` must be at least 1.
    pub fn search<L: Links + ?Sized>(
        &mut self,
        layer: &L,
        space: &Space<'_>,
        query: &[f32],
        seeds: &[Candidate],
        ef: usize,
    ) -> u64 {
        self.start(seeds, ef);
        let mut computed = 0;
        while let Some(Reverse(current)) = self.frontier.pop() {
            if current.distance > self.bound(ef) {
                break;
            }
            computed += self.expand(layer, space, query, current.id, ef);
        }
        // Sort the heap's buffer in place into the results and hand the old
        // results' buffer to the heap: no allocation.
        let sorted = mem::take(&mut self.best).into_sorted_vec();
        let mut spare = mem::replace(&mut self.results, sorted);
        spare.clear();
        self.best = BinaryHeap::from(spare);
        computed
    }

    /// Starts a search keeping the `ef` closest nodes (`ef` at least 1)
    /// from `seeds`: empties the visited set and both heaps, then enters
    /// the seeds.
    pub fn start(&mut self, seeds: &[Candidate], ef: usize) {
        debug_assert!(ef > 0, "ef must be positive");
        self.visited.clear();
        self.frontier.clear();
        self.best.clear();
        for &seed in seeds {
            if self.visited.insert(seed.id) {
                self.frontier.push(Reverse(seed));
                self.best.push(seed);
            }
        }
        while self.best.len() > ef {
            self.best.pop();
        }
    }

    /// One step of the search [`start`](LayerSearch::start)ed with `ef`:
    /// measures the unvisited neighbours of `node` and pushes those closer
    /// than the furthest of the `ef` best onto both heaps, prefetching the
    /// next frontier node's list and the next neighbours' vectors. Returns
    /// the number of distances computed.
    #[inline]
    pub fn expand<L: Links + ?Sized>(
        &mut self,
        layer: &L,
        space: &Space<'_>,
        query: &[f32],
        node: u32,
        ef: usize,
    ) -> u64 {
        let mut bound = self.bound(ef);
        let mut computed = 0;
        if let Some(Reverse(next)) = self.frontier.peek() {
            layer.prefetch(next.id);
        }
        let links = layer.links(node);
        if let Some(first) = links.first() {
            space.prefetch(first.get());
        }
        for (j, slot) in links.iter().enumerate() {
            if let Some(ahead) = links.get(j + 1).map(Slot::get) {
                if !self.visited.contains(ahead) {
                    space.prefetch(ahead);
                }
                if let Some(after) = links.get(j + 2) {
                    self.visited.prefetch(after.get());
                }
            }
            let id = slot.get();
            if !self.visited.insert(id) {
                continue;
            }
            let distance = space.to(query, id);
            computed += 1;
            if distance < bound {
                let found = Candidate { distance, id };
                self.frontier.push(Reverse(found));
                self.best.push(found);
                if self.best.len() > ef {
                    self.best.pop();
                }
                bound = self.bound(ef);
            }
        }
        computed
    }

    /// The distance a node must beat to enter the `ef` best.
    #[inline]
    fn bound(&self, ef: usize) -> f32 {
        match self.best.peek() {
            Some(worst) if self.best.len() >= ef => worst.distance,
            _ => f32::INFINITY,
        }
    }

    /// The nodes the last [`search`](LayerSearch::search) found, closest
    /// first, at most `ef` of them, ids unique.
    pub fn results(&self) -> &[Candidate] {
        &self.results
    }

    /// Bytes of memory the scratch owns.
    pub fn memory_bytes(&self) -> usize {
        self.visited.memory_bytes()
            + (self.frontier.capacity() + self.best.capacity() + self.results.capacity())
                * size_of::<Candidate>()
    }
}

/// Greedy descent on one level (hnswlib's upper-level routing): moves from
/// `start` to the closest neighbour of the current node while that is
/// closer, and returns the local minimum. Adds the distances it computes to
/// `computed`.
pub fn greedy<L: Links + ?Sized>(
    layer: &L,
    space: &Space<'_>,
    query: &[f32],
    start: Candidate,
    computed: &mut u64,
) -> Candidate {
    greedy_by(layer, start, computed, |id| space.to(query, id))
}

/// [`greedy`] descent measuring with `distance` (the distance of the query
/// to a node), e.g. on quantized codes.
pub fn greedy_by<L: Links + ?Sized>(
    layer: &L,
    start: Candidate,
    computed: &mut u64,
    mut distance: impl FnMut(u32) -> f32,
) -> Candidate {
    let mut best = start;
    loop {
        let from = best.id;
        let links = layer.links(from);
        *computed += links.len() as u64;
        for slot in links {
            let id = slot.get();
            let distance = distance(id);
            if distance < best.distance {
                best = Candidate { distance, id };
            }
        }
        if best.id == from {
            return best;
        }
    }
}

/// Where a level-0 search starts: fills `seeds` with the `entry_points`
/// measured with `distance` or, when there are `upper` levels (level 1
/// first), with the one node greedy descent from the closest of them
/// reaches. Adds the distances computed to `computed`.
pub fn descend(
    upper: &[Level<'_>],
    entry_points: &[u32],
    seeds: &mut Vec<Candidate>,
    computed: &mut u64,
    mut distance: impl FnMut(u32) -> f32,
) {
    seeds.clear();
    seeds.extend(entry_points.iter().map(|&id| Candidate {
        distance: distance(id),
        id,
    }));
    *computed += seeds.len() as u64;
    if let Some(&start) = seeds.iter().min()
        && !upper.is_empty()
    {
        let descended = upper.iter().rev().fold(start, |at, level| {
            greedy_by(level, at, computed, &mut distance)
        });
        seeds.clear();
        seeds.push(descended);
    }
}

#[cfg(test)]
mod tests {
    use annvil_abi::{Level, Metric, Vectors};

    use super::*;

    /// Points 0..8 on a line; a path graph 0-1-2-...-7.
    fn line() -> (Vec<f32>, Vec<u64>, Vec<u32>) {
        let data: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let mut offsets = vec![0u64];
        let mut neighbors = Vec::new();
        for v in 0..8u32 {
            if v > 0 {
                neighbors.push(v - 1);
            }
            if v < 7 {
                neighbors.push(v + 1);
            }
            offsets.push(neighbors.len() as u64);
        }
        (data, offsets, neighbors)
    }

    #[test]
    fn greedy_and_beam_walk_a_path() {
        let (data, offsets, neighbors) = line();
        let level = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        let space = Space::new(Vectors::new(&data, 1).unwrap(), Metric::L2);
        let query = [6.2f32];
        let start = Candidate {
            distance: space.to(&query, 0),
            id: 0,
        };
        let mut computed = 0;
        assert_eq!(greedy(&level, &space, &query, start, &mut computed).id, 6);
        assert!(computed > 0);

        let mut scratch = LayerSearch::new(8);
        for round in 0..3 {
            scratch.search(&level, &space, &query, &[start], 3);
            let ids: Vec<u32> = scratch.results().iter().map(|c| c.id).collect();
            assert_eq!(ids, [6, 7, 5], "round {round}");
        }
    }
}
