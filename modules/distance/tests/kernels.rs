//! Every kernel path against an f64 reference and against the scalar path,
//! for f32 vectors and for f16-stored ones; the f16 conversions on every
//! bit pattern and at every rounding edge.

use annvil_abi::Metric;
use annvil_distance::{
    Isa, Kernels, f16_to_f32, f32_to_f16, kernel, kernel_f16, prefetch, prefetch_slice,
};

/// Relative error bound, against `Σ|terms|`, that the crate documents.
const BOUND: f64 = 1e-5;

/// Lengths to test: every length up to 100 (all tail shapes of every path),
/// a sentence embedding's 384 and Fashion-MNIST's 784.
fn lengths() -> impl Iterator<Item = usize> {
    (0..=100).chain([384, 784, 1024])
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

/// One pair of test vectors: `a` and `b`, and `b` stored as f16 (`halves`)
/// with the values those halves stand for (`widened`).
struct Input<'a> {
    a: &'a [f32],
    b: &'a [f32],
    halves: &'a [u16],
    widened: &'a [f32],
}

/// Every supported path with an [`Input`] for all lengths, value kinds and
/// misalignments (slices that start 0..4 elements into their buffer).
fn for_all_inputs(mut check: impl FnMut(Kernels, &Input)) {
    let mut rng = fastrand::Rng::with_seed(7);
    for len in lengths() {
        for kind in 0..3 {
            for shift in 0..4 {
                let a = vectors(&mut rng, len + shift, kind);
                let b = vectors(&mut rng, len + shift, kind);
                let halves: Vec<u16> = b.iter().map(|&x| f32_to_f16(x)).collect();
                let widened: Vec<f32> = halves.iter().map(|&h| f16_to_f32(h)).collect();
                let input = Input {
                    a: &a[shift..],
                    b: &b[shift..],
                    halves: &halves[shift..],
                    widened: &widened[shift..],
                };
                for kernels in Isa::supported().filter_map(Kernels::for_isa) {
                    check(kernels, &input);
                }
            }
        }
    }
}

/// Asserts that `got` (L2 then dot) is within the documented bound of the
/// f64 reference of `a` and `b`.
fn assert_near_reference(what: &str, got: [f32; 2], a: &[f32], b: &[f32]) {
    for (name, (got, (want, scale))) in ["l2", "dot"]
        .iter()
        .zip(got.into_iter().zip(reference(a, b)))
    {
        let err = (f64::from(got) - want).abs();
        assert!(
            err <= BOUND * scale,
            "{what} {name} len {}: {got} vs {want} (error {err}, scale {scale})",
            a.len()
        );
    }
}

#[test]
fn every_path_matches_the_f64_reference() {
    for_all_inputs(|kernels, &Input { a, b, .. }| {
        let got = [kernels.l2_squared(a, b), kernels.dot(a, b)];
        assert_near_reference(kernels.isa().name(), got, a, b);
    });
}

#[test]
fn every_f16_path_matches_the_f64_reference_of_the_decoded_vector() {
    for_all_inputs(|kernels, input| {
        let (a, halves) = (input.a, input.halves);
        let got = [
            kernels.l2_squared_f16(a, halves),
            kernels.dot_f16(a, halves),
        ];
        let what = format!("{} f16", kernels.isa());
        assert_near_reference(&what, got, a, input.widened);
    });
}

#[test]
fn f16_kernels_are_the_f32_kernels_of_their_level_on_the_decoded_vector() {
    for_all_inputs(
        |kernels,
         &Input {
             a, halves, widened, ..
         }| {
            // The AVX-512 level measures f16 with the AVX2 kernel.
            let f32_level = match kernels.isa() {
                Isa::Avx512 => Kernels::for_isa(Isa::Avx2).expect("part of AVX-512"),
                _ => kernels,
            };
            let f16 = (
                kernels.l2_squared_f16(a, halves),
                kernels.dot_f16(a, halves),
            );
            let f32 = (f32_level.l2_squared(a, widened), f32_level.dot(a, widened));
            assert_eq!(f16, f32, "{} len {}", kernels.isa(), a.len());
        },
    );
}

#[test]
fn every_path_agrees_with_scalar() {
    let scalar = Kernels::scalar();
    for_all_inputs(|kernels, input| {
        let (a, b, halves) = (input.a, input.b, input.halves);
        let [(_, l2_scale), (_, dot_scale)] = reference(a, b);
        let [(_, l2_f16_scale), (_, dot_f16_scale)] = reference(a, input.widened);
        let cases = [
            (
                "l2",
                l2_scale,
                kernels.l2_squared(a, b),
                scalar.l2_squared(a, b),
            ),
            ("dot", dot_scale, kernels.dot(a, b), scalar.dot(a, b)),
            (
                "l2 f16",
                l2_f16_scale,
                kernels.l2_squared_f16(a, halves),
                scalar.l2_squared_f16(a, halves),
            ),
            (
                "dot f16",
                dot_f16_scale,
                kernels.dot_f16(a, halves),
                scalar.dot_f16(a, halves),
            ),
        ];
        for (name, scale, got, want) in cases {
            assert!(
                f64::from((got - want).abs()) <= 2.0 * BOUND * scale,
                "{} {name}: {got} vs scalar {want}",
                kernels.isa()
            );
        }
    });
}

