//! Beam search on a graph that no annvil module built: an exact kNN graph
//! made here, handed over as a standard one-level view with several entry
//! points, as a construction slot from another library would.

use annvil_abi::{Base, GraphView, Level, Metric, Neighbors, Params, Search, Vectors};
use annvil_beam::BeamSearch;
use annvil_data::{ANN_BENCHMARKS_EPSILON, DatasetSpec, exact_ground_truth, recall};

const K: usize = 10;
const GRAPH_DEGREE: usize = 16;

/// Leaks `values`: a searcher keeps its base and view for `'static`, as the
/// ABI guarantees for a prepared handle.
fn leak<T>(values: Vec<T>) -> &'static [T] {
    Box::leak(values.into_boxed_slice())
}

#[test]
fn searches_an_exact_knn_graph_from_another_library() {
    let data = "synthetic:n=2000,queries=100,dim=16,clusters=10,seed=3"
        .parse::<DatasetSpec>()
        .and_then(|spec| spec.load())
        .unwrap();
    let n = data.train.len();

    // The exact kNN graph: each node's GRAPH_DEGREE nearest others.
    let knn = exact_ground_truth(&data.train, &data.train, Metric::L2, GRAPH_DEGREE + 1).unwrap();
    let mut offsets = vec![0u64];
    let mut neighbors = Vec::with_capacity(n * GRAPH_DEGREE);
    for v in 0..n {
        neighbors.extend(
            knn.row(v)
                .ids
                .iter()
                .filter(|&&u| u as usize != v)
                .take(GRAPH_DEGREE),
        );
        offsets.push(neighbors.len() as u64);
    }
    // kNN graphs of clustered data fall apart into clusters: seed from a
    // spread of entry points, as a one-level view may.
    let entry_points: Vec<u32> = (0..n as u32).step_by(50).collect();
    let view = GraphView {
        num_nodes: n,
        levels: vec![Level {
            offsets: leak(offsets),
            neighbors: leak(neighbors),
        }],
        entry_points: leak(entry_points),
    };
    let base: Base = Vectors::new(leak(data.train.as_slice().to_vec()), data.train.dim()).unwrap();

    let mut searcher =
        BeamSearch::<annvil_beam::StandardGraph>::from_view(base, &view, Metric::L2, None).unwrap();
    assert!(!searcher.uses_native_graph());
    searcher
        .configure(&mut Params::new([("ef", "64")]))
        .unwrap();
    assert_eq!(searcher.ef(), 64);
    assert!(searcher.memory_bytes() >= n * (1 + GRAPH_DEGREE) * 4);

    let mut context = searcher.new_context().unwrap();
    let mut results = Vec::new();
    for query in data.test.rows() {
        let (mut ids, mut distances) = (vec![0u32; K], vec![0f32; K]);
        let mut out = Neighbors::new(&mut ids, &mut distances);
        searcher.search(&mut context, query, &mut out).unwrap();
        assert_eq!(out.len(), K);
        assert!(out.distances().windows(2).all(|w| w[0] <= w[1]));
        let mut unique = out.ids().to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), K);
        results.push(ids);
    }
    let truth = exact_ground_truth(&data.train, &data.test, Metric::L2, K).unwrap();
    let measured = recall(
        &data.train,
        &data.test,
        Metric::L2,
        &results,
        &truth,
        K,
        ANN_BENCHMARKS_EPSILON,
    )
    .unwrap();
    assert_eq!(measured.invalid, 0);
    println!("kNN graph, ef=64: recall@{K} = {:.4}", measured.mean);
    assert!(measured.mean >= 0.95, "recall@{K} = {}", measured.mean);
    let counted = BeamSearch::<annvil_beam::StandardGraph>::distance_count(&context);
    assert!(counted > 0 && counted < (n * data.test.len()) as u64);
}

#[test]
fn refuses_a_view_without_levels_and_a_zero_ef() {
    let base: Base = Vectors::new(leak(vec![0.0f32; 8]), 2).unwrap();
    let error = BeamSearch::<annvil_beam::StandardGraph>::from_view(
        base,
        &GraphView::default(),
        Metric::L2,
        None,
    )
    .err()
    .unwrap();
    assert_eq!(error.status, annvil_abi::Status::Unsupported);

    let offsets = leak(vec![0u64, 1, 2, 3, 3]);
    let view = GraphView {
        num_nodes: 4,
        levels: vec![Level {
            offsets,
            neighbors: leak(vec![1u32, 2, 3]),
        }],
        entry_points: &[],
    };
    let mut searcher =
        BeamSearch::<annvil_beam::StandardGraph>::from_view(base, &view, Metric::L2, None).unwrap();
    let error = searcher
        .configure(&mut Params::new([("ef", "0")]))
        .unwrap_err();
    assert_eq!(error.status, annvil_abi::Status::InvalidArgument);
    // Without entry points the search starts at node 0 and follows the path.
    let mut context = searcher.new_context().unwrap();
    let (mut ids, mut distances) = (vec![0u32; 6], vec![0f32; 6]);
    let mut out = Neighbors::new(&mut ids, &mut distances);
    searcher
        .search(&mut context, &[0.0, 0.0], &mut out)
        .unwrap();
    assert_eq!(out.len(), 4, "every node, fewer than requested");
}
