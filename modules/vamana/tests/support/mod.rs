//! Test helpers shared by the one-level graph constructions (annvil-vamana
//! and annvil-nndescent, which includes this file by path): datasets,
//! beam search over a built graph, recall against exact search, and the
//! invariants of a [`FrozenGraph`].

use annvil_abi::{Base, GraphView, Metric, Neighbors, Params, Search, Vectors};
use annvil_beam::{BeamSearch, Links, NativeGraph, Space, StandardGraph};
use annvil_data::{ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, exact_ground_truth, recall};
use annvil_vamana::{FrozenGraph, medoid};

/// Neighbours per query.
pub const K: usize = 10;

/// The dataset of a spec string.
pub fn dataset(spec: &str) -> Dataset {
    spec.parse::<DatasetSpec>().and_then(|s| s.load()).unwrap()
}

/// The base vectors for `'static`, as the ABI keeps them for a handle.
pub fn leak_base(data: &Dataset) -> Base {
    let values: &'static [f32] = Box::leak(data.train.as_slice().to_vec().into_boxed_slice());
    Vectors::new(values, data.train.dim()).unwrap()
}

/// Searches every query with `searcher` at `ef`; the ids per query.
pub fn search_all<S: Search>(searcher: &mut S, data: &Dataset, ef: usize) -> Vec<Vec<u32>> {
    searcher
        .configure(&mut Params::new([("ef", ef.to_string())]))
        .unwrap();
    let mut context = searcher.new_context().unwrap();
    data.test
        .rows()
        .map(|query| {
            let (mut ids, mut distances) = (vec![0u32; K], vec![0f32; K]);
            let mut out = Neighbors::new(&mut ids, &mut distances);
            searcher.search(&mut context, query, &mut out).unwrap();
            assert!(out.distances().windows(2).all(|w| w[0] <= w[1]));
            let found = out.len();
            ids.truncate(found);
            ids
        })
        .collect()
}

/// Mean recall@[`K`] of `results` against exact search.
pub fn recall_at_k(data: &Dataset, results: &[Vec<u32>]) -> f64 {
    let truth = exact_ground_truth(&data.train, &data.test, data.metric, K).unwrap();
    let measured = recall(
        &data.train,
        &data.test,
        data.metric,
        results,
        &truth,
        K,
        ANN_BENCHMARKS_EPSILON,
    )
    .unwrap();
    assert_eq!(measured.invalid, 0, "{:?}", measured.first_invalid);
    measured.mean
}

/// Recall@[`K`] at `ef` of `BeamSearch<N>` on the native graph of `native`,
/// after checking that a search on the copied standard view answers the
/// same.
pub fn native_recall<N: NativeGraph>(
    native: &'static N,
    graph: &'static FrozenGraph,
    base: Base,
    metric: Metric,
    data: &Dataset,
    ef: usize,
) -> f64 {
    let view: &'static GraphView<'static> = Box::leak(Box::new(graph.view()));
    let mut borrowed =
        BeamSearch::<N>::from_view(base, view, metric, Some(native.level0())).unwrap();
    assert!(borrowed.uses_native_graph());
    let mut copied = BeamSearch::<StandardGraph>::from_view(base, view, metric, None).unwrap();
    let found = search_all(&mut borrowed, data, ef);
    assert_eq!(
        found,
        search_all(&mut copied, data, ef),
        "native and copied graphs differ"
    );
    recall_at_k(data, &found)
}

/// Degree bound, no self loops or repeats, the view equal to the native
/// graph, the medoid as the first entry point, and every node reachable
/// (except under inner product, where a vector of small norm is nobody's
/// close neighbour, nor any query's answer).
pub fn check_invariants(graph: &FrozenGraph, space: &Space<'_>, metric: Metric, max_degree: usize) {
    let view = graph.view();
    view.validate(space.len()).unwrap();
    assert_eq!(view.levels.len(), 1);
    assert_eq!(graph.entry_points().first(), medoid(space).as_ref());
    for node in 0..view.num_nodes as u32 {
        let list = view.levels[0].neighbors_of(node);
        assert!(
            list.len() <= max_degree,
            "node {node}: degree {}",
            list.len()
        );
        assert_eq!(graph.level0().links(node), list);
        assert!(!list.contains(&node), "self loop at {node}");
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), list.len(), "repeated neighbour of {node}");
    }
    if metric != Metric::InnerProduct {
        let unreached = graph.reachable().iter().filter(|&&r| !r).count();
        assert_eq!(unreached, 0, "nodes unreachable from the medoid");
    }
}

/// True when two graphs have the same lists and entry points.
pub fn same_graph(a: &FrozenGraph, b: &FrozenGraph) -> bool {
    let (a, b) = (a.view(), b.view());
    a.entry_points == b.entry_points
        && a.levels[0].offsets == b.levels[0].offsets
        && a.levels[0].neighbors == b.levels[0].neighbors
}
