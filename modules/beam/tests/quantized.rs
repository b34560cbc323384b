//! Quantized and f16 traversal through the search slot: recall against
//! exact search, exact reranked distances, determinism, and the validation
//! of the `traversal` and `rerank` prepare parameters.

use annvil_abi::{Base, GraphView, Level, Metric, Neighbors, Params, Search, Status, Vectors};
use annvil_beam::{BeamOptions, BeamSearch, StandardGraph, Traversal};
use annvil_data::{ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, exact_ground_truth, recall};

const K: usize = 10;
const GRAPH_DEGREE: usize = 16;

type Beam = BeamSearch<StandardGraph>;

/// Leaks `values`: a searcher keeps its base and view for `'static`, as the
/// ABI guarantees for a prepared handle.
fn leak<T>(values: Vec<T>) -> &'static [T] {
    Box::leak(values.into_boxed_slice())
}

/// A small clustered dataset, its base leaked, and its exact kNN graph as
/// a one-level view with a spread of entry points.
fn fixture(metric: &str) -> (Dataset, Base, GraphView<'static>) {
    let data = format!("synthetic:n=2000,queries=100,dim=24,clusters=10,seed=5,metric={metric}")
        .parse::<DatasetSpec>()
        .and_then(|spec| spec.load())
        .unwrap();
    let n = data.train.len();
    let knn = exact_ground_truth(&data.train, &data.train, data.metric, GRAPH_DEGREE + 1).unwrap();
    let mut offsets = vec![0u64];
    let mut neighbors = Vec::with_capacity(n * GRAPH_DEGREE);
    for v in 0..n {
        let row = knn.row(v).ids.iter().filter(|&&u| u as usize != v);
        neighbors.extend(row.take(GRAPH_DEGREE));
        offsets.push(neighbors.len() as u64);
    }
    let view = GraphView {
        num_nodes: n,
        levels: vec![Level {
            offsets: leak(offsets),
            neighbors: leak(neighbors),
        }],
        entry_points: leak((0..n as u32).step_by(50).collect()),
    };
    let base = Vectors::new(leak(data.train.as_slice().to_vec()), data.train.dim()).unwrap();
    (data, base, view)
}

/// A searcher prepared with `params` at `ef`.
fn searcher(
    base: Base,
    view: &GraphView<'static>,
    metric: Metric,
    params: &[(&str, &str)],
) -> Beam {
    let options = BeamOptions::from_params(&mut Params::new(params.iter().copied())).unwrap();
    let mut beam = Beam::with_options(base, view, metric, None, options).unwrap();
    beam.configure(&mut Params::new([("ef", "64")])).unwrap();
    beam
}

/// The ids and distances `beam` returns for every query.
fn answers(beam: &Beam, data: &Dataset) -> (Vec<Vec<u32>>, Vec<Vec<f32>>) {
    let mut context = beam.new_context().unwrap();
    data.test
        .rows()
        .map(|query| {
            let (mut ids, mut distances) = (vec![0u32; K], vec![0f32; K]);
            let mut out = Neighbors::new(&mut ids, &mut distances);
            beam.search(&mut context, query, &mut out).unwrap();
            assert_eq!(out.len(), K);
            assert!(out.distances().windows(2).all(|w| w[0] <= w[1]));
            (ids, distances)
        })
        .unzip()
}

fn mean_recall(data: &Dataset, results: &[Vec<u32>]) -> f64 {
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
    assert_eq!(measured.invalid, 0);
    measured.mean
}

#[test]
fn quantized_traversal_recalls_like_exact_search() {
    for metric in ["euclidean", "angular"] {
        let (data, base, view) = fixture(metric);
        let f32_beam = searcher(base, &view, data.metric, &[]);
        let (exact_ids, _) = answers(&f32_beam, &data);
        let baseline = mean_recall(&data, &exact_ids);
        // SQ4 (16 levels over the widest range of any dimension) steers
        // the search much more coarsely than SQ8.
        let cases = [("sq8", "0", 0.95), ("sq8", "20", 0.99), ("sq4", "40", 0.85)];
        for (traversal, rerank, floor) in cases {
            let beam = searcher(
                base,
                &view,
                data.metric,
                &[("traversal", traversal), ("rerank", rerank)],
            );
            assert!(!beam.uses_native_graph());
            let (ids, distances) = answers(&beam, &data);
            let measured = mean_recall(&data, &ids);
            println!("{metric} {traversal} rerank {rerank}: {measured:.4} (f32 {baseline:.4})");
            assert!(
                measured >= floor,
                "{metric} {traversal} rerank {rerank}: recall {measured} against f32 {baseline}"
            );
            if rerank != "0" {
                // Reranked distances are the exact ones.
                for ((query, ids), distances) in data.test.rows().zip(&ids).zip(&distances) {
                    for (&id, &distance) in ids.iter().zip(distances) {
                        let exact = data.metric.distance(query, base.row(id as usize));
                        assert!((distance - exact).abs() <= 1e-4 * exact.abs().max(1.0));
                    }
                }
            }
        }
    }
}

