//! Seeded k-means: random initial centroids and Lloyd iterations on a
//! sample, multi-threaded, deterministic for any thread count.

use annvil_abi::{Metric, Vectors};
use annvil_core::{SplitMix64, parallel_map, sample_indices};

use crate::coarse::{Centroids, InvertedLists, partition_metric};

/// k-means settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KMeans {
    /// Number of centroids (at most the number of vectors is used).
    pub clusters: usize,
    /// Lloyd iterations after the initialisation.
    pub iterations: usize,
    /// Largest number of vectors trained on (a uniform sample; at least
    /// `clusters` are used).
    pub sample: usize,
    /// Seed of the sample and of the initial centroids.
    pub seed: u64,
}

/// The result of [`KMeans::train`].
#[derive(Clone, Debug)]
pub struct Clustering {
    /// The trained centroids (unit vectors for angular data).
    pub centroids: Centroids,
    /// The k-means objective on the training sample (the sum of partition
    /// distances from each vector to its nearest centroid) at the start of
    /// every Lloyd iteration, then after the last one. Non-increasing.
    pub objective: Vec<f64>,
    /// The ids of the vectors trained on, increasing.
    pub sample: Vec<u32>,
    /// The nearest final centroid of each vector of `sample`.
    pub assignment: Vec<u32>,
}

impl Clustering {
    /// The nearest centroid of every vector of `vectors` (the vectors
    /// trained on): the training assignment when the sample covered them
    /// all, else computed on up to `threads` threads.
    pub fn assign_all(&self, vectors: Vectors<'_>, threads: usize) -> Vec<u32> {
        if self.sample.len() == vectors.len() {
            self.assignment.clone()
        } else {
            self.centroids.assign(vectors, threads)
        }
    }
}

impl KMeans {
    /// Clusters `vectors` for an index of `metric` on up to `threads`
    /// threads.
    ///
    /// Vectors are partitioned by squared L2, or by `1 - <x, c>` on unit
    /// centroids for angular data (spherical k-means). The initial
    /// centroids are `clusters` distinct sample vectors drawn uniformly (as
    /// in faiss; k-means++ costs one pass over the sample per centroid,
    /// each bound by memory bandwidth); a Lloyd iteration assigns
    /// every sample vector to its nearest centroid, then moves each centroid
    /// to its members' mean (normalised for angular). A centroid left
    /// without members takes the sample vector farthest from its own
    /// centroid among those whose cluster keeps another member.
    ///
    /// The result depends only on the data and the settings, never on
    /// `threads`: every parallel step computes per-vector or per-centroid
    /// values and combines them in index order.
    pub fn train(&self, vectors: Vectors<'_>, metric: Metric, threads: usize) -> Clustering {
        let dim = vectors.dim();
        let n = vectors.len();
        let k = self.clusters.min(n);
        if k == 0 {
            return Clustering {
                centroids: Centroids::new(Vec::new(), dim, metric),
                objective: Vec::new(),
                sample: Vec::new(),
                assignment: Vec::new(),
            };
        }
        let mut rng = SplitMix64::new(self.seed);
        let sample = sample_indices(n, self.sample.max(k), &mut rng);
        let row = |i: usize| vectors.row(sample[i] as usize);
        let spherical = partition_metric(metric) == Metric::Angular;

        let mut data = Vec::with_capacity(k * dim);
        for i in sample_indices(sample.len(), k, &mut rng) {
            data.extend_from_slice(row(i as usize));
        }
        if spherical {
            data.chunks_exact_mut(dim).for_each(normalize);
        }
        let mut objective = Vec::with_capacity(self.iterations + 1);
        let mut iteration = 0;
        loop {
            let centroids = Centroids::new(data, dim, metric);
            let nearest = centroids.nearest_all(sample.len(), row, threads);
            objective.push(nearest.iter().map(|&(_, d)| f64::from(d)).sum());
            if iteration == self.iterations {
                return Clustering {
                    centroids,
                    objective,
                    sample,
                    assignment: nearest.into_iter().map(|(c, _)| c).collect(),
                };
            }
            data = update(&nearest, row, centroids.into_data(), k, spherical, threads);
            iteration += 1;
        }
    }
}

