//! Seeded k-means: k-means++ initialisation and Lloyd iterations on a
//! sample, multi-threaded, deterministic for any thread count.

use annvil_abi::{Metric, Vectors};
use annvil_distance::Kernel;

use crate::coarse::{Centroids, InvertedLists, partition_metric};
use crate::parallel::{SplitMix64, parallel_map, sample_indices};

/// k-means settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KMeans {
    /// Number of centroids (at most the number of vectors is used).
    pub clusters: usize,
    /// Lloyd iterations after the k-means++ initialisation.
    pub iterations: usize,
    /// Largest number of vectors trained on (a uniform sample; at least
    /// `clusters` are used).
    pub sample: usize,
    /// Seed of the sample and of the k-means++ draws.
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
}

impl KMeans {
    /// Clusters `vectors` for an index of `metric` on up to `threads`
    /// threads.
    ///
    /// Vectors are partitioned by squared L2, or by `1 - <x, c>` on unit
    /// centroids for angular data (spherical k-means). Initialisation is
    /// k-means++ (each next centroid drawn with probability proportional to
    /// the distance to the nearest one so far); a Lloyd iteration assigns
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
            };
        }
        let mut rng = SplitMix64::new(self.seed);
        let sample = sample_indices(n, self.sample.max(k), &mut rng);
        let row = |i: usize| vectors.row(sample[i] as usize);
        let spherical = partition_metric(metric) == Metric::Angular;
        let kernel = annvil_distance::kernel(partition_metric(metric));

        let mut data = plus_plus(sample.len(), row, k, &mut rng, kernel, threads);
        let mut objective = Vec::with_capacity(self.iterations + 1);
        for iteration in 0..=self.iterations {
            let centroids = Centroids::new(data, dim, metric);
            let nearest = parallel_map(sample.len(), threads, |i| centroids.nearest(row(i)));
            objective.push(nearest.iter().map(|&(_, d)| f64::from(d)).sum());
            data = centroids.into_data();
            if iteration < self.iterations {
                data = update(&nearest, row, data, k, spherical, threads);
            }
        }
        Clustering {
            centroids: Centroids::new(data, dim, metric),
            objective,
        }
    }
}

/// k-means++ over the `m` vectors `row(0..m)`: `k` centroids, row-major.
fn plus_plus<'v>(
    m: usize,
    row: impl Fn(usize) -> &'v [f32] + Sync,
    k: usize,
    rng: &mut SplitMix64,
    kernel: Kernel,
    threads: usize,
) -> Vec<f32> {
    let first = row(rng.below(m));
    let mut data = Vec::with_capacity(k * first.len());
    data.extend_from_slice(first);
    let mut nearest = parallel_map(m, threads, |i| kernel.distance(row(i), first).max(0.0));
    for _ in 1..k {
        let total: f64 = nearest.iter().map(|&d| f64::from(d)).sum();
        let chosen = if total > 0.0 {
            let mut target = rng.unit() * total;
            nearest
                .iter()
                .position(|&d| {
                    target -= f64::from(d);
                    target < 0.0
                })
                .unwrap_or(m - 1)
        } else {
            // Every vector coincides with a centroid already.
            rng.below(m)
        };
        let centre = row(chosen);
        data.extend_from_slice(centre);
        nearest = parallel_map(m, threads, |i| {
            nearest[i].min(kernel.distance(row(i), centre).max(0.0))
        });
    }
    data
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
        v.iter_mut().for_each(|x| *x = (f64::from(*x) / norm) as f32);
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
