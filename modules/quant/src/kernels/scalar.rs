//! Portable kernels: the f32 kernels keep one partial sum per dimension of
//! a block, the integer kernels sum exactly (wrapping, like the SIMD ones).

use super::{BLOCK_DIMS, blocks, int_blocks};

/// Bytes of one block of codes.
const fn block_bytes<const BITS: usize>() -> usize {
    BLOCK_DIMS * BITS / 8
}

/// The levels of one block of codes, one per dimension.
#[inline(always)]
fn levels<const BITS: usize>(block: &[u8]) -> [u8; BLOCK_DIMS] {
    let mut out = [0u8; BLOCK_DIMS];
    if BITS == 8 {
        out.copy_from_slice(block);
    } else {
        for (pair, &byte) in out.chunks_exact_mut(2).zip(block) {
            pair[0] = byte & 0xf;
            pair[1] = byte >> 4;
        }
    }
    out
}

/// Sums `term(f_i, s_i, c_i)` in [`BLOCK_DIMS`] partial sums.
#[inline(always)]
fn fold<const BITS: usize>(
    f: &[f32],
    s: &[f32],
    code: &[u8],
    term: impl Fn(f32, f32, f32) -> f32,
) -> f32 {
    blocks::<BITS>(f, s, code);
    let mut acc = [0.0f32; BLOCK_DIMS];
    let blocks = f.chunks_exact(BLOCK_DIMS).zip(s.chunks_exact(BLOCK_DIMS));
    for ((f, s), block) in blocks.zip(code.chunks_exact(block_bytes::<BITS>())) {
        let c = levels::<BITS>(block);
        for (((acc, &f), &s), &c) in acc.iter_mut().zip(f).zip(s).zip(&c) {
            *acc += term(f, s, f32::from(c));
        }
    }
    acc.iter().sum()
}

/// `Σ (f_i - s_i·c_i)²`.
pub(super) fn l2<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> f32 {
    fold::<BITS>(f, s, code, |f, s, c| {
        let d = f - s * c;
        d * d
    })
}

/// `Σ f_i·c_i`.
pub(super) fn dot<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> f32 {
    fold::<BITS>(f, s, code, |f, _, c| f * c)
}

/// Sums `term(q_i, c_i)` in [`BLOCK_DIMS`] wrapping i32 partial sums.
#[inline(always)]
fn int_fold<const BITS: usize>(
    q: &[i16],
    code: &[u8],
    shift: u32,
    term: impl Fn(i16, i16) -> i32,
) -> i32 {
    int_blocks::<BITS>(q.len(), code, shift);
    let mut acc = [0i32; BLOCK_DIMS];
    let blocks = q
        .chunks_exact(BLOCK_DIMS)
        .zip(code.chunks_exact(block_bytes::<BITS>()));
    for (q, block) in blocks {
        let c = levels::<BITS>(block);
        for ((acc, &q), &c) in acc.iter_mut().zip(q).zip(&c) {
            *acc = acc.wrapping_add(term(q, i16::from(c)));
        }
    }
    acc.iter().fold(0, |sum, &a| sum.wrapping_add(a))
}

/// `Σ (q_i - c_i·2^shift)²`, the difference in wrapping i16 arithmetic as
/// in the SIMD kernels.
pub(super) fn int_l2<const BITS: usize>(q: &[i16], code: &[u8], shift: u32) -> i32 {
    int_fold::<BITS>(q, code, shift, |q, c| {
        let d = i32::from(q.wrapping_sub(c << shift));
        d * d
    })
}

/// `Σ q_i·c_i`.
pub(super) fn int_dot<const BITS: usize>(q: &[i16], code: &[u8], shift: u32) -> i32 {
    int_fold::<BITS>(q, code, shift, |q, c| i32::from(q) * i32::from(c))
}
