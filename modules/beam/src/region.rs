//! Large zeroed byte buffers for search structures read at random: cache
//! line aligned, and, from 2 MiB up, aligned to 2 MiB and advised to the
//! kernel for transparent huge pages, so that a search touching a new node
//! at every step does not also miss the TLB at every step.

use annvil_distance::CACHE_LINE;

/// Size of an x86_64 huge page.
const HUGE_PAGE: usize = 2 << 20;

/// A zeroed byte buffer whose contents start at an aligned address.
#[derive(Debug)]
pub struct Region {
    /// Backing store; the contents start at `start`. The heap block does
    /// not move with the `Region`, which is not `Clone`, so the alignment
    /// holds for its whole life.
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Region {
    /// `len` zero bytes, 64-byte aligned, or in whole huge pages (advised)
    /// when `len` is at least one huge page.
    pub fn zeroed(len: usize) -> Region {
        let (align, room) = if len >= HUGE_PAGE {
            (HUGE_PAGE, len.next_multiple_of(HUGE_PAGE))
        } else {
            (CACHE_LINE, len)
        };
        // A zeroed allocation this large comes straight from the kernel,
        // untouched, so the advice below still decides how it is backed.
        let mut bytes = vec![0u8; room + align - 1];
        let start = (align - bytes.as_ptr() as usize % align) % align;
        if align == HUGE_PAGE {
            advise_huge_pages(&mut bytes[start..start + room]);
        }
        Region { bytes, start, len }
    }

    /// The contents.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    /// The contents, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }

    /// Heap bytes the region allocated.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Asks the kernel to back `bytes` (starting on a huge-page boundary) with
/// transparent huge pages. Only advice: without THP nothing changes.
#[cfg(target_os = "linux")]
fn advise_huge_pages(bytes: &mut [u8]) {
    // SAFETY: the range lies inside one live allocation borrowed mutably,
    // so no other code uses it, and starts on a page boundary as madvise
    // requires. MADV_HUGEPAGE only changes how the kernel backs the pages,
    // never their contents or validity. A failure (no THP support) leaves
    // the pages as they are, which is why the result is ignored.
    unsafe {
        libc::madvise(bytes.as_mut_ptr().cast(), bytes.len(), libc::MADV_HUGEPAGE);
    }
}

/// Huge pages are only advised on Linux.
#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_bytes: &mut [u8]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_regions_are_aligned_and_zeroed() {
        for len in [0, 100, HUGE_PAGE + 100] {
            let mut region = Region::zeroed(len);
            assert_eq!(region.as_slice().len(), len);
            assert!(region.as_slice().iter().all(|&b| b == 0));
            let align = if len >= HUGE_PAGE {
                HUGE_PAGE
            } else {
                CACHE_LINE
            };
            assert_eq!(region.as_slice().as_ptr() as usize % align, 0, "len {len}");
            region.as_mut_slice().fill(7);
            assert!(region.memory_bytes() >= len);
        }
    }
}
