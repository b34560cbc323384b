//! Beam search on a graph that no annvil module built: an exact kNN graph
//! made here, handed over as a standard one-level view with several entry
//! points, as a construction slot from another library would.

use annvil_abi::{Base, GraphView, Level, Metric, Neighbors, Params, Search, Vectors};
use annvil_beam::BeamSearch;
use annvil_testkit::{K, Truth, answers, dataset, knn_graph, leak, leak_base};

const GRAPH_DEGREE: usize = 16;

#[test]
fn searches_an_exact_knn_graph_from_another_library() {
    let data = dataset("synthetic:n=2000,queries=100,dim=16,clusters=10,seed=3");
    let n = data.train.len();
    let view = knn_graph(&data, GRAPH_DEGREE, 50);
    let base = leak_base(&data);

    let mut searcher =
        BeamSearch::<annvil_beam::StandardGraph>::from_view(base, &view, Metric::L2, None).unwrap();
    assert!(!searcher.uses_native_graph());
    searcher
        .configure(&mut Params::new([("ef", "64")]))
        .unwrap();
    assert_eq!(searcher.ef(), 64);
    assert!(searcher.memory_bytes() >= n * (1 + GRAPH_DEGREE) * 4);

    let results: Vec<Vec<u32>> = answers(&searcher, &data, K)
        .into_iter()
        .map(|(ids, _)| ids)
        .collect();
    for ids in &results {
        assert_eq!(ids.len(), K);
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), K);
    }
    let recall = Truth::new(&data).recall(&results);
    println!("kNN graph, ef=64: recall@{K} = {recall:.4}");
    assert!(recall >= 0.95, "recall@{K} = {recall}");
    // One query on a fresh context: some distances, fewer than a scan.
    let mut context = searcher.new_context().unwrap();
    let (mut ids, mut distances) = (vec![0u32; K], vec![0f32; K]);
    searcher
        .search(
            &mut context,
            data.test.row(0),
            &mut Neighbors::new(&mut ids, &mut distances),
        )
        .unwrap();
    let counted = BeamSearch::<annvil_beam::StandardGraph>::distance_count(&context);
    assert!(counted > 0 && counted < n as u64, "{counted} distances");
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
    assert_eq!(error.status, annvil_abi::StatusCode::Unsupported);

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
    assert_eq!(error.status, annvil_abi::StatusCode::InvalidArgument);
    // Without entry points the search starts at node 0 and follows the path.
    let mut context = searcher.new_context().unwrap();
    let (mut ids, mut distances) = (vec![0u32; 6], vec![0f32; 6]);
    let mut out = Neighbors::new(&mut ids, &mut distances);
    searcher
        .search(&mut context, &[0.0, 0.0], &mut out)
        .unwrap();
    assert_eq!(out.len(), 4, "every node, fewer than requested");
}
