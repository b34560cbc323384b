//! Each distance kernel path against scalar for the dimensions of the
//! annvil datasets (25: GloVe-25, 96: Deep1B, 128: SIFT, 784: Fashion-MNIST):
//! asymmetric (f32 query) and integer (i16 query) L2 on SQ8 and SQ4 codes.

#![expect(
    missing_docs,
    reason = "criterion_group! generates a `pub fn benches` with no doc; a bench has no public API"
)]

use std::hint::black_box;

use annvil_abi::Metric;
use annvil_distance::Isa;
use annvil_quant::{ScalarQuantizer, Scheme};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

/// Dimensions of the benchmark vectors.
const DIMS: [usize; 4] = [25, 96, 128, 784];

/// Times `distance(query, code)` as benchmark `isa/dim` of `group`.
fn bench<Q>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (isa, dim): (Isa, usize),
    query: Q,
    code: &[u8],
    distance: impl Fn(&Q, &[u8]) -> f32,
) {
    group.bench_function(BenchmarkId::new(isa.name(), dim), |bench| {
        bench.iter(|| distance(&query, black_box(code)))
    });
}

fn kernels(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    for scheme in [Scheme::Sq8, Scheme::Sq4] {
        let name = format!("{scheme:?}").to_lowercase();
        for integer in [false, true] {
            let kind = if integer { "integer" } else { "asymmetric" };
            let mut group = c.benchmark_group(format!("{name}-{kind}-euclidean"));
            for dim in DIMS {
                let base: Vec<f32> = (0..64 * dim).map(|_| rng.f32()).collect();
                let sq = if integer {
                    ScalarQuantizer::train_uniform(scheme, &base, dim)
                } else {
                    ScalarQuantizer::train(scheme, &base, dim)
                };
                let codes = sq.encode_all(&base);
                let (q, code) = (&base[..dim], codes.row(1));
                for isa in Isa::supported() {
                    if integer {
                        let mut query = sq.integer_query_on(Metric::L2, isa).expect("supported");
                        query.set(q);
                        bench(&mut group, (isa, dim), query, code, |query, code| {
                            query.distance(code)
                        });
                    } else {
                        let mut query = sq.query_on(Metric::L2, isa).expect("supported");
                        query.set(q);
                        bench(&mut group, (isa, dim), query, code, |query, code| {
                            query.distance(code)
                        });
                    }
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
