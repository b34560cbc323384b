//! The distance kernels, one set per [`Isa`] level, generic over the bits
//! per dimension (`8` or `4`).
//!
//! - Asymmetric (f32 query): take the prepared query `f` and the
//!   per-dimension step `s` (both a multiple of [`BLOCK_DIMS`] long) and a
//!   code; `l2` sums `(f_i - s_i·c_i)²`, `dot` sums `f_i·c_i`.
//! - Integer (i16 query, uniform quantizers): take the query `q` (a
//!   multiple of [`BLOCK_DIMS`] long), a code and a shift `k`; `int_l2`
//!   sums `(q_i - c_i·2^k)²`, `int_dot` sums `q_i·c_i`, both in wrapping
//!   i32 arithmetic (the callers keep the sums in range).

use annvil_distance::Isa;

use crate::Scheme;

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Dimensions per block: 32 SQ8 codes or 16 SQ4 bytes, i.e. two 16-byte
/// vectors of levels once unpacked.
pub(crate) const BLOCK_DIMS: usize = 32;

/// The largest shift an integer L2 kernel accepts: `255 << 7` still fits
/// an i16 lane.
pub(crate) const MAX_SHIFT: u32 = 7;

/// An asymmetric kernel `(f, s, code) -> sum`. `unsafe` because a SIMD
/// kernel may only run on a CPU with its features.
pub(crate) type AsymFn = unsafe fn(&[f32], &[f32], &[u8]) -> f32;

/// An integer kernel `(q, code, shift) -> sum`, `unsafe` like [`AsymFn`].
pub(crate) type IntFn = unsafe fn(&[i16], &[u8], u32) -> i32;

/// The kernels of one scheme on one level.
#[derive(Clone, Copy)]
pub(crate) struct Set {
    pub(crate) l2: AsymFn,
    pub(crate) dot: AsymFn,
    pub(crate) int_l2: IntFn,
    pub(crate) int_dot: IntFn,
}

/// The kernels of `scheme` on `isa`, or `None` where this CPU does not
/// support `isa`. Every kernel in the set runs on this CPU.
pub(crate) fn set(isa: Isa, scheme: Scheme) -> Option<Set> {
    if !isa.is_supported() {
        return None;
    }
    Some(match scheme {
        Scheme::Sq8 => set_of::<8>(isa),
        Scheme::Sq4 => set_of::<4>(isa),
    })
}

/// The kernels for `BITS` per dimension on `isa`.
fn set_of<const BITS: usize>(isa: Isa) -> Set {
    match isa {
        Isa::Scalar => Set {
            l2: scalar::l2::<BITS>,
            dot: scalar::dot::<BITS>,
            int_l2: scalar::int_l2::<BITS>,
            int_dot: scalar::int_dot::<BITS>,
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Set {
            l2: x86::avx2::l2::<BITS>,
            dot: x86::avx2::dot::<BITS>,
            int_l2: x86::avx2::int_l2::<BITS>,
            int_dot: x86::avx2::int_dot::<BITS>,
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Set {
            l2: x86::avx512::l2::<BITS>,
            dot: x86::avx512::dot::<BITS>,
            int_l2: x86::avx512::int_l2::<BITS>,
            int_dot: x86::avx512::int_dot::<BITS>,
        },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("{isa} is never supported off x86_64"),
    }
}

/// Checks what every asymmetric kernel relies on: `f` and `s` are equally
/// long, a whole number of blocks, and `code` holds at least that many
/// dimensions of `BITS` bits. Returns the number of blocks.
#[inline(always)]
fn blocks<const BITS: usize>(f: &[f32], s: &[f32], code: &[u8]) -> usize {
    assert_eq!(f.len(), s.len(), "query and steps differ in length");
    int_blocks::<BITS>(f.len(), code, 0)
}

/// Checks what every kernel relies on: `len` is a whole number of blocks,
/// `code` holds at least `len` dimensions of `BITS` bits, and `shift` is at
/// most [`MAX_SHIFT`]. Returns the number of blocks.
#[inline(always)]
fn int_blocks<const BITS: usize>(len: usize, code: &[u8], shift: u32) -> usize {
    assert!(
        len.is_multiple_of(BLOCK_DIMS),
        "query not padded to whole blocks"
    );
    assert!(code.len() * 8 >= len * BITS, "code shorter than the query");
    assert!(shift <= MAX_SHIFT, "shift {shift} too large");
    len / BLOCK_DIMS
}
