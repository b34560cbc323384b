//! FastScan: the 4-bit codes of 32 vectors laid out so that one SIMD
//! shuffle looks up 16 (AVX2: 32, AVX-512: 64) table entries at once, and
//! the query's table quantized to bytes so that it fits in registers.
//!
//! A **block** holds the codes of 32 vectors, 16 bytes per subspace: byte
//! `i` of subspace `m` carries vector `i`'s code in its low nibble and
//! vector `i + 16`'s in its high nibble. A **table** holds 16 bytes per
//! subspace, entry `c` the query's quantized partial distance to centroid
//! `c`. Both are [`padded_subspaces`](crate::ProductQuantizer::padded_subspaces)
//! × 16 bytes long. Scoring a block sums, for each of its 32 vectors, the
//! table entries its codes name, in wrapping `u16` arithmetic ([`ByteTable`]
//! keeps the sums in range).

use annvil_distance::Isa;

use crate::quantizer::CENTROIDS;

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Vectors per block.
pub const BLOCK: usize = 32;

/// Bytes per subspace in a block or a table.
const SUBSPACE_BYTES: usize = 16;

/// Bytes of a block (or a table) of `padded_subspaces` subspaces.
pub fn block_bytes(padded_subspaces: usize) -> usize {
    padded_subspaces * SUBSPACE_BYTES
}

/// Writes the block of `codes` (at most [`BLOCK`] codes, each one value
/// in `0..16` per subspace) to `block`; the slots of missing vectors get
/// code 0.
pub fn pack_block<'c>(codes: impl ExactSizeIterator<Item = &'c [u8]>, block: &mut [u8]) {
    assert!(codes.len() <= BLOCK, "a block holds {BLOCK} codes");
    assert!(block.len().is_multiple_of(SUBSPACE_BYTES));
    block.fill(0);
    for (i, code) in codes.enumerate() {
        let (byte, shift) = (i % SUBSPACE_BYTES, 4 * (i / SUBSPACE_BYTES));
        for (m, &c) in code.iter().enumerate() {
            debug_assert!((c as usize) < CENTROIDS, "4-bit codes");
            block[m * SUBSPACE_BYTES + byte] |= (c & 0x0f) << shift;
        }
    }
}

/// 2^23: the smallest f32 whose unit in the last place is 1.
const ROUNDING_BIAS: f32 = 8_388_608.0;

/// A query's table of partial distances quantized to bytes: entry
/// `round((t - min_m) · scale)` for the float entry `t` of subspace `m`,
/// where `min_m` is the subspace's smallest entry and one `scale` serves
/// all subspaces, chosen so that the largest entry is at most 255 and the
/// sum over all subspaces fits a `u16`. Sums of entries then order codes
/// as the float sums do, up to the rounding.
#[derive(Clone, Debug, Default)]
pub struct ByteTable {
    bytes: Vec<u8>,
    /// The sum of the subspaces' smallest entries.
    offset: f32,
    /// Entries per unit of the float table (0 when all entries are equal).
    scale: f32,
}

