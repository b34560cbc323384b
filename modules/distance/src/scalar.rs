//! The portable kernels: plain Rust with 16 independent partial sums, which
//! the compiler vectorises for whatever the compilation target offers.

use crate::f16::f16_to_f32;

/// Number of independent partial sums.
const LANES: usize = 16;

/// Sums `term(x, widen(y))` over the pairs of `a` and `b` in [`LANES`]
/// partial sums; `widen` turns an element of `b` into f32.
#[inline(always)]
fn fold<T: Copy>(
    a: &[f32],
    b: &[T],
    widen: impl Fn(T) -> f32,
    term: impl Fn(f32, f32) -> f32,
) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let mut acc = [0.0f32; LANES];
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&x, &y)| term(x, widen(y)))
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += term(x, widen(y));
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
    fold(a, b, |y| y, |x, y| (x - y) * (x - y))
}

/// Inner product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |y| y, |x, y| x * y)
}

/// Squared Euclidean distance to a vector of f16 bit patterns.
pub(crate) fn l2_squared_f16(a: &[f32], b: &[u16]) -> f32 {
    fold(a, b, f16_to_f32, |x, y| (x - y) * (x - y))
}

/// Inner product with a vector of f16 bit patterns.
pub(crate) fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    fold(a, b, f16_to_f32, |x, y| x * y)
}
