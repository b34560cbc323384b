//! The three slot traits a Rust variant implements.

use crate::data::{Base, Graph, GraphView, Metric, Neighbors, Vectors};
use crate::declare::ParamSpec;
use crate::error::Result;
use crate::params::Params;

/// The construction slot: a built index structure.
///
/// `build` runs once per build-parameter set; the value is then shared
/// read-only (the SDK hands out its [`GraphView`] and, to this library's own
/// search slot, the value itself through [`Graph::native`]).
pub trait Construction: Sized + Send + Sync + 'static {
    /// The build parameters this slot declares (none is a knob); published
    /// through the table's `params` function. Metadata only: `build` still
    /// reads and checks every value.
    const PARAMS: &'static [ParamSpec] = &[];

    /// Builds the structure over `base` using at most `threads` threads.
    /// Read parameters with [`Params::get`]; unread keys are rejected after
    /// the call.
    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Self>;

    /// The standard view of the graph (empty when there is none). Called
    /// once after `build`; the slices must live as long as `self`.
    fn view(&self) -> GraphView<'_>;

    /// Bytes of memory owned by `self`, not counting the base vectors.
    fn memory_bytes(&self) -> usize;
}

/// The search slot: finds candidates for a query.
///
/// A searcher is shared read-only by all contexts; each thread searches with
/// its own [`Search::Context`].
pub trait Search: Sized + Send + Sync + 'static {
    /// Per-thread scratch space.
    type Context: Send + 'static;

    /// Whether this slot only works with this library's own construction
    /// (through [`Graph::native`]); sets `ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH`.
    const NEEDS_NATIVE_GRAPH: bool = false;

    /// The parameters this slot declares: fixed ones for `prepare` and, made
    /// with [`ParamSpec::knob`], the knobs `configure` takes. Metadata only:
    /// both methods still read and check every value.
    const PARAMS: &'static [ParamSpec] = &[];

    /// Prepares a searcher over `base` and `graph` with fixed parameters.
    fn prepare(base: Base, graph: &Graph, metric: Metric, params: &mut Params) -> Result<Self>;

    /// Applies swept knobs (ef, nprobe, ...); keys not given keep their value.
    fn configure(&mut self, params: &mut Params) -> Result<()>;

    /// New scratch space for one thread.
    fn new_context(&self) -> Result<Self::Context>;

    /// Writes up to `out.capacity()` candidates for `query`, in increasing
    /// distance, ids unique. The SDK has already checked the query dimension.
    fn search(
        &self,
        context: &mut Self::Context,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()>;

    /// Searches many queries in one call (the ABI's `search_batch`):
    /// `queries` holds one query per row and `out[i]` receives query i's
    /// candidates, as [`Search::search`] would write them. The default
    /// searches the queries one by one; override it to interleave their
    /// work or to call a batched kernel. The SDK has already checked the
    /// dimension and that `out` has one entry per query.
    fn search_batch(
        &self,
        context: &mut Self::Context,
        queries: Vectors<'_>,
        out: &mut [Neighbors<'_>],
    ) -> Result<()> {
        for (query, out) in queries.rows().zip(out) {
            self.search(context, query, out)?;
        }
        Ok(())
    }

    /// Bytes of memory owned by `self`, not counting borrowed inputs.
    fn memory_bytes(&self) -> usize;

    /// Bytes of scratch memory a context owns; override when it holds
    /// buffers.
    fn context_memory_bytes(_context: &Self::Context) -> usize {
        0
    }

    /// Whether [`Search::distance_count`] counts; when false the table's
    /// `context_distance_count` is NULL.
    const COUNTS_DISTANCES: bool = false;

    /// Distance computations made by `context` since it was created.
    fn distance_count(_context: &Self::Context) -> u64 {
        0
    }
}

/// The refinement slot: turns candidates into the final k results.
pub trait Refine: Sized + Send + Sync + 'static {
    /// Per-thread scratch space.
    type Context: Send + 'static;

    /// The `prepare` parameters this slot declares (none is a knob).
    /// Metadata only: `prepare` still reads and checks every value.
    const PARAMS: &'static [ParamSpec] = &[];

    /// Prepares a refiner over `base`.
    fn prepare(base: Base, metric: Metric, params: &mut Params) -> Result<Self>;

    /// New scratch space for one thread.
    fn new_context(&self) -> Result<Self::Context>;

    /// Writes the best `out.capacity()` of `candidates` for `query`, in
    /// increasing distance, ids unique. `candidate_distances` are the
    /// search's approximate distances, in the search's order. The SDK has
    /// already checked the query dimension, that both slices have the same
    /// length, and that every candidate id is in range.
    fn refine(
        &self,
        context: &mut Self::Context,
        query: &[f32],
        candidates: &[u32],
        candidate_distances: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()>;

    /// Bytes of memory owned by `self`, not counting borrowed inputs.
    fn memory_bytes(&self) -> usize;

    /// Bytes of scratch memory a context owns; override when it holds
    /// buffers.
    fn context_memory_bytes(_context: &Self::Context) -> usize {
        0
    }
}
