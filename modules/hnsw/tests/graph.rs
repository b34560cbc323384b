//! HNSW construction: graph invariants, determinism, and recall of
//! annvil-hnsw + annvil-beam against exact search.

use annvil_abi::{Construction, GraphView, Metric, Params, StatusCode, Vectors};
use annvil_beam::{BeamSearch, NativeGraph, Space, StandardGraph};
use annvil_hnsw::{Hnsw, HnswParams};
use annvil_testkit::{K, Truth, build, dataset, leak_base, search_all};

/// Degree bounds, no self loops or repeats, level membership, entry point
/// on the top level.
fn check_invariants(graph: &Hnsw, m: usize) {
    let view = graph.view();
    assert_eq!(view.levels.len(), graph.max_level() + 1);
    let entry = graph
        .entry_point()
        .expect("a non-empty graph has an entry point");
    assert_eq!(view.entry_points, &[entry]);
    assert_eq!(graph.level_of(entry), graph.max_level());
    for (level, csr) in view.levels.iter().enumerate() {
        let cap = if level == 0 { 2 * m } else { m };
        for node in 0..view.num_nodes as u32 {
            let list = csr.neighbors_of(node);
            assert!(
                list.len() <= cap,
                "level {level} node {node}: degree {}",
                list.len()
            );
            if graph.level_of(node) < level {
                assert!(list.is_empty(), "node {node} is not on level {level}");
            }
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len(), "repeated neighbour of {node}");
            for &neighbor in list {
                assert_ne!(neighbor, node, "self loop at {node}");
                assert!(
                    graph.level_of(neighbor) >= level,
                    "link to a node below level {level}"
                );
            }
        }
    }
    // Most nodes hold many links: the heuristic keeps the graph connected.
    let linked = (0..view.num_nodes as u32)
        .filter(|&v| !view.levels[0].neighbors_of(v).is_empty())
        .count();
    assert_eq!(linked, view.num_nodes, "isolated nodes on level 0");
    // The native level 0 is the view's level 0.
    for node in 0..view.num_nodes as u32 {
        let native: Vec<u32> = annvil_core::Links::links(graph.level0(), node).to_vec();
        assert_eq!(native, view.levels[0].neighbors_of(node));
    }
}

fn same_view(a: &GraphView<'_>, b: &GraphView<'_>) -> bool {
    a.entry_points == b.entry_points
        && a.levels.len() == b.levels.len()
        && a.levels
            .iter()
            .zip(&b.levels)
            .all(|(x, y)| x.offsets == y.offsets && x.neighbors == y.neighbors)
}

#[test]
fn recall_of_hnsw_and_beam_search_on_clustered_data() {
    let data = dataset("synthetic:n=4000,queries=200,dim=32,clusters=20,seed=11");
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    for threads in [1, 2] {
        let graph = build::<Hnsw>(
            base,
            Metric::L2,
            &[("M", "16"), ("ef_construction", "200")],
            threads,
        );
        check_invariants(graph, 16);
        let view: &'static GraphView<'static> = Box::leak(Box::new(graph.view()));

        let mut native =
            BeamSearch::<Hnsw>::from_view(base, view, Metric::L2, Some(graph.level0())).unwrap();
        assert!(native.uses_native_graph());
        let mut copied =
            BeamSearch::<StandardGraph>::from_view(base, view, Metric::L2, None).unwrap();
        assert!(!copied.uses_native_graph());

        let at_100 = search_all(&mut native, &data, "ef", 100);
        assert_eq!(
            at_100,
            search_all(&mut copied, &data, "ef", 100),
            "native and copied level 0 differ"
        );
        let r100 = truth.recall(&at_100);
        let r10 = truth.recall(&search_all(&mut native, &data, "ef", 10));
        println!("threads {threads}: recall@{K} = {r10:.4} at ef=10, {r100:.4} at ef=100");
        assert!(
            r100 >= 0.95,
            "recall@{K} at ef=100 is {r100} with {threads} threads"
        );
        assert!(r10 <= r100 + 1e-9);
    }
}

