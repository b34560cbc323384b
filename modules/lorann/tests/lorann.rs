//! annvil-lorann: recall against exact search as the rank, nprobe and
//! reorder grow, exactness at full rank, determinism, parameter validation.

use annvil_abi::{Base, Construction, Metric, Neighbors, Params, Search, StatusCode, Vectors};
use annvil_dataset::Dataset;
use annvil_lorann::{Lorann, LorannParams, LorannSearch};
use annvil_rerank::rank_exact;
use annvil_testkit::{K, Truth, answers, build, leak_base};

const CANDIDATES: usize = 30;

/// 4,000 clustered vectors of 48 dimensions, 100 queries.
fn dataset(metric: Metric) -> Dataset {
    annvil_testkit::dataset(&format!(
        "synthetic:n=4000,queries=100,dim=48,clusters=30,metric={},seed=9",
        metric.name()
    ))
}

/// Per query: the search's candidates at `nprobe` (its best `CANDIDATES`
/// estimates, measured exactly), and the best K of them.
fn search_all(
    index: &'static Lorann,
    base: Base,
    data: &Dataset,
    nprobe: usize,
) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut searcher = LorannSearch::new(index, base, data.metric).unwrap();
    searcher
        .configure(&mut Params::new([
            ("nprobe", nprobe.to_string()),
            ("reorder", CANDIDATES.to_string()),
        ]))
        .unwrap();
    answers(&searcher, data, CANDIDATES)
        .into_iter()
        .zip(data.test.rows())
        .map(|((candidates, _), query)| {
            let (mut ids, mut distances) = (vec![0u32; K], vec![0f32; K]);
            let mut best = Neighbors::new(&mut ids, &mut distances);
            rank_exact(
                &base,
                data.metric,
                query,
                candidates.iter().copied(),
                &mut best,
            );
            let best = best.ids().to_vec();
            (candidates, best)
        })
        .collect()
}

/// Recall@K of the reranked answers of [`search_all`].
fn reranked_recall(truth: &Truth<'_>, results: &[(Vec<u32>, Vec<u32>)]) -> f64 {
    let reranked: Vec<&Vec<u32>> = results.iter().map(|(_, best)| best).collect();
    truth.recall(&reranked)
}

#[test]
fn recall_grows_with_rank_and_nprobe() {
    let data = dataset(Metric::L2);
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    let params = |rank: &'static str| [("nlist", "40"), ("rank", rank), ("dim_reduction", "48")];
    let by_rank: Vec<f64> = ["1", "4", "16", "48"]
        .into_iter()
        .map(|rank| {
            let index = build::<Lorann>(base, Metric::L2, &params(rank), 2);
            reranked_recall(&truth, &search_all(index, base, &data, 8))
        })
        .collect();
    assert!(
        by_rank.windows(2).all(|w| w[0] < w[1]),
        "recall by rank 1, 4, 16, 48: {by_rank:?}"
    );
    let index = build::<Lorann>(base, Metric::L2, &params("32"), 2);
    let by_nprobe: Vec<f64> = [1, 2, 8]
        .into_iter()
        .map(|nprobe| reranked_recall(&truth, &search_all(index, base, &data, nprobe)))
        .collect();
    assert!(
        by_nprobe[0] < by_nprobe[1] && by_nprobe[1] < by_nprobe[2],
        "recall by nprobe 1, 2, 8: {by_nprobe:?}"
    );
    assert!(by_nprobe[2] > 0.9, "recall {by_nprobe:?}");
}