/// One Lloyd update of the `k` centroids in `old` from the assignment
/// `nearest` (centroid, distance) of the vectors `row(..)`: each centroid
/// moves to the mean of its members (normalised when `spherical`); empty
/// clusters are re-seeded.
fn update<'v>(
    nearest: &[(u32, f32)],
    row: impl Fn(usize) -> &'v [f32] + Sync,
    old: Vec<f32>,
    k: usize,
    spherical: bool,
    threads: usize,
) -> Vec<f32> {
    let dim = old.len() / k;
    let assignment: Vec<u32> = nearest.iter().map(|&(c, _)| c).collect();
    let members = InvertedLists::new(&assignment, k);
    let means = parallel_map(k, threads, |c| {
        let list = members.list(c);
        if list.is_empty() {
            return None;
        }
        let mut sum = vec![0f64; dim];
        for &i in list {
            for (s, &x) in sum.iter_mut().zip(row(i as usize)) {
                *s += f64::from(x);
            }
        }
        let mut mean: Vec<f32> = sum.iter().map(|s| (s / list.len() as f64) as f32).collect();
        if spherical {
            normalize(&mut mean);
        }
        Some(mean)
    });

    let mut data = old;
    let mut empty = Vec::new();
    for (c, mean) in means.into_iter().enumerate() {
        match mean {
            Some(mean) => data[c * dim..(c + 1) * dim].copy_from_slice(&mean),
            None => empty.push(c),
        }
    }
    if empty.is_empty() {
        return data;
    }
    // Re-seed empty clusters with the worst-served vectors, farthest
    // first (ties by index), never emptying another cluster. A donor
    // always exists: at least k vectors share fewer than k clusters.
    let mut sizes: Vec<usize> = (0..k).map(|c| members.size(c)).collect();
    let mut farthest: Vec<usize> = (0..nearest.len()).collect();
    farthest.sort_unstable_by(|&a, &b| nearest[b].1.total_cmp(&nearest[a].1).then(a.cmp(&b)));
    let mut donors = farthest.into_iter();
    for c in empty {
        if let Some(i) = donors.find(|&i| sizes[nearest[i].0 as usize] > 1) {
            sizes[nearest[i].0 as usize] -= 1;
            let target = &mut data[c * dim..(c + 1) * dim];
            target.copy_from_slice(row(i));
            if spherical {
                normalize(target);
            }
        }
    }
    data
}

/// Scales `v` to unit length (a zero vector stays zero).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        v.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_clusters_take_the_farthest_vectors_of_shared_clusters() {
        // Six 1-d vectors in clusters 0, 2 and 4; clusters 1 and 3 are
        // empty.
        let rows = [[0.0f32], [1.0], [2.5], [10.0], [6.0], [50.0]];
        let nearest = vec![
            (0, 0.0),
            (0, 1.0),
            (0, 6.25),
            (2, 1.0),
            (4, 9.0),
            (2, 100.0),
        ];
        let old = vec![0.0, 7.0, 30.0, 8.0, 9.0];
        let new = update(&nearest, |i| &rows[i][..], old, 5, false, 2);
        // Means of the clusters with members.
        assert!((new[0] - 3.5 / 3.0).abs() < 1e-6);
        assert_eq!(new[2], 30.0);
        assert_eq!(new[4], 6.0);
        // Farthest first: vector 5 (cluster 2 keeps vector 3), then not
        // vector 4 (alone in cluster 4) but vector 2 (cluster 0 keeps two).
        assert_eq!(new[1], 50.0);
        assert_eq!(new[3], 2.5);
    }

    #[test]
    fn normalize_makes_unit_vectors_and_keeps_zero() {
        let mut v = [3.0f32, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0f32; 3];
        normalize(&mut zero);
        assert_eq!(zero, [0.0; 3]);
    }
}
