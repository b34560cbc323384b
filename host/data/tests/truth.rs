//! Exact ground truth, its cache, the check of shipped neighbours, and
//! tie-aware scoring.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use annvil_data::{
    ANN_BENCHMARKS_EPSILON, DataError, Dataset, GroundTruth, InvalidResult, Matrix, Metric,
    QueryScore, SyntheticSpec, exact_distance, exact_ground_truth,
    exact_ground_truth_with_progress, ground_truth_cached, hit_threshold, recall, score_query,
    verify_ground_truth,
};

fn synthetic(metric: Metric, n: usize, queries: usize, dim: usize) -> Dataset {
    SyntheticSpec {
        n,
        queries,
        dim,
        clusters: 5,
        metric,
        seed: 3,
    }
    .generate()
    .unwrap()
}

fn matrix(rows: &[&[f32]]) -> Matrix {
    Matrix::new(rows.concat(), rows[0].len()).unwrap()
}

/// The obvious O(n·q) computation: every distance as a plain f64 sum,
/// sorted by (distance, id).
fn naive(train: &Matrix, test: &Matrix, metric: Metric, k: usize) -> Vec<Vec<(u32, f64)>> {
    test.rows()
        .map(|q| {
            let mut all: Vec<(u32, f64)> = train
                .rows()
                .enumerate()
                .map(|(id, x)| {
                    let pairs = x.iter().zip(q).map(|(&a, &b)| (f64::from(a), f64::from(b)));
                    let d = match metric {
                        Metric::L2 => pairs.map(|(a, b)| (a - b) * (a - b)).sum(),
                        Metric::Angular => 1.0 - pairs.map(|(a, b)| a * b).sum::<f64>(),
                        Metric::InnerProduct => -pairs.map(|(a, b)| a * b).sum::<f64>(),
                    };
                    (id as u32, d)
                })
                .collect();
            all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            all
        })
        .collect()
}

