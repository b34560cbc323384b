//! The x86_64 SIMD kernels, and the helpers that other annvil crates' SIMD
//! code shares. The helpers are `#[target_feature]` functions: safe to call
//! from code compiled with the same features, `unsafe` elsewhere.

use std::arch::x86_64::*;

pub(crate) mod avx2;
pub(crate) mod avx512;

/// The sum of the eight lanes of `v`.
///
/// # Safety
///
/// The CPU must support AVX (a safe call from code compiled with AVX).
#[inline]
#[target_feature(enable = "avx")]
pub fn hsum_256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The sum of the eight `i32` lanes of `v`, wrapping on overflow.
///
/// # Safety
///
/// The CPU must support AVX2 (a safe call from code compiled with AVX2).
#[inline]
#[target_feature(enable = "avx2")]
pub fn hsum_256_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}
