//! Exact distances in f64, the host's reference for ground truth and scoring.

use annvil_abi::Metric;

/// Independent accumulators: lets the compiler vectorise the sum while the
/// summation order (and so the result) stays fixed on every machine.
const LANES: usize = 8;

/// The distance between `a` and `b` under `metric`, in the ABI convention
/// (squared Euclidean, `1 - <a, b>`, `-<a, b>`), computed in f64.
///
/// Every f32 is widened to f64 before it is subtracted or multiplied, and
/// Euclidean distances use direct differences, never the expanded
/// `|a|² + |b|² - 2<a, b>`, which loses the low digits on large-norm data
/// such as raw pixels and mis-ranks near-ties. The summation order is fixed,
/// so the result is bit-identical on every machine. Panics when the lengths
/// differ.
pub fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    distance_within(metric, a, b, f64::INFINITY).expect("no distance exceeds infinity")
}

/// [`exact_distance`], or `None` when it exceeds `bound`. Squared
/// Euclidean sums only grow, so they are abandoned as soon as a partial
/// sum passes `bound`; a distance that is returned is bit-identical to
/// [`exact_distance`].
pub(crate) fn distance_within(metric: Metric, a: &[f32], b: &[f32], bound: f64) -> Option<f64> {
    let distance = match metric {
        Metric::L2 => sum_terms(a, b, |x, y| (x - y) * (x - y), bound)?,
        Metric::Angular => 1.0 - sum_terms(a, b, |x, y| x * y, f64::INFINITY)?,
        Metric::InnerProduct => -sum_terms(a, b, |x, y| x * y, f64::INFINITY)?,
    };
    (distance <= bound).then_some(distance)
}

/// `Σ a[i]²` in f64, with the same summation order as [`exact_distance`].
pub(crate) fn squared_norm(a: &[f32]) -> f64 {
    sum_terms(a, a, |x, _| x * x, f64::INFINITY).expect("no sum exceeds infinity")
}

/// Blocks of [`LANES`] between two checks of the partial sum.
const BLOCKS_PER_CHECK: usize = 8;

/// `Σ term(a[i], b[i])` in f64 over [`LANES`] interleaved partial sums, or
/// `None` once a partial sum exceeds `abandon_above`, which must be infinite
/// unless every term is non-negative (so that partial sums never shrink:
/// floating-point rounding is monotone).
#[inline(always)]
fn sum_terms(
    a: &[f32],
    b: &[f32],
    term: impl Fn(f64, f64) -> f64,
    abandon_above: f64,
) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "vectors of different dimensions");
    let combine = |acc: &[f64; LANES]| {
        let [a0, a1, a2, a3, a4, a5, a6, a7] = *acc;
        ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))
    };
    let mut acc = [0.0f64; LANES];
    let blocks_a = a.chunks_exact(LANES);
    let blocks_b = b.chunks_exact(LANES);
    let mut tail = 0.0;
    for (&x, &y) in blocks_a.remainder().iter().zip(blocks_b.remainder()) {
        tail += term(f64::from(x), f64::from(y));
    }
    let span = LANES * BLOCKS_PER_CHECK;
    for (xs, ys) in a.chunks(span).zip(b.chunks(span)) {
        for (xs, ys) in xs.chunks_exact(LANES).zip(ys.chunks_exact(LANES)) {
            for ((s, &x), &y) in acc.iter_mut().zip(xs).zip(ys) {
                *s += term(f64::from(x), f64::from(y));
            }
        }
        if combine(&acc) + tail > abandon_above {
            return None;
        }
    }
    Some(combine(&acc) + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_sums() {
        let a: Vec<f32> = (0..13).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..13).map(|i| (i * i) as f32 * 0.125).collect();
        let l2: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        let dot: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        assert_eq!(exact_distance(Metric::L2, &a, &b), l2);
        assert_eq!(exact_distance(Metric::Angular, &a, &b), 1.0 - dot);
        assert_eq!(exact_distance(Metric::InnerProduct, &a, &b), -dot);
    }

    #[test]
    fn bounded_distances_agree_with_exact_ones() {
        let a: Vec<f32> = (0..150).map(|i| (i % 7) as f32 * 1.5).collect();
        let b: Vec<f32> = (0..150).map(|i| (i % 5) as f32 * 0.75).collect();
        for metric in Metric::ALL {
            let exact = exact_distance(metric, &a, &b);
            assert_eq!(distance_within(metric, &a, &b, exact), Some(exact));
            assert_eq!(distance_within(metric, &a, &b, f64::INFINITY), Some(exact));
            assert_eq!(distance_within(metric, &a, &b, exact - 1e-9), None);
        }
        // Abandoned after the first 64 of 150 dimensions.
        assert_eq!(distance_within(Metric::L2, &a, &b, 1.0), None);
    }

    #[test]
    fn large_norm_pixels_keep_every_unit() {
        // 784 pixels of 255 against 255 except one pixel: distance 1 exactly.
        let a = vec![255.0f32; 784];
        let mut b = a.clone();
        b[400] = 254.0;
        assert_eq!(exact_distance(Metric::L2, &a, &b), 1.0);
    }
}
