//! Kernels for AVX2 + FMA + F16C: four 8-lane accumulators (32 partial
//! sums) over an f32 query and a second vector of f32 or f16 values, which
//! differ only in how 8 of their elements load as 8 f32 lanes ([`Lanes`]).
//! Tails go through a masked load (f32) or a zero-padded copy (f16).

use std::arch::x86_64::*;

use super::hsum_256;

/// An element type of a kernel's second vector: how a block of 8, or a
/// tail of fewer, becomes 8 f32 lanes.
pub(crate) trait Lanes: Copy {
    /// `block` as 8 f32 lanes.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2, FMA and F16C.
    unsafe fn load(block: &[Self; 8]) -> __m256;

    /// The elements of `tail` (at most 8) in the low lanes, zeros above.
    ///
    /// # Safety
    ///
    /// As for [`load`](Self::load).
    unsafe fn load_tail(tail: &[Self]) -> __m256;
}

impl Lanes for f32 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(block: &[f32; 8]) -> __m256 {
        // SAFETY: `block` is 8 readable f32; loadu has no alignment
        // requirement.
        unsafe { _mm256_loadu_ps(block.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_tail(tail: &[f32]) -> __m256 {
        let len = tail.len().min(8) as i32;
        let mask = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(len),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        // SAFETY: a masked load touches only the lanes whose mask is set,
        // i.e. the first min(len, 8) elements of `tail`; masked-out lanes
        // read as zero without faulting (so an empty tail reads nothing).
        unsafe { _mm256_maskload_ps(tail.as_ptr(), mask) }
    }
}

/// IEEE binary16 bit patterns, widened exactly by F16C's `vcvtph2ps`.
impl Lanes for u16 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(block: &[u16; 8]) -> __m256 {
        // SAFETY: `block` is 16 readable bytes; loadu has no alignment
        // requirement.
        let halves = unsafe { _mm_loadu_si128(block.as_ptr().cast()) };
        _mm256_cvtph_ps(halves)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_tail(tail: &[u16]) -> __m256 {
        // No 16-bit masked load in AVX2: pad a copy with zeros (+0.0).
        let mut block = [0u16; 8];
        block[..tail.len()].copy_from_slice(tail);
        // SAFETY: this function runs with the features `load` needs.
        unsafe { u16::load(&block) }
    }
}

/// Sums `step(acc, x, y)` over 8-lane blocks of `a` and `b`. `step` must
/// leave `acc` unchanged for zero lanes (the tail is padded with zeros).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fold<T: Lanes>(a: &[f32], b: &[T], step: impl Fn(__m256, __m256, __m256) -> __m256) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in dimension");
    let (a_blocks, a_tail) = a.as_chunks::<8>();
    let (b_blocks, b_tail) = b.as_chunks::<8>();
    let (a_quads, a_rest) = a_blocks.as_chunks::<4>();
    let (b_quads, b_rest) = b_blocks.as_chunks::<4>();
    let mut acc = [_mm256_setzero_ps(); 4];
    for (x4, y4) in a_quads.iter().zip(b_quads) {
        for ((acc, x), y) in acc.iter_mut().zip(x4).zip(y4) {
            // SAFETY: `fold` runs with the features the loads need.
            let (x, y) = unsafe { (f32::load(x), T::load(y)) };
            *acc = step(*acc, x, y);
        }
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        // SAFETY: as above.
        let (x, y) = unsafe { (f32::load(x), T::load(y)) };
        acc[0] = step(acc[0], x, y);
    }
    if !a_tail.is_empty() {
        // SAFETY: as above.
        let (x, y) = unsafe { (f32::load_tail(a_tail), T::load_tail(b_tail)) };
        acc[1] = step(acc[1], x, y);
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum_256(sum)
}

/// Squared Euclidean distance.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn l2_squared<T: Lanes>(a: &[f32], b: &[T]) -> f32 {
    fold(a, b, |acc, x, y| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    })
}

/// Inner product.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot<T: Lanes>(a: &[f32], b: &[T]) -> f32 {
    fold(a, b, |acc, x, y| _mm256_fmadd_ps(x, y, acc))
}

/// Encodes `src` into f16 bit patterns with `vcvtps2ph`, rounding to
/// nearest even; the tail goes through the scalar encoder, which returns
/// the same bits.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn encode_f16(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len(), "slices differ in length");
    let (src_blocks, src_tail) = src.as_chunks::<8>();
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<8>();
    for (from, to) in src_blocks.iter().zip(dst_blocks) {
        // SAFETY: this function runs with the features `load` needs.
        let values = unsafe { f32::load(from) };
        let halves = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(values);
        // SAFETY: `to` is 16 writable bytes; storeu has no alignment
        // requirement.
        unsafe { _mm_storeu_si128(to.as_mut_ptr().cast(), halves) };
    }
    crate::f16::encode(src_tail, dst_tail);
}

/// Decodes f16 bit patterns into `dst` with `vcvtph2ps` (exact); the tail
/// goes through the scalar decoder.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn decode_f16(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "slices differ in length");
    let (src_blocks, src_tail) = src.as_chunks::<8>();
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<8>();
    for (from, to) in src_blocks.iter().zip(dst_blocks) {
        // SAFETY: this function runs with the features `load` needs.
        let values = unsafe { u16::load(from) };
        // SAFETY: `to` is 8 writable f32; storeu has no alignment
        // requirement.
        unsafe { _mm256_storeu_ps(to.as_mut_ptr(), values) };
    }
    crate::f16::decode(src_tail, dst_tail);
}
