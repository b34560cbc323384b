//! Every kernel path against an f64 reference and against the scalar path.

use annvil_abi::Metric;
use annvil_distance::{Isa, Kernels, kernel, prefetch, prefetch_slice};

/// Relative error bound, against `Σ|terms|`, that the crate documents.
const BOUND: f64 = 1e-5;

/// Lengths to test: every length up to 100 (all tail shapes of every path)
/// and Fashion-MNIST's 784.
fn lengths() -> impl Iterator<Item = usize> {
    (0..=100).chain([784, 1024])
}

/// Random vectors of `len`: unit-range values, pixel-range floats, or whole
/// pixel values 0..=255 (the large-norm case where f32 sums lose precision).
fn vectors(rng: &mut fastrand::Rng, len: usize, kind: usize) -> Vec<f32> {
    (0..len)
        .map(|_| match kind {
            0 => rng.f32() * 2.0 - 1.0,
            1 => rng.f32() * 255.0,
            _ => f32::from(rng.u8(..)),
        })
        .collect()
}

/// Exact (f64) value and `Σ|terms|` of the L2 and dot sums.
fn reference(a: &[f32], b: &[f32]) -> [(f64, f64); 2] {
    let (mut l2, mut dot, mut dot_abs) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        l2 += (x - y) * (x - y);
        dot += x * y;
        dot_abs += (x * y).abs();
    }
    [(l2, l2), (dot, dot_abs)]
}

/// Every supported path with `(len, a, b)` for all lengths, value kinds and
/// misalignments (slices that start 0..4 elements into their buffer).
fn for_all_inputs(mut check: impl FnMut(Kernels, &[f32], &[f32])) {
    let mut rng = fastrand::Rng::with_seed(7);
    for len in lengths() {
        for kind in 0..3 {
            for shift in 0..4 {
                let a = vectors(&mut rng, len + shift, kind);
                let b = vectors(&mut rng, len + shift, kind);
                for kernels in Isa::supported().filter_map(Kernels::for_isa) {
                    check(kernels, &a[shift..], &b[shift..]);
                }
            }
        }
    }
}

#[test]
fn every_path_matches_the_f64_reference() {
    for_all_inputs(|kernels, a, b| {
        let got = [kernels.l2_squared(a, b), kernels.dot(a, b)];
        for (name, (got, (want, scale))) in ["l2", "dot"]
            .iter()
            .zip(got.into_iter().zip(reference(a, b)))
        {
            let err = (f64::from(got) - want).abs();
            assert!(
                err <= BOUND * scale,
                "{} {name} len {}: {got} vs {want} (error {err}, scale {scale})",
                kernels.isa(),
                a.len()
            );
        }
    });
}

#[test]
fn every_path_agrees_with_scalar() {
    let scalar = Kernels::scalar();
    for_all_inputs(|kernels, a, b| {
        let [(_, l2_scale), (_, dot_scale)] = reference(a, b);
        let l2 = (kernels.l2_squared(a, b), scalar.l2_squared(a, b));
        let dot = (kernels.dot(a, b), scalar.dot(a, b));
        assert!(
            f64::from((l2.0 - l2.1).abs()) <= 2.0 * BOUND * l2_scale,
            "{} l2 {l2:?}",
            kernels.isa()
        );
        assert!(
            f64::from((dot.0 - dot.1).abs()) <= 2.0 * BOUND * dot_scale,
            "{} dot {dot:?}",
            kernels.isa()
        );
    });
}

#[test]
fn metric_kernels_follow_the_abi_conventions_exactly() {
    let mut rng = fastrand::Rng::with_seed(11);
    let a = vectors(&mut rng, 97, 0);
    let b = vectors(&mut rng, 97, 0);
    for kernels in Isa::supported().filter_map(Kernels::for_isa) {
        let dot = kernels.dot(&a, &b);
        let expected = [
            (Metric::L2, kernels.l2_squared(&a, &b)),
            (Metric::Angular, 1.0 - dot),
            (Metric::InnerProduct, -dot),
        ];
        for (metric, want) in expected {
            let kernel = kernels.kernel(metric);
            assert_eq!(kernel.distance(&a, &b), want, "{} {metric}", kernels.isa());
            assert_eq!((kernel.metric(), kernel.isa()), (metric, kernels.isa()));
        }
    }
    for metric in Metric::ALL {
        let got = annvil_distance::distance(metric, &a, &b);
        assert_eq!(got, kernel(metric).distance(&a, &b));
        let want = metric.distance(&a, &b);
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{metric}: {got} vs {want}"
        );
    }
    assert_eq!(
        annvil_distance::l2_squared(&a, &b),
        Kernels::best().l2_squared(&a, &b)
    );
    assert_eq!(annvil_distance::dot(&a, &b), Kernels::best().dot(&a, &b));
}

#[test]
fn mismatched_lengths_panic_on_every_path() {
    let (a, b) = (vec![1.0f32; 40], vec![1.0f32; 39]);
    for kernels in Isa::supported().filter_map(Kernels::for_isa) {
        for metric in Metric::ALL {
            let kernel = kernels.kernel(metric);
            let result = std::panic::catch_unwind(|| kernel.distance(&a, &b));
            assert!(
                result.is_err(),
                "{} {metric} accepted lengths 40 and 39",
                kernels.isa()
            );
        }
    }
}

#[test]
fn detection_is_consistent() {
    assert!(Isa::best().is_supported());
    assert_eq!(Some(Isa::best()), Isa::supported().last());
    assert_eq!(Kernels::best().isa(), Isa::best());
    assert_eq!(Kernels::scalar().isa(), Isa::Scalar);
    for isa in Isa::ALL {
        assert_eq!(Kernels::for_isa(isa).is_some(), isa.is_supported(), "{isa}");
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        Isa::Avx2.is_supported(),
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    );
}

#[test]
fn prefetch_accepts_any_address() {
    prefetch(std::ptr::null::<f32>());
    prefetch(usize::MAX as *const u8);
    let data = vec![0.5f32; 1000];
    prefetch(data.as_ptr());
    prefetch_slice(&data[3..917]);
    prefetch_slice::<f32>(&[]);
}
