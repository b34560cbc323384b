//! IVF over 4-bit codes, after ScaNN's and faiss's fast-scan inverted
//! files (the code is our own): the search slot for annvil-ivf's [`Ivf`]
//! construction that scans compressed codes instead of f32 vectors.
//!
//! At prepare time every vector's residual from its list's centroid is
//! product-quantized (annvil-pq, 16 centroids per subspace of `sub_dim`
//! dimensions) and each list's codes are packed into FastScan blocks of
//! 32 ([`ListCodes`]). A query ranks the centroids, builds one table of
//! partial inner products quantized to bytes, and scores the `nprobe`
//! nearest lists block by block with the widest SIMD kernel the CPU runs
//! (AVX-512, AVX2 or portable). The `reorder` best estimates are then
//! measured exactly on the f32 vectors, and the `k` closest are the
//! answer, with exact distances. A batch search overlaps each query's
//! reorder with the shortlist of the next, whose vectors are prefetched
//! meanwhile; its answers equal the single searches'.

mod codes;

use annvil_abi::{
    Base, Error, Graph, Metric, Neighbors, ParamSpec, Params, Result, Search, Vectors,
};
use annvil_core::{Reservoir, TopK};
use annvil_distance::Kernel;
use annvil_ivf::{
    DEFAULT_NPROBE, Ivf, MAX_REORDER, NPROBE, Probe, REORDER, read_depth, read_nprobe,
};
use annvil_pq::{ByteTable, MAX_SUB_DIM, Scanner};
use annvil_quant::{Codes, Query, ScalarQuantizer, Scheme};

pub use codes::ListCodes;

/// Data of at most this many dimensions gets one dimension per 4-bit code
/// by default, wider data two: on 50-d word vectors one dimension per code
/// measured 1.08× reward and 1.29× QPS at recall 0.99 over two, on 384-d
/// sentence embeddings and 784-d Fashion-MNIST 0.63× and 0.67× reward (the
/// scan grows with the number of codes; see the variant's README).
pub const LOW_DIMENSION: usize = 64;

/// The dimensions per 4-bit code of `sub_dim: 0` for data of `dim`
/// dimensions: 1 up to [`LOW_DIMENSION`], 2 above.
pub fn automatic_sub_dim(dim: usize) -> usize {
    if dim <= LOW_DIMENSION { 1 } else { 2 }
}

/// Default of the `reorder` knob.
pub const DEFAULT_REORDER: usize = 100;

/// Default of the `anisotropic_threshold` parameter: ScaNN's usual
/// setting.
pub const DEFAULT_ANISOTROPIC_THRESHOLD: f32 = 0.2;

/// Default of the `rerank` knob (with `reorder_on: sq8`).
pub const DEFAULT_RERANK: usize = 20;

/// The fast-scan search slot over annvil-ivf's [`Ivf`].
///
/// Knobs (swept): `nprobe` (default [`DEFAULT_NPROBE`]), `reorder`, the
/// candidates measured exactly (default [`DEFAULT_REORDER`]; at least the
/// `k` asked for are), and `rerank` (with `reorder_on: sq8`). Prepare
/// parameters: the fields of [`Options`]. Needs the native [`Ivf`], so the
/// slot sets `NEEDS_NATIVE_GRAPH`. The distances it counts are the
/// centroids ranked and the candidates measured (on SQ8 codes and f32).
pub struct IvfFastScanSearch {
    ivf: &'static Ivf,
    codes: ListCodes,
    scanner: Scanner,
    kernel: Kernel,
    /// SQ8 codes of the vectors in list order, when the reorder measures
    /// on them first.
    sq8: Option<(ScalarQuantizer, Codes)>,
    nprobe: usize,
    reorder: usize,
    rerank: usize,
}

/// Per-thread scratch of an [`IvfFastScanSearch`].
pub struct IvfFastScanContext {
    probe: Probe,
    floats: Vec<f32>,
    table: ByteTable,
    estimates: Reservoir,
    /// The positions (in list order) of the candidates to reorder: one
    /// list per query in flight (a batch search has two).
    positions: [Vec<u32>; 2],
    exact: TopK,
    /// With SQ8 reorder: the query against the codes, and the best
    /// `rerank` positions by it.
    sq8_query: Option<Query>,
    coarse: Reservoir,
    distances: u64,
}