#[test]
fn metric_kernels_follow_the_abi_conventions_exactly() {
    let mut rng = fastrand::Rng::with_seed(11);
    let a = vectors(&mut rng, 97, 0);
    let b = vectors(&mut rng, 97, 0);
    let halves: Vec<u16> = b.iter().map(|&x| f32_to_f16(x)).collect();
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
        let dot = kernels.dot_f16(&a, &halves);
        let expected = [
            (Metric::L2, kernels.l2_squared_f16(&a, &halves)),
            (Metric::Angular, 1.0 - dot),
            (Metric::InnerProduct, -dot),
        ];
        for (metric, want) in expected {
            let kernel = kernels.kernel_f16(metric);
            let got = kernel.distance(&a, &halves);
            assert_eq!(got, want, "{} f16 {metric}", kernels.isa());
            assert_eq!((kernel.metric(), kernel.isa()), (metric, kernels.isa()));
        }
    }
    for metric in Metric::ALL {
        let got = kernel_f16(metric).distance(&a, &halves);
        assert_eq!(
            got,
            Kernels::best().kernel_f16(metric).distance(&a, &halves)
        );
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
    let (a, b, halves) = (vec![1.0f32; 40], vec![1.0f32; 39], vec![0x3c00u16; 39]);
    for kernels in Isa::supported().filter_map(Kernels::for_isa) {
        for metric in Metric::ALL {
            let kernel = kernels.kernel(metric);
            let result = std::panic::catch_unwind(|| kernel.distance(&a, &b));
            assert!(
                result.is_err(),
                "{} {metric} accepted lengths 40 and 39",
                kernels.isa()
            );
            let kernel = kernels.kernel_f16(metric);
            let result = std::panic::catch_unwind(|| kernel.distance(&a, &halves));
            assert!(result.is_err(), "{} f16 {metric}", kernels.isa());
        }
        let result = std::panic::catch_unwind(|| kernels.encode_f16(&a, &mut [0; 39]));
        assert!(result.is_err(), "{} encode", kernels.isa());
        let result = std::panic::catch_unwind(|| kernels.decode_f16(&halves, &mut [0.0; 40]));
        assert!(result.is_err(), "{} decode", kernels.isa());
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
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    );
    // Every level includes the ones below it.
    for pair in Isa::ALL.windows(2) {
        assert!(
            !pair[1].is_supported() || pair[0].is_supported(),
            "{pair:?}"
        );
    }
}

/// Whether two f16 patterns are the same, counting any two NaNs as equal.
fn same_half(a: u16, b: u16) -> bool {
    let nan = |h: u16| h & 0x7c00 == 0x7c00 && h & 0x03ff != 0;
    a == b || (nan(a) && nan(b))
}

/// Whether two f32 values are the same bits, counting any two NaNs as equal.
fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn every_f16_pattern_decodes_and_reencodes_to_itself() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let decoded: Vec<f32> = all.iter().map(|&h| f16_to_f32(h)).collect();
    for (&h, &x) in all.iter().zip(&decoded) {
        let nan = h & 0x7c00 == 0x7c00 && h & 0x03ff != 0;
        assert_eq!(x.is_nan(), nan, "{h:#06x} decodes to {x}");
        assert!(
            same_half(f32_to_f16(x), h),
            "{h:#06x} -> {x} -> {:#06x}",
            f32_to_f16(x)
        );
    }
    // The decoded values against their definition: sign, exponent, mantissa.
    for (&h, &x) in all
        .iter()
        .zip(&decoded)
        .filter(|(h, _)| *h & 0x7c00 != 0x7c00)
    {
        let (exponent, mantissa) = (i32::from((h >> 10) & 0x1f), f64::from(h & 0x3ff));
        let magnitude = match exponent {
            0 => mantissa * 2f64.powi(-24),
            _ => (1024.0 + mantissa) * 2f64.powi(exponent - 25),
        };
        let want = if h & 0x8000 != 0 {
            -magnitude
        } else {
            magnitude
        };
        assert_eq!(f64::from(x), want, "{h:#06x}");
        assert_eq!(x.is_sign_negative(), h & 0x8000 != 0, "{h:#06x}");
    }
    assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    // Every path's slice conversions, on misaligned slices with tails.
    for kernels in Isa::supported().filter_map(Kernels::for_isa) {
        for shift in 0..4 {
            let mut widened = vec![0.0f32; all.len() - shift];
            kernels.decode_f16(&all[shift..], &mut widened);
            for ((&h, &x), &want) in all[shift..].iter().zip(&widened).zip(&decoded[shift..]) {
                assert!(
                    same_f32(x, want),
                    "{} decodes {h:#06x} to {x}",
                    kernels.isa()
                );
            }
            let mut halves = vec![0u16; all.len() - shift];
            kernels.encode_f16(&decoded[shift..], &mut halves);
            for (&got, &h) in halves.iter().zip(&all[shift..]) {
                assert!(
                    same_half(got, h),
                    "{} encodes {h:#06x} as {got:#06x}",
                    kernels.isa()
                );
            }
        }
    }
}

