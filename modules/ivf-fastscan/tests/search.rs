//! The IVF fast-scan search through its slot: recall that grows with the
//! lists scanned and the candidates reordered, exact answers when
//! everything is scanned and reordered, exact distances, and the
//! validation of its parameters.

use annvil_abi::{Metric, Neighbors, Params, Search, StatusCode};
use annvil_ivf::Ivf;
use annvil_ivf_fastscan::{IvfFastScanSearch, Options, automatic_sub_dim};
use annvil_testkit::{K, Truth, build, dataset, leak_base, search_all};

const LISTS: usize = 32;

fn data(metric: Metric) -> annvil_dataset::Dataset {
    dataset(&format!(
        "synthetic:n=3000,queries=100,dim=40,clusters=12,seed=4,metric={metric}"
    ))
}

fn searcher(data: &annvil_dataset::Dataset, options: &Options) -> IvfFastScanSearch {
    let base = leak_base(data);
    let nlist = LISTS.to_string();
    let ivf = build::<Ivf>(base, data.metric, &[("nlist", &nlist), ("seed", "2")], 2);
    IvfFastScanSearch::new(ivf, base, data.metric, options).unwrap()
}

#[test]
fn recall_grows_with_nprobe_and_reorder_and_is_exact_at_the_end() {
    for metric in Metric::ALL {
        let data = data(metric);
        let truth = Truth::new(&data);
        let mut search = searcher(&data, &Options::default());
        let mut last = 0.0;
        for nprobe in [1, 2, 4, 8, LISTS] {
            let recall = truth.recall(&search_all(&mut search, &data, "nprobe", nprobe));
            assert!(
                recall >= last - 0.01,
                "{metric}: nprobe {nprobe}: {recall} < {last}"
            );
            last = recall;
        }
        // Every list scanned, 100 of 3000 candidates reordered: the codes
        // must put most true neighbours among the best 100 estimates.
        // Gaussian clusters have no structure within a cluster for 16
        // centroids per subspace to capture, so the floors are lower than
        // real data reaches (see the variant's README).
        assert!(
            last >= 0.9,
            "{metric}: recall {last} with every list scanned"
        );
        let narrow = truth.recall(&search_all(&mut search, &data, "reorder", K));
        assert!(
            narrow < last,
            "{metric}: reordering only k ({narrow}) is as good as 100"
        );
        assert!(
            narrow >= 0.3,
            "{metric}: the estimates alone rank badly ({narrow})"
        );
        let exact = truth.recall(&search_all(&mut search, &data, "reorder", data.train.len()));
        assert_eq!(exact, 1.0, "{metric}: scanning and reordering everything");
        search
            .configure(&mut Params::new([("reorder", "100"), ("nprobe", "4")]))
            .unwrap();
        for (query, (ids, distances)) in data
            .test
            .rows()
            .zip(annvil_testkit::answers(&search, &data, K))
        {
            assert_eq!(ids.len(), K);
            for (&id, &distance) in ids.iter().zip(&distances) {
                let exact = metric.distance(query, data.train.row(id as usize));
                assert!((distance - exact).abs() <= 1e-4 * exact.abs().max(1.0));
            }
        }
    }
}

#[test]
fn a_batch_answers_as_the_queries_one_by_one() {
    for metric in [Metric::L2, Metric::Angular] {
        let data = data(metric);
        let mut search = searcher(&data, &Options::default());
        search
            .configure(&mut Params::new([("nprobe", "5"), ("reorder", "30")]))
            .unwrap();
        let single = annvil_testkit::answers(&search, &data, K);
        // 100 queries, one of which asks for nothing.
        let queries = data.test.len();
        let mut ids = vec![0u32; queries * K];
        let mut distances = vec![0f32; queries * K];
        let mut outs: Vec<Neighbors<'_>> = ids
            .chunks_mut(K)
            .zip(distances.chunks_mut(K))
            .enumerate()
            .map(|(i, (ids, distances))| {
                let width = if i == 70 { 0 } else { K };
                Neighbors::new(&mut ids[..width], &mut distances[..width])
            })
            .collect();
        let mut context = search.new_context().unwrap();
        search
            .search_batch(&mut context, data.test.vectors(), &mut outs)
            .unwrap();
        for (i, (out, (ids, distances))) in outs.iter().zip(&single).enumerate() {
            if i == 70 {
                assert!(out.is_empty());
                continue;
            }
            assert_eq!(out.ids(), &ids[..], "{metric}: query {i}");
            assert_eq!(out.distances(), &distances[..], "{metric}: query {i}");
        }
    }
}