impl IvfFastScanSearch {
    /// A searcher over `ivf`, built on `base` with `metric`, prepared with
    /// `options`.
    pub fn new(
        ivf: &'static Ivf,
        base: Base,
        metric: Metric,
        options: &Options,
    ) -> Result<IvfFastScanSearch> {
        ivf.check_built_on(base, metric)?;
        let threshold = options.anisotropic_threshold;
        if !(0.0..1.0).contains(&threshold) {
            return Err(Error::invalid(format!(
                "parameter `anisotropic_threshold` must be in [0, 1), not {threshold}"
            )));
        }
        let sq8 = options.sq8_reorder.then(|| {
            let vectors = ivf.vectors_in_list_order();
            let quantizer = ScalarQuantizer::train(Scheme::Sq8, vectors.as_slice(), ivf.dim());
            let codes = quantizer.encode_all(vectors.as_slice());
            (quantizer, codes)
        });
        let sub_dim = match options.sub_dim {
            0 => automatic_sub_dim(base.dim()),
            chosen => chosen,
        };
        Ok(IvfFastScanSearch {
            ivf,
            codes: ListCodes::new(ivf, sub_dim, parallel_weight(threshold, base.dim()))?,
            scanner: Scanner::best(),
            kernel: annvil_distance::kernel(metric),
            sq8,
            nprobe: DEFAULT_NPROBE,
            reorder: DEFAULT_REORDER,
            rerank: DEFAULT_RERANK,
        })
    }

    /// Routes `query` (for `n` results), scans its lists nearest first and
    /// leaves the positions (in list order) of the best `reorder`
    /// estimates in `positions[slot]`, their vectors prefetched.
    fn shortlist(&self, context: &mut IvfFastScanContext, query: &[f32], n: usize, slot: usize) {
        let ivf = self.ivf;
        let lists = context
            .probe
            .select(ivf.centroids(), ivf.lists(), query, self.nprobe, n);
        self.codes
            .query_table(query, &mut context.floats, &mut context.table);
        context.estimates.reset(self.reorder.max(n));
        for &list in lists {
            let positions = ivf.lists().range(list.id as usize);
            self.codes.scan_list(
                &self.scanner,
                &context.table,
                list,
                positions,
                &mut context.estimates,
            );
        }
        let positions = &mut context.positions[slot];
        positions.clear();
        positions.extend(context.estimates.best().iter().map(|c| c.id));
        positions.sort_unstable();
        let vectors = ivf.vectors_in_list_order();
        for &position in positions.iter() {
            match &self.sq8 {
                Some((_, codes)) => annvil_distance::prefetch_slice(codes.row(position as usize)),
                None => annvil_distance::prefetch_slice(vectors.row(position as usize)),
            }
        }
    }

    /// Measures the candidates shortlisted in `positions[slot]` and writes
    /// the best `out.capacity()` to `out`, with exact distances: on the
    /// f32 vectors directly, or, with SQ8 codes, first on the codes and
    /// then the best `rerank` on the f32 vectors.
    fn reorder_exact(
        &self,
        context: &mut IvfFastScanContext,
        query: &[f32],
        slot: usize,
        out: &mut Neighbors<'_>,
    ) {
        let vectors = self.ivf.vectors_in_list_order();
        let ids = self.ivf.lists().ids();
        let mut measured = context.positions[slot].len();
        let positions: &[u32] = match (&self.sq8, &mut context.sq8_query) {
            (Some((_, codes)), Some(sq8_query)) => {
                sq8_query.set(query);
                context.coarse.reset(self.rerank.max(out.capacity()));
                for &position in &context.positions[slot] {
                    let distance = sq8_query.distance(codes.row(position as usize));
                    context.coarse.push(position, distance);
                }
                context.positions[slot].clear();
                context.positions[slot].extend(context.coarse.best().iter().map(|c| c.id));
                for &position in &context.positions[slot] {
                    annvil_distance::prefetch_slice(vectors.row(position as usize));
                }
                measured += context.positions[slot].len();
                &context.positions[slot]
            }
            _ => &context.positions[slot],
        };
        context.exact.reset(out.capacity());
        for &position in positions {
            let distance = self.kernel.distance(query, vectors.row(position as usize));
            context.exact.push(ids[position as usize], distance);
        }
        context.exact.drain_into(out);
        context.distances += (self.ivf.centroids().len() + measured) as u64;
    }
}

/// How an [`IvfFastScanSearch`] prepares its codes (its prepare
/// parameters).
#[derive(Clone, Debug)]
pub struct Options {
    /// Dimensions per 4-bit code (0: [`automatic_sub_dim`]).
    pub sub_dim: usize,
    /// ScaNN's anisotropic threshold for the codes (0: nearest centroids).
    pub anisotropic_threshold: f32,
    /// Whether the reorder measures on SQ8 codes first and only the best
    /// `rerank` on the f32 vectors.
    pub sq8_reorder: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sub_dim: 0,
            anisotropic_threshold: DEFAULT_ANISOTROPIC_THRESHOLD,
            sq8_reorder: false,
        }
    }
}

impl Search for IvfFastScanSearch {
    type Context = IvfFastScanContext;

