//! The Vamana passes (Subramanya et al. 2019, Algorithm 3) over a
//! [`ConcurrentGraph`].

use std::cell::RefCell;
use std::sync::atomic::AtomicU32;

use annvil_beam::{LayerSearch, Space};
use annvil_core::{Candidate, FixedDegree, Links, SplitMix64, parallel_for};

use crate::graph::{ConcurrentGraph, PruneScratch};
use crate::prune::medoid;
use crate::{Vamana, VamanaParams};

/// The graph as a search reads it, noting every node the search expands
/// (the only nodes whose lists it asks for): Vamana prunes over the
/// visited path, not only over the closest nodes found.
struct Recording<'g, 's> {
    lists: &'g FixedDegree<AtomicU32>,
    expanded: RefCell<&'s mut Vec<u32>>,
}

impl Links for Recording<'_, '_> {
    type Slot = AtomicU32;

    #[inline]
    fn links(&self, node: u32) -> &[AtomicU32] {
        self.expanded.borrow_mut().push(node);
        self.lists.links(node)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        self.lists.prefetch(node);
    }
}

/// Per-thread scratch, reused by every insertion of that thread.
struct Scratch {
    search: LayerSearch,
    expanded: Vec<u32>,
    pool: Vec<Candidate>,
    chosen: Vec<u32>,
    prune: PruneScratch,
}

impl Scratch {
    fn new(num_nodes: usize) -> Scratch {
        Scratch {
            search: LayerSearch::new(num_nodes),
            expanded: Vec::new(),
            pool: Vec::new(),
            chosen: Vec::new(),
            prune: PruneScratch::default(),
        }
    }
}

/// The graph under construction and what every insertion reads.
struct Builder<'a> {
    graph: ConcurrentGraph<'a>,
    medoid: u32,
    list_size: usize,
}

impl Builder<'_> {
    /// One insertion of `node`: a search for it from the medoid, its list
    /// replaced by RobustPrune of the visited nodes and its current
    /// neighbours, then the reverse links (each pruned on overflow).
    fn insert(&self, node: u32, alpha: f32, scratch: &mut Scratch) {
        let space = self.graph.space();
        let query = space.row(node);
        let seed = Candidate {
            distance: space.to(query, self.medoid),
            id: self.medoid,
        };
        scratch.expanded.clear();
        let recording = Recording {
            lists: self.graph.lists(),
            expanded: RefCell::new(&mut scratch.expanded),
        };
        scratch
            .search
            .search(&recording, space, query, &[seed], self.list_size);

        scratch.pool.clear();
        scratch
            .pool
            .extend(scratch.expanded.iter().map(|&id| Candidate {
                distance: space.to(query, id),
                id,
            }));
        self.graph
            .merge(node, &scratch.pool, alpha, &mut scratch.prune);
        scratch.chosen.clear();
        scratch
            .chosen
            .extend(scratch.prune.kept().iter().map(|c| c.id));
        for &neighbor in &scratch.chosen {
            self.graph.link(neighbor, node, alpha, &mut scratch.prune);
        }
    }
}

/// Builds the graph with `threads` workers; see [`Vamana::build_in`].
pub(crate) fn build(space: Space<'_>, params: &VamanaParams, threads: usize) -> Vamana {
    let n = space.len();
    let Some(medoid) = medoid(&space) else {
        return Vamana {
            params: params.clone(),
            graph: ConcurrentGraph::new(space, params.max_degree).freeze(
                Vec::new(),
                params.alpha,
                threads,
            ),
        };
    };
    let graph = ConcurrentGraph::new(space, params.max_degree);
    let mut rng = SplitMix64::new(params.seed);
    let mut ids = Vec::with_capacity(params.max_degree);
    for node in 0..n as u32 {
        rng.distinct_others(node, n, params.max_degree, &mut ids);
        graph.set(node, &ids);
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut order);

    let builder = Builder {
        graph,
        medoid,
        list_size: params.list_size,
    };
    for alpha in [1.0, params.alpha] {
        parallel_for(
            threads,
            n,
            || Scratch::new(n),
            |i, scratch| builder.insert(order[i], alpha, scratch),
        );
    }
    Vamana {
        params: params.clone(),
        graph: builder.graph.freeze(vec![medoid], params.alpha, threads),
    }
}