/// The f16 patterns every path encodes `values` to, checked equal to the
/// scalar encoder's.
fn encode_on_every_path(values: &[f32]) -> Vec<u16> {
    let scalar: Vec<u16> = values.iter().map(|&x| f32_to_f16(x)).collect();
    for kernels in Isa::supported().filter_map(Kernels::for_isa) {
        let mut halves = vec![0u16; values.len()];
        kernels.encode_f16(values, &mut halves);
        for ((&x, &got), &want) in values.iter().zip(&halves).zip(&scalar) {
            assert!(
                same_half(got, want),
                "{} encodes {x:e} as {got:#06x}",
                kernels.isa()
            );
        }
    }
    scalar
}

#[test]
fn halfway_values_round_to_even() {
    // Each finite f16 magnitude and the next one up (the infinity's place
    // counts as 2^16, where the rounding up goes).
    let mut values = Vec::new();
    let mut expected = Vec::new();
    for low in 0..0x7c00u16 {
        let high = low + 1;
        let upper = if high == 0x7c00 {
            65536.0
        } else {
            f64::from(f16_to_f32(high))
        };
        let middle = (f64::from(f16_to_f32(low)) + upper) / 2.0;
        let even = if low % 2 == 0 { low } else { high };
        let middle = middle as f32;
        assert_eq!(
            f64::from(middle),
            (f64::from(f16_to_f32(low)) + upper) / 2.0
        );
        for sign in [0, 0x8000u16] {
            let signed = if sign == 0 { middle } else { -middle };
            // The tie, then just below and just above it.
            let below = f32::from_bits(signed.to_bits() - 1);
            let above = f32::from_bits(signed.to_bits() + 1);
            values.extend([signed, below, above]);
            expected.extend([even | sign, low | sign, high | sign]);
        }
    }
    let got = encode_on_every_path(&values);
    for ((x, got), want) in values.iter().zip(got).zip(expected) {
        assert_eq!(got, want, "{x:e} encodes as {got:#06x}, not {want:#06x}");
    }
}

#[test]
fn encoder_edges_overflow_subnormals_and_nan() {
    let tiny = 2f32.powi(-24);
    let cases = [
        (65504.0, 0x7bff),
        (65519.996, 0x7bff),
        (65520.0, 0x7c00),
        (1e10, 0x7c00),
        (f32::MAX, 0x7c00),
        (f32::INFINITY, 0x7c00),
        (-65520.0, 0xfc00),
        (f32::NEG_INFINITY, 0xfc00),
        (0.0, 0x0000),
        (-0.0, 0x8000),
        (2f32.powi(-14), 0x0400),
        (2f32.powi(-14) - tiny / 2.0, 0x0400),
        (2f32.powi(-14) - tiny, 0x03ff),
        (tiny, 0x0001),
        (tiny * 0.5, 0x0000),
        (tiny * 0.500_001, 0x0001),
        (tiny * 1.5, 0x0002),
        (tiny * 2.5, 0x0002),
        (-tiny, 0x8001),
        (-tiny * 0.25, 0x8000),
        (f32::MIN_POSITIVE, 0x0000),
        (f32::from_bits(1), 0x0000),
        (1.0, 0x3c00),
        (-2.0, 0xc000),
        (0.1, 0x2e66),
        (1.0 / 3.0, 0x3555),
    ];
    let values: Vec<f32> = cases.iter().map(|&(x, _)| x).collect();
    let got = encode_on_every_path(&values);
    for ((x, want), got) in cases.into_iter().zip(got) {
        assert_eq!(got, want, "{x:e} encodes as {got:#06x}, not {want:#06x}");
    }
    let nans = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_1234),
    ];
    for (x, half) in nans.iter().zip(encode_on_every_path(&nans)) {
        assert!(
            f16_to_f32(half).is_nan(),
            "{:#010x} encodes as {half:#06x}",
            x.to_bits()
        );
        assert_eq!(half & 0x8000 != 0, x.is_sign_negative());
    }
}

#[test]
fn encoder_agrees_with_the_half_crate_on_random_f32() {
    let mut rng = fastrand::Rng::with_seed(13);
    // Random bit patterns (every exponent), then values in f16's range.
    let values: Vec<f32> = (0..1 << 20)
        .map(|i| match i % 2 {
            0 => f32::from_bits(rng.u32(..)),
            _ => (rng.f32() * 2.0 - 1.0) * 2f32.powi(rng.i32(-26..17)),
        })
        .collect();
    let got = encode_on_every_path(&values);
    for (&x, got) in values.iter().zip(got) {
        let want = half::f16::from_f32(x).to_bits();
        assert!(
            same_half(got, want),
            "{x:e}: {got:#06x} vs half {want:#06x}"
        );
        let back = f16_to_f32(got);
        assert!(
            same_f32(back, half::f16::from_bits(got).to_f32()),
            "{got:#06x}"
        );
    }
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
