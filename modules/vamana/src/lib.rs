//! Vamana graph construction (DiskANN; Subramanya et al., NeurIPS 2019),
//! and the graph-building pieces other one-level graphs share.
//!
//! [`Vamana`] fills the construction slot. Build parameters: `R` (default
//! 32, the maximum out-degree), `L` (default 64, the list size of the
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
//! The shared pieces — [`robust_prune`], [`medoid`], [`ConcurrentGraph`]
//! and [`FrozenGraph`] — are public so other constructions
//! (annvil-nndescent) build on the same code. The seeded generator, the
//! work loop and the fixed-degree layout come from annvil-core.

mod build;
mod graph;
mod prune;

use std::fmt;
use std::ops::RangeInclusive;

use annvil_abi::{Base, Construction, Error, GraphView, Metric, ParamSpec, Params, Result};
use annvil_beam::{NativeGraph, Space};
use annvil_core::FixedDegree;

pub use graph::{ConcurrentGraph, FrozenGraph, PruneScratch};
pub use prune::{medoid, robust_prune};

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
            list_size: 64,
            alpha: 1.2,
            seed: 0,
        }
    }
}

/// The accepted occlusion factors (`alpha`).
pub const ALPHAS: RangeInclusive<f32> = 1.0..=16.0;

/// The accepted maximum out-degrees.
pub const DEGREES: RangeInclusive<usize> = 1..=4096;

/// `value`, read from parameter `name`, when it lies in `range`; else an
/// invalid-argument error naming the parameter and the range (NaN is never
/// in range).
pub fn check_range<T: PartialOrd + fmt::Debug>(
    name: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<T> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(format!(
            "parameter `{name}` must be in {range:?}, not {value:?}"
        )))
    }
}

impl VamanaParams {
    /// Reads `R`, `L`, `alpha` and `seed`, each defaulting to
    /// [`VamanaParams::default`]. Fails when `R` is outside 1..=4096, `L`
    /// outside 1..=65536 or `alpha` outside 1.0..=16.0.
    pub fn from_params(params: &mut Params) -> Result<VamanaParams> {
        let default = VamanaParams::default();
        Ok(VamanaParams {
            max_degree: check_range("R", params.get_or("R", default.max_degree)?, DEGREES)?,
            list_size: check_range("L", params.get_or("L", default.list_size)?, 1..=65536)?,
            alpha: check_range("alpha", params.get_or("alpha", default.alpha)?, ALPHAS)?,
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
    /// The tuning ranges; [`VamanaParams::from_params`] accepts wider ones.
    const PARAMS: &'static [ParamSpec] = &[
        ParamSpec::int("R", 8, 128, "32", "maximum out-degree"),
        ParamSpec::int(
            "L",
            16,
            500,
            "64",
            "list size (beam width) of the searches during the build",
        ),
        ParamSpec::float(
            "alpha",
            1.0,
            2.0,
            "1.2",
            "occlusion factor of RobustPrune in the second pass (1: first pass)",
        ),
        ParamSpec::int(
            "seed",
            0,
            u32::MAX as i64,
            "0",
            "seed of the initial graph and the insertion order (any u64 is accepted)",
        ),
    ];

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
