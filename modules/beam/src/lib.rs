//! Graph beam search, the search slot for any graph in the standard view.
//!
//! [`BeamSearch`] descends greedily through the upper levels from the entry
//! point, then runs an ef-bounded best-first search on level 0 (hnswlib's
//! query algorithm). It works on the [`GraphView`] of any construction
//! slot, from any library: at prepare time it copies level 0 into a compact
//! [`FixedDegree`] array, or borrows that array from the construction when
//! the construction is this library's own type `N` (see [`NativeGraph`]).
//!
//! With the prepare parameter `traversal` set to `sq8` or `sq4` the level-0
//! search runs on scalar-quantized codes instead (the GLASS approach): level
//! 0 is repacked into a [`PackedLevel`], one cache-line aligned record per
//! node holding its neighbour list and then its code, and searched by a
//! [`PackedSearch`] with integer code distances and a sorted [`Pool`]. With
//! `traversal: f16` the records hold the vectors as IEEE binary16 instead
//! (half the bytes of f32, about three significant digits) and the search
//! measures them with annvil-distance's f32-query-to-f16 kernels. The
//! prepare parameter `rerank` then recomputes exact f32 distances for the
//! best of the final pool, so the results come out exactly ordered.
//! How far ahead the packed search prefetches codes ([`Prefetch`]) is
//! chosen at prepare time by timing searches for points near the data on
//! the machine, unless `prefetch_ahead` and `prefetch_lines` fix it.
//!
//! The building blocks are public because graph construction needs the same
//! searches: [`LayerSearch`] (epoch-tagged [`VisitedSet`] plus reusable
//! heaps), [`greedy`], and [`Space`], the base vectors behind the single
//! seam to the distance kernels. The graph layout they walk (`FixedDegree`,
//! `Links`) and the scored `Candidate` come from annvil-core.

mod layer;
mod packed;
mod pool;
mod prefetch;
mod region;
mod space;
mod visited;

use std::borrow::Cow;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use annvil_abi::{
    Base, Error, Graph, GraphView, Level, Metric, Neighbors, ParamSpec, Params, Result, Search,
};
use annvil_core::{Candidate, FixedDegree};
use annvil_rerank::rank_exact;

pub use layer::{LayerSearch, descend, greedy, greedy_by};
pub use packed::{Encoding, PackedLevel, PackedSearch, Traversal};
pub use pool::{MAX_POOL_ID, Pool};
pub use prefetch::{MAX_PREFETCH_AHEAD, MAX_PREFETCH_LINES, Prefetch};
pub use region::Region;
pub use space::Space;
pub use visited::VisitedSet;

/// A construction whose graph [`BeamSearch`] can search without copying
/// level 0, when both slots come from the same library.
pub trait NativeGraph: Send + Sync + 'static {
    /// Level 0 in the fixed-stride layout, over all nodes.
    fn level0(&self) -> &FixedDegree;
}

/// The `N` of a [`BeamSearch`] that only reads the standard view. It has no
/// values, so no construction slot is ever of this type.
pub enum StandardGraph {}

impl NativeGraph for StandardGraph {
    fn level0(&self) -> &FixedDegree {
        match *self {}
    }
}

/// Default of the `ef` knob.
pub const DEFAULT_EF: usize = 10;

/// The largest `ef` and `rerank` accepted.
pub const MAX_BEAM: usize = 1 << 20;

/// Points searched for, one after another, to time each prefetch setting
/// at prepare time.
const TUNING_QUERIES: usize = 400;

/// Beam width of those searches (GLASS tunes at its default of 32).
const TUNING_EF: usize = 32;

/// Timed passes over the tuning queries per setting; the fastest counts.
const TUNING_ROUNDS: usize = 3;

/// Records smaller than this stay in the caches, where prefetching cannot
/// matter: their search keeps [`Prefetch::default`] untimed.
const TUNING_MIN_BYTES: usize = 8 << 20;

