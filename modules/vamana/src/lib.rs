//! Vamana graph construction (DiskANN; Subramanya et al., NeurIPS 2019),
//! and the graph-building pieces other one-level graphs share.
//!
//! [`Vamana`] fills the construction slot. Build parameters: `R` (default
//! 32, the maximum out-degree), `L` (default 100, the list size of the
//! searches during the build), `alpha` (default 1.2, at least 1: the
//! occlusion factor of the second pass) and `seed` (default 0).
//!
//! * **Start**: a random `R`-regular directed graph drawn from `seed`, and
//!   the medoid (the base vector nearest the mean) as the entry point.
//! * **Two passes** over one random permutation of the nodes (from
//!   `seed`), the first with `alpha = 1`, the second with `alpha`. Each
//!   insertion of `p` searches for `p` from the medoid with list size `L`,
//!   replaces `p`'s list by [`robust_prune`] of the visited nodes and its
//!   current neighbours, then adds `p` to each new neighbour's list, which
//!   is pruned the same way when it overflows `R`.
//! * **Threads.** `threads` workers take the next node of the permutation
//!   from a shared counter; writers lock the one node whose list they
//!   change and searches read the atomic lists without locking (see
//!   [`ConcurrentGraph`]), as in annvil-hnsw. With one thread the graph is
//!   a pure function of the data and the parameters; with more, the
//!   interleaving changes the graph slightly from run to run, not its
//!   quality.
//!
//! The frozen graph ([`FrozenGraph`]) is one level: the standard view's
//! level 0 in CSR with the medoid as the entry point, and the native
//! fixed-stride array that [`annvil_beam::BeamSearch<Vamana>`] borrows.
//!
//! The shared pieces — [`robust_prune`], [`medoid`], [`ConcurrentGraph`],
//! [`FrozenGraph`], the work loop [`parallel_for`] and the seeded
//! [`SplitMix64`] — are public so other
//! constructions (annvil-nndescent) build on the same code.

#![warn(missing_docs)]

mod build;
mod graph;
mod parallel;
mod prune;
mod rng;

use annvil_abi::{Base, Construction, Error, GraphView, Metric, Params, Result};
use annvil_beam::{FixedDegree, NativeGraph, Space};

pub use graph::{ConcurrentGraph, FrozenGraph, PruneScratch, Unreachable};
pub use parallel::parallel_for;
pub use prune::{medoid, robust_prune};
pub use rng::SplitMix64;

/// Vamana build parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct VamanaParams {
    /// `R`: the maximum out-degree.
    pub max_degree: usize,
    /// `L`: the list size (beam width) of the searches during the build.
    pub list_size: usize,
    /// `alpha`: the occlusion factor of the second pass, at least 1.
    pub alpha: f32,
    /// `seed` of the initial graph and the insertion order.
    pub seed: u64,
}

impl Default for VamanaParams {
    fn default() -> VamanaParams {
        VamanaParams {
            max_degree: 32,
            list_size: 100,
            alpha: 1.2,
            seed: 0,
        }
    }
}

/// Checks an occlusion factor read from parameter `name`.
pub fn check_alpha(name: &str, alpha: f32) -> Result<f32> {
    if alpha.is_finite() && (1.0..=16.0).contains(&alpha) {
        Ok(alpha)
    } else {
        Err(Error::invalid(format!(
            "parameter `{name}` must be in 1.0..=16.0, not {alpha}"
        )))
    }
}

/// Checks a maximum out-degree read from parameter `name`.
pub fn check_degree(name: &str, degree: usize) -> Result<usize> {
    if (1..=4096).contains(&degree) {
        Ok(degree)
    } else {
        Err(Error::invalid(format!(
            "parameter `{name}` must be in 1..=4096, not {degree}"
        )))
    }
}

impl VamanaParams {
    /// Reads `R`, `L`, `alpha` and `seed`, each defaulting to
    /// [`VamanaParams::default`]. Fails when `R` is outside 1..=4096, `L`
    /// outside 1..=65536 or `alpha` outside 1.0..=16.0.
    pub fn from_params(params: &mut Params) -> Result<VamanaParams> {
        let default = VamanaParams::default();
        let max_degree = check_degree("R", params.get_or("R", default.max_degree)?)?;
        let list_size = params.get_or("L", default.list_size)?;
        if !(1..=65536).contains(&list_size) {
            return Err(Error::invalid(format!(
                "parameter `L` must be in 1..=65536, not {list_size}"
            )));
        }
        Ok(VamanaParams {
            max_degree,
            list_size,
            alpha: check_alpha("alpha", params.get_or("alpha", default.alpha)?)?,
            seed: params.get_or("seed", default.seed)?,
        })
    }
}

/// Fails when `base` has more vectors than `u32` node ids can name.
pub fn check_node_count(base: &Base) -> Result<()> {
    if u32::try_from(base.len()).is_err() {
        return Err(Error::unsupported(format!(
            "{} base vectors do not fit u32 node ids",
            base.len()
        )));
    }
    Ok(())
}

/// A built Vamana graph: the construction slot of annvil-vamana.
#[derive(Debug)]
pub struct Vamana {
    params: VamanaParams,
    graph: FrozenGraph,
}

impl Vamana {
    /// Builds the graph over `space` with up to `threads` threads (see the
    /// crate documentation for what depends on the thread count).
    pub fn build_in(space: Space<'_>, params: &VamanaParams, threads: usize) -> Vamana {
        build::build(space, params, threads)
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> &VamanaParams {
        &self.params
    }

    /// The frozen graph.
    pub fn graph(&self) -> &FrozenGraph {
        &self.graph
    }
}

impl Construction for Vamana {
    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Vamana> {
        let params = VamanaParams::from_params(params)?;
        check_node_count(&base)?;
        Ok(Vamana::build_in(Space::new(base, metric), &params, threads))
    }

    fn view(&self) -> GraphView<'_> {
        self.graph.view()
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
    }
}

impl NativeGraph for Vamana {
    fn level0(&self) -> &FixedDegree {
        self.graph.level0()
    }
}
