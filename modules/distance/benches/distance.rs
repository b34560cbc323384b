//! Each kernel path against scalar: f32 for the dimensions of the annvil
//! datasets (25: GloVe-25, 96: Deep1B, 128: SIFT, 784: Fashion-MNIST), and
//! f32 query to f16 vector at 784.

#![expect(
    missing_docs,
    reason = "criterion_group! generates a `pub fn benches` with no doc; a bench has no public API"
)]

use std::hint::black_box;

use annvil_abi::Metric;
use annvil_distance::{Isa, Kernel, Kernels, f32_to_f16};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// Dimensions of the f32 benchmark vectors.
const DIMS: [usize; 4] = [25, 96, 128, 784];

/// Dimensions of the f16 benchmark vectors.
const F16_DIMS: [usize; 1] = [784];

/// One group, `{prefix}-{metric}`, per metric: every supported path at
/// every dimension of `dims`, on random vectors whose second one is stored
/// by `store`, measured with the kernel `bind` takes from a level.
fn group<S>(
    c: &mut Criterion,
    prefix: &str,
    dims: &[usize],
    store: impl Fn(f32) -> S,
    bind: impl Fn(&Kernels, Metric) -> Kernel<S>,
) {
    let mut rng = fastrand::Rng::with_seed(1);
    for metric in [Metric::L2, Metric::InnerProduct] {
        let mut group = c.benchmark_group(format!("{prefix}-{}", metric.name()));
        for &dim in dims {
            let a: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
            let b: Vec<S> = (0..dim).map(|_| store(rng.f32())).collect();
            for kernels in Isa::supported().filter_map(Kernels::for_isa) {
                let kernel = bind(&kernels, metric);
                group.bench_function(BenchmarkId::new(kernels.isa().name(), dim), |bench| {
                    bench.iter(|| kernel.distance(black_box(&a), black_box(&b)))
                });
            }
        }
        group.finish();
    }
}

fn kernels(c: &mut Criterion) {
    group(c, "f32", &DIMS, |x| x, Kernels::kernel);
    group(c, "f16", &F16_DIMS, f32_to_f16, Kernels::kernel_f16);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
