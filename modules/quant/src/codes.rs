//! Contiguous, cache-line aligned storage of codes.

use annvil_distance::CACHE_LINE;

/// Codes of many vectors, one row per vector, rows
/// [`ScalarQuantizer::row_stride`](crate::ScalarQuantizer::row_stride)
/// bytes apart from a 64-byte aligned start.
#[derive(Debug)]
pub struct Codes {
    /// Backing store; rows start at `start`, which is 64-byte aligned (the
    /// heap block does not move with the `Codes`, and `Codes` is not
    /// `Clone`, so the alignment holds for its whole life).
    bytes: Vec<u8>,
    start: usize,
    stride: usize,
    len: usize,
}

impl Codes {
    /// `len` zeroed rows of `stride` bytes, aligned to a cache line.
    pub(crate) fn zeroed(len: usize, stride: usize) -> Codes {
        let bytes = vec![0u8; len * stride + CACHE_LINE - 1];
        let start = (CACHE_LINE - bytes.as_ptr() as usize % CACHE_LINE) % CACHE_LINE;
        Codes {
            bytes,
            start,
            stride,
            len,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes from one row to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Row `i` (`stride` bytes, the code then zero padding), 64-byte aligned.
    /// Panics if `i` is out of range.
    #[inline]
    pub fn row(&self, i: usize) -> &[u8] {
        assert!(i < self.len, "row {i} of {}", self.len);
        &self.bytes[self.start + i * self.stride..][..self.stride]
    }

    /// Row `i` for writing.
    pub(crate) fn row_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.bytes[self.start + i * self.stride..][..self.stride]
    }

    /// All rows, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..][..self.len * self.stride]
    }

    /// Heap bytes this store allocated.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}
