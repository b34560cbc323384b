//! The concurrent HNSW insertion (hnswlib's `addPoint`).
//!
//! Adjacency lives in count-prefixed blocks of [`AtomicU32`]: level 0 in one
//! [`FixedDegree`] array, the upper levels in one flat array of per-node
//! blocks. Writers serialise per node through a [`Mutex`] (one per node for
//! all its levels, as hnswlib's `link_list_locks_`) and never hold two node
//! locks at once, so they cannot deadlock. Readers do not lock: they load
//! the count with `Acquire`, which a writer stores with `Release` after the
//! entries, so every id a reader sees was written into that list on that
//! level, and a reader racing a rewrite sees a mix of the old and new list.
//! That only changes which candidates an insertion explores, like the
//! insertion order across threads does; it is never unsound and never
//! yields an id that is absent from the level.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use annvil_beam::{LayerSearch, Space, greedy};
use annvil_core::{Candidate, Csr, FixedDegree, Links, Slot, SplitMix64, counted, parallel_for};
use annvil_vamana::robust_prune;

use crate::{Hnsw, HnswParams};

/// The highest level a node may get (a bound for pathological seeds).
const MAX_LEVEL: usize = 32;

/// The entry point and the highest level in the graph.
#[derive(Clone, Copy, Debug)]
struct Entry {
    node: u32,
    level: usize,
}

/// Upper-level adjacency: node `v` with level `L > 0` owns `L` consecutive
/// blocks of `stride = 1 + M` cells from `start[v]`, one per level 1..=L.
struct UpperLinks {
    stride: usize,
    start: Vec<usize>,
    slots: Vec<AtomicU32>,
}

impl UpperLinks {
    fn new(levels: &[u8], m: usize) -> UpperLinks {
        let stride = 1 + m;
        let mut start = Vec::with_capacity(levels.len());
        let mut total = 0;
        for &level in levels {
            start.push(total);
            total += level as usize * stride;
        }
        UpperLinks {
            stride,
            start,
            slots: (0..total).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn block(&self, node: u32, level: usize) -> &[AtomicU32] {
        let from = self.start[node as usize] + (level - 1) * self.stride;
        &self.slots[from..from + self.stride]
    }
}

/// Per-thread scratch, reused by every insertion of that thread.
struct Scratch {
    search: LayerSearch,
    /// Search results without the node being inserted.
    found: Vec<Candidate>,
    /// The neighbours the heuristic keeps for the new node.
    selected: Vec<Candidate>,
    prune: Prune,
}

/// Scratch of [`Builder::connect`].
#[derive(Default)]
struct Prune {
    ids: Vec<u32>,
    pool: Vec<Candidate>,
    kept: Vec<Candidate>,
}

/// hnswlib's `getNeighborsByHeuristic2`, generalised by an occlusion
/// factor: annvil-vamana's [`robust_prune`] of `sorted` (closest to the
/// base point first) with `alpha`, up to `max` (with `alpha = 1` a
/// candidate is kept only when it is closer to the base point than to every
/// candidate kept before it, hnswlib's rule). Fewer than `max` candidates
/// are all kept, as in hnswlib.
fn select_neighbors(
    space: &Space<'_>,
    sorted: &[Candidate],
    max: usize,
    alpha: f32,
    kept: &mut Vec<Candidate>,
) {
    if sorted.len() < max {
        kept.clear();
        kept.extend_from_slice(sorted);
        return;
    }
    robust_prune(space, sorted, alpha, max, kept);
}

/// One level of the graph under construction, for the shared searches.
struct Layer<'b> {
    builder: &'b Builder<'b>,
    level: usize,
}

impl Links for Layer<'_> {
    type Slot = AtomicU32;

    #[inline]
    fn links(&self, node: u32) -> &[AtomicU32] {
        counted(self.builder.block(node, self.level))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        if self.level == 0 {
            self.builder.level0.prefetch(node);
        }
    }
}

struct Builder<'a> {
    space: Space<'a>,
    m: usize,
    /// The occlusion factor of neighbour selection.
    alpha: f32,
    ef_construction: usize,
    levels: Vec<u8>,
    level0: FixedDegree<AtomicU32>,
    upper: UpperLinks,
    locks: Vec<Mutex<()>>,
    entry: Mutex<Entry>,
}