#[test]
fn exact_ground_truth_matches_naive_search() {
    for metric in Metric::ALL {
        let data = synthetic(metric, 700, 37, 19);
        let k = 9;
        let truth = exact_ground_truth(&data.train, &data.test, metric, k).unwrap();
        assert_eq!((truth.k, truth.queries()), (k, 37));
        for (q, expected) in naive(&data.train, &data.test, metric, k).iter().enumerate() {
            let row = truth.row(q);
            let ids: Vec<u32> = expected.iter().map(|e| e.0).collect();
            assert_eq!(row.ids, ids, "{metric} query {q}");
            for (&got, &(_, want)) in row.distances.iter().zip(expected) {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn fashion_mnist_ground_truth_matches_naive_search() {
    let spec: annvil_data::DatasetSpec = "fashion-mnist".parse().unwrap();
    let Ok(data) = spec.load() else {
        eprintln!("skipping: Fashion-MNIST is not installed (scripts/setup installs it)");
        return;
    };
    // Raw pixels (0..255, 784 dims) are where f32 shortcuts mis-rank ties.
    let data = data.first_queries(40).unwrap();
    let k = 10;
    let truth = exact_ground_truth(&data.train, &data.test, Metric::L2, k).unwrap();
    for (q, expected) in naive(&data.train, &data.test, Metric::L2, k)
        .iter()
        .enumerate()
    {
        let ids: Vec<u32> = expected.iter().map(|e| e.0).collect();
        assert_eq!(truth.row(q).ids, ids, "query {q}");
        let distances: Vec<f64> = expected.iter().map(|e| e.1).collect();
        assert_eq!(
            truth.row(q).distances,
            distances,
            "query {q}: integer pixels give exact sums"
        );
    }
}

#[test]
fn ties_are_broken_by_id() {
    // Ids 1, 2 and 4 are all at distance 1 from the query; k = 2 keeps 1, 2.
    let train = matrix(&[
        &[5.0, 0.0],
        &[1.0, 0.0],
        &[0.0, 1.0],
        &[3.0, 3.0],
        &[-1.0, 0.0],
    ]);
    let test = matrix(&[&[0.0, 0.0]]);
    let truth = exact_ground_truth(&train, &test, Metric::L2, 2).unwrap();
    assert_eq!(truth.row(0).ids, &[1, 2]);
    assert_eq!(truth.row(0).distances, &[1.0, 1.0]);
}

#[test]
fn raw_pixels_near_ties_are_ranked_exactly() {
    // |x|² ≈ 5·10⁷: f32's spacing there is 4, so the expanded formula
    // |x|² + |q|² - 2x·q in f32 cannot tell squared distances 2 and 1 apart.
    let query = vec![255.0f32; 784];
    let mut far = query.clone();
    far[10] = 254.0;
    far[20] = 254.0;
    let mut near = query.clone();
    near[30] = 254.0;
    let train = matrix(&[&far, &near]);
    let test = matrix(&[&query]);
    let truth = exact_ground_truth(&train, &test, Metric::L2, 1).unwrap();
    assert_eq!(
        (truth.row(0).ids, truth.row(0).distances),
        (&[1u32][..], &[1.0][..])
    );
}

#[test]
fn bad_requests_are_errors() {
    let data = synthetic(Metric::L2, 20, 3, 4);
    for k in [0, 21] {
        let error = exact_ground_truth(&data.train, &data.test, data.metric, k).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("k = {k} is not between 1 and"))
        );
    }
    let other = Matrix::new(vec![0.0; 6], 3).unwrap();
    let error = exact_ground_truth(&data.train, &other, data.metric, 1).unwrap_err();
    assert!(matches!(error, DataError::Invalid(_)));
}

#[test]
fn progress_reaches_the_total() {
    let data = synthetic(Metric::L2, 50, 41, 4);
    let calls = Mutex::new(Vec::new());
    exact_ground_truth_with_progress(&data.train, &data.test, data.metric, 3, |done, total| {
        calls.lock().unwrap().push((done, total));
    })
    .unwrap();
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.len(), 3, "41 queries in blocks of 16");
    assert_eq!(calls.iter().map(|c| c.0).max(), Some(41));
    assert!(calls.iter().all(|c| c.1 == 41));
}

#[test]
fn cache_is_reused_validated_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(Metric::Angular, 300, 20, 6);
    let computed = AtomicUsize::new(0);
    let count = |_: usize, _: usize| {
        computed.fetch_add(1, Ordering::Relaxed);
    };
    let first = ground_truth_cached(&data, 5, dir.path(), count).unwrap();
    assert_eq!(
        first,
        exact_ground_truth(&data.train, &data.test, data.metric, 5).unwrap()
    );
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        name,
        format!("gt-{}-angular-k5.bin", &data.content_hash()[..32])
    );

    let calls = computed.load(Ordering::Relaxed);
    assert!(calls > 0);
    assert_eq!(
        ground_truth_cached(&data, 5, dir.path(), count).unwrap(),
        first
    );
    assert_eq!(
        computed.load(Ordering::Relaxed),
        calls,
        "loaded, not recomputed"
    );

    // A truncated file and a flipped byte are both detected and rewritten.
    let bytes = std::fs::read(file).unwrap();
    std::fs::write(file, &bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(
        ground_truth_cached(&data, 5, dir.path(), count).unwrap(),
        first
    );
    assert!(computed.load(Ordering::Relaxed) > calls);
    assert_eq!(std::fs::read(file).unwrap(), bytes);
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    std::fs::write(file, &flipped).unwrap();
    let calls = computed.load(Ordering::Relaxed);
    assert_eq!(
        ground_truth_cached(&data, 5, dir.path(), count).unwrap(),
        first
    );
    assert!(computed.load(Ordering::Relaxed) > calls);

    // Another k is another file.
    let k3 = ground_truth_cached(&data, 3, dir.path(), |_, _| {}).unwrap();
    assert_eq!(k3, first.truncated(3).unwrap());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn cache_refuses_impossible_k() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(Metric::L2, 10, 2, 3);
    assert!(ground_truth_cached(&data, 11, dir.path(), |_, _| {}).is_err());
}

