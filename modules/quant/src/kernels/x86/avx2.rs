//! AVX2 + FMA kernels: f32 kernels with four 8-lane accumulators, one per
//! quarter block; integer kernels on 16 i16 lanes.

use std::arch::x86_64::*;

use annvil_distance::x86::{hsum_256, hsum_256_epi32};

use super::super::{BLOCK_DIMS, blocks, int_blocks};
use super::load_levels;

/// Sums `step(acc, f, s, c)` over 8-dimension groups.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fold<const BITS: usize>(
    f: &[f32],
    s: &[f32],
    code: &[u8],
    step: impl Fn(__m256, __m256, __m256, __m256) -> __m256,
) -> f32 {
    let n = blocks::<BITS>(f, s, code);
    let (pf, ps) = (f.as_ptr(), s.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    for j in 0..n {
        // SAFETY: j < n, and `blocks` checked that `code` holds n blocks.
        let [first, second] = unsafe { load_levels::<BITS>(code.as_ptr(), j) };
        let quarters = [
            first,
            _mm_unpackhi_epi64(first, first),
            second,
            _mm_unpackhi_epi64(second, second),
        ];
        for (k, (acc, levels)) in acc.iter_mut().zip(quarters).enumerate() {
            let at = j * BLOCK_DIMS + 8 * k;
            let c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(levels));
            // SAFETY: at + 8 <= (j + 1) * BLOCK_DIMS <= f.len() = s.len().
            let (fv, sv) = unsafe { (_mm256_loadu_ps(pf.add(at)), _mm256_loadu_ps(ps.add(at))) };
            *acc = step(*acc, fv, sv, c);
        }
    }
    hsum_256(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ))
}

/// `Σ (f_i - s_i·c_i)²`.
#[target_feature(enable = "avx2,fma")]
pub(in super::super) fn l2<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> f32 {
    fold::<BITS>(f, s, code, |acc, f, s, c| {
        let d = _mm256_fnmadd_ps(s, c, f);
        _mm256_fmadd_ps(d, d, acc)
    })
}

/// `Σ f_i·c_i`.
#[target_feature(enable = "avx2,fma")]
pub(in super::super) fn dot<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> f32 {
    fold::<BITS>(f, s, code, |acc, f, _, c| _mm256_fmadd_ps(f, c, acc))
}

/// Sums `step(acc, q, c)` over half blocks, `q` and `c` as 16 i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn int_fold<const BITS: usize>(
    q: &[i16],
    code: &[u8],
    shift: u32,
    step: impl Fn(__m256i, __m256i, __m256i) -> __m256i,
) -> i32 {
    let n = int_blocks::<BITS>(q.len(), code, shift);
    let mut acc = [_mm256_setzero_si256(); 2];
    for j in 0..n {
        // SAFETY: j < n, and `int_blocks` checked that `code` holds n blocks.
        let levels = unsafe { load_levels::<BITS>(code.as_ptr(), j) };
        for (h, (acc, levels)) in acc.iter_mut().zip(levels).enumerate() {
            // SAFETY: the 16 values end at (j + 1) * BLOCK_DIMS <= q.len().
            let qv = unsafe { _mm256_loadu_si256(q.as_ptr().add(j * BLOCK_DIMS + 16 * h).cast()) };
            *acc = step(*acc, qv, _mm256_cvtepu8_epi16(levels));
        }
    }
    hsum_256_epi32(_mm256_add_epi32(acc[0], acc[1]))
}

/// `Σ (q_i - c_i·2^shift)²`.
#[target_feature(enable = "avx2,fma")]
pub(in super::super) fn int_l2<const BITS: usize>(q: &[i16], code: &[u8], shift: u32) -> i32 {
    let count = _mm_cvtsi32_si128(shift as i32);
    int_fold::<BITS>(q, code, shift, |acc, q, c| {
        let d = _mm256_sub_epi16(q, _mm256_sll_epi16(c, count));
        _mm256_add_epi32(acc, _mm256_madd_epi16(d, d))
    })
}

/// `Σ q_i·c_i`.
#[target_feature(enable = "avx2,fma")]
pub(in super::super) fn int_dot<const BITS: usize>(q: &[i16], code: &[u8], shift: u32) -> i32 {
    int_fold::<BITS>(q, code, shift, |acc, q, c| {
        _mm256_add_epi32(acc, _mm256_madd_epi16(q, c))
    })
}
