//! The LoRANN search slot: route, score clusters with their models, measure
//! the best estimates exactly.

use annvil_abi::{Base, Error, Graph, Metric, Neighbors, ParamSpec, Params, Result, Search};
use annvil_core::TopK;
use annvil_ivf::{DEFAULT_NPROBE, NPROBE, Probe, REORDER, read_depth, read_nprobe};
use annvil_rerank::rank_exact;

use crate::{Lorann, Scorer};

/// The LoRANN search slot over this crate's [`Lorann`] construction.
///
/// Knobs (swept): `nprobe` (default [`DEFAULT_NPROBE`]), the number of
/// nearest clusters scored (at least 1; values above the number of clusters
/// score them all), and `reorder` (default [`DEFAULT_REORDER`]), the best
/// model estimates measured exactly on the f32 vectors (at least the `n`
/// asked for are). No prepare parameters. The answer is exactly ordered,
/// with exact distances. Needs the native [`Lorann`] (its standard view is
/// empty).
pub struct LorannSearch {
    index: &'static Lorann,
    base: Base,
    metric: Metric,
    scorer: Scorer,
    nprobe: usize,
    reorder: usize,
}

/// Default of the `reorder` knob.
pub const DEFAULT_REORDER: usize = 100;

/// Per-thread scratch of a [`LorannSearch`].
pub struct LorannContext {
    reduced: Vec<f32>,
    probe: Probe,
    projected: Vec<f32>,
    scores: Vec<f32>,
    top: TopK,
    /// The best estimates, drained from `top` for the exact measurement.
    candidate_ids: Vec<u32>,
    candidate_estimates: Vec<f32>,
    distances: u64,
}

impl LorannSearch {
    /// A searcher over `index`, built on `base` with `metric`.
    pub fn new(index: &'static Lorann, base: Base, metric: Metric) -> Result<LorannSearch> {
        annvil_ivf::check_index_built_on(
            "LoRANN",
            (index.metric(), index.len(), index.dim()),
            base,
            metric,
        )?;
        Ok(LorannSearch {
            index,
            base,
            metric,
            scorer: Scorer::best(),
            nprobe: DEFAULT_NPROBE,
            reorder: DEFAULT_REORDER,
        })
    }

    /// The current `nprobe` knob.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// The current `reorder` knob.
    pub fn reorder(&self) -> usize {
        self.reorder
    }
}

impl Search for LorannSearch {
    type Context = LorannContext;

    const NEEDS_NATIVE_GRAPH: bool = true;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] = &[NPROBE, REORDER];

    fn prepare(base: Base, graph: &Graph, metric: Metric, _params: &mut Params) -> Result<Self> {
        let index = graph.native::<Lorann>().ok_or_else(|| {
            Error::unsupported(
                "LoRANN search needs annvil-lorann's own Lorann construction (it has no \
                 standard graph view), and the host passed no native index",
            )
        })?;
        LorannSearch::new(index, base, metric)
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        self.nprobe = read_nprobe(params, self.nprobe)?;
        self.reorder = read_depth(params, "reorder", self.reorder)?;
        Ok(())
    }

    fn new_context(&self) -> Result<LorannContext> {
        let index = self.index;
        let lists = index.lists();
        let largest = (0..lists.len()).map(|c| lists.size(c)).max().unwrap_or(0);
        Ok(LorannContext {
            reduced: vec![0.0; index.centroids().dim()],
            probe: Probe::new(lists.len()),
            projected: vec![0.0; index.params().rank],
            scores: vec![0.0; largest],
            top: TopK::new(),
            candidate_ids: Vec::new(),
            candidate_estimates: Vec::new(),
            distances: 0,
        })
    }

    fn search(
        &self,
        context: &mut LorannContext,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let n = out.capacity();
        let index = self.index;
        if n == 0 || index.is_empty() {
            return Ok(());
        }
        let reduced = match index.projection() {
            Some(projection) => {
                projection.apply(query, &mut context.reduced);
                &context.reduced[..]
            }
            None => query,
        };
        let depth = self.reorder.max(n);
        let lists = context.probe.select(
            index.centroids(),
            index.lists(),
            reduced,
            self.nprobe,
            depth,
        );
        context.top.reset(depth);
        let mut computed = index.centroids().len() as u64;
        for list in lists {
            let c = list.id as usize;
            let model = index.model(c);
            let scores = &mut context.scores[..model.len()];
            self.scorer
                .scores(model, reduced, &mut context.projected, scores);
            let ids = index.lists().list(c);
            match index.metric() {
                Metric::L2 => {
                    let norms = &index.norms[index.lists().range(c)];
                    for ((&id, &s), &norm) in ids.iter().zip(scores.iter()).zip(norms) {
                        context.top.push(id, norm - 2.0 * s);
                    }
                }
                Metric::InnerProduct => {
                    for (&id, &s) in ids.iter().zip(scores.iter()) {
                        context.top.push(id, -s);
                    }
                }
                Metric::Angular => {
                    for (&id, &s) in ids.iter().zip(scores.iter()) {
                        context.top.push(id, 1.0 - s);
                    }
                }
            }
            computed += ids.len() as u64;
        }
        context.candidate_ids.resize(depth, 0);
        context.candidate_estimates.resize(depth, 0.0);
        let mut candidates =
            Neighbors::new(&mut context.candidate_ids, &mut context.candidate_estimates);
        context.top.drain_into(&mut candidates);
        let found = candidates.len();
        rank_exact(
            &self.base,
            self.metric,
            query,
            context.candidate_ids[..found].iter().copied(),
            out,
        );
        context.distances += computed + found as u64;
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }

    fn context_memory_bytes(context: &LorannContext) -> usize {
        (context.reduced.capacity() + context.projected.capacity() + context.scores.capacity())
            * size_of::<f32>()
            + context.probe.memory_bytes()
            + context.top.memory_bytes()
            + context.candidate_ids.capacity() * size_of::<u32>()
            + context.candidate_estimates.capacity() * size_of::<f32>()
    }

    fn distance_count(context: &LorannContext) -> u64 {
        context.distances
    }
}