#[test]
fn f16_traversal_recalls_like_f32_traversal() {
    for metric in ["euclidean", "angular", "ip"] {
        let (data, base, view) = fixture(metric);
        for ef in ["64", "256"] {
            let at_ef = |params: &[(&str, &str)]| {
                let mut beam = searcher(base, &view, data.metric, params);
                beam.configure(&mut Params::new([("ef", ef)])).unwrap();
                let (ids, distances) = answers(&beam, &data);
                (mean_recall(&data, &ids), ids, distances)
            };
            let (baseline, ..) = at_ef(&[]);
            let (plain, ..) = at_ef(&[("traversal", "f16")]);
            let (reranked, ids, distances) = at_ef(&[("traversal", "f16"), ("rerank", "20")]);
            println!(
                "{metric} ef {ef}: f16 {plain:.4}, reranked {reranked:.4} (f32 {baseline:.4})"
            );
            // f16 keeps about three significant digits: the search steers
            // almost exactly as with f32.
            assert!(
                plain >= baseline - 0.01,
                "{metric} ef {ef}: f16 recall {plain} against f32 {baseline}"
            );
            assert!(
                reranked >= baseline - 0.005,
                "{metric} ef {ef}: reranked f16 recall {reranked} against f32 {baseline}"
            );
            if ef == "256" {
                assert!(reranked >= 0.99, "{metric}: reranked f16 recall {reranked}");
            }
            // Reranked distances are the exact ones.
            for ((query, ids), distances) in data.test.rows().zip(&ids).zip(&distances) {
                for (&id, &distance) in ids.iter().zip(distances) {
                    let exact = data.metric.distance(query, base.row(id as usize));
                    assert!((distance - exact).abs() <= 1e-4 * exact.abs().max(1.0));
                }
            }
        }
    }
}

#[test]
fn quantized_search_is_deterministic() {
    let (data, base, view) = fixture("euclidean");
    let params = [("traversal", "sq8"), ("rerank", "15")];
    let first = answers(&searcher(base, &view, data.metric, &params), &data);
    let beam = searcher(base, &view, data.metric, &params);
    assert_eq!(answers(&beam, &data), first, "a second searcher");
    assert_eq!(answers(&beam, &data), first, "a second context");
    assert!(Beam::distance_count(&beam.new_context().unwrap()) == 0);
}

#[test]
fn options_are_read_and_validated() {
    let read =
        |pairs: &[(&str, &str)]| BeamOptions::from_params(&mut Params::new(pairs.iter().copied()));
    assert_eq!(read(&[]).unwrap(), BeamOptions::default());
    assert_eq!(
        read(&[("traversal", "f16")]).unwrap().traversal,
        Traversal::F16
    );
    assert_eq!(
        read(&[("traversal", "sq4"), ("rerank", "30")]).unwrap(),
        BeamOptions {
            traversal: Traversal::Sq4,
            rerank: 30
        }
    );
    for (pairs, names) in [
        (
            &[("traversal", "pq")][..],
            ["`traversal`", "f32, sq8, sq4, f16"],
        ),
        (&[("rerank", "-1")][..], ["`rerank`", "not a valid usize"]),
        (&[("rerank", "2000000")][..], ["`rerank`", "0..=1048576"]),
    ] {
        let error = read(pairs).unwrap_err();
        assert_eq!(error.status, Status::InvalidArgument, "{pairs:?}");
        for name in names {
            assert!(error.message.contains(name), "{}", error.message);
        }
    }

    let (data, base, view) = fixture("euclidean");
    let mut beam = searcher(base, &view, data.metric, &[("traversal", "sq8")]);
    assert_eq!(beam.options().traversal, Traversal::Sq8);
    let error = beam.configure(&mut Params::new([("ef", "0")])).unwrap_err();
    assert!(error.message.contains("`ef`"), "{}", error.message);
    assert_eq!(beam.ef(), 64, "a refused knob changes nothing");
}
