//! f32 kernels for AVX-512: four 16-lane accumulators (64 partial sums),
//! tails through a masked load.

use std::arch::x86_64::*;

/// Sums `step(acc, x, y)` over 16-lane blocks of `a` and `b`. `step` must
/// leave `acc` unchanged for zero lanes (the tail is padded with zeros).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn fold(a: &[f32], b: &[f32], step: impl Fn(__m512, __m512, __m512) -> __m512) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let at = i + 16 * k;
            // SAFETY: at + 16 <= i + 64 <= n = a.len() = b.len(): both loads
            // are in bounds; loadu has no alignment requirement.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(at)), _mm512_loadu_ps(pb.add(at))) };
            *acc = step(*acc, x, y);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n = a.len() = b.len().
        let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
        acc[0] = step(acc[0], x, y);
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1 << (n - i)) - 1;
        // SAFETY: i < n, so both pointers stay inside their slices; a masked
        // load touches only the lanes whose mask is set, i.e. elements
        // i..n, and masked-out lanes read as zero without faulting.
        let (x, y) = unsafe {
            (
                _mm512_maskz_loadu_ps(mask, pa.add(i)),
                _mm512_maskz_loadu_ps(mask, pb.add(i)),
            )
        };
        acc[1] = step(acc[1], x, y);
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(sum)
}

/// Squared Euclidean distance.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |acc, x, y| {
        let d = _mm512_sub_ps(x, y);
        _mm512_fmadd_ps(d, d, acc)
    })
}

/// Inner product.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |acc, x, y| _mm512_fmadd_ps(x, y, acc))
}
