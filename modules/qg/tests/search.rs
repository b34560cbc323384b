//! The quantized-graph search through the search slot: recall against
//! exact search on euclidean and angular data, exact distances in the
//! answers, both ways of starting, and the validation of its parameters.

use annvil_abi::{Construction, Graph, Params, Search, StatusCode};
use annvil_hnsw::Hnsw;
use annvil_qg::QuantizedGraphSearch;
use annvil_testkit::{K, Truth, dataset, leak_base};

/// The searcher over an HNSW graph (M = 8, so level 0 has up to 16
/// neighbours) of `data`, prepared with `params`, at `ef`.
fn searcher(
    data: &annvil_dataset::Dataset,
    params: &[(&str, &str)],
    ef: &str,
) -> Result<QuantizedGraphSearch, annvil_abi::Error> {
    let base = leak_base(data);
    let hnsw = annvil_testkit::build::<Hnsw>(base, data.metric, &[("M", "8")], 2);
    let graph = Graph::from_view(hnsw.view());
    let mut prepare = Params::new(params.iter().copied());
    let mut search = QuantizedGraphSearch::prepare(base, &graph, data.metric, &mut prepare)?;
    search.configure(&mut Params::new([("ef", ef)]))?;
    Ok(search)
}

#[test]
fn recalls_like_exact_search_with_exact_distances() {
    for metric in ["euclidean", "angular"] {
        let data = dataset(&format!(
            "synthetic:n=3000,queries=100,dim=128,clusters=10,seed=8,metric={metric}"
        ));
        let truth = Truth::new(&data);
        let cases = [
            ("spread", "16", "f16", "estimates"),
            ("view", "0", "f32", "estimates"),
            ("spread", "16", "sq8", "filtered"),
        ];
        for (start, entries, vectors, beam) in cases {
            // Gaussian clusters have no structure within a cluster for the
            // codes to capture, so the estimates steer coarsely here; real
            // data does much better (see the variant's README).
            for (sub_dim, floor) in [("2", 0.83), ("4", 0.55)] {
                let search = searcher(
                    &data,
                    &[
                        ("sub_dim", sub_dim),
                        ("entry_points", entries),
                        ("vectors", vectors),
                        ("beam", beam),
                    ],
                    "64",
                )
                .unwrap();
                let answers = annvil_testkit::answers(&search, &data, K);
                let ids: Vec<Vec<u32>> = answers.iter().map(|(ids, _)| ids.clone()).collect();
                let recall = truth.recall(&ids);
                let case = format!("{metric} {start} {vectors} {beam} sub_dim {sub_dim}");
                println!("{case}: recall {recall:.4}");
                assert!(recall >= floor, "{case}: {recall}");
                for (query, (ids, distances)) in data.test.rows().zip(&answers) {
                    assert_eq!(ids.len(), K);
                    assert!(distances.is_sorted(), "closest first");
                    for (&id, &distance) in ids.iter().zip(distances) {
                        let exact = data.metric.distance(query, data.train.row(id as usize));
                        assert!((distance - exact).abs() <= 1e-4 * exact.abs().max(1.0));
                    }
                }
            }
        }
    }
}

#[test]
fn a_wider_beam_recalls_more() {
    let data = dataset("synthetic:n=3000,queries=100,dim=128,clusters=10,seed=3,metric=euclidean");
    let truth = Truth::new(&data);
    let recall = |ef: &str| {
        let search = searcher(&data, &[], ef).unwrap();
        let answers = annvil_testkit::answers(&search, &data, K);
        truth.recall(&answers.into_iter().map(|(ids, _)| ids).collect::<Vec<_>>())
    };
    let (narrow, wide) = (recall("10"), recall("800"));
    assert!(
        wide > narrow && wide >= 0.98,
        "ef 10: {narrow}, ef 800: {wide}"
    );
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let data = dataset("synthetic:n=200,queries=5,dim=8,clusters=2,seed=1,metric=euclidean");
    for (name, value) in [
        ("sub_dim", "0"),
        ("sub_dim", "17"),
        ("entry_points", "5000"),
    ] {
        let error = searcher(&data, &[(name, value)], "10").err().unwrap();
        assert_eq!(error.status, StatusCode::InvalidArgument);
        assert!(
            error.message.contains(&format!("`{name}`")),
            "{}",
            error.message
        );
    }
    let mut search = searcher(&data, &[], "10").unwrap();
    let refused = [
        ("ef", "0"),
        ("prefetch_lines", "2000"),
        ("rerank", "0"),
        ("filter", "-1"),
    ];
    for (name, value) in refused {
        let error = search
            .configure(&mut Params::new([(name, value)]))
            .unwrap_err();
        assert!(
            error.message.contains(&format!("`{name}`")),
            "{}",
            error.message
        );
    }
}
