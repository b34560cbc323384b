//! Search slot: beam search over the standard graph view, so it runs on the
//! graph of any construction slot that exports one.
//!
//! A query starts at the nearest entry point, descends greedily through the
//! upper levels (when the graph has any, as HNSW does), then runs the
//! ef-bounded best-first search on level 0: expand the nearest unexpanded
//! node, keep the `ef` nearest nodes seen, stop when the nearest unexpanded
//! node is farther than all of them.
//!
//! Swept knob: `ef` (1..=100000, default 10), the beam width on level 0; a
//! search for `n` results uses `max(ef, n)`. No prepare parameters.
//!
//! Each context marks visited nodes with the number of its current search
//! (an epoch), so nothing is cleared between queries.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::RangeInclusive;

use annvil_abi::{
    Base, Error, Graph, Level, Metric, Neighbors, ParamSpec, Params, Result, Search,
};
use annvil_distance::{Kernel, prefetch_slice};

/// Allowed values of the `ef` knob.
const EF_RANGE: RangeInclusive<usize> = 1..=100_000;

/// The read-only state shared by all contexts: the base vectors, the
/// borrowed graph levels and the knob.
pub struct Searcher {
    base: Base,
    kernel: Kernel,
    /// `levels[0]` holds every node; higher levels are sparser.
    levels: Vec<Level<'static>>,
    /// Where every search starts (on the top level).
    entry_points: Vec<u32>,
    ef: usize,
}

/// Per-thread scratch space of a [`Searcher`].
pub struct Context {
    /// `visited[v] == epoch` marks `v` as seen by the current search.
    visited: Vec<u32>,
    epoch: u32,
    /// Nodes still to expand, nearest first.
    frontier: BinaryHeap<Reverse<Candidate>>,
    /// The best `ef` nodes found, farthest on top.
    nearest: BinaryHeap<Candidate>,
    /// The answer of the current search, nearest first.
    results: Vec<Candidate>,
    /// Distances computed since the context was created.
    distances: u64,
}

/// A node and its distance to the query, ordered by distance, then id, so
/// that every search is deterministic.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    distance: f32,
    id: u32,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

impl Searcher {
    fn to(&self, query: &[f32], id: u32) -> Candidate {
        Candidate {
            distance: self.kernel.distance(query, self.base.row(id as usize)),
            id,
        }
    }

    /// Moves from `at` to its nearest neighbour on `level` until no
    /// neighbour is nearer to the query.
    fn greedy(
        &self,
        level: &Level<'_>,
        query: &[f32],
        mut at: Candidate,
        count: &mut u64,
    ) -> Candidate {
        loop {
            let neighbors = level.neighbors_of(at.id);
            *count += neighbors.len() as u64;
            let best = neighbors
                .iter()
                .map(|&id| self.to(query, id))
                .min()
                .filter(|best| *best < at);
            match best {
                Some(best) => at = best,
                None => return at,
            }
        }
    }

    /// The ef-bounded best-first search on level 0 from `start`; leaves the
    /// best `ef` nodes in `context.results`, nearest first.
    fn beam(&self, context: &mut Context, query: &[f32], start: Candidate, ef: usize) {
        context.epoch = context.epoch.wrapping_add(1);
        if context.epoch == 0 {
            // Wrapped around: forget the marks of 2^32 searches ago.
            context.visited.fill(0);
            context.epoch = 1;
        }
        context.frontier.clear();
        context.nearest.clear();
        context.visited[start.id as usize] = context.epoch;
        context.frontier.push(Reverse(start));
        context.nearest.push(start);
        let level0 = &self.levels[0];
        while let Some(Reverse(current)) = context.frontier.pop() {
            let worst = *context.nearest.peek().expect("nearest holds the start");
            if current > worst && context.nearest.len() >= ef {
                break; // every node left to expand is farther than the worst kept
            }
            let neighbors = level0.neighbors_of(current.id);
            for (i, &neighbor) in neighbors.iter().enumerate() {
                // Load the next neighbour's vector while this one is compared.
                if let Some(&next) = neighbors.get(i + 1) {
                    prefetch_slice(self.base.row(next as usize));
                }
                if context.visited[neighbor as usize] == context.epoch {
                    continue;
                }
                context.visited[neighbor as usize] = context.epoch;
                let candidate = self.to(query, neighbor);
                context.distances += 1;
                let worst = *context.nearest.peek().expect("nearest holds the start");
                if context.nearest.len() < ef || candidate < worst {
                    context.frontier.push(Reverse(candidate));
                    context.nearest.push(candidate);
                    if context.nearest.len() > ef {
                        context.nearest.pop();
                    }
                }
            }
        }
        context.results.clear();
        context.results.extend(context.nearest.drain());
        context.results.sort_unstable();
    }
}

impl Search for Searcher {
    type Context = Context;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] =
        &[ParamSpec::int("ef", 1, 100_000, "10", "beam width of the level-0 search").knob()];

    fn prepare(base: Base, graph: &Graph, metric: Metric, _params: &mut Params) -> Result<Self> {
        let view = &graph.view;
        if view.levels.is_empty() {
            return Err(Error::unsupported(
                "beam search needs a graph, and the construction slot built none",
            ));
        }
        view.validate(base.len())?;
        // A view without entry points starts at node 0.
        let entry_points = if view.entry_points.is_empty() && !base.is_empty() {
            vec![0]
        } else {
            view.entry_points.to_vec()
        };
        Ok(Searcher {
            base,
            kernel: annvil_distance::kernel(metric),
            levels: view.levels.clone(),
            entry_points,
            ef: 10,
        })
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        let ef = params.get_or("ef", self.ef)?;
        if !EF_RANGE.contains(&ef) {
            return Err(Error::invalid(format!(
                "parameter `ef` must be in [{}, {}], got {ef}",
                EF_RANGE.start(),
                EF_RANGE.end()
            )));
        }
        self.ef = ef;
        Ok(())
    }

    fn new_context(&self) -> Result<Context> {
        Ok(Context {
            visited: vec![0; self.base.len()],
            epoch: 0,
            frontier: BinaryHeap::new(),
            nearest: BinaryHeap::new(),
            results: Vec::new(),
            distances: 0,
        })
    }

    fn search(&self, context: &mut Context, query: &[f32], out: &mut Neighbors<'_>) -> Result<()> {
        if out.capacity() == 0 || self.base.is_empty() {
            return Ok(());
        }
        let mut count = self.entry_points.len() as u64;
        let mut at = self
            .entry_points
            .iter()
            .map(|&id| self.to(query, id))
            .min()
            .expect("a non-empty graph has an entry point");
        for level in self.levels[1..].iter().rev() {
            at = self.greedy(level, query, at, &mut count);
        }
        context.distances += count;
        self.beam(context, query, at, self.ef.max(out.capacity()));
        for found in &context.results {
            if !out.push(found.id, found.distance) {
                break;
            }
        }
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        self.levels.capacity() * size_of::<Level<'static>>()
            + self.entry_points.capacity() * size_of::<u32>()
    }

    fn context_memory_bytes(context: &Context) -> usize {
        context.visited.capacity() * size_of::<u32>()
            + (context.frontier.capacity()
                + context.nearest.capacity()
                + context.results.capacity())
                * size_of::<Candidate>()
    }

    fn distance_count(context: &Context) -> u64 {
        context.distances
    }
}