/// Prepare parameters of a [`BeamSearch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BeamOptions {
    /// `traversal`: how level 0 measures distances: `f32` (the default),
    /// `sq8`/`sq4` codes or `f16` vectors packed with the lists.
    pub traversal: Traversal,
    /// `rerank`: when positive, the best `max(rerank, n)` of the final pool
    /// get exact f32 distances and the best `n` of them are returned
    /// (default 0: the pool's own order and distances). Skipped for a query
    /// whose code distances are already exact (see
    /// [`PackedSearch::distances_are_exact`]), e.g. pixel data under SQ8
    /// or f16.
    pub rerank: usize,
    /// `prefetch_ahead`: how many neighbours ahead a packed search asks for
    /// codes (`None`, parameter 0, the default: timed at prepare time).
    pub prefetch_ahead: Option<usize>,
    /// `prefetch_lines`: cache lines of each such code (`None`, parameter
    /// 0, the default: timed at prepare time).
    pub prefetch_lines: Option<usize>,
}

impl BeamOptions {
    /// Reads `traversal` (`f32`, `sq8`, `sq4` or `f16`), `rerank`
    /// (0..=2^20), `prefetch_ahead` (0..=64) and `prefetch_lines` (0..=16),
    /// each defaulting to [`BeamOptions::default`]; errors name the
    /// parameter and the accepted values.
    pub fn from_params(params: &mut Params) -> Result<BeamOptions> {
        let traversal = match params.get::<String>("traversal")? {
            Some(name) => name.parse()?,
            None => Traversal::default(),
        };
        let rerank = params.get_or("rerank", 0usize)?;
        if rerank > MAX_BEAM {
            return Err(Error::invalid(format!(
                "parameter `rerank` must be in 0..={MAX_BEAM}, not {rerank}"
            )));
        }
        let mut tuned = |name: &str, most: usize| -> Result<Option<usize>> {
            let value = params.get_or(name, 0usize)?;
            if value > most {
                return Err(Error::invalid(format!(
                    "parameter `{name}` must be in 0..={most} (0: timed at prepare time), not {value}"
                )));
            }
            Ok((value > 0).then_some(value))
        };
        let prefetch_ahead = tuned("prefetch_ahead", MAX_PREFETCH_AHEAD)?;
        let prefetch_lines = tuned("prefetch_lines", MAX_PREFETCH_LINES)?;
        Ok(BeamOptions {
            traversal,
            rerank,
            prefetch_ahead,
            prefetch_lines,
        })
    }
}

/// Level 0 as the search reads it.
enum Level0 {
    /// Lists only, distances on the f32 base vectors.
    Flat(Cow<'static, FixedDegree>),
    /// Lists and codes (SQ or f16) in one record per node.
    Packed(PackedLevel),
}

/// Beam search over a graph view; `N` is the construction whose native
/// graph it borrows when the host passes one (see [`NativeGraph`]).
///
/// Knob (swept): `ef`, the beam width on level 0 (default
/// [`DEFAULT_EF`]); a search for `n` results uses `max(ef, n)`. Prepare
/// parameters: `traversal` and `rerank` (see [`BeamOptions`]).
pub struct BeamSearch<N: NativeGraph = StandardGraph> {
    space: Space<'static>,
    metric: Metric,
    level0: Level0,
    /// Levels 1.., borrowed from the view.
    upper: Vec<Level<'static>>,
    entry_points: Vec<u32>,
    ef: usize,
    options: BeamOptions,
    native: PhantomData<fn() -> N>,
}

/// Per-thread scratch of a [`BeamSearch`].
pub struct BeamContext {
    layer: LayerSearch,
    /// Scratch of the quantized traversal, when level 0 is packed.
    packed: Option<PackedSearch>,
    seeds: Vec<Candidate>,
    distances: u64,
}

impl<N: NativeGraph> BeamSearch<N> {
    /// A searcher over `base` and `view` with f32 traversal and no rerank.
    /// Level 0 is borrowed from `native` when given (it must cover every
    /// base vector), else copied from the view into a fixed-stride array.
    ///
    /// Fails with [`annvil_abi::StatusCode::Unsupported`] when the view has no
    /// levels, and with an invalid-argument error when it is not a valid
    /// graph over `base`.
    pub fn from_view(
        base: Base,
        view: &GraphView<'static>,
        metric: Metric,
        native: Option<&'static FixedDegree>,
    ) -> Result<BeamSearch<N>> {
        BeamSearch::with_options(base, view, metric, native, BeamOptions::default())
    }

