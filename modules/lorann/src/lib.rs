//! LoRANN (Jääsaari, Hyvönen and Roos, NeurIPS 2024, arXiv 2410.18926):
//! an IVF index whose clusters are scored by low-rank regression models
//! instead of by scanning their vectors.
//!
//! # Index ([`Lorann`], the construction slot)
//!
//! 1. **Global reduction.** The vectors are projected onto the
//!    `dim_reduction` leading eigenvectors of their uncentred second-moment
//!    matrix ([`Projection`], fitted on a sample of at most
//!    [`PCA_SAMPLE`] vectors). Skipped when `dim_reduction >= dim`.
//! 2. **Clusters.** annvil-ivf's [`KMeans`] partitions the reduced vectors
//!    into `nlist` clusters; queries visit them by the metric
//!    ([`Centroids`], [`Probe`]).
//! 3. **Training queries.** A sample of `train_queries` base vectors acts
//!    as the query distribution; each one trains the models of its
//!    `train_probe` nearest clusters (a cluster with fewer routed queries
//!    than points trains on its own points).
//! 4. **Per-cluster models.** Each cluster gets a rank-`rank`
//!    [`RrrModel`] of the inner products between a (reduced) query and its
//!    (reduced) points, fitted by reduced-rank regression on its training
//!    queries: two factors, `Aᵀ` (`rank × dim_reduction`) and `Vᵀ`
//!    (`rank × cluster size`).
//!
//! # Search ([`LorannSearch`], knobs `nprobe` and `reorder`)
//!
//! The query is projected once, the `nprobe` nearest clusters are chosen,
//! and each point of those clusters is scored by its model in
//! `O(rank)` instead of `O(dim)`: `s = (q·A)·Vᵀ`, turned into the metric's
//! distance (`‖x‖² − 2s` with the exact precomputed norms for L2, `−s` for
//! inner product, `1 − s` for angular). The best `reorder` estimates (at
//! least the `n` asked for) are measured exactly on the f32 vectors and the
//! best `n` returned, as LoRANN's own search reranks its
//! `points_to_rerank`: a sweep of `reorder` reaches the recall the models'
//! estimates alone cannot.
//!
//! Build parameters: `nlist` (0, the default, means `sqrt(n)`), `rank`
//! (default 32), `dim_reduction` (default 128; values at or above the
//! dimension keep all dimensions), `train_queries` (0, the default, means
//! every base vector), `train_probe` (default 5), and the clustering's
//! `iterations`, `sample` and `seed` (see [`KMeans::from_params`]).
//!
//! The paper's 8-bit quantisation of the factors is not implemented: the
//! f32 factors are already `rank` floats per point.
//!
//! # Linear algebra
//!
//! The fits need a symmetric eigendecomposition (PCA, up to 784 × 784 for
//! Fashion-MNIST), a thin QR and a thin SVD per cluster, and dense matrix
//! products of a few billion flops. These come from [`faer`], a maintained
//! pure-Rust linear-algebra crate with blocked, SIMD kernels, used
//! sequentially (its rayon feature is off; the build parallelises over
//! clusters and row blocks itself). Writing robust eigen and SVD solvers
//! here would duplicate well-tested code for no gain.

mod model;
mod pca;
mod search;

use annvil_abi::{
    Base, Construction, Error, GraphView, Metric, ParamSpec, Params, Result, Vectors,
};
use annvil_core::{SplitMix64, parallel_map, sample_indices};
use annvil_distance::Kernels;
use annvil_ivf::{Centroids, InvertedLists, KMeans, Probe};

pub use model::{RrrModel, Scorer};
pub use pca::Projection;
pub use search::{DEFAULT_REORDER, LorannContext, LorannSearch};

/// Default rank of the per-cluster models.
pub const DEFAULT_RANK: usize = 32;

/// Default reduced dimension.
pub const DEFAULT_DIM_REDUCTION: usize = 128;

/// Default number of nearest clusters each training query trains.
pub const DEFAULT_TRAIN_PROBE: usize = 5;

/// Most vectors the global projection is fitted on.
pub const PCA_SAMPLE: usize = 16_384;