impl ByteTable {
    /// Quantizes the float table `table` (16 entries per subspace, a whole
    /// number of subspaces), which it leaves shifted so that each
    /// subspace's smallest entry is 0.
    pub fn set(&mut self, table: &mut [f32]) {
        assert!(table.len().is_multiple_of(CENTROIDS));
        let subspaces = table.len() / CENTROIDS;
        // Plain comparisons rather than f32::min/max, whose NaN rules keep
        // the compiler from vectorizing; the table has no NaN.
        let mut range = 0.0f32;
        self.offset = 0.0;
        for entries in table.chunks_exact_mut(CENTROIDS) {
            let min = entries
                .iter()
                .fold(f32::INFINITY, |a, &t| if t < a { t } else { a });
            self.offset += min;
            entries.iter_mut().for_each(|t| *t -= min);
            range = entries
                .iter()
                .fold(range, |a, &t| if t > a { t } else { a });
        }
        let top = (u16::MAX as usize / subspaces.max(1)).min(u8::MAX as usize) as f32;
        let scale = if range > 0.0 && range.is_finite() {
            top / range
        } else {
            0.0
        };
        self.scale = scale;
        self.bytes.resize(table.len(), 0);
        for (byte, &t) in self.bytes.iter_mut().zip(&*table) {
            // Adding 2^23 leaves the value, rounded to the nearest whole
            // number, in the low mantissa bits (at most `top` <= 255 fits
            // in 8 of them): a rounding the compiler vectorizes, where a
            // float-to-int cast is a saturating scalar conversion.
            let scaled = t * scale;
            let clamped = if scaled > top { top } else { scaled };
            *byte = (clamped + ROUNDING_BIAS).to_bits() as u8;
        }
    }

    /// The float-table sum that the byte-table sum `sum` stands for: the
    /// code's estimated distance, up to the rounding of the entries.
    #[inline]
    pub fn estimate(&self, sum: u16) -> f32 {
        let (offset, unit) = self.affine();
        offset + unit * f32::from(sum)
    }

    /// The map from byte-table sums to estimates, `(offset, unit)` with
    /// estimate `offset + unit · sum`, for callers that fold more terms
    /// into it.
    #[inline]
    pub fn affine(&self) -> (f32, f32) {
        let unit = if self.scale > 0.0 {
            1.0 / self.scale
        } else {
            0.0
        };
        (self.offset, unit)
    }

    /// The quantized entries, 16 per subspace.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A block-scoring kernel `(table, block, sums)`. `unsafe` because a SIMD
/// kernel may only run on a CPU with its features; the caller has checked
/// that table and block are equally long, a whole number of
/// [`SUBSPACE_GROUP`](crate::quantizer::SUBSPACE_GROUP) subspaces.
type ScanFn = unsafe fn(&[u8], &[u8], &mut [u16; BLOCK]);

/// The block-scoring kernel of one instruction-set level.
#[derive(Clone, Copy)]
pub struct Scanner {
    kernel: ScanFn,
    isa: Isa,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner").field("isa", &self.isa).finish()
    }
}

impl Scanner {
    /// The kernel of `isa`, or `None` where this CPU does not run it.
    pub fn for_isa(isa: Isa) -> Option<Scanner> {
        if !isa.is_supported() {
            return None;
        }
        let kernel: ScanFn = match isa {
            Isa::Scalar => scalar::scan,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::scan_avx2,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::scan_avx512,
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unreachable!("{isa} is never supported off x86_64"),
        };
        Some(Scanner { kernel, isa })
    }

    /// The widest kernel this CPU runs.
    pub fn best() -> Scanner {
        Scanner::for_isa(Isa::best()).expect("the best level is supported")
    }

