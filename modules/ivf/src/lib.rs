//! Inverted-file (IVF) indexing: k-means clustering, inverted lists, and
//! the IVF-Flat search.
//!
//! * [`KMeans`] clusters vectors: a uniform sample of at most `sample`
//!   vectors (default 64 per centroid), random initial centroids, Lloyd
//!   iterations, empty clusters re-seeded, all seeded and multi-threaded
//!   with a result independent of the thread count. L2 and inner-product
//!   data are partitioned by squared L2, angular data by spherical k-means
//!   (unit centroids, `1 - <x, c>`).
//! * [`Centroids`] hold the centroids with the partition rule and the
//!   query routing rule (the index metric: inner-product queries visit
//!   lists by `-<q, c>`); [`InvertedLists`] group ids by centroid;
//!   [`Probe`] picks the lists a query scans; annvil-core's `TopK` keeps
//!   the best results of a scan.
//! * [`Ivf`] is the construction slot: it clusters the base vectors,
//!   assigns every vector to its nearest centroid and copies the vectors
//!   into list order, so a list is one contiguous block. Its standard
//!   [`GraphView`] is empty (an IVF index is no graph): only this crate's
//!   own search slot can use it, through the native handle.
//! * [`IvfFlatSearch`] is the search slot: it ranks the centroids, scans
//!   the `nprobe` nearest lists with the f32 SIMD kernel of the metric and
//!   keeps the best `n` (more lists are scanned when those hold fewer than
//!   `n` vectors). With `nprobe` equal to the number of lists the search is
//!   exact.
//!
//! Build parameters of [`Ivf`]: `nlist` (0, the default, means
//! `sqrt(n)`; at most `n` are used), `iterations` (default 10), `sample`
//! (0, the default, means `64·nlist`) and `seed` (default 0). Knob of
//! [`IvfFlatSearch`]: `nprobe` (default [`DEFAULT_NPROBE`]).

mod coarse;
mod kmeans;
mod search;

use annvil_abi::{
    Base, Construction, Error, GraphView, Metric, ParamSpec, Params, Result, Vectors,
};

pub use coarse::{Centroids, InvertedLists, Probe};
pub use kmeans::{Clustering, KMeans};
pub use search::{
    DEFAULT_NPROBE, IvfFlatContext, IvfFlatSearch, MAX_REORDER, NPROBE, REORDER, read_depth,
    read_nprobe,
};

/// Largest accepted `nlist`.
pub const MAX_NLIST: usize = 1 << 24;

/// Largest accepted `iterations`.
pub const MAX_ITERATIONS: usize = 1000;

/// Default training vectors per centroid (`sample = 64·nlist`).
pub const SAMPLE_PER_CENTROID: usize = 64;

/// Default Lloyd iterations.
pub const DEFAULT_ITERATIONS: usize = 10;

impl KMeans {
    /// Reads the clustering parameters for `n` vectors: `nlist` (in
    /// `0..=MAX_NLIST`; 0, the default, means [`default_nlist`]`(n)`),
    /// `iterations` (in
    /// `0..=MAX_ITERATIONS`, default [`DEFAULT_ITERATIONS`]), `sample` (0,
    /// the default, means [`SAMPLE_PER_CENTROID`]`·nlist`; otherwise at
    /// least `nlist`) and `seed` (default 0).
    pub fn from_params(params: &mut Params, n: usize) -> Result<KMeans> {
        let nlist = params.get_or("nlist", 0usize)?;
        let iterations = params.get_or("iterations", DEFAULT_ITERATIONS)?;
        let sample = params.get_or("sample", 0usize)?;
        let seed = params.get_or("seed", 0u64)?;
        if nlist > MAX_NLIST {
            return Err(Error::invalid(format!(
                "parameter `nlist` must be in 0..={MAX_NLIST} (0: automatic), not {nlist}"
            )));
        }
        let clusters = if nlist == 0 { default_nlist(n) } else { nlist };
        if iterations > MAX_ITERATIONS {
            return Err(Error::invalid(format!(
                "parameter `iterations` must be in 0..={MAX_ITERATIONS}, not {iterations}"
            )));
        }
        let sample = match sample {
            0 => clusters.saturating_mul(SAMPLE_PER_CENTROID),
            s if s < clusters => {
                return Err(Error::invalid(format!(
                    "parameter `sample` must be 0 (automatic) or at least `nlist` \
                     ({clusters}), not {s}"
                )));
            }
            s => s,
        };
        Ok(KMeans {
            clusters,
            iterations,
            sample,
            seed,
        })
    }

    /// Declarations of the parameters [`KMeans::from_params`] reads, with
    /// the `nlist` description `nlist_doc`; slots add their own.
    pub const fn declared(nlist_doc: &'static str) -> [ParamSpec; 4] {
        [
            ParamSpec::int("nlist", 0, 65_536, "0", nlist_doc),
            ParamSpec::int(
                "iterations",
                0,
                MAX_ITERATIONS as i64,
                "10",
                "Lloyd iterations of k-means",
            ),
            ParamSpec::int(
                "sample",
                0,
                1 << 24,
                "0",
                "vectors k-means trains on (0: 64 per list)",
            ),
            ParamSpec::int(
                "seed",
                0,
                u32::MAX as i64,
                "0",
                "seed of the k-means sample and draws (any u64 is accepted)",
            ),
        ]
    }
}