#[test]
fn a_deeper_reorder_reaches_the_recall_coarse_estimates_miss() {
    let data = dataset(Metric::Angular);
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    // Rank 2 after a reduction to 8 dimensions: estimates that rank the
    // true neighbours far apart.
    let params = [("nlist", "20"), ("rank", "2"), ("dim_reduction", "8")];
    let index = build::<Lorann>(base, Metric::Angular, &params, 2);
    let mut searcher = LorannSearch::new(index, base, Metric::Angular).unwrap();
    let by_reorder: Vec<f64> = [K, 100, 4000]
        .into_iter()
        .map(|reorder| {
            searcher
                .configure(&mut Params::new([
                    ("nprobe", "20".to_owned()),
                    ("reorder", reorder.to_string()),
                ]))
                .unwrap();
            let found = answers(&searcher, &data, K);
            for ((ids, distances), query) in found.iter().zip(data.test.rows()) {
                // Exact distances, nearest first.
                assert!(distances.windows(2).all(|w| w[0] <= w[1]));
                for (&id, &d) in ids.iter().zip(distances) {
                    let exact =
                        annvil_distance::distance(Metric::Angular, base.row(id as usize), query);
                    assert!((d - exact).abs() <= 1e-6, "{d} vs {exact}");
                }
            }
            let ids: Vec<&Vec<u32>> = found.iter().map(|(ids, _)| ids).collect();
            truth.recall(&ids)
        })
        .collect();
    assert!(
        by_reorder[0] < by_reorder[1] && by_reorder[1] < 1.0,
        "recall by reorder K, 100, all: {by_reorder:?}"
    );
    assert_eq!(by_reorder[2], 1.0, "every point measured exactly");
}

#[test]
fn full_rank_without_reduction_scoring_every_cluster_is_exact() {
    for metric in Metric::ALL {
        let data = dataset(metric);
        let base = leak_base(&data);
        // Rank 48 = dim: every model reproduces the inner products.
        let index = build::<Lorann>(
            base,
            metric,
            &[("nlist", "20"), ("rank", "48"), ("dim_reduction", "48")],
            2,
        );
        assert!(index.projection().is_none());
        let results = search_all(index, base, &data, 20);
        let truth = Truth::new(&data);
        assert_eq!(reranked_recall(&truth, &results), 1.0, "{metric}");
        // The candidates themselves are the exact top (estimates are
        // exact up to rounding), so reranking only reorders them.
        let mut hits = 0;
        for (q, (candidates, _)) in results.iter().enumerate() {
            let top: Vec<u32> = candidates[..K].to_vec();
            hits += truth.ids(q).iter().filter(|id| top.contains(id)).count();
        }
        assert!(
            hits as f64 >= 0.99 * (K * results.len()) as f64,
            "{metric}: {hits}"
        );
    }
}

#[test]
fn global_reduction_is_orthonormal_and_recall_grows_with_its_dimension() {
    let data = dataset(Metric::L2);
    let truth = Truth::new(&data);
    let base = leak_base(&data);
    let by_dim: Vec<f64> = [4, 16, 48]
        .into_iter()
        .map(|dim| {
            let dim_reduction = dim.to_string();
            let params = [("nlist", "16"), ("dim_reduction", dim_reduction.as_str())];
            let index = build::<Lorann>(base, Metric::L2, &params, 2);
            if let Some(projection) = index.projection() {
                assert_eq!((projection.dim(), projection.out_dim()), (48, dim));
                for a in 0..dim {
                    for b in 0..dim {
                        let dot: f32 = projection
                            .direction(a)
                            .iter()
                            .zip(projection.direction(b))
                            .map(|(x, y)| x * y)
                            .sum();
                        let expected = if a == b { 1.0 } else { 0.0 };
                        assert!((dot - expected).abs() < 1e-3, "directions {a}, {b}: {dot}");
                    }
                }
            } else {
                assert_eq!(dim, 48);
            }
            reranked_recall(&truth, &search_all(index, base, &data, 16))
        })
        .collect();
    assert!(
        by_dim[0] < by_dim[1] && by_dim[1] < by_dim[2],
        "recall by reduced dimension 4, 16, 48: {by_dim:?}"
    );
}

#[test]
fn builds_are_deterministic_for_any_thread_count() {
    let data = dataset(Metric::Angular);
    let base = leak_base(&data);
    let params = [("nlist", "24"), ("rank", "8"), ("dim_reduction", "16")];
    let one = search_all(
        build::<Lorann>(base, Metric::Angular, &params, 1),
        base,
        &data,
        4,
    );
    let again = search_all(
        build::<Lorann>(base, Metric::Angular, &params, 1),
        base,
        &data,
        4,
    );
    let three = search_all(
        build::<Lorann>(base, Metric::Angular, &params, 3),
        base,
        &data,
        4,
    );
    assert_eq!(one, again);
    assert_eq!(one, three);
}

