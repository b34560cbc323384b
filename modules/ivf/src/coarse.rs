//! The coarse quantizer: centroids, the rule that partitions vectors among
//! them, the lists they define, and the choice of lists a query scans.

use std::ops::Range;

use annvil_abi::{Metric, Vectors};
use annvil_core::{Candidate, parallel_map};
use annvil_distance::Kernel;

/// Vectors per block of [`Centroids::nearest_all`]: 64 vectors of 784
/// floats (200 KB) stay in the L2 cache while the centroids stream by.
const NEAREST_BLOCK: usize = 64;

/// The metric vectors are partitioned by: `1 - <x, c>` on unit centroids
/// for angular data (spherical k-means), squared L2 otherwise. Inner
/// product data is partitioned by L2 because assigning by the largest
/// inner product sends most points to the longest centroid.
pub(crate) fn partition_metric(metric: Metric) -> Metric {
    match metric {
        Metric::Angular => Metric::Angular,
        Metric::L2 | Metric::InnerProduct => Metric::L2,
    }
}

/// `k` centroids of one dimension, with two rules: a base vector belongs
/// to its nearest centroid by the partition metric (L2, or angular for
/// angular data), and a query visits the centroids in the order of the
/// index's own metric (for inner product, by `-<q, c>`).
#[derive(Clone, Debug)]
pub struct Centroids {
    data: Vec<f32>,
    /// The same centroids by column (`dim × len`), so that routing a
    /// query is one matrix-vector product the compiler vectorizes.
    columns: Vec<f32>,
    /// `‖c‖²` of every centroid, for routing by squared L2.
    squared_norms: Vec<f32>,
    dim: usize,
    metric: Metric,
    partition: Kernel,
}