    /// A searcher like [`from_view`](Self::from_view) with `options`: for a
    /// quantized or f16 traversal level 0 (native or copied) is repacked
    /// with the codes of `base` into a [`PackedLevel`].
    pub fn with_options(
        base: Base,
        view: &GraphView<'static>,
        metric: Metric,
        native: Option<&'static FixedDegree>,
        options: BeamOptions,
    ) -> Result<BeamSearch<N>> {
        let Some((level0, upper)) = view.levels.split_first() else {
            return Err(Error::unsupported(
                "beam search needs a graph, and the construction slot built none",
            ));
        };
        view.validate(base.len())?;
        let native = native.filter(|native| native.num_nodes() == base.len());
        let level0 = match options.traversal.encoding() {
            // An empty base keeps the flat layout: there is nothing to search.
            Some(encoding) if !base.is_empty() => Level0::Packed(match native {
                Some(native) => PackedLevel::new(native, base, metric, encoding)?,
                None => PackedLevel::new(level0, base, metric, encoding)?,
            }),
            _ => Level0::Flat(match native {
                Some(native) => Cow::Borrowed(native),
                None => Cow::Owned(FixedDegree::from_level(level0, base.len())),
            }),
        };
        let entry_points = if view.entry_points.is_empty() && !base.is_empty() {
            vec![0]
        } else {
            view.entry_points.to_vec()
        };
        let mut search = BeamSearch {
            space: Space::new(base, metric),
            metric,
            level0,
            upper: upper.to_vec(),
            entry_points,
            ef: DEFAULT_EF,
            options,
            native: PhantomData,
        };
        if let Level0::Packed(level) = &mut search.level0 {
            level.set_prefetch(Prefetch {
                ahead: options.prefetch_ahead.unwrap_or(Prefetch::default().ahead),
                lines: options.prefetch_lines.unwrap_or(Prefetch::default().lines),
            });
            if level.memory_bytes() >= TUNING_MIN_BYTES {
                search.tune_prefetch()?;
            }
        }
        Ok(search)
    }

    /// Chooses the prefetch settings of a packed level 0 that search
    /// fastest on this machine, among the [`Prefetch::candidates`] the
    /// options leave open: first the number of lines (at the default
    /// `ahead`), then `ahead` (at those lines), each setting timed on
    /// searches for `TUNING_QUERIES` points near the data (midpoints of
    /// spread base vectors and their first neighbours), the fastest of
    /// `TUNING_ROUNDS` passes counting (see [`Prefetch::fastest`]).
    /// Results do not depend on the choice, only speed. Does nothing for a
    /// flat level 0.
    pub fn tune_prefetch(&mut self) -> Result<()> {
        let Level0::Packed(level) = &self.level0 else {
            return Ok(());
        };
        let (max_degree, code_lines) = (level.max_degree(), level.code_lines());
        let queries = self.tuning_queries(level);
        let mut context = self.new_context()?;
        let mut time = |search: &mut Self, prefetch: Prefetch| -> Duration {
            if let Level0::Packed(level) = &mut search.level0 {
                level.set_prefetch(prefetch);
            }
            let start = Instant::now();
            for query in &queries {
                search.search_packed(&mut context, query, TUNING_EF);
            }
            start.elapsed()
        };
        let ahead = self.options.prefetch_ahead;
        let lines = Prefetch::candidates(
            max_degree,
            code_lines,
            Some(ahead.unwrap_or(Prefetch::default().ahead)),
            self.options.prefetch_lines,
        );
        // One untimed pass brings what the searches touch into the state
        // the timed passes will find it in.
        time(self, lines[0]);
        let lines = Prefetch::fastest(&lines, TUNING_ROUNDS, |p| time(self, p)).lines;
        let aheads = Prefetch::candidates(max_degree, code_lines, ahead, Some(lines));
        let fastest = Prefetch::fastest(&aheads, TUNING_ROUNDS, |p| time(self, p));
        if let Level0::Packed(level) = &mut self.level0 {
            level.set_prefetch(fastest);
        }
        Ok(())
    }

