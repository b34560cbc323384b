//! Quantizer error bounds, kernel paths against each other and against
//! exact distances to the decoded vectors, and ranking quality.

use annvil_abi::Metric;
use annvil_distance::Isa;
use annvil_quant::{BLOCK_DIMS, ScalarQuantizer, Scheme};

const SCHEMES: [Scheme; 2] = [Scheme::Sq8, Scheme::Sq4];
const DIMS: [usize; 10] = [1, 5, 25, 31, 32, 33, 64, 96, 128, 784];

/// `n` vectors of `dim` values around `clusters` random centres.
fn clustered(rng: &mut fastrand::Rng, n: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.f32() * 20.0 - 10.0)
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let centre = &centres[rng.usize(..clusters) * dim..][..dim];
        out.extend(
            centre
                .iter()
                .map(|&c| c + rng.f32() + rng.f32() + rng.f32() - 1.5),
        );
    }
    out
}

fn decode(sq: &ScalarQuantizer, code: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0; sq.dim()];
    sq.decode(code, &mut out);
    out
}

fn norm(v: impl IntoIterator<Item = f32>) -> f32 {
    v.into_iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn round_trip_stays_within_the_documented_bounds() {
    let mut rng = fastrand::Rng::with_seed(3);
    for dim in DIMS {
        let base = clustered(&mut rng, 200, dim, 5);
        for scheme in SCHEMES {
            let sq = ScalarQuantizer::train(scheme, &base, dim);
            assert_eq!(sq.code_len() % 16, 0);
            assert_eq!(
                sq.code_len(),
                dim.next_multiple_of(BLOCK_DIMS) * scheme.bits() as usize / 8
            );
            let mut code = vec![0xffu8; sq.code_len()];
            for x in base.chunks_exact(dim) {
                sq.encode(x, &mut code);
                let x_hat = decode(&sq, &code);
                for (i, (&a, &b)) in x.iter().zip(&x_hat).enumerate() {
                    let bound = sq.scale()[i] / 2.0 * (1.0 + 1e-5) + 1e-5;
                    assert!(
                        (a - b).abs() <= bound,
                        "{scheme:?} dim {dim} coordinate {i}: {a} vs {b}"
                    );
                    assert!((a - b).abs() <= sq.max_coordinate_error() * (1.0 + 1e-5) + 1e-5);
                }
                let err = norm(x.iter().zip(&x_hat).map(|(a, b)| a - b));
                assert!(
                    err <= sq.l2_error_bound() * (1.0 + 1e-4) + 1e-5,
                    "{scheme:?} dim {dim}: {err}"
                );
                let used = dim * scheme.bits() as usize;
                assert!(
                    code[used.div_ceil(8)..].iter().all(|&b| b == 0),
                    "padding not zero"
                );
            }
        }
    }
}

#[test]
fn edge_values_clamp_and_constant_dimensions_are_exact() {
    let base = [0.0, 5.0, 10.0, 5.0, 4.0, 5.0];
    for scheme in SCHEMES {
        let sq = ScalarQuantizer::train(scheme, &base, 2);
        assert_eq!(sq.min(), [0.0, 5.0]);
        assert_eq!(sq.scale()[1], 0.0);
        let mut code = vec![0u8; sq.code_len()];
        sq.encode(&[-3.0, 5.0], &mut code);
        assert_eq!(decode(&sq, &code), [0.0, 5.0]);
        sq.encode(&[13.0, 7.0], &mut code);
        assert_eq!(decode(&sq, &code), [10.0, 5.0]);
    }
}

#[test]
fn sq8_is_nearly_lossless_on_pixels() {
    let mut rng = fastrand::Rng::with_seed(5);
    let dim = 784;
    let mut base: Vec<f32> = (0..100 * dim).map(|_| f32::from(rng.u8(..))).collect();
    base[..dim].fill(0.0);
    base[dim..2 * dim].fill(255.0);
    let sq = ScalarQuantizer::train(Scheme::Sq8, &base, dim);
    let mut code = vec![0u8; sq.code_len()];
    for x in base.chunks_exact(dim) {
        sq.encode(x, &mut code);
        assert_eq!(decode(&sq, &code), x);
    }
}

/// Every path's distance to each code against the exact f32 distance to
/// the decoded vector, for every scheme, metric and dimension.
#[test]
fn every_path_computes_the_distance_to_the_decoded_vector() {
    let mut rng = fastrand::Rng::with_seed(9);
    for dim in DIMS {
        let base = clustered(&mut rng, 50, dim, 3);
        let queries = clustered(&mut rng, 5, dim, 3);
        for scheme in SCHEMES {
            let sq = ScalarQuantizer::train(scheme, &base, dim);
            let codes = sq.encode_all(&base);
            for metric in Metric::ALL {
                for isa in Isa::supported() {
                    let mut query = sq.query_on(metric, isa).expect("supported");
                    let mut scalar = sq.query_on(metric, Isa::Scalar).expect("scalar");
                    assert_eq!((query.metric(), query.isa()), (metric, isa));
                    for q in queries.chunks_exact(dim) {
                        query.set(q);
                        scalar.set(q);
                        for i in 0..codes.len() {
                            let x_hat = decode(&sq, codes.row(i));
                            let want = f64::from(metric.distance(q, &x_hat));
                            let got = f64::from(query.distance(codes.row(i)));
                            // Relative to the magnitudes that enter the sums.
                            let scale = 1.0
                                + f64::from(norm(q.iter().copied()) * norm(x_hat.iter().copied()))
                                + f64::from(metric.distance(q, &x_hat).abs());
                            let what = format!("{scheme:?} {metric} {isa} dim {dim}");
                            assert!(
                                (got - want).abs() <= 1e-5 * scale,
                                "{what}: {got} vs {want}"
                            );
                            let same = f64::from(scalar.distance(codes.row(i)));
                            assert!(
                                (got - same).abs() <= 1e-5 * scale,
                                "{what}: {got} vs scalar {same}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn distance_errors_stay_within_the_documented_bounds() {
    let mut rng = fastrand::Rng::with_seed(13);
    let dim = 96;
    let base = clustered(&mut rng, 300, dim, 4);
    let queries = clustered(&mut rng, 10, dim, 4);
    for scheme in SCHEMES {
        let sq = ScalarQuantizer::train(scheme, &base, dim);
        let codes = sq.encode_all(&base);
        let (mut l2, mut ip) = (sq.query(Metric::L2), sq.query(Metric::InnerProduct));
        for q in queries.chunks_exact(dim) {
            l2.set(q);
            ip.set(q);
            let ip_bound: f32 = q
                .iter()
                .zip(sq.scale())
                .map(|(q, s)| q.abs() * s)
                .sum::<f32>()
                / 2.0;
            for (i, x) in base.chunks_exact(dim).enumerate() {
                let exact = Metric::L2.distance(q, x).sqrt();
                let approx = l2.distance(codes.row(i)).max(0.0).sqrt();
                assert!(
                    (exact - approx).abs() <= sq.l2_error_bound() * 1.001 + 1e-3,
                    "{scheme:?} l2"
                );
                let exact = Metric::InnerProduct.distance(q, x);
                let approx = ip.distance(codes.row(i));
                assert!(
                    (exact - approx).abs() <= ip_bound * 1.001 + 1e-3,
                    "{scheme:?} ip"
                );
            }
        }
    }
}

/// Average fraction of the exact 10 nearest found among the `candidates`
/// nearest by `approx`, which gives a query's distances to every code
/// (what a reranking refinement recovers).
fn recall_10_at(
    metric: Metric,
    dim: usize,
    (base, queries): (&[f32], &[f32]),
    candidates: usize,
    mut approx: impl FnMut(&[f32]) -> Vec<f32>,
) -> f64 {
    let top = |scores: Vec<f32>, k: usize| {
        let mut ids: Vec<usize> = (0..scores.len()).collect();
        ids.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        ids.truncate(k);
        ids
    };
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let exact = top(
            base.chunks_exact(dim)
                .map(|x| metric.distance(q, x))
                .collect(),
            10,
        );
        let approx = top(approx(q), candidates);
        hits += exact.iter().filter(|id| approx.contains(id)).count();
    }
    hits as f64 / (10 * queries.len() / dim) as f64
}

#[test]
fn quantized_distances_rank_clustered_data_well() {
    let mut rng = fastrand::Rng::with_seed(17);
    let dim = 64;
    let base = clustered(&mut rng, 3000, dim, 20);
    let queries = clustered(&mut rng, 30, dim, 20);
    let data = (base.as_slice(), queries.as_slice());
    // (scheme, uniform, candidates, floor): the points of iid clusters are
    // nearly equidistant, so SQ4 needs a wide candidate list to rerank.
    let cases = [
        (Scheme::Sq8, false, 10, 0.9),
        (Scheme::Sq8, false, 20, 0.99),
        (Scheme::Sq8, true, 10, 0.85),
        (Scheme::Sq8, true, 20, 0.99),
        (Scheme::Sq4, false, 10, 0.35),
        (Scheme::Sq4, false, 100, 0.95),
        (Scheme::Sq4, true, 100, 0.95),
    ];
    for (scheme, uniform, candidates, floor) in cases {
        let sq = if uniform {
            ScalarQuantizer::train_uniform(scheme, &base, dim)
        } else {
            ScalarQuantizer::train(scheme, &base, dim)
        };
        let codes = sq.encode_all(&base);
        let all = |distance: &dyn Fn(&[u8]) -> f32| {
            (0..codes.len()).map(|i| distance(codes.row(i))).collect()
        };
        for metric in [Metric::L2, Metric::InnerProduct] {
            let mut query = sq.query(metric);
            let recall = recall_10_at(metric, dim, data, candidates, |q| {
                query.set(q);
                all(&|code| query.distance(code))
            });
            println!("{scheme:?} uniform {uniform} {metric}: recall 10@{candidates} {recall:.3}");
            assert!(
                recall >= floor,
                "{scheme:?} {metric}: recall 10@{candidates} {recall}"
            );
            if uniform {
                let mut query = sq.integer_query(metric);
                let recall = recall_10_at(metric, dim, data, candidates, |q| {
                    query.set(q);
                    all(&|code| query.distance(code))
                });
                println!("{scheme:?} integer {metric}: recall 10@{candidates} {recall:.3}");
                assert!(
                    recall >= floor,
                    "{scheme:?} integer {metric}: recall 10@{candidates} {recall}"
                );
            }
        }
    }
}

/// Integer queries on every path: exactly the scalar result, and within
/// the documented extra error of the exact distance to the decoded vector.
#[test]
fn integer_queries_are_exact_across_paths_and_within_bounds() {
    let mut rng = fastrand::Rng::with_seed(23);
    for dim in DIMS {
        let mut base = clustered(&mut rng, 40, dim, 3);
        // The extremes of the range, to reach the largest sums.
        let (lo, hi) = base
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        base.extend(std::iter::repeat_n(lo, dim).chain(std::iter::repeat_n(hi, dim)));
        let mut queries = clustered(&mut rng, 4, dim, 3);
        queries.extend(std::iter::repeat_n(hi, dim).chain(std::iter::repeat_n(lo, dim)));
        // Far outside the range: clamped, and must not overflow.
        queries.extend((0..dim).map(|i| if i % 2 == 0 { 1e6 } else { -1e6 }));
        for scheme in SCHEMES {
            let sq = ScalarQuantizer::train_uniform(scheme, &base, dim);
            assert!(sq.is_uniform());
            let (min, scale) = (sq.min()[0], sq.scale()[0]);
            let codes = sq.encode_all(&base);
            for metric in Metric::ALL {
                let mut scalar = sq.integer_query_on(metric, Isa::Scalar).expect("scalar");
                let mut asym = sq.query(metric);
                let mut paths: Vec<_> = Isa::supported()
                    .map(|isa| sq.integer_query_on(metric, isa).expect("supported"))
                    .collect();
                for q in queries.chunks_exact(dim) {
                    scalar.set(q);
                    asym.set(q);
                    paths.iter_mut().for_each(|path| path.set(q));
                    let clamped: Vec<f32> = q
                        .iter()
                        .map(|&x| x.clamp(min, min + scale * f32::from(scheme.max_level())))
                        .collect();
                    for i in 0..codes.len() {
                        let got = scalar.distance(codes.row(i));
                        assert!(got.is_finite());
                        let x_hat = decode(&sq, codes.row(i));
                        let what = format!("{scheme:?} {metric} dim {dim} row {i}");
                        if metric == Metric::L2 {
                            let want = Metric::L2.distance(&clamped, &x_hat).sqrt();
                            let bound =
                                scale * (dim as f32).sqrt() / (2u32 << scalar.shift()) as f32;
                            let err = (got.max(0.0).sqrt() - want).abs();
                            assert!(
                                err <= bound * 1.001 + 1e-3 * (1.0 + want),
                                "{what}: {got} vs {want}"
                            );
                        } else if q.iter().all(|x| x.abs() < 1e5) {
                            let want = asym.distance(codes.row(i));
                            let magnitude: f32 =
                                q.iter().zip(&x_hat).map(|(a, b)| (a * b).abs()).sum();
                            assert!(
                                (got - want).abs() <= 1e-3 * (1.0 + magnitude),
                                "{what}: {got} vs {want}"
                            );
                        }
                        for (path, isa) in paths.iter().zip(Isa::supported()) {
                            assert_eq!((path.metric(), path.isa()), (metric, isa));
                            let same = path.distance(codes.row(i));
                            assert_eq!(same.to_bits(), got.to_bits(), "{what} {isa}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn integer_queries_need_a_uniform_quantizer_of_bounded_dimension() {
    let base = vec![0.5f32; 64];
    let per_dimension = ScalarQuantizer::train(Scheme::Sq8, &base, 64);
    assert!(!per_dimension.is_uniform());
    assert!(std::panic::catch_unwind(|| per_dimension.integer_query(Metric::L2)).is_err());
    let huge = vec![0.5f32; 40_000];
    let huge = ScalarQuantizer::train_uniform(Scheme::Sq8, &huge, 40_000);
    assert!(std::panic::catch_unwind(|| huge.integer_query(Metric::L2)).is_err());
    // SQ4 has 15 levels: far larger dimensions fit.
    let sq4 = ScalarQuantizer::train_uniform(Scheme::Sq4, &vec![0.5f32; 40_000], 40_000);
    assert_eq!(sq4.integer_query(Metric::L2).shift(), 3);
}

#[test]
fn codes_are_aligned_padded_rows() {
    let mut rng = fastrand::Rng::with_seed(19);
    let dim = 25;
    let base = clustered(&mut rng, 7, dim, 2);
    for scheme in SCHEMES {
        let sq = ScalarQuantizer::train(scheme, &base, dim);
        let codes = sq.encode_all(&base);
        assert_eq!((codes.len(), codes.is_empty()), (7, false));
        assert_eq!(codes.stride(), sq.row_stride());
        assert_eq!(codes.stride(), 64);
        assert_eq!(codes.as_bytes().len(), 7 * 64);
        assert!(codes.memory_bytes() >= 7 * 64);
        let mut code = vec![0u8; sq.code_len()];
        for (i, x) in base.chunks_exact(dim).enumerate() {
            let row = codes.row(i);
            assert_eq!(row.as_ptr() as usize % 64, 0);
            sq.encode(x, &mut code);
            assert_eq!(&row[..code.len()], code.as_slice());
            assert!(row[code.len()..].iter().all(|&b| b == 0));
        }
    }
}

#[test]
fn short_codes_panic_on_every_path() {
    let base = vec![1.0f32; 40];
    let sq = ScalarQuantizer::train_uniform(Scheme::Sq8, &base, 40);
    let short = vec![0u8; sq.code_len() - 1];
    for isa in Isa::supported() {
        for metric in Metric::ALL {
            let query = sq.query_on(metric, isa).expect("supported");
            assert!(
                std::panic::catch_unwind(|| query.distance(&short)).is_err(),
                "{isa}"
            );
            let query = sq.integer_query_on(metric, isa).expect("supported");
            assert!(
                std::panic::catch_unwind(|| query.distance(&short)).is_err(),
                "{isa}"
            );
        }
    }
}

/// On pixels (whole numbers in 0..=255) a uniform SQ8 quantizer and a
/// pixel query are both exact, so integer L2 distances equal exact f32
/// distances; a query off the grid is reported inexact.
#[test]
fn integer_queries_report_exact_pixel_queries() {
    let mut rng = fastrand::Rng::with_seed(8);
    let dim = 784;
    let mut base: Vec<f32> = (0..50 * dim).map(|_| f32::from(rng.u8(..))).collect();
    base[..dim].fill(0.0);
    base[dim..2 * dim].fill(255.0);
    let sq = ScalarQuantizer::train_uniform(Scheme::Sq8, &base, dim);
    let codes = sq.encode_all(&base);
    let mut query = sq.integer_query(Metric::L2);
    let pixels: Vec<f32> = (0..dim).map(|_| f32::from(rng.u8(..))).collect();
    query.set(&pixels);
    assert!(query.is_exact());
    for (i, x) in base.chunks_exact(dim).enumerate() {
        let exact = Metric::L2.distance(&pixels, x);
        assert!((query.distance(codes.row(i)) - exact).abs() <= 1e-6 * exact);
    }
    let mut off_grid = pixels.clone();
    off_grid[3] += 0.1;
    query.set(&off_grid);
    assert!(!query.is_exact());
    off_grid[3] = 300.0;
    query.set(&off_grid);
    assert!(!query.is_exact(), "clamped coordinates are not exact");
    let mut dot = sq.integer_query(Metric::InnerProduct);
    dot.set(&off_grid);
    assert!(!dot.is_exact());
}
