//! Quantized-graph search, the search slot for any graph in the standard
//! view, after the design of NGT-QG and SymphonyQG (the code is our own).
//!
//! At prepare time level 0 is repacked into a [`QuantizedLevel`]: one
//! cache-line aligned record per node holding its own vector (f32; or f16
//! or SQ8 codes, fewer bytes but reranked when lossy), its neighbour ids sorted nearest first, and its
//! neighbours' 4-bit product-quantization codes ([`ProductQuantizer`] of annvil-pq, 16
//! centroids per subspace of `sub_dim` dimensions) laid out in FastScan
//! blocks of 32. A search starts from the closest of [`EntryPoints`]
//! spread over the data by k-means (or descends the view's upper levels),
//! then runs a best-first search on level 0 whose beam is ordered by code
//! estimates: expanding a node reads one record, measures the node on its
//! own vector, and scores all its neighbours with one SIMD block scan
//! ([`Scanner`]: `vpshufb` table lookups with the query's table quantized
//! to bytes; AVX-512, AVX2 or portable, chosen at run time). The answer is
//! the `k` closest expanded nodes; when the records' vectors are not exact
//! (f16 or SQ8 of data they do not hold), the best `rerank` nodes are
//! ranked again on the f32 base vectors first.

mod entry;
mod level;
mod search;

use annvil_abi::{Base, Error, Graph, Level, Metric, Neighbors, ParamSpec, Params, Result, Search};
use annvil_beam::{MAX_BEAM, Space, descend};
use annvil_core::Candidate;
use annvil_pq::{MAX_SUB_DIM, ProductQuantizer, Scanner};
use annvil_rerank::rank_exact;

pub use entry::EntryPoints;
pub use level::{PreparedQuery, QuantizedLevel, VectorForm, VectorKernels};
pub use search::{Beam, QuantizedGraph, Scratch, Settings};

/// Default of the `ef` knob.
pub const DEFAULT_EF: usize = 10;

/// Default dimensions per subspace of the neighbour codes.
pub const DEFAULT_SUB_DIM: usize = 2;

/// Default number of entry points spread over the data (0: the view's own
/// entry points and upper levels).
pub const DEFAULT_ENTRY_POINTS: usize = 64;

/// Default number of expanded nodes reranked exactly when the records'
/// vectors are not exact.
pub const DEFAULT_RERANK: usize = 20;

/// Default of the `filter` knob.
pub const DEFAULT_FILTER: f32 = 0.1;

/// Most entry points accepted.
const MAX_ENTRY_POINTS: usize = 4096;

/// Default cache lines of the next record prefetched during an expansion.
pub const DEFAULT_PREFETCH_LINES: usize = 8;

/// Most cache lines a prefetch may ask for.
const MAX_PREFETCH_LINES: usize = 1024;

/// Seed of the quantizer's training sample and centroids.
const TRAINING_SEED: u64 = 0x5147;

/// Quantized-graph search over a graph view.
///
/// Knob (swept): `ef`, the beam width (default [`DEFAULT_EF`]); a search
/// for `n` results uses `max(ef, n)`. Search parameter `prefetch_lines`
/// (default [`DEFAULT_PREFETCH_LINES`]) and `rerank` (default
/// [`DEFAULT_RERANK`]); prepare parameters `sub_dim` (dimensions per 4-bit
/// code, default [`DEFAULT_SUB_DIM`]), `vectors` (the form of each node's
/// own vector, [`VectorForm`], default f32) and `entry_points` (default
/// [`DEFAULT_ENTRY_POINTS`]).
pub struct QuantizedGraphSearch {
    graph: QuantizedGraph,
    space: Space<'static>,
    /// Where searches start.
    start: Start,
    beam: Beam,
    settings: Settings,
}

/// Where a search starts on level 0.
enum Start {
    /// The closest of entry points spread over the data.
    Spread(EntryPoints),
    /// The view's entry points, descending its upper levels (if any).
    View {
        /// Levels 1.., borrowed from the view.
        upper: Vec<Level<'static>>,
        entry_points: Vec<u32>,
    },
}

/// Per-thread scratch of a [`QuantizedGraphSearch`].
pub struct QuantizedGraphContext {
    scratch: Scratch,
    seeds: Vec<Candidate>,
    distances: u64,
}

