//! annvil-ivf: k-means behaviour, list invariants, and IVF-Flat recall
//! against exact search.

use annvil_abi::{Construction, Metric, Neighbors, Params, Search, StatusCode, Vectors};
use annvil_dataset::Dataset;
use annvil_ivf::{Ivf, IvfFlatSearch, KMeans};
use annvil_testkit::{Truth, build, leak_base, search_all};

/// 3,000 clustered vectors of 16 dimensions, 100 queries.
fn dataset(metric: Metric) -> Dataset {
    annvil_testkit::dataset(&format!(
        "synthetic:n=3000,queries=100,dim=16,clusters=20,metric={},seed=11",
        metric.name()
    ))
}

#[test]
fn kmeans_objective_decreases_and_is_deterministic() {
    for metric in [Metric::L2, Metric::Angular] {
        let data = dataset(metric);
        let kmeans = KMeans {
            clusters: 40,
            iterations: 8,
            sample: 2000,
            seed: 3,
        };
        let one = kmeans.train(data.train.vectors(), metric, 1);
        assert_eq!(one.objective.len(), 9);
        for w in one.objective.windows(2) {
            assert!(w[1] <= w[0] * (1.0 + 1e-9), "{metric}: {:?}", one.objective);
        }
        assert!(
            one.objective[8] < one.objective[0],
            "{metric}: {:?}",
            one.objective
        );
        let again = kmeans.train(data.train.vectors(), metric, 1);
        assert_eq!(one.centroids.as_slice(), again.centroids.as_slice());
        assert_eq!(one.objective, again.objective);
        // The parallel steps combine results in index order.
        let threaded = kmeans.train(data.train.vectors(), metric, 3);
        assert_eq!(one.centroids.as_slice(), threaded.centroids.as_slice());
        let other_seed = KMeans { seed: 4, ..kmeans }.train(data.train.vectors(), metric, 1);
        assert_ne!(one.centroids.as_slice(), other_seed.centroids.as_slice());
        if metric == Metric::Angular {
            for c in 0..one.centroids.len() {
                let norm: f32 = one.centroids.row(c).iter().map(|x| x * x).sum();
                assert!((norm - 1.0).abs() < 1e-4, "centroid {c} has norm² {norm}");
            }
        }
    }
}

#[test]
fn lists_partition_the_base_contiguously() {
    let data = dataset(Metric::L2);
    let base = leak_base(&data);
    let ivf = build::<Ivf>(base, Metric::L2, &[("nlist", "50")], 2);
    assert_eq!(ivf.lists().len(), 50);
    let mut seen = vec![false; base.len()];
    for c in 0..ivf.lists().len() {
        let vectors = ivf.list_vectors(c);
        for (i, &id) in ivf.lists().list(c).iter().enumerate() {
            assert!(!std::mem::replace(&mut seen[id as usize], true));
            assert_eq!(&vectors[i * 16..(i + 1) * 16], base.row(id as usize));
            assert_eq!(ivf.centroids().nearest(base.row(id as usize)).0 as usize, c);
        }
    }
    assert!(seen.into_iter().all(|s| s));
    assert!(ivf.view().levels.is_empty());
}

#[test]
fn scanning_every_list_is_exact_and_recall_grows_with_nprobe() {
    for metric in Metric::ALL {
        let data = dataset(metric);
        let truth = Truth::new(&data);
        let base = leak_base(&data);
        let ivf = build::<Ivf>(base, metric, &[("nlist", "64"), ("seed", "5")], 2);
        let mut searcher = IvfFlatSearch::new(ivf, base, metric).unwrap();
        let mut last = 0.0;
        for nprobe in [1, 2, 4, 8, 16] {
            let r = truth.recall(&search_all(&mut searcher, &data, "nprobe", nprobe));
            assert!(r >= last, "{metric}: nprobe {nprobe}: {r} < {last}");
            last = r;
        }
        assert!(last > 0.8, "{metric}: recall {last} at nprobe 16");
        let exact = truth.recall(&search_all(&mut searcher, &data, "nprobe", 64));
        assert_eq!(exact, 1.0, "{metric}");
    }
}