    /// Queries near the data for [`tune_prefetch`](Self::tune_prefetch):
    /// the midpoints of a spread of base vectors and their first
    /// neighbours in `level` (unit-normalised for angular data), points
    /// the index does not hold, as a search's queries are.
    fn tuning_queries(&self, level: &PackedLevel) -> Vec<Vec<f32>> {
        let n = self.space.len();
        let count = TUNING_QUERIES.min(n);
        (0..count)
            .map(|i| {
                let v = (i * n / count) as u32;
                let u = level.links(v).next().unwrap_or(v);
                let (a, b) = (self.space.row(v), self.space.row(u));
                let mut query: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect();
                let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
                if self.metric == Metric::Angular && norm > 0.0 {
                    query.iter_mut().for_each(|x| *x /= norm);
                }
                query
            })
            .collect()
    }

    /// The prefetch settings of a packed level 0 (`None` for a flat one).
    pub fn prefetch(&self) -> Option<Prefetch> {
        match &self.level0 {
            Level0::Packed(level) => Some(level.prefetch()),
            Level0::Flat(_) => None,
        }
    }

    /// The current `ef` knob.
    pub fn ef(&self) -> usize {
        self.ef
    }

    /// The prepare parameters.
    pub fn options(&self) -> BeamOptions {
        self.options
    }

    /// True when level 0 is borrowed from the construction's native graph
    /// (never for a packed traversal, which repacks it).
    pub fn uses_native_graph(&self) -> bool {
        matches!(self.level0, Level0::Flat(Cow::Borrowed(_)))
    }

    /// Fills `seeds` with where the level-0 search starts (see
    /// [`descend`]).
    fn seed(
        &self,
        seeds: &mut Vec<Candidate>,
        computed: &mut u64,
        distance: impl FnMut(u32) -> f32,
    ) {
        descend(&self.upper, &self.entry_points, seeds, computed, distance);
    }

    /// The packed level-0 search for `query` with beam `ef` from the
    /// descent's seeds, which leaves its nodes in `packed`'s pool. Returns
    /// the number of code distances computed.
    fn run_packed(
        &self,
        level: &PackedLevel,
        packed: &mut PackedSearch,
        seeds: &mut Vec<Candidate>,
        query: &[f32],
        ef: usize,
    ) -> u64 {
        let mut computed = 0;
        packed.set_query(query);
        self.seed(seeds, &mut computed, |id| packed.distance(level, id));
        computed += packed.start(level, seeds.iter().map(|seed| seed.id), ef);
        computed + packed.run(level)
    }

    /// [`run_packed`](Self::run_packed) in `context`, for the timing of
    /// prefetch settings; nothing for a flat level 0.
    fn search_packed(&self, context: &mut BeamContext, query: &[f32], ef: usize) {
        if let (Level0::Packed(level), Some(packed)) = (&self.level0, context.packed.as_mut()) {
            self.run_packed(level, packed, &mut context.seeds, query, ef);
        }
    }