#[test]
fn small_bases_fill_n_and_empty_bases_return_nothing() {
    let data = dataset(Metric::L2);
    let values: &'static [f32] =
        Box::leak(data.train.as_slice()[..48 * 50].to_vec().into_boxed_slice());
    let base = Vectors::new(values, 48).unwrap();
    let index = build::<Lorann>(
        base,
        Metric::L2,
        &[("nlist", "500"), ("train_queries", "10")],
        2,
    );
    assert_eq!(index.lists().len(), 50);
    let mut searcher = LorannSearch::new(index, base, Metric::L2).unwrap();
    searcher
        .configure(&mut Params::new([("nprobe", "1")]))
        .unwrap();
    let mut context = searcher.new_context().unwrap();
    let (mut ids, mut distances) = (vec![0u32; 60], vec![0f32; 60]);
    let mut out = Neighbors::new(&mut ids, &mut distances);
    searcher
        .search(&mut context, base.row(3), &mut out)
        .unwrap();
    assert_eq!(out.len(), 50);

    let empty = Vectors::new(&[], 48).unwrap();
    let index = build::<Lorann>(empty, Metric::L2, &[], 2);
    let searcher = LorannSearch::new(index, empty, Metric::L2).unwrap();
    let mut context = searcher.new_context().unwrap();
    let (mut ids, mut distances) = (vec![0u32; 5], vec![0f32; 5]);
    let mut out = Neighbors::new(&mut ids, &mut distances);
    searcher
        .search(&mut context, base.row(0), &mut out)
        .unwrap();
    assert!(out.is_empty());
}

#[test]
fn invalid_parameters_are_rejected_with_their_range() {
    let data = dataset(Metric::L2);
    let base = leak_base(&data);
    for (key, value, needle) in [
        ("rank", "0", "`rank` must be in 1..=4096"),
        ("dim_reduction", "0", "`dim_reduction` must be in 1..=4096"),
        (
            "train_queries",
            "-1",
            "`train_queries`: `-1` is not a valid usize",
        ),
        ("train_probe", "0", "`train_probe` must be in 1..="),
        ("nlist", "16777217", "`nlist` must be in 0..="),
        ("rank", "-3", "`rank`: `-3` is not a valid usize"),
    ] {
        let mut params = Params::new([(key, value)]);
        let err = Lorann::build(base, Metric::L2, &mut params, 1).unwrap_err();
        assert_eq!(err.status, StatusCode::InvalidArgument, "{key}={value}");
        assert!(err.message.contains(needle), "{}", err.message);
    }
    let index = build::<Lorann>(base, Metric::L2, &[("nlist", "8")], 1);
    let mut searcher = LorannSearch::new(index, base, Metric::L2).unwrap();
    let err = searcher
        .configure(&mut Params::new([("nprobe", "0")]))
        .unwrap_err();
    assert_eq!(err.status, StatusCode::InvalidArgument);
    assert!(err.message.contains("`nprobe` must be at least 1"));
    let err = searcher
        .configure(&mut Params::new([("reorder", "0")]))
        .unwrap_err();
    assert_eq!(err.status, StatusCode::InvalidArgument);
    assert!(err.message.contains("`reorder` must be in 1..=65536"));
    let err = LorannSearch::new(index, base, Metric::InnerProduct)
        .err()
        .unwrap();
    assert!(err.message.contains("built for the euclidean metric"));
}

#[test]
fn declared_defaults_are_the_defaults() {
    let declared: Vec<(&str, &str)> = Lorann::PARAMS
        .iter()
        .map(|p| (p.name(), p.default()))
        .collect();
    let explicit = LorannParams::from_params(&mut Params::new(declared), 900).unwrap();
    let implicit = LorannParams::from_params(&mut Params::default(), 900).unwrap();
    assert_eq!(explicit, implicit);
    assert_eq!(implicit.kmeans.clusters, 30);
    assert_eq!(implicit.train_queries, 900);
    let [nprobe, reorder] = LorannSearch::PARAMS else {
        panic!("two knobs")
    };
    assert!(nprobe.is_knob() && reorder.is_knob());
    assert_eq!(
        reorder.default(),
        annvil_lorann::DEFAULT_REORDER.to_string()
    );
}