impl Centroids {
    /// Centroids from row-major `data` (`data.len()` a multiple of `dim`)
    /// for an index of `metric`. For angular data the rows should be unit
    /// vectors (k-means produces them so).
    pub fn new(data: Vec<f32>, dim: usize, metric: Metric) -> Centroids {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "{} floats are not centroids of dimension {dim}",
            data.len()
        );
        let columns = (0..dim)
            .flat_map(|d| data.iter().skip(d).step_by(dim).copied())
            .collect();
        let squared_norms = data
            .chunks_exact(dim)
            .map(|c| annvil_distance::dot(c, c))
            .collect();
        Centroids {
            data,
            columns,
            squared_norms,
            dim,
            metric,
            partition: annvil_distance::kernel(partition_metric(metric)),
        }
    }

    /// Number of centroids.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no centroids.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of every centroid.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric of the index the centroids route queries for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Centroid `c`.
    pub fn row(&self, c: usize) -> &[f32] {
        &self.data[c * self.dim..(c + 1) * self.dim]
    }

    /// All centroids, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The centroid `vector` belongs to and its partition distance to it
    /// (ties go to the lower index). Panics when there are no centroids.
    pub fn nearest(&self, vector: &[f32]) -> (u32, f32) {
        let mut best = [(0, f32::INFINITY)];
        self.nearest_block(&[vector], &mut best);
        best[0]
    }

    /// [`Centroids::nearest`] of every vector `rows(i)`, `i` in
    /// `0..count`, on up to `threads` threads.
    ///
    /// Vectors are taken in blocks that each centroid visits in turn, so a
    /// centroid is read once per block rather than once per vector: with
    /// many long centroids (1000 × 784 floats is 3 MB) this turns a scan
    /// bound by memory bandwidth into one that runs from the caches.
    pub fn nearest_all<'v>(
        &self,
        count: usize,
        rows: impl Fn(usize) -> &'v [f32] + Sync,
        threads: usize,
    ) -> Vec<(u32, f32)> {
        let blocks = parallel_map(count.div_ceil(NEAREST_BLOCK), threads, |b| {
            let range = b * NEAREST_BLOCK..((b + 1) * NEAREST_BLOCK).min(count);
            let block: Vec<&[f32]> = range.map(&rows).collect();
            let mut best = vec![(0, f32::INFINITY); block.len()];
            self.nearest_block(&block, &mut best);
            best
        });
        blocks.concat()
    }

    /// Lowers `best[i]` to the nearest centroid of `block[i]` (centroids in
    /// the outer loop; ties go to the lower index).
    fn nearest_block(&self, block: &[&[f32]], best: &mut [(u32, f32)]) {
        assert!(!self.is_empty(), "no centroids");
        for (c, centroid) in self.data.chunks_exact(self.dim).enumerate() {
            for (vector, best) in block.iter().zip(best.iter_mut()) {
                let distance = self.partition.distance(vector, centroid);
                if distance < best.1 {
                    *best = (c as u32, distance);
                }
            }
        }
    }

    /// The centroid of every vector, on up to `threads` threads.
    pub fn assign(&self, vectors: Vectors<'_>, threads: usize) -> Vec<u32> {
        self.nearest_all(vectors.len(), |i| vectors.row(i), threads)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// Sets `scores[c]` to the routing distance of `query` to centroid `c`
    /// (the index metric, with squared L2 expanded as
    /// `‖q‖² − 2<q, c> + ‖c‖²`).
    pub fn route_all(&self, query: &[f32], scores: &mut Vec<f32>) {
        let rows = self.len();
        scores.clear();
        let along = match self.metric {
            Metric::L2 => {
                let qq = annvil_distance::dot(query, query);
                scores.extend(self.squared_norms.iter().map(|cc| qq + cc));
                -2.0
            }
            Metric::Angular => {
                scores.resize(rows, 1.0);
                -1.0
            }
            Metric::InnerProduct => {
                scores.resize(rows, 0.0);
                -1.0
            }
        };
        if rows == 0 {
            return;
        }
        for (&q, column) in query.iter().zip(self.columns.chunks_exact(rows)) {
            let weight = along * q;
            for (score, &x) in scores.iter_mut().zip(column) {
                *score += weight * x;
            }
        }
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        (self.data.capacity() + self.columns.capacity() + self.squared_norms.capacity())
            * size_of::<f32>()
    }

    /// The row-major centroids, giving up the rest.
    pub(crate) fn into_data(self) -> Vec<f32> {
        self.data
    }
}

/// Vector ids grouped by list: list `c` holds the ids assigned to
/// centroid `c`, in increasing id order, and the lists lie one after the
/// other, so data stored "in list order" is contiguous per list.
#[derive(Clone, Debug, Default)]
pub struct InvertedLists {
    offsets: Vec<usize>,
    ids: Vec<u32>,
}

impl InvertedLists {
    /// The lists of `assignment` (vector `i` goes to list `assignment[i]`)
    /// over `lists` lists. Panics when an entry is `>= lists`.
    pub fn new(assignment: &[u32], lists: usize) -> InvertedLists {
        let mut offsets = vec![0usize; lists + 1];
        for &c in assignment {
            offsets[c as usize + 1] += 1;
        }
        for c in 0..lists {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets[..lists].to_vec();
        let mut ids = vec![0u32; assignment.len()];
        for (id, &c) in assignment.iter().enumerate() {
            ids[next[c as usize]] = id as u32;
            next[c as usize] += 1;
        }
        InvertedLists { offsets, ids }
    }

    /// Number of lists.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there are no lists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions of list `c` in list order.
    pub fn range(&self, c: usize) -> Range<usize> {
        self.offsets[c]..self.offsets[c + 1]
    }

    /// Number of ids in list `c`.
    pub fn size(&self, c: usize) -> usize {
        self.offsets[c + 1] - self.offsets[c]
    }

    /// The ids of list `c`.
    pub fn list(&self, c: usize) -> &[u32] {
        &self.ids[self.range(c)]
    }

    /// Every id, in list order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<usize>() + self.ids.capacity() * size_of::<u32>()
    }
}

