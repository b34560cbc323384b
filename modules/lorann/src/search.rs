//! The LoRANN search slot: route, score clusters with their models, keep
//! the best candidates.

use annvil_abi::{Base, Error, Graph, Metric, Neighbors, ParamSpec, Params, Result, Search};
use annvil_core::TopK;
use annvil_ivf::{DEFAULT_NPROBE, NPROBE, Probe, read_nprobe};

use crate::{Lorann, Scorer};

/// The LoRANN search slot over this crate's [`Lorann`] construction.
///
/// Knob (swept): `nprobe` (default [`DEFAULT_NPROBE`]), the number of nearest clusters scored (at least
/// 1; values above the number of clusters score them all). No prepare
/// parameters. The distances it returns are the models' estimates, so it
/// is meant to be followed by an exact rerank of its `n` candidates. Needs
/// the native [`Lorann`] (its standard view is empty).
pub struct LorannSearch {
    index: &'static Lorann,
    scorer: Scorer,
    nprobe: usize,
}

/// Per-thread scratch of a [`LorannSearch`].
pub struct LorannContext {
    reduced: Vec<f32>,
    probe: Probe,
    projected: Vec<f32>,
    scores: Vec<f32>,
    top: TopK,
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
            scorer: Scorer::best(),
            nprobe: DEFAULT_NPROBE,
        })
    }

    /// The current `nprobe` knob.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }
}

impl Search for LorannSearch {
    type Context = LorannContext;

    const NEEDS_NATIVE_GRAPH: bool = true;

    const COUNTS_DISTANCES: bool = true;

    const PARAMS: &'static [ParamSpec] = &[NPROBE];

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
        let lists = context
            .probe
            .select(index.centroids(), index.lists(), reduced, self.nprobe, n);
        context.top.reset(n);
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
        context.distances += computed;
        context.top.drain_into(out);
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
    }

    fn distance_count(context: &LorannContext) -> u64 {
        context.distances
    }
}
