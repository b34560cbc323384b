//! The setup every module's integration tests share, so each test file
//! holds only what it checks: a dataset from a spec string, base vectors
//! leaked for `'static` (as the ABI keeps them for a handle), a build
//! through the [`Construction`] trait, every query answered through the
//! [`Search`] trait, and tie-aware recall against exact search.
//!
//! A dev-dependency only: nothing a variant links depends on it.

use annvil_abi::{
    Base, Construction, GraphView, Level, Metric, Neighbors, Params, Search, Vectors,
};
use annvil_dataset::{
    ANN_BENCHMARKS_EPSILON, Dataset, GroundTruth, SyntheticSpec, exact_ground_truth, recall,
};

/// Neighbours per query in the recall tests.
pub const K: usize = 10;

/// The synthetic dataset a spec string names, spelled as on the host's
/// command line (`synthetic:n=…,metric=…`; see
/// [`SyntheticSpec::parse_keys`]). Panics on a bad spec.
pub fn dataset(spec: &str) -> Dataset {
    let keys = spec
        .strip_prefix("synthetic:")
        .unwrap_or_else(|| panic!("dataset `{spec}`: the tests use `synthetic:` data only"));
    SyntheticSpec::parse_keys(keys)
        .and_then(|synthetic| synthetic.generate().map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("dataset `{spec}`: {e}"))
}

/// `values` for `'static`: a prepared handle keeps its inputs that long.
pub fn leak<T>(values: Vec<T>) -> &'static [T] {
    Box::leak(values.into_boxed_slice())
}

/// The base vectors of `data` for `'static`.
pub fn leak_base(data: &Dataset) -> Base {
    Vectors::new(leak(data.train.as_slice().to_vec()), data.train.dim()).unwrap()
}

/// The exact `degree`-NN graph of `data`'s base vectors as a one-level
/// standard view, leaked, as a construction slot from another library
/// could hand it over. kNN graphs of clustered data fall apart into
/// clusters, so the entry points are every `entry_step`-th node.
pub fn knn_graph(data: &Dataset, degree: usize, entry_step: usize) -> GraphView<'static> {
    let n = data.train.len();
    let knn = exact_ground_truth(&data.train, &data.train, data.metric, degree + 1).unwrap();
    let mut offsets = vec![0u64];
    let mut neighbors = Vec::with_capacity(n * degree);
    for v in 0..n {
        let others = knn.row(v).ids.iter().filter(|&&u| u as usize != v);
        neighbors.extend(others.take(degree));
        offsets.push(neighbors.len() as u64);
    }
    GraphView {
        num_nodes: n,
        levels: vec![Level {
            offsets: leak(offsets),
            neighbors: leak(neighbors),
        }],
        entry_points: leak((0..n as u32).step_by(entry_step).collect()),
    }
}

/// Builds `C` on `base` with `params` and `threads`, checks that every
/// parameter was read, and leaks the result (searchers borrow it).
pub fn build<C: Construction>(
    base: Base,
    metric: Metric,
    params: &[(&str, &str)],
    threads: usize,
) -> &'static C {
    let mut params = Params::new(params.iter().copied());
    let graph = C::build(base, metric, &mut params, threads).unwrap();
    params.finish().unwrap();
    Box::leak(Box::new(graph))
}

/// Every query's answer of up to `n` results from `searcher` as it is
/// configured: (ids, distances) per query, checked sorted by distance.
pub fn answers<S: Search>(searcher: &S, data: &Dataset, n: usize) -> Vec<(Vec<u32>, Vec<f32>)> {
    let mut context = searcher.new_context().unwrap();
    data.test
        .rows()
        .map(|query| {
            let (mut ids, mut distances) = (vec![0u32; n], vec![0f32; n]);
            let mut out = Neighbors::new(&mut ids, &mut distances);
            searcher.search(&mut context, query, &mut out).unwrap();
            assert!(out.distances().windows(2).all(|w| w[0] <= w[1]));
            let found = out.len();
            ids.truncate(found);
            distances.truncate(found);
            (ids, distances)
        })
        .collect()
}

/// Sets the search knob `knob` to `value`, then the ids of every query's
/// [`K`] results.
pub fn search_all<S: Search>(
    searcher: &mut S,
    data: &Dataset,
    knob: &str,
    value: usize,
) -> Vec<Vec<u32>> {
    searcher
        .configure(&mut Params::new([(knob, value.to_string())]))
        .unwrap();
    answers(searcher, data, K)
        .into_iter()
        .map(|(ids, _)| ids)
        .collect()
}

/// The exact [`K`] nearest neighbours of a dataset's queries, computed
/// once, against which results are scored.
pub struct Truth<'a> {
    data: &'a Dataset,
    truth: GroundTruth,
}

impl<'a> Truth<'a> {
    /// Exact search over `data` (f64 accumulation, as the host scores).
    pub fn new(data: &'a Dataset) -> Truth<'a> {
        let truth = exact_ground_truth(&data.train, &data.test, data.metric, K).unwrap();
        Truth { data, truth }
    }

    /// The dataset whose queries this scores.
    pub fn data(&self) -> &'a Dataset {
        self.data
    }

    /// The exact [`K`] nearest neighbours of query `query`, nearest first.
    pub fn ids(&self, query: usize) -> &[u32] {
        self.truth.row(query).ids
    }

    /// Mean tie-aware recall@[`K`] of `results` (one id list per query),
    /// with ann-benchmarks' epsilon. Panics on an invalid answer
    /// (duplicate or out-of-range id): that is a bug, not a miss.
    pub fn recall<R: AsRef<[u32]> + Sync>(&self, results: &[R]) -> f64 {
        let data = self.data;
        let measured = recall(
            &data.train,
            &data.test,
            data.metric,
            results,
            &self.truth,
            K,
            ANN_BENCHMARKS_EPSILON,
        )
        .unwrap();
        assert_eq!(measured.invalid, 0, "{:?}", measured.first_invalid);
        measured.mean
    }
}
