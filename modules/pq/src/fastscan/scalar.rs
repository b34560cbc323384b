//! The portable block-scoring kernel, and the reference the SIMD kernels
//! are tested against.

use super::{BLOCK, SUBSPACE_BYTES};

/// Sums, for each of the 32 vectors of `block`, the entries of `table`
/// its codes name (see the module docs of `fastscan` for the layout).
///
/// # Safety
///
/// None: `unsafe` only to share the kernel type with the SIMD kernels.
pub(super) unsafe fn scan(table: &[u8], block: &[u8], sums: &mut [u16; BLOCK]) {
    sums.fill(0);
    for (entries, codes) in table
        .chunks_exact(SUBSPACE_BYTES)
        .zip(block.chunks_exact(SUBSPACE_BYTES))
    {
        for (i, &pair) in codes.iter().enumerate() {
            let low = entries[(pair & 0x0f) as usize] as u16;
            let high = entries[(pair >> 4) as usize] as u16;
            sums[i] = sums[i].wrapping_add(low);
            sums[i + SUBSPACE_BYTES] = sums[i + SUBSPACE_BYTES].wrapping_add(high);
        }
    }
}