impl Search for QuantizedGraphSearch {
    type Context = QuantizedGraphContext;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] = &[
        ParamSpec::int("ef", 1, MAX_BEAM as i64, "10", "beam width on level 0").knob(),
        ParamSpec::int(
            "sub_dim",
            1,
            MAX_SUB_DIM as i64,
            "2",
            "dimensions per 4-bit code of the neighbour codes",
        ),
        ParamSpec::choice(
            "beam",
            &["estimates", "filtered"],
            "estimates",
            "what orders the beam: the neighbours' code estimates (nodes measured when expanded) or the vector distances (codes filter which neighbours get measured)",
        ),
        ParamSpec::choice(
            "vectors",
            &["f32", "f16", "sq8"],
            "f32",
            "form of each node's own vector in its record (f16: half the bytes, exact for whole numbers up to 2048; sq8: a quarter, exact for 8-bit data)",
        ),
        ParamSpec::int(
            "entry_points",
            0,
            MAX_ENTRY_POINTS as i64,
            "64",
            "entry points spread over the data by k-means, the closest one starting each search (0: the graph's own, descending its upper levels)",
        ),
        ParamSpec::int(
            "prefetch_lines",
            0,
            MAX_PREFETCH_LINES as i64,
            "8",
            "cache lines of the next node's record prefetched during an expansion",
        )
        .knob(),
        ParamSpec::int(
            "rerank",
            1,
            MAX_BEAM as i64,
            "20",
            "expanded nodes reranked on the f32 base vectors when the records' vectors are not exact",
        )
        .knob(),
        ParamSpec::float(
            "filter",
            0.0,
            1e6,
            "0.1",
            "filtered beam: how far past the beam's worst distance, as a fraction of it, an estimate may lie and still get measured",
        )
        .knob(),
    ];

    fn prepare(base: Base, graph: &Graph, metric: Metric, params: &mut Params) -> Result<Self> {
        let sub_dim = params.get_or("sub_dim", DEFAULT_SUB_DIM)?;
        let beam = match params.get::<String>("beam")? {
            Some(name) => name.parse()?,
            None => Beam::default(),
        };
        let form = match params.get::<String>("vectors")? {
            Some(name) => name.parse()?,
            None => VectorForm::default(),
        };
        let spread = params.get_or("entry_points", DEFAULT_ENTRY_POINTS)?;
        if spread > MAX_ENTRY_POINTS {
            return Err(Error::invalid(format!(
                "parameter `entry_points` must be in 0..={MAX_ENTRY_POINTS}, not {spread}"
            )));
        }
        let view = &graph.view;
        let Some((level0, upper)) = view.levels.split_first() else {
            return Err(Error::unsupported(
                "quantized-graph search needs a graph, and the construction slot built none",
            ));
        };
        view.validate(base.len())?;
        let pq = ProductQuantizer::train(base, sub_dim, TRAINING_SEED)?;
        let kernels = VectorKernels::new(metric);
        let level = QuantizedLevel::new(level0, base, kernels.f32(), form, &pq)?;
        let start = if spread > 0 {
            Start::Spread(EntryPoints::spread(base, metric, spread, TRAINING_SEED))
        } else {
            Start::View {
                upper: upper.to_vec(),
                entry_points: if view.entry_points.is_empty() {
                    vec![0]
                } else {
                    view.entry_points.to_vec()
                },
            }
        };
        Ok(QuantizedGraphSearch {
            graph: QuantizedGraph {
                level,
                pq,
                scanner: Scanner::best(),
                kernels,
                metric,
            },
            space: Space::new(base, metric),
            start,
            beam,
            settings: Settings {
                ef: DEFAULT_EF,
                prefetch_lines: DEFAULT_PREFETCH_LINES,
                rerank: DEFAULT_RERANK,
                filter: DEFAULT_FILTER,
            },
        })
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        let ef = params.get_or("ef", self.settings.ef)?;
        if !(1..=MAX_BEAM).contains(&ef) {
            return Err(Error::invalid(format!(
                "parameter `ef` must be in 1..={MAX_BEAM}, not {ef}"
            )));
        }
        let prefetch_lines = params.get_or("prefetch_lines", self.settings.prefetch_lines)?;
        if prefetch_lines > MAX_PREFETCH_LINES {
            return Err(Error::invalid(format!(
                "parameter `prefetch_lines` must be in 0..={MAX_PREFETCH_LINES}, not {prefetch_lines}"
            )));
        }
        let rerank = params.get_or("rerank", self.settings.rerank)?;
        if !(1..=MAX_BEAM).contains(&rerank) {
            return Err(Error::invalid(format!(
                "parameter `rerank` must be in 1..={MAX_BEAM}, not {rerank}"
            )));
        }
        let filter = params.get_or("filter", self.settings.filter)?;
        if !(0.0..=1e6).contains(&filter) {
            return Err(Error::invalid(format!(
                "parameter `filter` must be in 0..=1e6, not {filter}"
            )));
        }
        self.settings = Settings {
            ef,
            prefetch_lines,
            rerank,
            filter,
        };
        Ok(())
    }

    fn new_context(&self) -> Result<QuantizedGraphContext> {
        Ok(QuantizedGraphContext {
            scratch: Scratch::new(&self.graph),
            seeds: Vec::new(),
            distances: 0,
        })
    }

    fn search(
        &self,
        context: &mut QuantizedGraphContext,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let k = out.capacity();
        if k == 0 {
            return Ok(());
        }
        let QuantizedGraphContext {
            scratch,
            seeds,
            distances,
        } = context;
        let mut computed = 0;
        match &self.start {
            Start::Spread(entries) => {
                seeds.clear();
                seeds.extend(entries.nearest(self.graph.kernels.f32(), query));
                computed += entries.len() as u64;
            }
            Start::View {
                upper,
                entry_points,
            } => descend(upper, entry_points, seeds, &mut computed, |id| {
                self.space.to(query, id)
            }),
        }
        let seeds = seeds.iter().map(|seed| seed.id);
        computed += match self.beam {
            Beam::Estimates => self.graph.search(scratch, query, seeds, self.settings, k),
            Beam::Filtered => self
                .graph
                .search_filtered(scratch, query, seeds, self.settings, k),
        };
        let found = scratch.results();
        if scratch.results_are_exact() {
            for found in found {
                if !out.push(found.id, found.distance) {
                    break;
                }
            }
        } else {
            rank_exact(
                &self.space.vectors(),
                self.graph.metric,
                query,
                found.iter().map(|c| c.id),
                out,
            );
            computed += found.len() as u64;
        }
        *distances += computed;
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
            + match &self.start {
                Start::Spread(entries) => entries.memory_bytes(),
                Start::View {
                    upper,
                    entry_points,
                } => {
                    upper.capacity() * size_of::<Level<'static>>()
                        + entry_points.capacity() * size_of::<u32>()
                }
            }
    }

    fn context_memory_bytes(context: &QuantizedGraphContext) -> usize {
        context.scratch.memory_bytes() + context.seeds.capacity() * size_of::<Candidate>()
    }

    fn distance_count(context: &QuantizedGraphContext) -> u64 {
        context.distances
    }
}
