//! NN-descent graph construction (Dong, Charikar & Li, WWW 2011), made
//! searchable with Vamana's occlusion pruning.
//!
//! [`NnDescent`] fills the construction slot in two steps:
//!
//! 1. **K-NN graph** ([`nn_descent`]): random K-NN lists (from `seed`),
//!    improved by local joins. In each iteration every node samples at
//!    most `rho·K` of its new neighbours (marking them old), the new and
//!    old lists are reversed and sampled the same way, and every pair of a
//!    node's new candidates, and every new–old pair, is offered to both
//!    members' lists. It stops when an iteration updates fewer than
//!    `delta·n·K` list entries, or after `iterations`.
//! 2. **Search graph**: each node's K-NN list and its reverse K-NN
//!    neighbours (the K closest) are cut to `max_degree` by
//!    [`annvil_vamana::robust_prune`] with `alpha`, then every kept edge
//!    gets its reverse link (pruned the same way on overflow), as Vamana
//!    does. Searches start from the medoid.
//!
//! Build parameters: `K` (default 40), `rho` (default 0.5, in (0, 1]),
//! `delta` (default 0.002, in 0..=1), `iterations` (default 12, at least
//! 1), `max_degree` (default 32), `alpha` (default 1.2, at least 1) and
//! `seed` (default 0).
//!
//! **Threads.** Every step runs on `threads` scoped threads: the joins take
//! the next node from a shared counter and lock one K-NN list at a time;
//! the pruning reuses [`ConcurrentGraph`]. With one thread the graph is a
//! pure function of the data and the parameters.
//!
//! The frozen graph is the same one-level [`FrozenGraph`] as annvil-vamana
//! builds: a CSR level 0 for the standard view, and the fixed-stride array
//! [`annvil_beam::BeamSearch<NnDescent>`] borrows natively.

#![warn(missing_docs)]

mod descent;

use annvil_abi::{Base, Construction, Error, GraphView, Metric, Params, Result};
use annvil_beam::{Candidate, FixedDegree, Links, NativeGraph, Slot, Space};
use annvil_vamana::{
    ConcurrentGraph, FrozenGraph, PruneScratch, Unreachable, check_alpha, check_degree,
    check_node_count, medoid, parallel_for,
};

pub use descent::{KnnGraph, nn_descent};

/// NN-descent build parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct NnDescentParams {
    /// `K`: neighbours per node in the K-NN graph.
    pub k: usize,
    /// `rho`: the fraction of K sampled per node and iteration, in (0, 1].
    pub rho: f32,
    /// `delta`: stop once an iteration updates fewer than `delta·n·K`
    /// entries.
    pub delta: f32,
    /// `iterations`: the most iterations.
    pub iterations: usize,
    /// `max_degree`: the out-degree bound of the search graph.
    pub max_degree: usize,
    /// `alpha`: the occlusion factor of the pruning, at least 1.
    pub alpha: f32,
    /// `seed` of the initial graph and the samples.
    pub seed: u64,
}

impl Default for NnDescentParams {
    fn default() -> NnDescentParams {
        NnDescentParams {
            k: 40,
            rho: 0.5,
            delta: 0.002,
            iterations: 12,
            max_degree: 32,
            alpha: 1.2,
            seed: 0,
        }
    }
}

impl NnDescentParams {
    /// Reads every parameter, defaulting to [`NnDescentParams::default`].
    /// Fails when `K` or `max_degree` is outside 1..=4096, `rho` outside
    /// (0, 1], `delta` outside 0..=1, `iterations` outside 1..=1000 or
    /// `alpha` outside 1.0..=16.0.
    pub fn from_params(params: &mut Params) -> Result<NnDescentParams> {
        let default = NnDescentParams::default();
        let rho = params.get_or("rho", default.rho)?;
        if !(rho > 0.0 && rho <= 1.0) {
            return Err(Error::invalid(format!(
                "parameter `rho` must be in (0, 1], not {rho}"
            )));
        }
        let delta = params.get_or("delta", default.delta)?;
        if !(0.0..=1.0).contains(&delta) {
            return Err(Error::invalid(format!(
                "parameter `delta` must be in 0..=1, not {delta}"
            )));
        }
        let iterations = params.get_or("iterations", default.iterations)?;
        if !(1..=1000).contains(&iterations) {
            return Err(Error::invalid(format!(
                "parameter `iterations` must be in 1..=1000, not {iterations}"
            )));
        }
        Ok(NnDescentParams {
            k: check_degree("K", params.get_or("K", default.k)?)?,
            rho,
            delta,
            iterations,
            max_degree: check_degree(
                "max_degree",
                params.get_or("max_degree", default.max_degree)?,
            )?,
            alpha: check_alpha("alpha", params.get_or("alpha", default.alpha)?)?,
            seed: params.get_or("seed", default.seed)?,
        })
    }
}

