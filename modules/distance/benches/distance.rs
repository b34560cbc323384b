//! Each f32 kernel path against scalar for the dimensions of the annvil
//! datasets (25: GloVe-25, 96: Deep1B, 128: SIFT, 784: Fashion-MNIST).

use std::hint::black_box;

use annvil_abi::Metric;
use annvil_distance::{Isa, Kernels};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// Dimensions of the benchmark vectors.
const DIMS: [usize; 4] = [25, 96, 128, 784];

fn kernels(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    for metric in [Metric::L2, Metric::InnerProduct] {
        let mut group = c.benchmark_group(format!("f32-{}", metric.name()));
        for dim in DIMS {
            let a: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
            let b: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
            for kernels in Isa::supported().filter_map(Kernels::for_isa) {
                let kernel = kernels.kernel(metric);
                group.bench_function(BenchmarkId::new(kernels.isa().name(), dim), |bench| {
                    bench.iter(|| kernel.distance(black_box(&a), black_box(&b)))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