impl<'a> Builder<'a> {
    fn block(&self, node: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            self.level0.block(node)
        } else {
            self.upper.block(node, level)
        }
    }

    fn layer(&self, level: usize) -> Layer<'_> {
        Layer {
            builder: self,
            level,
        }
    }

    fn capacity(&self, level: usize) -> usize {
        if level == 0 { 2 * self.m } else { self.m }
    }

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        // A poisoned lock means another builder thread panicked; the scope
        // re-raises that panic, so the data behind the lock is never used.
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts `node` (hnswlib's `addPoint`): greedy descent to the node's
    /// level, then per level an ef_construction search, the heuristic
    /// selection of M neighbours, and links in both directions.
    fn insert(&self, node: u32, scratch: &mut Scratch) {
        let level = self.levels[node as usize] as usize;
        let query = self.space.row(node);
        let guard = Self::lock(&self.entry);
        let entry = *guard;
        // A node that raises the top level holds the entry lock until it is
        // linked, as in hnswlib; every other insertion releases it now.
        let raising = (level > entry.level).then_some(guard);
        let mut best = Candidate {
            distance: self.space.to(query, entry.node),
            id: entry.node,
        };
        let mut unused = 0;
        for l in (level + 1..=entry.level).rev() {
            best = greedy(&self.layer(l), &self.space, query, best, &mut unused);
        }
        for l in (0..=level.min(entry.level)).rev() {
            let layer = self.layer(l);
            scratch
                .search
                .search(&layer, &self.space, query, &[best], self.ef_construction);
            scratch.found.clear();
            scratch
                .found
                .extend(scratch.search.results().iter().filter(|c| c.id != node));
            select_neighbors(
                &self.space,
                &scratch.found,
                self.m,
                self.alpha,
                &mut scratch.selected,
            );
            let Some(&closest) = scratch.selected.first() else {
                continue;
            };
            best = closest;
            self.connect(
                node,
                l,
                scratch.selected.iter().map(|c| c.id),
                &mut scratch.prune,
            );
            for neighbor in &scratch.selected {
                self.connect(neighbor.id, l, [node], &mut scratch.prune);
            }
        }
        if let Some(mut guard) = raising {
            *guard = Entry { node, level };
        }
    }

    /// Adds the links `new` to the list of `target` on `level` under the
    /// node's lock: appended while they fit, else the old and new
    /// neighbours are re-selected by the heuristic (hnswlib's pruning in
    /// `mutuallyConnectNewElement`). Ids already present or equal to
    /// `target` are skipped.
    fn connect(
        &self,
        target: u32,
        level: usize,
        new: impl IntoIterator<Item = u32>,
        prune: &mut Prune,
    ) {
        let capacity = self.capacity(level);
        let _lock = Self::lock(&self.locks[target as usize]);
        let block = self.block(target, level);
        prune.ids.clear();
        prune.ids.extend(counted(block).iter().map(Slot::get));
        let existing = prune.ids.len();
        for id in new {
            if id != target && !prune.ids.contains(&id) {
                prune.ids.push(id);
            }
        }
        if prune.ids.len() == existing {
            return;
        }
        if prune.ids.len() <= capacity {
            for (cell, &id) in block[1 + existing..].iter().zip(&prune.ids[existing..]) {
                cell.store(id, Ordering::Relaxed);
            }
            block[0].store(prune.ids.len() as u32, Ordering::Release);
            return;
        }
        prune.pool.clear();
        prune.pool.extend(prune.ids.iter().map(|&id| Candidate {
            distance: self.space.between(target, id),
            id,
        }));
        prune.pool.sort_unstable();
        select_neighbors(
            &self.space,
            &prune.pool,
            capacity,
            self.alpha,
            &mut prune.kept,
        );
        for (cell, kept) in block[1..].iter().zip(&prune.kept) {
            cell.store(kept.id, Ordering::Relaxed);
        }
        block[0].store(prune.kept.len() as u32, Ordering::Release);
    }
}

/// hnswlib's level assignment: `floor(-ln(U) * mult)` with `mult = 1/ln(M)`.
fn draw_levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let mult = 1.0 / (m as f64).ln();
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| ((-rng.unit_nonzero().ln() * mult) as usize).min(MAX_LEVEL) as u8)
        .collect()
}

/// Builds the graph with `threads` workers; see [`Hnsw::build_in`].
pub(crate) fn build(space: Space<'_>, params: &HnswParams, threads: usize) -> Hnsw {
    let n = space.len();
    let levels = draw_levels(n, params.m, params.seed);
    let builder = Builder {
        space,
        m: params.m,
        alpha: params.alpha,
        ef_construction: params.ef_construction.max(params.m),
        level0: FixedDegree::empty(n, 2 * params.m),
        upper: UpperLinks::new(&levels, params.m),
        locks: (0..n).map(|_| Mutex::new(())).collect(),
        entry: Mutex::new(Entry {
            node: 0,
            level: levels.first().map_or(0, |&l| l as usize),
        }),
        levels,
    };
    // Node 0 is the first entry point; the others are taken in id order.
    parallel_for(
        threads,
        n.saturating_sub(1),
        || Scratch {
            search: LayerSearch::new(n),
            found: Vec::new(),
            selected: Vec::new(),
            prune: Prune::default(),
        },
        |i, scratch| builder.insert(i as u32 + 1, scratch),
    );
    let Builder {
        level0,
        upper,
        levels,
        entry,
        ..
    } = builder;
    let entry = entry.into_inner().unwrap_or_else(PoisonError::into_inner);
    let level0 = level0.into_plain();
    let mut view = vec![Csr::collect(n, |node| level0.links(node))];
    for level in 1..=entry.level {
        view.push(Csr::collect(n, |node| {
            if levels[node as usize] as usize >= level {
                counted(upper.block(node, level))
            } else {
                &[]
            }
        }));
    }
    Hnsw {
        params: params.clone(),
        level0,
        view,
        levels,
        entry_points: if n > 0 { vec![entry.node] } else { Vec::new() },
    }
}