#[test]
fn the_sq8_reorder_keeps_exact_distances_and_recall() {
    for metric in [Metric::L2, Metric::Angular] {
        let data = data(metric);
        let truth = Truth::new(&data);
        let options = Options {
            sq8_reorder: true,
            ..Options::default()
        };
        let mut direct = searcher(&data, &Options::default());
        let mut sq8 = searcher(&data, &options);
        for search in [&mut direct, &mut sq8] {
            search
                .configure(&mut Params::new([
                    ("nprobe", "8"),
                    ("reorder", "100"),
                    ("rerank", "30"),
                ]))
                .unwrap();
        }
        let recall =
            |search: &mut IvfFastScanSearch| truth.recall(&search_all(search, &data, "nprobe", 8));
        let (direct_recall, sq8_recall) = (recall(&mut direct), recall(&mut sq8));
        assert!(
            sq8_recall >= direct_recall - 0.02,
            "{metric}: SQ8 reorder {sq8_recall} vs f32 {direct_recall}"
        );
        for (query, (ids, distances)) in data
            .test
            .rows()
            .zip(annvil_testkit::answers(&sq8, &data, K))
        {
            for (&id, &distance) in ids.iter().zip(&distances) {
                let exact = metric.distance(query, data.train.row(id as usize));
                assert!((distance - exact).abs() <= 1e-4 * exact.abs().max(1.0));
            }
        }
    }
}

#[test]
fn wider_codes_still_search() {
    let data = data(Metric::L2);
    let truth = Truth::new(&data);
    let options = Options {
        sub_dim: 8,
        ..Options::default()
    };
    let mut search = searcher(&data, &options);
    let recall = truth.recall(&search_all(&mut search, &data, "nprobe", LISTS));
    assert!(recall >= 0.6, "sub_dim 8: {recall}");
}

#[test]
fn low_dimensional_data_gets_one_dimension_per_code() {
    assert_eq!(
        [1, 50, 64, 65, 384, 784].map(automatic_sub_dim),
        [1, 1, 1, 2, 2, 2]
    );
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let data = data(Metric::L2);
    let base = leak_base(&data);
    let ivf = build::<Ivf>(base, Metric::L2, &[("nlist", "8")], 1);
    for (options, name) in [
        (
            Options {
                sub_dim: 17,
                ..Options::default()
            },
            "`sub_dim`",
        ),
        (
            Options {
                anisotropic_threshold: 1.0,
                ..Options::default()
            },
            "`anisotropic_threshold`",
        ),
    ] {
        let error = IvfFastScanSearch::new(ivf, base, Metric::L2, &options)
            .err()
            .unwrap();
        assert!(error.message.contains(name), "{}", error.message);
    }
    let error = IvfFastScanSearch::new(ivf, base, Metric::Angular, &Options::default())
        .err()
        .unwrap();
    assert!(
        error.message.contains("built for the euclidean metric"),
        "{}",
        error.message
    );
    let mut search = IvfFastScanSearch::new(ivf, base, Metric::L2, &Options::default()).unwrap();
    for (name, value) in [("reorder", "0"), ("nprobe", "0"), ("rerank", "0")] {
        let error = search
            .configure(&mut Params::new([(name, value)]))
            .unwrap_err();
        assert_eq!(error.status, StatusCode::InvalidArgument);
        assert!(
            error.message.contains(&format!("`{name}`")),
            "{}",
            error.message
        );
    }
}
