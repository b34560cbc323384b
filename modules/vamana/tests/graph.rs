//! Vamana construction: graph invariants, determinism, parameter checks,
//! and recall of annvil-vamana + annvil-beam against exact search.

mod support;

use annvil_abi::{Construction, Metric, Params, StatusCode, Vectors};
use annvil_beam::Space;
use annvil_testkit::{Truth, build, dataset, leak_base};
use annvil_vamana::{Vamana, VamanaParams};

use support::{check_invariants, native_recall, same_graph};

#[test]
fn recall_of_vamana_and_beam_search() {
    let data = dataset("synthetic:n=2000,queries=200,dim=16,clusters=10,seed=3");
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    let space = Space::new(base, Metric::L2);
    for threads in [1, 2] {
        let graph = build::<Vamana>(base, Metric::L2, &[("R", "24"), ("L", "64")], threads);
        check_invariants(graph.graph(), &space, Metric::L2, 24);
        let r64 = native_recall(graph, graph.graph(), base, Metric::L2, &truth, 64);
        let r10 = native_recall(graph, graph.graph(), base, Metric::L2, &truth, 10);
        println!("threads {threads}: recall@10 = {r10:.4} at ef=10, {r64:.4} at ef=64");
        assert!(
            r64 >= 0.95,
            "recall@10 at ef=64 is {r64} with {threads} threads"
        );
        assert!(r10 <= r64 + 1e-9);
    }
}

#[test]
fn one_thread_builds_are_deterministic_and_seeded() {
    let data = dataset("synthetic:n=1500,queries=1,dim=8,clusters=6,seed=5");
    let base = leak_base(&data);
    let params = [("R", "12"), ("L", "40"), ("alpha", "1.3"), ("seed", "9")];
    let a = build::<Vamana>(base, Metric::L2, &params, 1);
    let b = build::<Vamana>(base, Metric::L2, &params, 1);
    assert!(same_graph(a.graph(), b.graph()));
    let reseeded = build::<Vamana>(
        base,
        Metric::L2,
        &[("R", "12"), ("L", "40"), ("seed", "10")],
        1,
    );
    assert!(!same_graph(a.graph(), reseeded.graph()));

    // Concurrent builds keep every invariant too.
    let space = Space::new(base, Metric::L2);
    check_invariants(
        build::<Vamana>(base, Metric::L2, &params, 4).graph(),
        &space,
        Metric::L2,
        12,
    );
}

#[test]
fn alpha_keeps_longer_edges() {
    let data = dataset("synthetic:n=1500,queries=1,dim=8,clusters=6,seed=5");
    let base = leak_base(&data);
    let edges = |alpha: &str| {
        let graph = build::<Vamana>(base, Metric::L2, &[("R", "32"), ("alpha", alpha)], 1);
        graph.graph().view().levels[0].neighbors.len()
    };
    // alpha = 1 prunes hardest; a larger alpha occludes less.
    assert!(edges("1.0") < edges("1.5"));
}

#[test]
fn every_metric_builds_and_searches() {
    for metric in Metric::ALL {
        let data = dataset(&format!(
            "synthetic:n=1000,queries=50,dim=16,clusters=8,metric={},seed=2",
            metric.name()
        ));
        let base = leak_base(&data);
        let graph = build::<Vamana>(base, metric, &[("R", "16")], 2);
        let r = native_recall(graph, graph.graph(), base, metric, &Truth::new(&data), 80);
        check_invariants(graph.graph(), &Space::new(base, metric), metric, 16);
        assert!(r >= 0.9, "{metric}: recall@10 = {r}");
    }
}

#[test]
fn tiny_and_empty_bases() {
    let space = |values: &'static [f32]| Space::new(Vectors::new(values, 2).unwrap(), Metric::L2);
    let empty = Vamana::build_in(space(&[]), &VamanaParams::default(), 2);
    assert_eq!(empty.graph().num_nodes(), 0);
    assert!(empty.graph().entry_points().is_empty());

    let one = Vamana::build_in(space(&[1.0, 2.0]), &VamanaParams::default(), 3);
    assert_eq!(one.graph().entry_points(), &[0]);
    assert!(one.graph().neighbors_of(0).is_empty());

    let three = space(&[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    let graph = Vamana::build_in(three, &VamanaParams::default(), 2);
    check_invariants(graph.graph(), &three, Metric::L2, 32);
}

#[test]
fn rejects_bad_parameters() {
    for (key, value) in [
        ("alpha", "0.9"),
        ("alpha", "NaN"),
        ("R", "0"),
        ("R", "x"),
        ("L", "0"),
    ] {
        let mut params = Params::new([(key, value)]);
        let error = VamanaParams::from_params(&mut params).unwrap_err();
        assert_eq!(error.status, StatusCode::InvalidArgument, "{key}={value}");
        assert!(error.message.contains(key), "{}", error.message);
    }
    let mut params = Params::new([("R", "48"), ("alpha", "1.0"), ("seed", "3")]);
    let parsed = VamanaParams::from_params(&mut params).unwrap();
    assert_eq!(
        parsed,
        VamanaParams {
            max_degree: 48,
            list_size: 64,
            alpha: 1.0,
            seed: 3,
        }
    );
}

#[test]
fn declared_defaults_are_the_defaults() {
    let declared: Vec<(&str, &str)> = Vamana::PARAMS
        .iter()
        .map(|p| (p.name(), p.default()))
        .collect();
    let mut params = Params::new(declared);
    assert_eq!(
        VamanaParams::from_params(&mut params).unwrap(),
        VamanaParams::default()
    );
    params.finish().unwrap();
}