/// Per-query scratch that picks the lists a search scans.
#[derive(Debug, Default)]
pub struct Probe {
    scores: Vec<f32>,
    ranked: Vec<Candidate>,
}

impl Probe {
    /// Scratch for `lists` lists.
    pub fn new(lists: usize) -> Probe {
        Probe {
            scores: Vec::with_capacity(lists),
            ranked: Vec::with_capacity(lists),
        }
    }

    /// The `nprobe` lists whose centroids are nearest `query` by the
    /// routing rule, nearest first (ties by list), followed by the next
    /// nearest lists while fewer than `min_points` ids are covered, so a
    /// search can always fill its `min_points` results when the index has
    /// that many. Each entry is a list (`id`) and its routing distance.
    pub fn select(
        &mut self,
        centroids: &Centroids,
        lists: &InvertedLists,
        query: &[f32],
        nprobe: usize,
        min_points: usize,
    ) -> &[Candidate] {
        centroids.route_all(query, &mut self.scores);
        self.ranked.clear();
        self.ranked.extend(
            self.scores
                .iter()
                .enumerate()
                .map(|(c, &distance)| Candidate {
                    distance,
                    id: c as u32,
                }),
        );
        let nprobe = nprobe.max(1).min(self.ranked.len());
        if nprobe < self.ranked.len() {
            self.ranked.select_nth_unstable(nprobe - 1);
        }
        self.ranked[..nprobe].sort_unstable();
        let mut covered: usize = self.ranked[..nprobe]
            .iter()
            .map(|c| lists.size(c.id as usize))
            .sum();
        let mut taken = nprobe;
        if covered < min_points && taken < self.ranked.len() {
            self.ranked[taken..].sort_unstable();
            while covered < min_points && taken < self.ranked.len() {
                covered += lists.size(self.ranked[taken].id as usize);
                taken += 1;
            }
        }
        &self.ranked[..taken]
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        self.scores.capacity() * size_of::<f32>() + self.ranked.capacity() * size_of::<Candidate>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_group_ids_in_order() {
        let lists = InvertedLists::new(&[2, 0, 2, 1, 0], 4);
        assert_eq!(lists.len(), 4);
        assert_eq!(lists.list(0), [1, 4]);
        assert_eq!(lists.list(1), [3]);
        assert_eq!(lists.list(2), [0, 2]);
        assert!(lists.list(3).is_empty());
        assert_eq!(lists.ids(), [1, 4, 3, 0, 2]);
        assert_eq!(lists.range(2), 3..5);
    }

    #[test]
    fn probe_takes_nearest_lists_then_extends_to_min_points() {
        let centroids = Centroids::new(vec![0.0, 1.0, 2.0, 3.0], 1, Metric::L2);
        let lists = InvertedLists::new(&[0, 1, 1, 2, 3, 3, 3], 4);
        let mut probe = Probe::new(4);
        let ids = |s: &[Candidate]| s.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(probe.select(&centroids, &lists, &[2.1], 2, 0)), [2, 3]);
        assert_eq!(ids(probe.select(&centroids, &lists, &[2.1], 1, 4)), [2, 3]);
        assert_eq!(
            ids(probe.select(&centroids, &lists, &[2.1], 1, 5)),
            [2, 3, 1]
        );
        assert_eq!(
            ids(probe.select(&centroids, &lists, &[2.1], 99, 0)),
            [2, 3, 1, 0]
        );
        assert_eq!(
            ids(probe.select(&centroids, &lists, &[0.0], 1, 100)),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn inner_product_routes_by_dot_but_partitions_by_l2() {
        let centroids = Centroids::new(vec![1.0, 0.0, 4.0, 0.0], 2, Metric::InnerProduct);
        // Nearer (L2) to the first centroid, larger dot with the second.
        assert_eq!(centroids.nearest(&[1.2, 0.0]).0, 0);
        let mut scores = Vec::new();
        centroids.route_all(&[1.2, 0.0], &mut scores);
        assert_eq!(scores, [-1.2, -4.8]);
    }
}
