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
//!    does.
//! 3. **Entry points**: the medoid, and `entry_points - 1` nodes spread
//!    over the data by k-means++ seeding (on a sample drawn from `seed`).
//!    A K-NN graph has few long edges, so a search started from one point
//!    crosses between clusters poorly; starting from all entry points, it
//!    begins in the query's region instead. A part of the graph still
//!    unreachable from them (a cluster no entry point landed in) gets an
//!    entry point of its own.
//!
//! Build parameters: `K` (default 32), `rho` (default 0.5, in (0, 1]),
//! `delta` (default 0.002, in 0..=1), `iterations` (default 12, at least
//! 1), `max_degree` (default 32), `alpha` (default 1.2, at least 1),
//! `entry_points` (default 16) and `seed` (default 0).
//!
//! **Threads.** Every step runs on `threads` scoped threads (annvil-core's
//! `parallel_for` and `parallel_for_each_mut`): the joins take the next
//! node from a shared counter and lock one K-NN list at a time;
//! the pruning reuses [`ConcurrentGraph`]. With one thread the graph is a
//! pure function of the data and the parameters.
//!
//! The frozen graph is the same one-level [`FrozenGraph`] as annvil-vamana
//! builds: a CSR level 0 for the standard view, and the fixed-stride array
//! [`annvil_beam::BeamSearch<NnDescent>`] borrows natively.

mod descent;
mod entry;

use annvil_abi::{Base, Construction, Error, GraphView, Metric, ParamSpec, Params, Result};
use annvil_beam::{NativeGraph, Space};
use annvil_core::{Candidate, FixedDegree, Links, Slot, SplitMix64, parallel_for};
use annvil_vamana::{
    ALPHAS, ConcurrentGraph, DEGREES, FrozenGraph, PruneScratch, check_node_count, check_range,
    medoid,
};

use descent::ENTRY_POINTS;
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
    /// `entry_points`: how many nodes searches start from (the medoid and
    /// nodes spread over the data; more when parts are unreachable).
    pub entry_points: usize,
    /// `seed` of the initial graph and the samples.
    pub seed: u64,
}

impl Default for NnDescentParams {
    fn default() -> NnDescentParams {
        NnDescentParams {
            k: 32,
            rho: 0.5,
            delta: 0.002,
            iterations: 12,
            max_degree: 32,
            alpha: 1.2,
            entry_points: 16,
            seed: 0,
        }
    }
}

impl NnDescentParams {
    /// Reads every parameter, defaulting to [`NnDescentParams::default`].
    /// Fails when `K` or `max_degree` is outside 1..=4096, `rho` outside
    /// (0, 1], `delta` outside 0..=1, `iterations` outside 1..=1000,
    /// `alpha` outside 1.0..=16.0 or `entry_points` outside 1..=1024.
    pub fn from_params(params: &mut Params) -> Result<NnDescentParams> {
        let default = NnDescentParams::default();
        let k = check_range("K", params.get_or("K", default.k)?, DEGREES)?;
        let rho = params.get_or("rho", default.rho)?;
        if !(rho > 0.0 && rho <= 1.0) {
            return Err(Error::invalid(format!(
                "parameter `rho` must be in (0, 1], not {rho}"
            )));
        }
        Ok(NnDescentParams {
            k,
            rho,
            delta: check_range("delta", params.get_or("delta", default.delta)?, 0.0..=1.0)?,
            iterations: check_range(
                "iterations",
                params.get_or("iterations", default.iterations)?,
                1..=1000,
            )?,
            max_degree: check_range(
                "max_degree",
                params.get_or("max_degree", default.max_degree)?,
                DEGREES,
            )?,
            alpha: check_range("alpha", params.get_or("alpha", default.alpha)?, ALPHAS)?,
            entry_points: check_range(
                "entry_points",
                params.get_or("entry_points", default.entry_points)?,
                1..=1024,
            )?,
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

/// The search graph of `knn` and its entry points (steps 2 and 3 of the
/// crate documentation).
fn searchable(
    space: Space<'_>,
    knn: &KnnGraph,
    params: &NnDescentParams,
    threads: usize,
) -> FrozenGraph {
    let n = knn.num_nodes();
    let mut entry_points: Vec<u32> = medoid(&space).into_iter().collect();
    if !entry_points.is_empty() {
        let mut rng = SplitMix64::keyed(params.seed, &[ENTRY_POINTS]);
        entry::spread(&space, params.entry_points - 1, &mut rng, &mut entry_points);
    }
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
    graph.freeze(entry_points, params.alpha, threads)
}

impl Construction for NnDescent {
    /// The tuning ranges; [`NnDescentParams::from_params`] accepts wider
    /// ones.
    const PARAMS: &'static [ParamSpec] = &[
        ParamSpec::int("K", 8, 128, "32", "neighbours per node in the K-NN graph"),
        ParamSpec::float(
            "rho",
            0.1,
            1.0,
            "0.5",
            "fraction of K sampled per node and iteration for the local joins",
        ),
        ParamSpec::float(
            "delta",
            0.0,
            0.1,
            "0.002",
            "stop once an iteration updates fewer than delta*n*K entries",
        ),
        ParamSpec::int("iterations", 1, 50, "12", "most NN-descent iterations"),
        ParamSpec::int(
            "max_degree",
            8,
            128,
            "32",
            "out-degree bound of the search graph",
        ),
        ParamSpec::float(
            "alpha",
            1.0,
            2.0,
            "1.2",
            "occlusion factor of the pruning into the search graph",
        ),
        ParamSpec::int(
            "entry_points",
            1,
            256,
            "16",
            "nodes searches start from: the medoid and nodes spread over the data",
        ),
        ParamSpec::int(
            "seed",
            0,
            u32::MAX as i64,
            "0",
            "seed of the initial graph, the samples and the entry points (any u64 is accepted)",
        ),
    ];

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