/// A searchable graph built by NN-descent: the construction slot of
/// annvil-nndescent.
#[derive(Debug)]
pub struct NnDescent {
    params: NnDescentParams,
    iterations: usize,
    graph: FrozenGraph,
}

impl NnDescent {
    /// Builds the graph over `space` with up to `threads` threads (see the
    /// crate documentation for what depends on the thread count).
    pub fn build_in(space: Space<'_>, params: &NnDescentParams, threads: usize) -> NnDescent {
        let knn = nn_descent(&space, params, threads);
        NnDescent {
            params: params.clone(),
            iterations: knn.iterations(),
            graph: searchable(space, &knn, params, threads),
        }
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> &NnDescentParams {
        &self.params
    }

    /// The NN-descent iterations the build ran.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// The frozen search graph.
    pub fn graph(&self) -> &FrozenGraph {
        &self.graph
    }
}

/// The search graph of `knn` (step 2 of the crate documentation).
fn searchable(
    space: Space<'_>,
    knn: &KnnGraph,
    params: &NnDescentParams,
    threads: usize,
) -> FrozenGraph {
    let n = knn.num_nodes();
    let mut entry_points: Vec<u32> = medoid(&space).into_iter().collect();
    let extra: usize = std::env::var("NNE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut rng = annvil_vamana::SplitMix64::new(params.seed);
    for _ in 0..extra.min(n) { let id = rng.below(n) as u32; if !entry_points.contains(&id) { entry_points.push(id); } }
    let mut reverse = vec![Vec::new(); n];
    for v in 0..n as u32 {
        for c in knn.neighbors(v) {
            reverse[c.id as usize].push(Candidate {
                distance: c.distance,
                id: v,
            });
        }
    }
    let graph = ConcurrentGraph::new(space, params.max_degree);
    parallel_for(
        threads,
        n,
        || (Vec::new(), PruneScratch::default()),
        |v, (pool, prune)| {
            let reverse = &reverse[v];
            pool.clear();
            pool.extend_from_slice(knn.neighbors(v as u32));
            pool.extend_from_slice(reverse);
            // The reverse neighbours beyond the K closest are hubs' long
            // tails: they cost pruning time and are rarely kept.
            let forward = knn.neighbors(v as u32).len();
            if reverse.len() > params.k {
                pool[forward..].select_nth_unstable(params.k);
                pool.truncate(forward + params.k);
            }
            graph.merge(v as u32, pool, params.alpha, prune);
        },
    );
    let pruned: Vec<Vec<u32>> = (0..n as u32)
        .map(|v| graph.lists().links(v).iter().map(Slot::get).collect())
        .collect();
    parallel_for(threads, n, PruneScratch::default, |v, prune| {
        for &u in &pruned[v] {
            graph.link(u, v as u32, params.alpha, prune);
        }
    });
    graph.freeze(entry_points, params.alpha, threads, Unreachable::EntryPoint)
}

impl Construction for NnDescent {
    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<NnDescent> {
        let params = NnDescentParams::from_params(params)?;
        check_node_count(&base)?;
        Ok(NnDescent::build_in(
            Space::new(base, metric),
            &params,
            threads,
        ))
    }

    fn view(&self) -> GraphView<'_> {
        self.graph.view()
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
    }
}

impl NativeGraph for NnDescent {
    fn level0(&self) -> &FixedDegree {
        self.graph.level0()
    }
}
