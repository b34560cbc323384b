//! The x86_64 block-scoring kernels: a byte shuffle (`vpshufb`) looks up
//! 16 table entries per 128-bit lane at once, the table of a subspace
//! sitting in the lane that holds that subspace's codes.

use std::arch::x86_64::*;

use super::{BLOCK, SUBSPACE_BYTES};

/// [`scalar::scan`](super::scalar::scan) with 256-bit registers: two
/// subspaces per step.
///
/// # Safety
///
/// The CPU must support AVX2; `table` and `block` must be equally long, a
/// whole number of 32-byte steps.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn scan_avx2(table: &[u8], block: &[u8], sums: &mut [u16; BLOCK]) {
    debug_assert_eq!(table.len(), block.len());
    debug_assert!(table.len().is_multiple_of(32));
    let nibble = _mm256_set1_epi8(0x0f);
    let zero = _mm256_setzero_si256();
    // Lane 0 sums even subspaces, lane 1 odd ones; 8 vectors per register.
    let mut acc = [zero; 4];
    for (entries, codes) in table.chunks_exact(32).zip(block.chunks_exact(32)) {
        // SAFETY: both chunks are 32 readable bytes; unaligned loads.
        let (lut, pairs) = unsafe {
            (
                _mm256_loadu_si256(entries.as_ptr().cast()),
                _mm256_loadu_si256(codes.as_ptr().cast()),
            )
        };
        let low = _mm256_shuffle_epi8(lut, _mm256_and_si256(pairs, nibble));
        let high = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(pairs, 4), nibble));
        acc[0] = _mm256_add_epi16(acc[0], _mm256_unpacklo_epi8(low, zero));
        acc[1] = _mm256_add_epi16(acc[1], _mm256_unpackhi_epi8(low, zero));
        acc[2] = _mm256_add_epi16(acc[2], _mm256_unpacklo_epi8(high, zero));
        acc[3] = _mm256_add_epi16(acc[3], _mm256_unpackhi_epi8(high, zero));
    }
    for (part, out) in acc.iter().zip(sums.chunks_exact_mut(8)) {
        let folded = _mm_add_epi16(
            _mm256_castsi256_si128(*part),
            _mm256_extracti128_si256::<1>(*part),
        );
        // SAFETY: `out` is 8 writable u16, 16 bytes; unaligned store.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), folded) };
    }
}

/// [`scalar::scan`](super::scalar::scan) with 512-bit registers: four
/// subspaces per step.
///
/// # Safety
///
/// The CPU must support AVX-512 F and BW; `table` and `block` must be
/// equally long, a whole number of 64-byte steps.
#[target_feature(enable = "avx512f,avx512bw,avx2")]
pub(super) unsafe fn scan_avx512(table: &[u8], block: &[u8], sums: &mut [u16; BLOCK]) {
    debug_assert_eq!(table.len(), block.len());
    debug_assert!(table.len().is_multiple_of(4 * SUBSPACE_BYTES));
    let nibble = _mm512_set1_epi8(0x0f);
    let zero = _mm512_setzero_si512();
    // Lane k sums subspaces 4j + k; 8 vectors per register.
    let mut acc = [zero; 4];
    for (entries, codes) in table.chunks_exact(64).zip(block.chunks_exact(64)) {
        // SAFETY: both chunks are 64 readable bytes; unaligned loads.
        let (lut, pairs) = unsafe {
            (
                _mm512_loadu_si512(entries.as_ptr().cast()),
                _mm512_loadu_si512(codes.as_ptr().cast()),
            )
        };
        let low = _mm512_shuffle_epi8(lut, _mm512_and_si512(pairs, nibble));
        let high = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(pairs, 4), nibble));
        acc[0] = _mm512_add_epi16(acc[0], _mm512_unpacklo_epi8(low, zero));
        acc[1] = _mm512_add_epi16(acc[1], _mm512_unpackhi_epi8(low, zero));
        acc[2] = _mm512_add_epi16(acc[2], _mm512_unpacklo_epi8(high, zero));
        acc[3] = _mm512_add_epi16(acc[3], _mm512_unpackhi_epi8(high, zero));
    }
    for (part, out) in acc.iter().zip(sums.chunks_exact_mut(8)) {
        let halves = _mm256_add_epi16(
            _mm512_castsi512_si256(*part),
            _mm512_extracti64x4_epi64::<1>(*part),
        );
        let folded = _mm_add_epi16(
            _mm256_castsi256_si128(halves),
            _mm256_extracti128_si256::<1>(halves),
        );
        // SAFETY: `out` is 8 writable u16, 16 bytes; unaligned store.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), folded) };
    }
}
