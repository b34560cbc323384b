//! HNSW graph construction (Malkov & Yashunin), following hnswlib.
//!
//! [`Hnsw`] fills the construction slot. Build parameters: `M` (default
//! 16: at most M neighbours per node on the upper levels, 2·M on level 0),
//! `ef_construction` (default 200; at least M is used), `alpha` (default 1,
//! the pruning's occlusion factor, see below) and `seed` (default 0) for the
//! level draws.
//!
//! * **Levels** are drawn up front from `seed` as in hnswlib:
//!   `floor(-ln(U) · mult)` with `mult = 1/ln(M)`.
//! * **Neighbour selection** is hnswlib's heuristic: walking the candidates
//!   from the closest, keep one only when it is closer to the new node than
//!   to every neighbour kept so far. The same heuristic prunes a neighbour's
//!   list that overflows when the reverse link is added. Build parameter
//!   `alpha` (default 1, hnswlib's rule) relaxes it into Vamana's
//!   RobustPrune: a candidate is dropped only when a kept neighbour is
//!   `alpha` times closer to it than the new node is, which keeps longer
//!   edges.
//! * **Threads.** Nodes are inserted in id order (node 0 first, as the
//!   entry point); `threads` workers take the next id from a shared counter
//!   (annvil-core's `parallel_for`, as hnswlib's `ParallelFor`). Each worker owns its scratch (visited set,
//!   heaps, buffers), so an insertion allocates nothing n-sized. Writers
//!   lock the one node whose list they change; readers load the atomic
//!   lists without locking (see the `build` module's notes for why that is
//!   sound). With one thread the graph is a pure function of the data and
//!   the parameters; with more, the interleaving of insertions changes the
//!   graph slightly from run to run (as in hnswlib), not its quality.
//!
//! After the build the graph is frozen into two read-only forms: the
//! standard [`GraphView`] (one CSR level per HNSW level, over all nodes,
//! and the entry point, a node of the top level), and the native level 0,
//! annvil-core's [`FixedDegree`] array of stride `1 + 2·M` (count, then neighbours) that
//! [`annvil_beam::BeamSearch<Hnsw>`] borrows instead of copying.

mod build;

use annvil_abi::{Base, Construction, Error, GraphView, Metric, ParamSpec, Params, Result};
use annvil_beam::{NativeGraph, Space};
use annvil_core::{Csr, FixedDegree};
use annvil_vamana::{ALPHAS, check_range};

/// HNSW build parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct HnswParams {
    /// `M`: neighbours per node on the upper levels; 2·M on level 0.
    pub m: usize,
    /// `ef_construction`: beam width of the searches during insertion.
    pub ef_construction: usize,
    /// `alpha`: the occlusion factor of neighbour selection (1 is
    /// hnswlib's heuristic; see the crate documentation).
    pub alpha: f32,
    /// `seed` of the level draws.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> HnswParams {
        HnswParams {
            m: 16,
            ef_construction: 200,
            alpha: 1.0,
            seed: 0,
        }
    }
}

impl HnswParams {
    /// Reads `M`, `ef_construction`, `alpha` and `seed`, each defaulting to
    /// [`HnswParams::default`]. Fails when `M < 2`, `ef_construction` is 0
    /// or `alpha` is outside 1.0..=16.0.
    pub fn from_params(params: &mut Params) -> Result<HnswParams> {
        let default = HnswParams::default();
        let parsed = HnswParams {
            m: params.get_or("M", default.m)?,
            ef_construction: params.get_or("ef_construction", default.ef_construction)?,
            alpha: check_range("alpha", params.get_or("alpha", default.alpha)?, ALPHAS)?,
            seed: params.get_or("seed", default.seed)?,
        };
        if parsed.m < 2 || parsed.m > u16::MAX as usize {
            return Err(Error::invalid(format!(
                "parameter `M` must be in 2..=65535, not {}",
                parsed.m
            )));
        }
        if parsed.ef_construction == 0 {
            return Err(Error::invalid(
                "parameter `ef_construction` must be at least 1",
            ));
        }
        Ok(parsed)
    }
}

/// A built HNSW graph: the construction slot of annvil-hnsw.
#[derive(Debug)]
pub struct Hnsw {
    params: HnswParams,
    /// Native level 0, borrowed by [`annvil_beam::BeamSearch<Hnsw>`].
    level0: FixedDegree,
    /// The standard view's levels (level 0 included).
    view: Vec<Csr>,
    /// The level of every node.
    levels: Vec<u8>,
    /// The entry point (empty for an empty base).
    entry_points: Vec<u32>,
}

impl Hnsw {
    /// Builds the graph over `space` with up to `threads` threads (see the
    /// crate documentation for what depends on the thread count).
    pub fn build_in(space: Space<'_>, params: &HnswParams, threads: usize) -> Hnsw {
        build::build(space, params, threads)
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// The top level of `node` (0 for most nodes). Panics when `node` is
    /// out of range.
    pub fn level_of(&self, node: u32) -> usize {
        self.levels[node as usize] as usize
    }

    /// The highest level of the graph.
    pub fn max_level(&self) -> usize {
        self.view.len().saturating_sub(1)
    }

    /// The entry point: a node of the top level (`None` for no nodes).
    pub fn entry_point(&self) -> Option<u32> {
        self.entry_points.first().copied()
    }
}

impl Construction for Hnsw {
    /// The tuning ranges; [`HnswParams::from_params`] accepts wider ones.
    const PARAMS: &'static [ParamSpec] = &[
        ParamSpec::int(
            "M",
            4,
            64,
            "16",
            "neighbours per node on the upper levels (2*M on level 0)",
        ),
        ParamSpec::int(
            "ef_construction",
            16,
            1000,
            "200",
            "beam width of the searches during insertion",
        ),
        ParamSpec::float(
            "alpha",
            1.0,
            1.5,
            "1",
            "occlusion factor of neighbour selection (1: hnswlib's heuristic)",
        ),
        ParamSpec::int(
            "seed",
            0,
            u32::MAX as i64,
            "0",
            "seed of the level draws (any u64 is accepted)",
        ),
    ];

    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Hnsw> {
        let params = HnswParams::from_params(params)?;
        if u32::try_from(base.len()).is_err() {
            return Err(Error::unsupported(format!(
                "{} base vectors do not fit u32 node ids",
                base.len()
            )));
        }
        Ok(Hnsw::build_in(Space::new(base, metric), &params, threads))
    }

    fn view(&self) -> GraphView<'_> {
        GraphView {
            num_nodes: self.levels.len(),
            levels: self.view.iter().map(Csr::level).collect(),
            entry_points: &self.entry_points,
        }
    }

    fn memory_bytes(&self) -> usize {
        self.level0.memory_bytes()
            + self.view.iter().map(Csr::memory_bytes).sum::<usize>()
            + self.levels.capacity()
            + self.entry_points.capacity() * size_of::<u32>()
    }
}

impl NativeGraph for Hnsw {
    fn level0(&self) -> &FixedDegree {
        &self.level0
    }
}
