//! Several entry points: a few nodes spread over the data (the base vector
//! nearest each k-means centroid of a sample), their vectors kept side by
//! side so that finding the one closest to a query is one sequential scan
//! from the caches, where descending a hierarchy reads a vector at random
//! per step.

use annvil_abi::{Metric, Vectors};
use annvil_core::{Candidate, SplitMix64, sample_indices};
use annvil_distance::Kernel;
use annvil_ivf::KMeans;

/// Vectors the entry points are chosen from, at most.
const SAMPLE: usize = 8192;

/// Lloyd iterations of the k-means that spreads them.
const ITERATIONS: usize = 8;

/// Entry points and their vectors, contiguous.
#[derive(Clone, Debug)]
pub struct EntryPoints {
    ids: Vec<u32>,
    vectors: Vec<f32>,
    dim: usize,
}

impl EntryPoints {
    /// About `count` distinct nodes of `base` spread over it: the sample
    /// vector nearest each of `count` k-means centroids of a sample
    /// (seeded by `seed`), found on one thread.
    pub fn spread(base: Vectors<'_>, metric: Metric, count: usize, seed: u64) -> EntryPoints {
        let dim = base.dim();
        let sample = sample_indices(base.len(), SAMPLE, &mut SplitMix64::new(seed));
        let mut rows = Vec::with_capacity(sample.len() * dim);
        for &id in &sample {
            rows.extend_from_slice(base.row(id as usize));
        }
        let rows = Vectors::new(&rows, dim).expect("whole rows");
        let clustering = KMeans {
            clusters: count,
            iterations: ITERATIONS,
            sample: sample.len(),
            seed,
        }
        .train(rows, metric, 1);
        let kernel = annvil_distance::kernel(metric);
        let centroids = &clustering.centroids;
        let mut ids: Vec<u32> = (0..centroids.len())
            .filter_map(|c| {
                let centroid = centroids.row(c);
                (0..rows.len())
                    .map(|i| (kernel.distance(centroid, rows.row(i)), sample[i]))
                    .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                    .map(|(_, id)| id)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut vectors = Vec::with_capacity(ids.len() * dim);
        for &id in &ids {
            vectors.extend_from_slice(base.row(id as usize));
        }
        EntryPoints { ids, vectors, dim }
    }

    /// Number of entry points.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The entry point closest to `query` by `kernel`, or `None` when
    /// there are none.
    pub fn nearest(&self, kernel: &Kernel, query: &[f32]) -> Option<Candidate> {
        self.ids
            .iter()
            .zip(self.vectors.chunks_exact(self.dim))
            .map(|(&id, vector)| Candidate {
                distance: kernel.distance(query, vector),
                id,
            })
            .min()
    }

    /// Bytes of memory they own.
    pub fn memory_bytes(&self) -> usize {
        self.ids.capacity() * size_of::<u32>() + self.vectors.capacity() * size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_are_distinct_nodes_and_the_nearest_is_the_closest() {
        let mut rng = fastrand::Rng::with_seed(9);
        let dim = 8;
        let data: Vec<f32> = (0..3000 * dim).map(|_| rng.f32()).collect();
        let base = Vectors::new(&data, dim).unwrap();
        let entries = EntryPoints::spread(base, Metric::L2, 32, 1);
        assert!((20..=32).contains(&entries.len()), "{}", entries.len());
        let mut ids = entries.ids.clone();
        ids.dedup();
        assert_eq!(ids.len(), entries.len(), "distinct");
        let kernel = annvil_distance::kernel(Metric::L2);
        for (&id, vector) in entries.ids.iter().zip(entries.vectors.chunks_exact(dim)) {
            assert_eq!(vector, base.row(id as usize));
        }
        let query: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
        let nearest = entries.nearest(&kernel, &query).unwrap();
        for &id in &entries.ids {
            assert!(nearest.distance <= kernel.distance(&query, base.row(id as usize)));
        }
    }
}