    const NEEDS_NATIVE_GRAPH: bool = true;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] = &[
        NPROBE,
        REORDER,
        ParamSpec::int(
            "sub_dim",
            0,
            MAX_SUB_DIM as i64,
            "0",
            "dimensions per 4-bit code of the residuals (0: 1 for data of at most 64 dimensions, else 2)",
        ),
        ParamSpec::choice(
            "reorder_on",
            &["f32", "sq8"],
            "f32",
            "what the reorder measures the candidates on: the f32 vectors, or SQ8 codes (a quarter of the bytes) and then the best `rerank` on the f32 vectors",
        ),
        ParamSpec::int(
            "rerank",
            1,
            MAX_REORDER as i64,
            "20",
            "with `reorder_on: sq8`, the best candidates by SQ8 distance measured on the f32 vectors (at least k)",
        )
        .knob(),
        ParamSpec::float(
            "anisotropic_threshold",
            0.0,
            0.999,
            "0.2",
            "ScaNN's anisotropic quantization threshold T: codes weigh their error along the data point (d-1)T²/(1-T²) times the error across it (0: plain nearest centroids)",
        ),
    ];

    fn prepare(base: Base, graph: &Graph, metric: Metric, params: &mut Params) -> Result<Self> {
        let ivf = graph.native::<Ivf>().ok_or_else(|| {
            Error::unsupported(
                "IVF fast-scan search needs annvil-ivf's own Ivf construction (an IVF index \
                 has no standard graph view), and the host passed no native index",
            )
        })?;
        let defaults = Options::default();
        let options = Options {
            sub_dim: params.get_or("sub_dim", defaults.sub_dim)?,
            anisotropic_threshold: params
                .get_or("anisotropic_threshold", defaults.anisotropic_threshold)?,
            sq8_reorder: match params.get::<String>("reorder_on")?.as_deref() {
                None | Some("f32") => false,
                Some("sq8") => true,
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "parameter `reorder_on` must be `f32` or `sq8`, not `{other}`"
                    )));
                }
            },
        };
        IvfFastScanSearch::new(ivf, base, metric, &options)
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        self.nprobe = read_nprobe(params, self.nprobe)?;
        self.reorder = read_depth(params, "reorder", self.reorder)?;
        self.rerank = read_depth(params, "rerank", self.rerank)?;
        Ok(())
    }

    fn new_context(&self) -> Result<IvfFastScanContext> {
        Ok(IvfFastScanContext {
            probe: Probe::new(self.ivf.lists().len()),
            floats: Vec::new(),
            table: ByteTable::default(),
            estimates: Reservoir::new(),
            positions: [Vec::new(), Vec::new()],
            exact: TopK::new(),
            sq8_query: self
                .sq8
                .as_ref()
                .map(|(quantizer, _)| quantizer.query(self.ivf.metric())),
            coarse: Reservoir::new(),
            distances: 0,
        })
    }

    fn search(
        &self,
        context: &mut IvfFastScanContext,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let n = out.capacity();
        if n == 0 || self.ivf.is_empty() {
            return Ok(());
        }
        self.shortlist(context, query, n, 0);
        self.reorder_exact(context, query, 0, out);
        Ok(())
    }

    /// Searches the queries in turn, overlapping each query's reorder
    /// with the memory reads it waits on: query `i + 1` is shortlisted,
    /// its candidates' vectors prefetched, before query `i` is reordered.
    /// Answers equal [`Search::search`]'s.
    fn search_batch(
        &self,
        context: &mut IvfFastScanContext,
        queries: Vectors<'_>,
        out: &mut [Neighbors<'_>],
    ) -> Result<()> {
        if self.ivf.is_empty() {
            return Ok(());
        }
        let mut waiting: Option<usize> = None;
        for i in 0..out.len() {
            let n = out[i].capacity();
            if n > 0 {
                self.shortlist(context, queries.row(i), n, i % 2);
            }
            if let Some(w) = waiting.take() {
                self.reorder_exact(context, queries.row(w), w % 2, &mut out[w]);
            }
            if n > 0 {
                waiting = Some(i);
            }
        }
        if let Some(w) = waiting {
            self.reorder_exact(context, queries.row(w), w % 2, &mut out[w]);
        }
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes()
            + self
                .sq8
                .as_ref()
                .map_or(0, |(_, codes)| codes.memory_bytes())
    }

    fn context_memory_bytes(context: &IvfFastScanContext) -> usize {
        context.probe.memory_bytes()
            + context.floats.capacity() * size_of::<f32>()
            + context.table.bytes().len()
            + context.estimates.memory_bytes()
            + context
                .positions
                .iter()
                .map(|p| p.capacity() * size_of::<u32>())
                .sum::<usize>()
            + context.exact.memory_bytes()
            + context.coarse.memory_bytes()
    }

    fn distance_count(context: &IvfFastScanContext) -> u64 {
        context.distances
    }
}

/// The weight of the error along a data point relative to the error across
/// it for ScaNN's anisotropic threshold `t` in `dim` dimensions: the ratio
/// `(dim - 1)·t² / (1 - t²)` of the expected parallel and orthogonal
/// losses of a query at inner product `t` with a unit point, at least 1.
pub fn parallel_weight(t: f32, dim: usize) -> f32 {
    let t2 = t * t;
    ((dim.saturating_sub(1) as f32) * t2 / (1.0 - t2)).max(1.0)
}
