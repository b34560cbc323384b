//! The portable kernels: plain Rust with 16 independent partial sums, which
//! the compiler vectorises for whatever the compilation target offers.

/// Number of independent partial sums.
const LANES: usize = 16;

/// Sums `term(x, y)` over the pairs of `a` and `b` in [`LANES`] partial sums.
#[inline(always)]
fn fold(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let mut acc = [0.0f32; LANES];
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += term(x, y);
        }
    }
    pairwise_sum(acc) + tail
}

/// Adds the partial sums pairwise, halving the rounding error of a chain.
#[inline(always)]
fn pairwise_sum(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        let (low, high) = acc.split_at_mut(width);
        for (low, high) in low.iter_mut().zip(&high[..width]) {
            *low += high;
        }
    }
    acc[0]
}

/// Squared Euclidean distance.
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y| (x - y) * (x - y))
}

/// Inner product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y| x * y)
}