#[test]
fn shipped_neighbours_are_used_when_deep_enough() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(Metric::L2, 200, 10, 5);
    let exact = exact_ground_truth(&data.train, &data.test, data.metric, 8).unwrap();
    // Ship the true ids in reverse order: they are re-sorted on attach.
    let reversed: Vec<u32> = exact
        .ids
        .chunks(8)
        .flat_map(|row| row.iter().rev().copied())
        .collect();
    let data = data.with_shipped_neighbors(reversed, 8).unwrap();
    assert_eq!(data.ground_truth.as_ref(), Some(&exact));
    let never = |_: usize, _: usize| panic!("shipped truth must not be recomputed");
    assert_eq!(
        data.resolve_ground_truth(5, dir.path(), never).unwrap(),
        exact.truncated(5).unwrap()
    );
    let deeper = data.resolve_ground_truth(9, dir.path(), |_, _| {}).unwrap();
    assert_eq!(deeper.k, 9);
    assert_eq!(deeper.truncated(8).unwrap(), exact);
}

#[test]
fn verify_counts_ties_apart_from_errors() {
    // Query 0: ids 1 and 2 tie at the k-th place. Query 1: id 3 is wrong.
    let train = matrix(&[&[0.0, 0.0], &[1.0, 0.0], &[0.0, 1.0], &[4.0, 4.0]]);
    let test = matrix(&[&[0.0, 0.0], &[0.1, 0.0]]);
    let data = Dataset::new("tiny", Metric::L2, train, test, "tiny").unwrap();
    let exact = exact_ground_truth(&data.train, &data.test, data.metric, 2).unwrap();
    assert_eq!(exact.ids, vec![0, 1, 0, 1]);
    let shipped = data.with_shipped_neighbors(vec![0, 2, 3, 0], 2).unwrap();
    let check = verify_ground_truth(shipped.ground_truth.as_ref().unwrap(), &exact, 2).unwrap();
    assert_eq!(
        (check.queries, check.disagreeing, check.ties, check.wrong()),
        (2, 2, 1, 1)
    );
    assert_eq!(check.first_wrong, Some(1));
    assert!(verify_ground_truth(&exact, &exact, 3).is_err());
}

// --------------------------------------------------------------- scoring

fn truth_row(distances: &[f64]) -> GroundTruth {
    GroundTruth {
        k: distances.len(),
        ids: (0..distances.len() as u32).collect(),
        distances: distances.to_vec(),
    }
}

#[test]
fn tied_points_count_as_hits() {
    let train = matrix(&[
        &[5.0, 0.0],
        &[1.0, 0.0],
        &[0.0, 1.0],
        &[3.0, 3.0],
        &[-1.0, 0.0],
    ]);
    let query = [0.0, 0.0];
    let truth = exact_ground_truth(&train, &matrix(&[&query]), Metric::L2, 2).unwrap();
    assert_eq!(truth.row(0).ids, &[1, 2]);
    for returned in [[1, 2], [4, 1], [2, 4]] {
        let score = score_query(&train, Metric::L2, &query, &returned, truth.row(0), 2, 0.0);
        assert_eq!(score, QueryScore::Hits(2), "{returned:?}");
    }
    let score = score_query(&train, Metric::L2, &query, &[3, 4], truth.row(0), 2, 0.0);
    assert_eq!(score, QueryScore::Hits(1));
    // Fewer ids than k are misses, not errors.
    let score = score_query(&train, Metric::L2, &query, &[4], truth.row(0), 2, 0.0);
    assert_eq!(score, QueryScore::Hits(1));
    let score = score_query(&train, Metric::L2, &query, &[], truth.row(0), 2, 0.0);
    assert_eq!(score, QueryScore::Hits(0));
}