#[test]
fn small_lists_are_extended_to_fill_n() {
    let data = dataset(Metric::L2);
    let base = leak_base(&data);
    let ivf = build::<Ivf>(base, Metric::L2, &[("nlist", "300")], 1);
    let mut searcher = IvfFlatSearch::new(ivf, base, Metric::L2).unwrap();
    searcher
        .configure(&mut Params::new([("nprobe", "1")]))
        .unwrap();
    let mut context = searcher.new_context().unwrap();
    let n = base.len() + 5;
    let (mut ids, mut distances) = (vec![0u32; n], vec![0f32; n]);
    let mut out = Neighbors::new(&mut ids, &mut distances);
    searcher
        .search(&mut context, data.test.row(0), &mut out)
        .unwrap();
    assert_eq!(out.len(), base.len());
    let mut returned = out.ids().to_vec();
    returned.sort_unstable();
    returned.dedup();
    assert_eq!(returned.len(), base.len());
}

#[test]
fn tiny_and_empty_bases_work() {
    let values: &'static [f32] =
        Box::leak(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].into_boxed_slice());
    let base = Vectors::new(values, 2).unwrap();
    let ivf = build::<Ivf>(base, Metric::L2, &[("nlist", "1000")], 2);
    assert_eq!(ivf.lists().len(), 3);
    let empty = Vectors::new(&[], 2).unwrap();
    let ivf = build::<Ivf>(empty, Metric::L2, &[], 2);
    let mut searcher = IvfFlatSearch::new(ivf, empty, Metric::L2).unwrap();
    let mut context = searcher.new_context().unwrap();
    let (mut ids, mut distances) = (vec![0u32; 3], vec![0f32; 3]);
    let mut out = Neighbors::new(&mut ids, &mut distances);
    searcher
        .search(&mut context, &[0.0, 0.0], &mut out)
        .unwrap();
    assert!(out.is_empty());
    searcher
        .configure(&mut Params::new([("nprobe", "4")]))
        .unwrap();
}

#[test]
fn invalid_parameters_are_rejected_with_their_range() {
    let data = dataset(Metric::L2);
    let base = leak_base(&data);
    for (key, value, needle) in [
        (
            "nlist",
            "16777217",
            "`nlist` must be in 0..=16777216 (0: automatic)",
        ),
        ("iterations", "1001", "`iterations` must be in 0..=1000"),
        (
            "sample",
            "10",
            "`sample` must be 0 (automatic) or at least `nlist`",
        ),
        ("nlist", "many", "`nlist`: `many` is not a valid usize"),
    ] {
        let mut params = Params::new([(key, value)]);
        let err = Ivf::build(base, Metric::L2, &mut params, 1).unwrap_err();
        assert_eq!(err.status, StatusCode::InvalidArgument, "{key}={value}");
        assert!(err.message.contains(needle), "{}", err.message);
    }
    let ivf = build::<Ivf>(base, Metric::L2, &[("nlist", "8")], 1);
    let mut searcher = IvfFlatSearch::new(ivf, base, Metric::L2).unwrap();
    let err = searcher
        .configure(&mut Params::new([("nprobe", "0")]))
        .unwrap_err();
    assert_eq!(err.status, StatusCode::InvalidArgument);
    assert!(err.message.contains("`nprobe` must be at least 1"));
    let err = IvfFlatSearch::new(ivf, base, Metric::Angular)
        .err()
        .unwrap();
    assert!(err.message.contains("built for the euclidean metric"));
}

#[test]
fn declared_defaults_are_the_defaults() {
    let declared: Vec<(&str, &str)> = Ivf::PARAMS
        .iter()
        .map(|p| (p.name(), p.default()))
        .collect();
    let explicit = KMeans::from_params(&mut Params::new(declared), 10_000).unwrap();
    let implicit = KMeans::from_params(&mut Params::default(), 10_000).unwrap();
    assert_eq!(explicit, implicit);
    assert_eq!(implicit.clusters, 100);
    assert_eq!(implicit.sample, 6400);
    assert_eq!(annvil_ivf::default_nlist(10_000), 100);
    let [nprobe] = IvfFlatSearch::PARAMS else {
        panic!("one knob")
    };
    assert!(nprobe.is_knob());
    assert_eq!(nprobe.default(), annvil_ivf::DEFAULT_NPROBE.to_string());
}