#[test]
fn one_thread_builds_are_deterministic_and_seeded() {
    let data = dataset("synthetic:n=1500,queries=1,dim=8,clusters=6,seed=5");
    let base = leak_base(&data);
    let params = [("M", "8"), ("ef_construction", "64"), ("seed", "9")];
    let a = build::<Hnsw>(base, Metric::L2, &params, 1);
    let b = build::<Hnsw>(base, Metric::L2, &params, 1);
    assert!(same_view(&a.view(), &b.view()));
    check_invariants(a, 8);

    let reseeded = build::<Hnsw>(
        base,
        Metric::L2,
        &[("M", "8"), ("ef_construction", "64"), ("seed", "10")],
        1,
    );
    let levels = |g: &Hnsw| (0..1500).map(|v| g.level_of(v)).collect::<Vec<_>>();
    assert_ne!(levels(a), levels(reseeded));
    // About 1/M of the nodes reach level 1 (mult = 1/ln M).
    let upper = levels(a).iter().filter(|&&l| l >= 1).count();
    assert!(
        (100..=300).contains(&upper),
        "{upper} of 1500 nodes above level 0"
    );

    // Concurrent builds keep every invariant too.
    check_invariants(build::<Hnsw>(base, Metric::L2, &params, 4), 8);
}

#[test]
fn every_metric_builds_and_searches() {
    for metric in Metric::ALL {
        let data = dataset(&format!(
            "synthetic:n=1000,queries=50,dim=16,clusters=8,metric={},seed=2",
            metric.name()
        ));
        let base = leak_base(&data);
        let graph = build::<Hnsw>(base, metric, &[("M", "12")], 2);
        check_invariants(graph, 12);
        let view: &'static GraphView<'static> = Box::leak(Box::new(graph.view()));
        let mut searcher =
            BeamSearch::<Hnsw>::from_view(base, view, metric, Some(graph.level0())).unwrap();
        let r = Truth::new(&data).recall(&search_all(&mut searcher, &data, "ef", 80));
        assert!(r >= 0.9, "{metric}: recall@{K} = {r}");
    }
}

#[test]
fn tiny_and_empty_bases() {
    let space = |values: &'static [f32]| Space::new(Vectors::new(values, 2).unwrap(), Metric::L2);
    let empty = Hnsw::build_in(space(&[]), &HnswParams::default(), 2);
    assert_eq!((empty.entry_point(), empty.max_level()), (None, 0));
    assert_eq!(empty.view().num_nodes, 0);

    let one = Hnsw::build_in(space(&[1.0, 2.0]), &HnswParams::default(), 3);
    assert_eq!(one.entry_point(), Some(0));
    assert!(one.view().levels[0].neighbors_of(0).is_empty());

    let three = Hnsw::build_in(
        space(&[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
        &HnswParams::default(),
        2,
    );
    for v in 0..3 {
        assert_eq!(three.view().levels[0].neighbors_of(v).len(), 2);
    }
}

#[test]
fn rejects_bad_parameters() {
    for (key, value, status) in [
        ("M", "1", StatusCode::InvalidArgument),
        ("M", "x", StatusCode::InvalidArgument),
        ("ef_construction", "0", StatusCode::InvalidArgument),
        ("alpha", "0.9", StatusCode::InvalidArgument),
        ("alpha", "NaN", StatusCode::InvalidArgument),
    ] {
        let mut params = Params::new([(key, value)]);
        let error = HnswParams::from_params(&mut params).unwrap_err();
        assert_eq!(error.status, status, "{key}={value}");
    }
    let mut params = Params::new([("M", "24"), ("alpha", "1.2"), ("seed", "3")]);
    let parsed = HnswParams::from_params(&mut params).unwrap();
    assert_eq!(
        parsed,
        HnswParams {
            m: 24,
            ef_construction: 200,
            alpha: 1.2,
            seed: 3
        }
    );
}

#[test]
fn alpha_above_one_keeps_longer_edges_and_the_recall() {
    let data = dataset("synthetic:n=3000,queries=100,dim=24,clusters=12,seed=4");
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    let edges = |graph: &Hnsw| graph.view().levels[0].neighbors.len();
    let hnswlib = build::<Hnsw>(base, Metric::L2, &[("M", "8")], 1);
    let relaxed = build::<Hnsw>(base, Metric::L2, &[("M", "8"), ("alpha", "1.3")], 1);
    check_invariants(relaxed, 8);
    // A larger alpha occludes less, so level 0 holds more links.
    assert!(
        edges(relaxed) > edges(hnswlib) * 11 / 10,
        "alpha 1.3 kept {} level-0 links, alpha 1 kept {}",
        edges(relaxed),
        edges(hnswlib)
    );
    let view: &'static GraphView<'static> = Box::leak(Box::new(relaxed.view()));
    let mut searcher =
        BeamSearch::<Hnsw>::from_view(base, view, Metric::L2, Some(relaxed.level0())).unwrap();
    let r = truth.recall(&search_all(&mut searcher, &data, "ef", 64));
    assert!(r >= 0.95, "recall@{K} at ef=64 with alpha 1.3 is {r}");
}
