//! The base vectors a graph search measures against, the distance seam and
//! the prefetch helper.

use annvil_abi::{Metric, Vectors};

/// A distance kernel between two vectors of equal length: smaller is closer.
type DistanceFn = fn(&[f32], &[f32]) -> f32;

/// The kernel for `metric`, following the ABI's conventions (squared L2,
/// `1 - <x, q>`, `-<x, q>`).
///
/// This is the one seam through which annvil-beam and annvil-hnsw reach
/// `annvil_distance`: switching to its dispatched (AVX2/AVX-512) kernel
/// getter is a change to this function, [`DistanceFn`] and
/// [`Space::measure`] alone.
fn kernel(metric: Metric) -> DistanceFn {
    match metric {
        Metric::L2 => annvil_distance::l2_squared,
        Metric::Angular => |a, b| 1.0 - annvil_distance::dot(a, b),
        Metric::InnerProduct => |a, b| -annvil_distance::dot(a, b),
    }
}

/// Cache lines of a vector [`Space::prefetch`] asks for; the hardware
/// prefetcher streams the rest of a long vector once it has started.
const PREFETCH_LINES: usize = 2;

/// f32 values per cache line.
const LINE_FLOATS: usize = 16;

/// Base vectors with the distance kernel of their metric.
#[derive(Clone, Copy, Debug)]
pub struct Space<'a> {
    /// The vectors, row-major (read directly: the row lookup is inlined).
    data: &'a [f32],
    dim: usize,
    kernel: DistanceFn,
}

impl<'a> Space<'a> {
    /// `vectors` measured with the kernel of `metric`.
    pub fn new(vectors: Vectors<'a>, metric: Metric) -> Space<'a> {
        Space {
            data: vectors.as_slice(),
            dim: vectors.dim(),
            kernel: kernel(metric),
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Vector `id`.
    #[inline]
    pub fn row(&self, id: u32) -> &'a [f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Distance from `query` to vector `id`.
    #[inline]
    pub fn to(&self, query: &[f32], id: u32) -> f32 {
        self.measure(query, self.row(id))
    }

    /// Distance between vectors `a` and `b`.
    #[inline]
    pub fn between(&self, a: u32, b: u32) -> f32 {
        self.measure(self.row(a), self.row(b))
    }

    /// The one call of the kernel (part of the seam, with [`kernel`]).
    #[inline]
    fn measure(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.kernel)(a, b)
    }

    /// Asks the CPU to start loading the first cache lines of vector `id`.
    #[inline]
    pub fn prefetch(&self, id: u32) {
        let row = self.row(id);
        for line in row.chunks(LINE_FLOATS).take(PREFETCH_LINES) {
            prefetch(&line[0]);
        }
    }
}

/// Asks the CPU to load the cache line holding `value` into all cache
/// levels. A hint only: it never faults and changes nothing observable. A
/// no-op on targets other than x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint that reads no memory architecturally
    // and never faults; SSE is part of the x86-64 baseline, and the address
    // comes from a live reference.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_follow_the_abi_conventions() {
        let a = [0.6f32, 0.8, 0.0];
        let b = [0.0f32, 0.6, 0.8];
        for metric in Metric::ALL {
            let got = kernel(metric)(&a, &b);
            assert!((got - metric.distance(&a, &b)).abs() < 1e-6, "{metric}");
        }
    }

    #[test]
    fn space_measures_rows() {
        let data = [0.0f32, 0.0, 3.0, 4.0];
        let space = Space::new(Vectors::new(&data, 2).unwrap(), Metric::L2);
        assert_eq!((space.len(), space.dim()), (2, 2));
        assert_eq!(space.between(0, 1), 25.0);
        assert_eq!(space.to(&[3.0, 0.0], 1), 16.0);
        space.prefetch(1);
    }
}
