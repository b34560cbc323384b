//! The base vectors a graph search measures against, with the distance
//! kernel of their metric.

use annvil_abi::{Metric, Vectors};
use annvil_distance::{Kernel, prefetch};

/// Cache lines of a vector [`Space::prefetch`] asks for; the hardware
/// prefetcher streams the rest of a long vector once it has started.
const PREFETCH_LINES: usize = 2;

/// f32 values per cache line.
const LINE_FLOATS: usize = annvil_distance::CACHE_LINE / 4;

/// Base vectors with the distance kernel of their metric, chosen once for
/// the CPU (AVX-512, AVX2 or scalar): a distance is one indirect call.
#[derive(Clone, Copy, Debug)]
pub struct Space<'a> {
    vectors: Vectors<'a>,
    kernel: Kernel,
}

impl<'a> Space<'a> {
    /// `vectors` measured with the kernel of `metric`.
    pub fn new(vectors: Vectors<'a>, metric: Metric) -> Space<'a> {
        Space {
            vectors,
            kernel: annvil_distance::kernel(metric),
        }
    }

    /// The vectors.
    pub fn vectors(&self) -> Vectors<'a> {
        self.vectors
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Dimension of every vector.
    pub fn dim(&self) -> usize {
        self.vectors.dim()
    }

    /// Vector `id`.
    #[inline]
    pub fn row(&self, id: u32) -> &'a [f32] {
        self.vectors.row(id as usize)
    }

    /// Distance from `query` to vector `id`.
    #[inline]
    pub fn to(&self, query: &[f32], id: u32) -> f32 {
        self.kernel.distance(query, self.row(id))
    }

    /// Distance between vectors `a` and `b`.
    #[inline]
    pub fn between(&self, a: u32, b: u32) -> f32 {
        self.kernel.distance(self.row(a), self.row(b))
    }

    /// Asks the CPU to start loading the first cache lines of vector `id`.
    #[inline]
    pub fn prefetch(&self, id: u32) {
        let row = self.row(id);
        for line in row.chunks(LINE_FLOATS).take(PREFETCH_LINES) {
            prefetch(line.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_follow_the_abi_conventions() {
        let a = [0.6f32, 0.8, 0.0];
        let b = [0.0f32, 0.6, 0.8];
        for metric in Metric::ALL {
            let got = annvil_distance::kernel(metric).distance(&a, &b);
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
