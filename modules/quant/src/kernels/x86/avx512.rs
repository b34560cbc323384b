//! AVX-512 kernels: f32 kernels with four 16-lane accumulators over two
//! blocks a round; integer kernels on 32 i16 lanes.

use std::arch::x86_64::*;

use super::super::{BLOCK_DIMS, blocks, int_blocks};
use super::load_levels;

/// Sums `step(acc, f, s, c)` over 16-dimension groups.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn fold<const BITS: usize>(
    f: &[f32],
    s: &[f32],
    code: &[u8],
    step: impl Fn(__m512, __m512, __m512, __m512) -> __m512,
) -> f32 {
    let n = blocks::<BITS>(f, s, code);
    let (pf, ps) = (f.as_ptr(), s.as_ptr());
    // Adds block j into a pair of accumulators, one per half block.
    let block = |j: usize, acc: [__m512; 2]| -> [__m512; 2] {
        // SAFETY: callers pass j < n, and `blocks` checked that `code`
        // holds n blocks.
        let levels = unsafe { load_levels::<BITS>(code.as_ptr(), j) };
        let mut out = acc;
        for (h, (out, levels)) in out.iter_mut().zip(levels).enumerate() {
            let at = j * BLOCK_DIMS + 16 * h;
            let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(levels));
            // SAFETY: at + 16 <= (j + 1) * BLOCK_DIMS <= f.len() = s.len().
            let (fv, sv) = unsafe { (_mm512_loadu_ps(pf.add(at)), _mm512_loadu_ps(ps.add(at))) };
            *out = step(*out, fv, sv, c);
        }
        out
    };
    let zero = _mm512_setzero_ps();
    let (mut even, mut odd) = ([zero; 2], [zero; 2]);
    let mut j = 0;
    while j + 2 <= n {
        even = block(j, even);
        odd = block(j + 1, odd);
        j += 2;
    }
    if j < n {
        even = block(j, even);
    }
    let sum = _mm512_add_ps(
        _mm512_add_ps(even[0], even[1]),
        _mm512_add_ps(odd[0], odd[1]),
    );
    _mm512_reduce_add_ps(sum)
}

/// `Σ (f_i - s_i·c_i)²`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(in super::super) fn l2<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> f32 {
    fold::<BITS>(f, s, code, |acc, f, s, c| {
        let d = _mm512_fnmadd_ps(s, c, f);
        _mm512_fmadd_ps(d, d, acc)
    })
}

/// `Σ f_i·c_i`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(in super::super) fn dot<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> f32 {
    fold::<BITS>(f, s, code, |acc, f, _, c| _mm512_fmadd_ps(f, c, acc))
}

/// Sums `step(acc, q, c)` over blocks, `q` and `c` as 32 i16 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn int_fold<const BITS: usize>(
    q: &[i16],
    code: &[u8],
    shift: u32,
    step: impl Fn(__m512i, __m512i, __m512i) -> __m512i,
) -> i32 {
    let n = int_blocks::<BITS>(q.len(), code, shift);
    let mut acc = _mm512_setzero_si512();
    for j in 0..n {
        // SAFETY: j < n, and `int_blocks` checked that `code` holds n
        // blocks (32 bytes each for SQ8) and `q` n blocks of i16.
        let (levels, qv) = unsafe {
            let levels = if BITS == 8 {
                _mm256_loadu_si256(code.as_ptr().add(j * BLOCK_DIMS).cast())
            } else {
                let [low, high] = load_levels::<BITS>(code.as_ptr(), j);
                _mm256_set_m128i(high, low)
            };
            (
                levels,
                _mm512_loadu_si512(q.as_ptr().add(j * BLOCK_DIMS).cast()),
            )
        };
        acc = step(acc, qv, _mm512_cvtepu8_epi16(levels));
    }
    _mm512_reduce_add_epi32(acc)
}

/// `Σ (q_i - c_i·2^shift)²`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(in super::super) fn int_l2<const BITS: usize>(q: &[i16], code: &[u8], shift: u32) -> i32 {
    let count = _mm_cvtsi32_si128(shift as i32);
    int_fold::<BITS>(q, code, shift, |acc, q, c| {
        let d = _mm512_sub_epi16(q, _mm512_sll_epi16(c, count));
        _mm512_add_epi32(acc, _mm512_madd_epi16(d, d))
    })
}

/// `Σ q_i·c_i`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(in super::super) fn int_dot<const BITS: usize>(q: &[i16], code: &[u8], shift: u32) -> i32 {
    int_fold::<BITS>(q, code, shift, |acc, q, c| {
        _mm512_add_epi32(acc, _mm512_madd_epi16(q, c))
    })
}
