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
    match metric {
        Metric::L2 => sum_terms(a, b, |x, y| (x - y) * (x - y)),
        Metric::Angular => 1.0 - sum_terms(a, b, |x, y| x * y),
        Metric::InnerProduct => -sum_terms(a, b, |x, y| x * y),
    }
}

/// `Σ a[i]²` in f64, with the same summation order as [`exact_distance`].
pub(crate) fn squared_norm(a: &[f32]) -> f64 {
    sum_terms(a, a, |x, _| x * x)
}

/// `Σ term(a[i], b[i])` in f64 over [`LANES`] interleaved partial sums.
#[inline(always)]
fn sum_terms(a: &[f32], b: &[f32], term: impl Fn(f64, f64) -> f64) -> f64 {
    assert_eq!(a.len(), b.len(), "vectors of different dimensions");
    let mut acc = [0.0f64; LANES];
    let blocks_a = a.chunks_exact(LANES);
    let blocks_b = b.chunks_exact(LANES);
    let mut tail = 0.0;
    for (&x, &y) in blocks_a.remainder().iter().zip(blocks_b.remainder()) {
        tail += term(f64::from(x), f64::from(y));
    }
    for (xs, ys) in blocks_a.zip(blocks_b) {
        for ((s, &x), &y) in acc.iter_mut().zip(xs).zip(ys) {
            *s += term(f64::from(x), f64::from(y));
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    (((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))) + tail
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
    fn large_norm_pixels_keep_every_unit() {
        // 784 pixels of 255 against 255 except one pixel: distance 1 exactly.
        let a = vec![255.0f32; 784];
        let mut b = a.clone();
        b[400] = 254.0;
        assert_eq!(exact_distance(Metric::L2, &a, &b), 1.0);
    }
}