/// Largest accepted `rank` and `dim_reduction`.
pub const MAX_RANK: usize = 4096;

/// LoRANN build parameters (see the crate documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LorannParams {
    /// The clustering (`nlist`, `iterations`, `sample`, `seed`).
    pub kmeans: KMeans,
    /// Rank of the per-cluster models.
    pub rank: usize,
    /// Dimension after the global reduction (at most the data's is used).
    pub dim_reduction: usize,
    /// Base vectors sampled as training queries (at most `n` are used;
    /// [`LorannParams::from_params`] turns the 0 of variant.yaml into `n`).
    pub train_queries: usize,
    /// Nearest clusters each training query trains (at most `nlist`).
    pub train_probe: usize,
}

impl LorannParams {
    /// Reads and checks the parameters for a base of `n` vectors.
    pub fn from_params(params: &mut Params, n: usize) -> Result<LorannParams> {
        let kmeans = KMeans::from_params(params, n)?;
        let mut parsed = LorannParams {
            rank: params.get_or("rank", DEFAULT_RANK)?,
            dim_reduction: params.get_or("dim_reduction", DEFAULT_DIM_REDUCTION)?,
            train_queries: params.get_or("train_queries", 0)?,
            train_probe: params.get_or("train_probe", DEFAULT_TRAIN_PROBE)?,
            kmeans,
        };
        for (name, value, min, max) in [
            ("rank", parsed.rank, 1, MAX_RANK),
            ("dim_reduction", parsed.dim_reduction, 1, MAX_RANK),
            ("train_queries", parsed.train_queries, 0, u32::MAX as usize),
            ("train_probe", parsed.train_probe, 1, annvil_ivf::MAX_NLIST),
        ] {
            if !(min..=max).contains(&value) {
                return Err(Error::invalid(format!(
                    "parameter `{name}` must be in {min}..={max}, not {value}"
                )));
            }
        }
        if parsed.train_queries == 0 {
            parsed.train_queries = n;
        }
        Ok(parsed)
    }
}

/// A built LoRANN index: the construction slot of annvil-lorann.
#[derive(Debug)]
pub struct Lorann {
    params: LorannParams,
    dim: usize,
    /// `None` when no reduction applies.
    projection: Option<Projection>,
    /// In the reduced space.
    centroids: Centroids,
    lists: InvertedLists,
    /// One per list.
    models: Vec<RrrModel>,
    /// `‖x‖²` of every vector in list order (L2 only, else empty).
    norms: Vec<f32>,
}