    /// The level of the kernel.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Sets `sums[i]` to the sum of the entries of `table` that vector
    /// `i`'s codes in `block` name (wrapping `u16`). Panics unless table
    /// and block are equally long and a whole number of
    /// [`SUBSPACE_GROUP`](crate::quantizer::SUBSPACE_GROUP) subspaces.
    #[inline]
    pub fn scan(&self, table: &[u8], block: &[u8], sums: &mut [u16; BLOCK]) {
        assert_eq!(table.len(), block.len(), "table and block differ in length");
        assert!(
            table
                .len()
                .is_multiple_of(SUBSPACE_BYTES * crate::quantizer::SUBSPACE_GROUP),
            "a whole number of subspace groups"
        );
        // SAFETY: `for_isa` made this scanner only where the CPU runs the
        // kernel's instruction set, and the lengths the kernel relies on
        // are checked above.
        unsafe { (self.kernel)(table, block, sums) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantizer::SUBSPACE_GROUP;

    /// Random codes of `count` vectors over `subspaces` subspaces.
    fn codes(rng: &mut fastrand::Rng, count: usize, subspaces: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| (0..subspaces).map(|_| rng.u8(0..16)).collect())
            .collect()
    }

    #[test]
    fn every_kernel_sums_the_entries_each_code_names() {
        let mut rng = fastrand::Rng::with_seed(11);
        for subspaces in [4usize, 8, 100, 196, 256] {
            let padded = subspaces.next_multiple_of(SUBSPACE_GROUP);
            for count in [1, 17, BLOCK] {
                let codes = codes(&mut rng, count, subspaces);
                let mut block = vec![0xff; block_bytes(padded)];
                pack_block(codes.iter().map(Vec::as_slice), &mut block);
                let table: Vec<u8> = (0..block_bytes(padded)).map(|_| rng.u8(..)).collect();
                let mut want = [0u16; BLOCK];
                for (i, code) in codes.iter().enumerate() {
                    want[i] = code.iter().enumerate().fold(0u16, |sum, (m, &c)| {
                        sum.wrapping_add(table[m * 16 + c as usize] as u16)
                    });
                }
                // Missing vectors score as code 0 everywhere.
                let zero = (0..padded).fold(0u16, |s, m| s.wrapping_add(table[m * 16] as u16));
                want[count..].fill(zero);
                let mut tested = 0;
                for isa in Isa::ALL {
                    let Some(scanner) = Scanner::for_isa(isa) else {
                        continue;
                    };
                    let mut sums = [7u16; BLOCK];
                    scanner.scan(&table, &block, &mut sums);
                    assert_eq!(sums, want, "{isa}, {subspaces} subspaces, {count} codes");
                    tested += 1;
                }
                assert_eq!(tested, Isa::supported().count());
            }
        }
    }

    #[test]
    fn byte_tables_keep_the_order_and_the_sum_in_range() {
        let mut rng = fastrand::Rng::with_seed(5);
        for subspaces in [4, 196, 400] {
            let table: Vec<f32> = (0..subspaces * 16)
                .map(|_| rng.f32() * 10.0 - 3.0)
                .collect();
            let mut bytes = ByteTable::default();
            bytes.set(&mut table.clone());
            let top = (65535 / subspaces).min(255) as u8;
            assert_eq!(bytes.bytes().len(), table.len());
            for (entries, quantized) in table.chunks_exact(16).zip(bytes.bytes().chunks_exact(16)) {
                assert!(quantized.contains(&0), "each subspace starts at 0");
                assert!(quantized.iter().all(|&b| b <= top));
                for a in 0..16 {
                    for b in 0..16 {
                        if entries[a] < entries[b] {
                            assert!(quantized[a] <= quantized[b]);
                        }
                    }
                }
            }
            let worst: usize = bytes
                .bytes()
                .chunks_exact(16)
                .map(|q| *q.iter().max().unwrap() as usize)
                .sum();
            assert!(worst <= u16::MAX as usize, "{subspaces}: {worst}");
        }
        // Sums of bytes stand for sums of floats, up to half a step each.
        let table: Vec<f32> = (0..64).map(|i| (i % 7) as f32 - 2.0).collect();
        let mut bytes = ByteTable::default();
        bytes.set(&mut table.clone());
        let code = [3usize, 9, 0, 15];
        let exact: f32 = code
            .iter()
            .enumerate()
            .map(|(m, &c)| table[m * 16 + c])
            .sum();
        let sum: u16 = code
            .iter()
            .enumerate()
            .map(|(m, &c)| u16::from(bytes.bytes()[m * 16 + c]))
            .sum();
        let step = 1.0 / bytes.scale;
        assert!((bytes.estimate(sum) - exact).abs() <= 4.0 * step / 2.0 + 1e-4);
        let mut flat = ByteTable::default();
        flat.set(&mut [1.0; 32]);
        assert!(flat.bytes().iter().all(|&b| b == 0));
    }
}