#[test]
fn epsilon_applies_to_the_unsquared_euclidean_distance() {
    // The k-th true squared distance is 4 (distance 2); with epsilon 0.5 a
    // point counts up to distance 2.5, i.e. squared 6.25.
    assert_eq!(hit_threshold(Metric::L2, 4.0, 0.5), 6.25);
    assert_eq!(hit_threshold(Metric::Angular, 0.25, 0.5), 0.75);
    assert_eq!(hit_threshold(Metric::InnerProduct, -3.0, 0.5), -2.5);
    let train = matrix(&[&[2.0, 0.0], &[2.49, 0.0], &[2.51, 0.0]]);
    let truth = truth_row(&[4.0]);
    let query = [0.0, 0.0];
    let hits = |id: u32| score_query(&train, Metric::L2, &query, &[id], truth.row(0), 1, 0.5);
    assert_eq!(
        (hits(0), hits(1), hits(2)),
        (
            QueryScore::Hits(1),
            QueryScore::Hits(1),
            QueryScore::Hits(0)
        )
    );
    // ann-benchmarks' epsilon is tiny next to real distances.
    let strict = score_query(
        &train,
        Metric::L2,
        &query,
        &[1],
        truth.row(0),
        1,
        ANN_BENCHMARKS_EPSILON,
    );
    assert_eq!(strict, QueryScore::Hits(0));
}

#[test]
fn contract_violations_are_invalid_not_misses() {
    let train = matrix(&[&[0.0], &[1.0], &[2.0]]);
    let truth = truth_row(&[0.0, 1.0]);
    let score = |ids: &[u32]| score_query(&train, Metric::L2, &[0.0], ids, truth.row(0), 2, 0.0);
    assert_eq!(
        score(&[1, 1]),
        QueryScore::Invalid(InvalidResult::DuplicateId { id: 1 })
    );
    assert_eq!(
        score(&[0, 3]),
        QueryScore::Invalid(InvalidResult::IdOutOfRange { id: 3, base_len: 3 })
    );
    assert_eq!(
        score(&[0, 1, 2]),
        QueryScore::Invalid(InvalidResult::TooManyIds { returned: 3, k: 2 })
    );
    assert_eq!(
        InvalidResult::DuplicateId { id: 1 }.to_string(),
        "id 1 returned twice"
    );
}

#[test]
fn recall_over_a_run() {
    let data = synthetic(Metric::InnerProduct, 400, 30, 8);
    let k = 10;
    let truth = exact_ground_truth(&data.train, &data.test, data.metric, k).unwrap();
    let perfect: Vec<Vec<u32>> = (0..30).map(|q| truth.row(q).ids.to_vec()).collect();
    let full = recall(
        &data.train,
        &data.test,
        data.metric,
        &perfect,
        &truth,
        k,
        0.0,
    )
    .unwrap();
    assert_eq!(
        (full.mean, full.hits, full.invalid, full.first_invalid),
        (1.0, 300, 0, None)
    );

    // Half the ids of every query, then two broken queries.
    let mut results: Vec<Vec<u32>> = perfect.iter().map(|ids| ids[..5].to_vec()).collect();
    results[4] = vec![7, 7];
    results[9] = vec![400];
    let run = recall(
        &data.train,
        &data.test,
        data.metric,
        &results,
        &truth,
        k,
        0.0,
    )
    .unwrap();
    assert_eq!((run.queries, run.hits, run.invalid), (30, 28 * 5, 2));
    assert_eq!(run.mean, 140.0 / 300.0);
    assert_eq!(
        run.first_invalid,
        Some((4, InvalidResult::DuplicateId { id: 7 }))
    );

    // Recall@5 scored against 10-NN ground truth.
    let at5 = recall(
        &data.train,
        &data.test,
        data.metric,
        &perfect[..].iter().map(|r| &r[..5]).collect::<Vec<_>>(),
        &truth,
        5,
        0.0,
    )
    .unwrap();
    assert_eq!(at5.mean, 1.0);

    assert!(
        recall(
            &data.train,
            &data.test,
            data.metric,
            &perfect[..29],
            &truth,
            k,
            0.0
        )
        .is_err()
    );
    assert!(
        recall(
            &data.train,
            &data.test,
            data.metric,
            &perfect,
            &truth,
            11,
            0.0
        )
        .is_err()
    );
}

#[test]
fn exact_distance_is_the_scoring_reference() {
    let data = synthetic(Metric::Angular, 30, 2, 7);
    let d = exact_distance(Metric::Angular, data.train.row(3), data.test.row(1));
    let truth = truth_row(&[d]);
    let score = score_query(
        &data.train,
        Metric::Angular,
        data.test.row(1),
        &[3],
        truth.row(0),
        1,
        0.0,
    );
    assert_eq!(score, QueryScore::Hits(1));
}