    /// Writes the best of `found` (closest first) to `out`: as they are, or
    /// when `rerank` is set and the `rerank` option positive, the exact
    /// ranking of the first `max(rerank, n)`. Returns the number of exact
    /// distances computed.
    fn emit(
        &self,
        found: impl ExactSizeIterator<Item = Candidate>,
        query: &[f32],
        out: &mut Neighbors<'_>,
        rerank: bool,
    ) -> u64 {
        if !rerank || self.options.rerank == 0 {
            for candidate in found {
                if !out.push(candidate.id, candidate.distance) {
                    break;
                }
            }
            return 0;
        }
        let ranked = found.len().min(self.options.rerank.max(out.capacity()));
        let ids = found.take(ranked).map(|candidate| candidate.id);
        rank_exact(&self.space.vectors(), self.metric, query, ids, out);
        ranked as u64
    }
}

impl<N: NativeGraph> Search for BeamSearch<N> {
    type Context = BeamContext;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] = &[
        ParamSpec::int("ef", 1, MAX_BEAM as i64, "10", "beam width on level 0").knob(),
        ParamSpec::choice(
            "traversal",
            &["f32", "sq8", "sq4", "f16"],
            "f32",
            "level-0 distances: f32 vectors, or SQ8/SQ4 codes or f16 vectors packed with the lists",
        ),
        ParamSpec::int(
            "rerank",
            0,
            MAX_BEAM as i64,
            "0",
            "exact f32 rerank of the best max(rerank, n) of the pool (0: none)",
        ),
        ParamSpec::int(
            "prefetch_ahead",
            0,
            MAX_PREFETCH_AHEAD as i64,
            "0",
            "neighbours ahead whose codes a packed search prefetches (0: timed at prepare time)",
        ),
        ParamSpec::int(
            "prefetch_lines",
            0,
            MAX_PREFETCH_LINES as i64,
            "0",
            "cache lines of each prefetched code (0: timed at prepare time)",
        ),
    ];

    fn prepare(base: Base, graph: &Graph, metric: Metric, params: &mut Params) -> Result<Self> {
        let options = BeamOptions::from_params(params)?;
        BeamSearch::with_options(
            base,
            &graph.view,
            metric,
            graph.native::<N>().map(N::level0),
            options,
        )
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        let ef = params.get_or("ef", self.ef)?;
        if !(1..=MAX_BEAM).contains(&ef) {
            return Err(Error::invalid(format!(
                "parameter `ef` must be in 1..={MAX_BEAM}, not {ef}"
            )));
        }
        self.ef = ef;
        Ok(())
    }

    fn new_context(&self) -> Result<BeamContext> {
        let (layer, packed) = match &self.level0 {
            Level0::Flat(_) => (LayerSearch::new(self.space.len()), None),
            Level0::Packed(level) => (LayerSearch::new(0), Some(PackedSearch::new(level))),
        };
        Ok(BeamContext {
            layer,
            packed,
            seeds: Vec::with_capacity(self.entry_points.len()),
            distances: 0,
        })
    }

    fn search(
        &self,
        context: &mut BeamContext,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        if out.capacity() == 0 || self.space.is_empty() {
            return Ok(());
        }
        let ef = self.ef.max(out.capacity());
        let BeamContext {
            layer,
            packed,
            seeds,
            distances,
        } = context;
        let mut computed = 0;
        match &self.level0 {
            Level0::Flat(level0) => {
                self.seed(seeds, &mut computed, |id| self.space.to(query, id));
                computed += layer.search(&**level0, &self.space, query, seeds, ef);
                computed += self.emit(layer.results().iter().copied(), query, out, true);
            }
            Level0::Packed(level) => {
                let packed = packed
                    .as_mut()
                    .expect("contexts of a packed level 0 hold its scratch");
                computed += self.run_packed(level, packed, seeds, query, ef);
                let rerank = !packed.distances_are_exact(level);
                computed += self.emit(packed.results(), query, out, rerank);
            }
        }
        *distances += computed;
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        let level0 = match &self.level0 {
            Level0::Flat(Cow::Owned(copy)) => copy.memory_bytes(),
            Level0::Flat(Cow::Borrowed(_)) => 0,
            Level0::Packed(level) => level.memory_bytes(),
        };
        level0
            + self.upper.capacity() * size_of::<Level<'static>>()
            + self.entry_points.capacity() * size_of::<u32>()
    }

    fn context_memory_bytes(context: &BeamContext) -> usize {
        context.layer.memory_bytes()
            + context
                .packed
                .as_ref()
                .map_or(0, PackedSearch::memory_bytes)
            + context.seeds.capacity() * size_of::<Candidate>()
    }

    fn distance_count(context: &BeamContext) -> u64 {
        context.distances
    }
}
