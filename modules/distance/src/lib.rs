//! Distance kernels on f32 vectors, following the metric conventions of the
//! annvil ABI (smaller is closer; see [`Metric`]).
//!
//! The kernels keep several independent partial sums so the compiler can
//! vectorise them and so long vectors of large values (raw pixels) lose
//! less precision than one running sum would.

use annvil_abi::Metric;

/// Number of independent partial sums; one AVX-512 register of f32 lanes.
const LANES: usize = 16;

/// Squared Euclidean distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let mut acc = [0.0f32; LANES];
    let (a_chunks, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_chunks, b_tail) = b.split_at(a_chunks.len());
    for (x, y) in a_chunks
        .chunks_exact(LANES)
        .zip(b_chunks.chunks_exact(LANES))
    {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let tail: f32 = a_tail
        .iter()
        .zip(b_tail)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let mut acc = [0.0f32; LANES];
    let (a_chunks, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_chunks, b_tail) = b.split_at(a_chunks.len());
    for (x, y) in a_chunks
        .chunks_exact(LANES)
        .zip(b_chunks.chunks_exact(LANES))
    {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// The distance `metric` defines between `a` and `b`.
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2_squared(a, b),
        Metric::Angular => 1.0 - dot(a, b),
        Metric::InnerProduct => -dot(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_the_abi_reference_for_every_length() {
        for len in [1, 7, 16, 17, 33, 784] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            for metric in Metric::ALL {
                let got = distance(metric, &a, &b);
                let want = metric.distance(&a, &b);
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{metric} len {len}"
                );
            }
        }
    }
}
