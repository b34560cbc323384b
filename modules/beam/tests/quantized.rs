//! Quantized and f16 traversal through the search slot: recall against
//! exact search, exact reranked distances, determinism, prefetch settings
//! that change speed alone, and the validation of the prepare parameters.

use annvil_abi::{Base, GraphView, Metric, Params, Search, StatusCode};
use annvil_beam::{BeamOptions, BeamSearch, Prefetch, StandardGraph, Traversal};
use annvil_dataset::Dataset;
use annvil_testkit::{K, Truth, dataset, knn_graph, leak_base};

const GRAPH_DEGREE: usize = 16;

type Beam = BeamSearch<StandardGraph>;

/// A small clustered dataset, its base leaked, and its exact kNN graph as
/// a one-level view with a spread of entry points.
fn fixture(metric: &str) -> (Dataset, Base, GraphView<'static>) {
    let data = dataset(&format!(
        "synthetic:n=2000,queries=100,dim=24,clusters=10,seed=5,metric={metric}"
    ));
    let view = knn_graph(&data, GRAPH_DEGREE, 50);
    let base = leak_base(&data);
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

/// The ids and distances `beam` returns for every query, K of each.
fn answers(beam: &Beam, data: &Dataset) -> (Vec<Vec<u32>>, Vec<Vec<f32>>) {
    let all = annvil_testkit::answers(beam, data, K);
    assert!(all.iter().all(|(ids, _)| ids.len() == K));
    all.into_iter().unzip()
}

#[test]
fn quantized_traversal_recalls_like_exact_search() {
    for metric in ["euclidean", "angular"] {
        let (data, base, view) = fixture(metric);
        let truth = Truth::new(&data);
        let f32_beam = searcher(base, &view, data.metric, &[]);
        let (exact_ids, _) = answers(&f32_beam, &data);
        let baseline = truth.recall(&exact_ids);
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
            let measured = truth.recall(&ids);
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
        let truth = Truth::new(&data);
        for ef in ["64", "256"] {
            let at_ef = |params: &[(&str, &str)]| {
                let mut beam = searcher(base, &view, data.metric, params);
                beam.configure(&mut Params::new([("ef", ef)])).unwrap();
                let (ids, distances) = answers(&beam, &data);
                (truth.recall(&ids), ids, distances)
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
            rerank: 30,
            ..BeamOptions::default()
        }
    );
    let fixed = read(&[("prefetch_ahead", "5"), ("prefetch_lines", "0")]).unwrap();
    assert_eq!(
        (fixed.prefetch_ahead, fixed.prefetch_lines),
        (Some(5), None)
    );
    for (pairs, names) in [
        (
            &[("traversal", "pq")][..],
            ["`traversal`", "f32, sq8, sq4, f16"],
        ),
        (&[("rerank", "-1")][..], ["`rerank`", "not a valid usize"]),
        (&[("rerank", "2000000")][..], ["`rerank`", "0..=1048576"]),
        (
            &[("prefetch_ahead", "65")][..],
            ["`prefetch_ahead`", "0..=64 (0: timed at prepare time)"],
        ),
        (
            &[("prefetch_lines", "17")][..],
            ["`prefetch_lines`", "0..=16"],
        ),
    ] {
        let error = read(pairs).unwrap_err();
        assert_eq!(error.status, StatusCode::InvalidArgument, "{pairs:?}");
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

#[test]
fn prefetch_settings_change_speed_not_answers() {
    let (data, base, view) = fixture("euclidean");
    let reference = answers(
        &searcher(base, &view, data.metric, &[("traversal", "sq8")]),
        &data,
    );
    for (ahead, lines) in [("1", "1"), ("12", "1"), ("2", "16")] {
        let params = [
            ("traversal", "sq8"),
            ("prefetch_ahead", ahead),
            ("prefetch_lines", lines),
        ];
        let beam = searcher(base, &view, data.metric, &params);
        // 24 dimensions make one line of code: more lines than that are capped.
        let expected = Prefetch {
            ahead: ahead.parse().unwrap(),
            lines: 1,
        };
        assert_eq!(beam.prefetch(), Some(expected));
        assert_eq!(
            answers(&beam, &data),
            reference,
            "ahead {ahead}, lines {lines}"
        );
    }
    // A small index keeps the default untimed; timing it on request picks
    // one of the candidates and answers alike.
    let mut beam = searcher(
        base,
        &view,
        data.metric,
        &[("traversal", "sq8"), ("prefetch_lines", "1")],
    );
    assert_eq!(
        beam.prefetch(),
        Some(Prefetch {
            lines: 1,
            ..Prefetch::default()
        })
    );
    beam.tune_prefetch().unwrap();
    let tuned = beam.prefetch().unwrap();
    assert!(
        Prefetch::candidates(GRAPH_DEGREE, 1, None, Some(1)).contains(&tuned),
        "{tuned:?}"
    );
    assert_eq!(answers(&beam, &data), reference);
    // f32 traversal has no packed records to prefetch from.
    let mut flat = searcher(base, &view, data.metric, &[]);
    flat.tune_prefetch().unwrap();
    assert_eq!(flat.prefetch(), None);
}
