//! x86_64 kernels and the level unpacking they share (SSE2, which every
//! x86_64 CPU has).

use std::arch::x86_64::*;

use super::BLOCK_DIMS;

pub(super) mod avx2;
pub(super) mod avx512;

/// The levels of block `j` of `code`: dimensions `32j..32j+16` and
/// `32j+16..32j+32`, one byte each.
///
/// # Safety
///
/// `code` must be valid for reading `(j + 1) * BLOCK_DIMS * BITS / 8` bytes.
#[inline]
#[target_feature(enable = "sse2")]
unsafe fn load_levels<const BITS: usize>(code: *const u8, j: usize) -> [__m128i; 2] {
    if BITS == 8 {
        // SAFETY: block j is bytes 32j..32j+32, readable by the contract.
        unsafe {
            let block = code.add(j * BLOCK_DIMS);
            [
                _mm_loadu_si128(block.cast()),
                _mm_loadu_si128(block.add(16).cast()),
            ]
        }
    } else {
        // SAFETY: block j is bytes 16j..16j+16, readable by the contract.
        let bytes = unsafe { _mm_loadu_si128(code.add(j * BLOCK_DIMS / 2).cast()) };
        // Byte k holds dimension 2k in its low and 2k+1 in its high nibble;
        // interleaving the nibbles restores dimension order.
        let nibble = _mm_set1_epi8(0xf);
        let low = _mm_and_si128(bytes, nibble);
        let high = _mm_and_si128(_mm_srli_epi16::<4>(bytes), nibble);
        [_mm_unpacklo_epi8(low, high), _mm_unpackhi_epi8(low, high)]
    }
}