impl Lorann {
    /// Builds the index over `base` on up to `threads` threads.
    pub fn build_with(
        base: Vectors<'_>,
        metric: Metric,
        params: &LorannParams,
        threads: usize,
    ) -> Result<Lorann> {
        let dim = base.dim();
        let reduced_dim = params.dim_reduction.min(dim);
        let projection = if reduced_dim < dim && !base.is_empty() {
            let seed = params.kmeans.seed;
            Some(Projection::fit(
                base,
                reduced_dim,
                PCA_SAMPLE,
                seed,
                threads,
            )?)
        } else {
            None
        };
        let reduced_data = projection.as_ref().map(|p| p.apply_all(base, threads));
        let reduced = match &reduced_data {
            Some(data) => Vectors::new(data, reduced_dim)?,
            None => base,
        };
        let clustering = params.kmeans.train(reduced, metric, threads);
        let lists = InvertedLists::new(
            &clustering.assign_all(reduced, threads),
            clustering.centroids.len(),
        );
        let centroids = clustering.centroids;
        let models = fit_models(reduced, &centroids, &lists, params, threads)?;
        let norms = if metric == Metric::L2 {
            let kernels = Kernels::best();
            lists
                .ids()
                .iter()
                .map(|&id| {
                    let x = base.row(id as usize);
                    kernels.dot(x, x)
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Lorann {
            params: params.clone(),
            dim,
            projection,
            centroids,
            lists,
            models,
            norms,
        })
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &LorannParams {
        &self.params
    }

    /// The global projection, if the dimension is reduced.
    pub fn projection(&self) -> Option<&Projection> {
        self.projection.as_ref()
    }

    /// The centroids, in the reduced space.
    pub fn centroids(&self) -> &Centroids {
        &self.centroids
    }

    /// The clusters.
    pub fn lists(&self) -> &InvertedLists {
        &self.lists
    }

    /// The model of cluster `c`.
    pub fn model(&self, c: usize) -> &RrrModel {
        &self.models[c]
    }

    /// The metric of the index.
    pub fn metric(&self) -> Metric {
        self.centroids.metric()
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        self.lists.ids().len()
    }

    /// True when no vector is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimension of the (unreduced) vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Fits the model of every cluster of `reduced` (see the crate docs).
fn fit_models(
    reduced: Vectors<'_>,
    centroids: &Centroids,
    lists: &InvertedLists,
    params: &LorannParams,
    threads: usize,
) -> Result<Vec<RrrModel>> {
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    // A stream of the seed independent of the k-means sample's.
    let mut rng = SplitMix64::new(params.kmeans.seed ^ 0x7261_696e_5f71_7279);
    let train = sample_indices(reduced.len(), params.train_queries, &mut rng);
    let probe = params.train_probe.min(lists.len());
    let routes = parallel_map(train.len(), threads, |i| {
        let mut scratch = Probe::new(lists.len());
        let query = reduced.row(train[i] as usize);
        scratch
            .select(centroids, lists, query, probe, 0)
            .iter()
            .map(|c| c.id)
            .collect::<Vec<u32>>()
    });
    // Route entry `j` is training query `train[j / probe]`.
    let routed = InvertedLists::new(&routes.concat(), lists.len());
    let gather = |ids: &mut dyn Iterator<Item = usize>| -> Vec<f32> {
        ids.flat_map(|id| reduced.row(id)).copied().collect()
    };
    parallel_map(lists.len(), threads, |c| {
        let points = gather(&mut lists.list(c).iter().map(|&id| id as usize));
        let entries = routed.list(c);
        let queries = if entries.len() < lists.size(c) {
            points.clone()
        } else {
            gather(&mut entries.iter().map(|&j| train[j as usize / probe] as usize))
        };
        RrrModel::fit(&points, &queries, reduced.dim(), params.rank)
    })
    .into_iter()
    .collect()
}

impl Construction for Lorann {
    const PARAMS: &'static [ParamSpec] = &{
        let [nlist, iterations, sample, seed] =
            KMeans::declared("number of clusters (0: sqrt(n); at most n are used)");
        [
            nlist,
            iterations,
            sample,
            seed,
            ParamSpec::int(
                "rank",
                1,
                256,
                "32",
                "rank of the per-cluster regression models",
            ),
            ParamSpec::int(
                "dim_reduction",
                1,
                MAX_RANK as i64,
                "128",
                "dimension after the global PCA (the data's dimension or more: none)",
            ),
            ParamSpec::int(
                "train_queries",
                0,
                u32::MAX as i64,
                "0",
                "base vectors used as training queries (0: all)",
            ),
            ParamSpec::int(
                "train_probe",
                1,
                64,
                "5",
                "nearest clusters whose models each training query trains",
            ),
        ]
    };

    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Lorann> {
        let params = LorannParams::from_params(params, base.len())?;
        if u32::try_from(base.len()).is_err() {
            return Err(Error::unsupported(format!(
                "{} base vectors do not fit u32 ids",
                base.len()
            )));
        }
        Lorann::build_with(base, metric, &params, threads)
    }

    fn view(&self) -> GraphView<'_> {
        GraphView::default()
    }

    fn memory_bytes(&self) -> usize {
        self.projection.as_ref().map_or(0, Projection::memory_bytes)
            + self.centroids.memory_bytes()
            + self.lists.memory_bytes()
            + self
                .models
                .iter()
                .map(RrrModel::memory_bytes)
                .sum::<usize>()
            + self.models.capacity() * size_of::<RrrModel>()
            + self.norms.capacity() * size_of::<f32>()
    }
}
