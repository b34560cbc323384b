//! NN-descent construction: accuracy of the K-NN graph, invariants and
//! recall of the pruned search graph, determinism, parameter checks.

#[path = "../../vamana/tests/support/mod.rs"]
mod support;

use annvil_abi::{Construction, Metric, Params, StatusCode, Vectors};
use annvil_beam::Space;
use annvil_dataset::exact_ground_truth;
use annvil_nndescent::{NnDescent, NnDescentParams, nn_descent};
use annvil_testkit::{Truth, build, dataset, leak_base};

use support::{check_invariants, native_recall, same_graph};

#[test]
fn descent_finds_most_true_neighbours() {
    let data = dataset("synthetic:n=2000,queries=1,dim=16,clusters=10,seed=3");
    let base = leak_base(&data);
    let space = Space::new(base, Metric::L2);
    let params = NnDescentParams {
        k: 20,
        ..NnDescentParams::default()
    };
    // Exact 21-NN of every base vector (the first is the vector itself).
    let truth = exact_ground_truth(&data.train, &data.train, Metric::L2, 21).unwrap();
    for threads in [1, 2] {
        let knn = nn_descent(&space, &params, threads);
        assert!(knn.iterations() >= 2 && knn.iterations() <= params.iterations);
        let mut hits = 0;
        for v in 0..2000u32 {
            let list = knn.neighbors(v);
            assert_eq!(list.len(), 20);
            assert!(list.windows(2).all(|w| w[0] < w[1]), "list of {v} unsorted");
            for c in list {
                assert_eq!(c.distance, space.between(v, c.id));
            }
            let exact = truth.row(v as usize).ids;
            hits += list.iter().filter(|c| exact.contains(&c.id)).count();
        }
        let accuracy = hits as f64 / (2000.0 * 20.0);
        println!(
            "threads {threads}: K-NN accuracy {accuracy:.4} after {} iterations",
            knn.iterations()
        );
        assert!(accuracy >= 0.95, "K-NN accuracy {accuracy}");
    }
}

#[test]
fn recall_of_the_pruned_graph_and_beam_search() {
    let data = dataset("synthetic:n=2000,queries=200,dim=16,clusters=10,seed=3");
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    let space = Space::new(base, Metric::L2);
    for threads in [1, 2] {
        let graph = build::<NnDescent>(
            base,
            Metric::L2,
            &[("K", "24"), ("max_degree", "24")],
            threads,
        );
        check_invariants(graph.graph(), &space, Metric::L2, 24);
        assert!(graph.graph().entry_points().len() >= 16);
        let r64 = native_recall(graph, graph.graph(), base, Metric::L2, &truth, 64);
        println!("threads {threads}: recall@10 = {r64:.4} at ef=64");
        assert!(
            r64 >= 0.95,
            "recall@10 at ef=64 is {r64} with {threads} threads"
        );
    }
}

#[test]
fn one_thread_builds_are_deterministic_and_seeded() {
    let data = dataset("synthetic:n=1500,queries=1,dim=8,clusters=6,seed=5");
    let base = leak_base(&data);
    let params = [
        ("K", "16"),
        ("max_degree", "12"),
        ("rho", "0.8"),
        ("seed", "9"),
    ];
    let a = build::<NnDescent>(base, Metric::L2, &params, 1);
    let b = build::<NnDescent>(base, Metric::L2, &params, 1);
    assert!(same_graph(a.graph(), b.graph()));
    assert_eq!(a.iterations(), b.iterations());
    let reseeded = build::<NnDescent>(
        base,
        Metric::L2,
        &[
            ("K", "16"),
            ("max_degree", "12"),
            ("rho", "0.8"),
            ("seed", "10"),
        ],
        1,
    );
    assert!(!same_graph(a.graph(), reseeded.graph()));

    let space = Space::new(base, Metric::L2);
    check_invariants(
        build::<NnDescent>(base, Metric::L2, &params, 4).graph(),
        &space,
        Metric::L2,
        12,
    );
}

#[test]
fn every_metric_builds_and_searches() {
    for metric in Metric::ALL {
        let data = dataset(&format!(
            "synthetic:n=1000,queries=50,dim=16,clusters=8,metric={},seed=2",
            metric.name()
        ));
        let base = leak_base(&data);
        let graph = build::<NnDescent>(base, metric, &[("K", "20"), ("max_degree", "16")], 2);
        check_invariants(graph.graph(), &Space::new(base, metric), metric, 16);
        let r = native_recall(graph, graph.graph(), base, metric, &Truth::new(&data), 80);
        assert!(r >= 0.9, "{metric}: recall@10 = {r}");
    }
}

#[test]
fn tiny_and_empty_bases() {
    let space = |values: &'static [f32]| Space::new(Vectors::new(values, 2).unwrap(), Metric::L2);
    let build =
        |values, threads| NnDescent::build_in(space(values), &NnDescentParams::default(), threads);
    let empty = build(&[], 2);
    assert_eq!(empty.graph().num_nodes(), 0);
    assert!(empty.graph().entry_points().is_empty());

    let one = build(&[1.0, 2.0], 3);
    assert_eq!(one.graph().entry_points(), &[0]);
    assert!(one.graph().neighbors_of(0).is_empty());

    let three: &'static [f32] = &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let graph = build(three, 2);
    check_invariants(graph.graph(), &space(three), Metric::L2, 32);
}

#[test]
fn rejects_bad_parameters() {
    for (key, value) in [
        ("K", "0"),
        ("rho", "0"),
        ("rho", "1.5"),
        ("delta", "-0.1"),
        ("iterations", "0"),
        ("max_degree", "0"),
        ("alpha", "0.5"),
        ("entry_points", "0"),
        ("seed", "-1"),
    ] {
        let mut params = Params::new([(key, value)]);
        let error = NnDescentParams::from_params(&mut params).unwrap_err();
        assert_eq!(error.status, StatusCode::InvalidArgument, "{key}={value}");
        assert!(error.message.contains(key), "{}", error.message);
    }
    let mut params = Params::new([("K", "30"), ("rho", "1"), ("seed", "3")]);
    let parsed = NnDescentParams::from_params(&mut params).unwrap();
    assert_eq!(
        parsed,
        NnDescentParams {
            k: 30,
            rho: 1.0,
            seed: 3,
            ..NnDescentParams::default()
        }
    );
}

#[test]
fn declared_defaults_are_the_defaults() {
    let declared: Vec<(&str, &str)> = NnDescent::PARAMS
        .iter()
        .map(|p| (p.name(), p.default()))
        .collect();
    let mut params = Params::new(declared);
    assert_eq!(
        NnDescentParams::from_params(&mut params).unwrap(),
        NnDescentParams::default()
    );
    params.finish().unwrap();
}
