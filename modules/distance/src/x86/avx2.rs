//! f32 kernels for AVX2 + FMA: four 8-lane accumulators (32 partial sums),
//! tails through a masked load.

use std::arch::x86_64::*;

use super::hsum_256;

/// Sums `step(acc, x, y)` over 8-lane blocks of `a` and `b`. `step` must
/// leave `acc` unchanged for zero lanes (the tail is padded with zeros).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fold(a: &[f32], b: &[f32], step: impl Fn(__m256, __m256, __m256) -> __m256) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let at = i + 8 * k;
            // SAFETY: at + 8 <= i + 32 <= n = a.len() = b.len(): both loads
            // are in bounds; loadu has no alignment requirement.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(at)), _mm256_loadu_ps(pb.add(at))) };
            *acc = step(*acc, x, y);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n = a.len() = b.len().
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        acc[0] = step(acc[0], x, y);
        i += 8;
    }
    if i < n {
        let rest = (n - i) as i32;
        let mask = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(rest),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        // SAFETY: i < n, so both pointers stay inside their slices; a masked
        // load touches only the lanes whose mask is set, i.e. elements
        // i..n, and masked-out lanes read as zero without faulting.
        let (x, y) = unsafe {
            (
                _mm256_maskload_ps(pa.add(i), mask),
                _mm256_maskload_ps(pb.add(i), mask),
            )
        };
        acc[1] = step(acc[1], x, y);
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum_256(sum)
}

/// Squared Euclidean distance.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |acc, x, y| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    })
}

/// Inner product.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |acc, x, y| _mm256_fmadd_ps(x, y, acc))
}