/// The default `nlist` for `n` vectors: `sqrt(n)`, at least 1.
///
/// On Fashion-MNIST (60 000 × 784) IVF-Flat with `sqrt(n)` = 245 lists
/// matched or beat 490 and 980 lists on QPS at recall 0.85 to 0.95 and
/// built 4 and 15 times as fast (k-means costs grow with `nlist²` at 64
/// training vectors per list).
pub fn default_nlist(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(1)
}

/// Fails unless an index of kind `index` (named in the message) that holds
/// `(metric, count, dim)` could have been built on `base` with `metric`:
/// the check every search slot over a partition index makes at prepare.
pub fn check_index_built_on(
    index: &str,
    (built_metric, count, dim): (Metric, usize, usize),
    base: Base,
    metric: Metric,
) -> Result<()> {
    if built_metric != metric {
        return Err(Error::invalid(format!(
            "the {index} index was built for the {built_metric} metric, not {metric}"
        )));
    }
    if count != base.len() || dim != base.dim() {
        return Err(Error::invalid(format!(
            "the {index} index holds {count} vectors of dimension {dim}, the base {} of \
             dimension {}",
            base.len(),
            base.dim()
        )));
    }
    Ok(())
}

/// A built IVF index: centroids, inverted lists, and the base vectors
/// copied into list order. The construction slot of annvil-ivf.
#[derive(Debug)]
pub struct Ivf {
    kmeans: KMeans,
    objective: Vec<f64>,
    centroids: Centroids,
    lists: InvertedLists,
    /// The vectors of `lists.ids()`, in that order.
    vectors: Vec<f32>,
    dim: usize,
}

impl Ivf {
    /// Clusters `base` with `kmeans` (at most `base.len()` lists) and fills
    /// the lists, on up to `threads` threads.
    pub fn build_with(base: Vectors<'_>, metric: Metric, kmeans: &KMeans, threads: usize) -> Ivf {
        let clustering = kmeans.train(base, metric, threads);
        let lists = InvertedLists::new(
            &clustering.assign_all(base, threads),
            clustering.centroids.len(),
        );
        let mut vectors = Vec::with_capacity(base.as_slice().len());
        for &id in lists.ids() {
            vectors.extend_from_slice(base.row(id as usize));
        }
        Ivf {
            kmeans: kmeans.clone(),
            objective: clustering.objective,
            centroids: clustering.centroids,
            lists,
            vectors,
            dim: base.dim(),
        }
    }

    /// The clustering settings the index was built with.
    pub fn kmeans(&self) -> &KMeans {
        &self.kmeans
    }

    /// The k-means objective per iteration (see [`Clustering::objective`]).
    pub fn objective(&self) -> &[f64] {
        &self.objective
    }

    /// The centroids (one per list).
    pub fn centroids(&self) -> &Centroids {
        &self.centroids
    }

    /// The inverted lists.
    pub fn lists(&self) -> &InvertedLists {
        &self.lists
    }

    /// The vectors of list `c`, row-major, in the order of
    /// `lists().list(c)`.
    pub fn list_vectors(&self, c: usize) -> &[f32] {
        let range = self.lists.range(c);
        &self.vectors[range.start * self.dim..range.end * self.dim]
    }

    /// Fails unless the index was built on `base` with `metric` (as far as
    /// its count, dimension and metric tell): the check of every search
    /// slot over it.
    pub fn check_built_on(&self, base: Base, metric: Metric) -> Result<()> {
        check_index_built_on("IVF", (self.metric(), self.len(), self.dim()), base, metric)
    }

    /// Every vector in list order (the order of `lists().ids()`).
    pub fn vectors_in_list_order(&self) -> Vectors<'_> {
        Vectors::new(&self.vectors, self.dim).expect("whole rows")
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

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl Construction for Ivf {
    const PARAMS: &'static [ParamSpec] =
        &KMeans::declared("number of lists (0: sqrt(n); at most n are used)");

    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Ivf> {
        let kmeans = KMeans::from_params(params, base.len())?;
        if u32::try_from(base.len()).is_err() {
            return Err(Error::unsupported(format!(
                "{} base vectors do not fit u32 ids",
                base.len()
            )));
        }
        Ok(Ivf::build_with(base, metric, &kmeans, threads))
    }

    fn view(&self) -> GraphView<'_> {
        GraphView::default()
    }

    fn memory_bytes(&self) -> usize {
        self.centroids.memory_bytes()
            + self.lists.memory_bytes()
            + self.vectors.capacity() * size_of::<f32>()
            + self.objective.capacity() * size_of::<f64>()
    }
}
