//! Exact ground truth, its on-disk cache, and the check of shipped
//! neighbours against it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use annvil_abi::Metric;
use rayon::prelude::*;
use serde::Serialize;

use crate::atomic::write_atomically;
use crate::dataset::Dataset;
use crate::distance::{distance_within, exact_distance};
use crate::error::{DataError, Result};
use crate::matrix::Matrix;

/// The true `k` nearest base vectors of every query.
///
/// Row `q` (see [`GroundTruth::row`]) lists ids in increasing (distance,
/// id) order; distances are exact f64 values in the ABI convention
/// (squared Euclidean, `1 - cos`, `-<x, q>`; see
/// [`exact_distance`](crate::exact_distance)).
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    /// Neighbours per query.
    pub k: usize,
    /// `queries × k` base ids, row-major.
    pub ids: Vec<u32>,
    /// `queries × k` distances, same shape as `ids`.
    pub distances: Vec<f64>,
}

/// One query's row of a [`GroundTruth`].
#[derive(Clone, Copy, Debug)]
pub struct TruthRow<'a> {
    /// Neighbour ids, nearest first.
    pub ids: &'a [u32],
    /// Their exact distances, non-decreasing.
    pub distances: &'a [f64],
}

impl GroundTruth {
    /// Number of queries.
    pub fn queries(&self) -> usize {
        self.ids.len().checked_div(self.k).unwrap_or(0)
    }

    /// The row of query `query`; panics when out of range.
    pub fn row(&self, query: usize) -> TruthRow<'_> {
        let range = query * self.k..(query + 1) * self.k;
        TruthRow {
            ids: &self.ids[range.clone()],
            distances: &self.distances[range],
        }
    }

    /// The first `k` columns, or `None` when `k` is zero or exceeds
    /// [`GroundTruth::k`].
    pub fn truncated(&self, k: usize) -> Option<GroundTruth> {
        if k == 0 || k > self.k {
            return None;
        }
        Some(GroundTruth {
            k,
            ids: first_columns(&self.ids, self.k, k),
            distances: first_columns(&self.distances, self.k, k),
        })
    }

    /// Builds ground truth from neighbour ids shipped with a dataset (`k`
    /// per query, row-major): recomputes every distance exactly and sorts
    /// each row by (distance, id). The error says what is wrong.
    pub(crate) fn from_neighbor_ids(
        train: &Matrix,
        test: &Matrix,
        metric: Metric,
        mut ids: Vec<u32>,
        k: usize,
    ) -> std::result::Result<GroundTruth, String> {
        if k == 0 || ids.len() != test.len() * k {
            return Err(format!(
                "{} neighbour ids do not form {} rows of {k}",
                ids.len(),
                test.len()
            ));
        }
        for (query, row) in ids.chunks(k).enumerate() {
            if let Some((rank, id)) = row
                .iter()
                .enumerate()
                .find(|&(_, &id)| id as usize >= train.len())
            {
                return Err(format!(
                    "query {query}, neighbour {rank}: id {id} is out of range \
                     (there are {} base vectors)",
                    train.len()
                ));
            }
            let mut sorted = row.to_vec();
            sorted.sort_unstable();
            if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
                return Err(format!(
                    "query {query} lists neighbour id {} twice",
                    pair[0]
                ));
            }
        }
        let mut distances = vec![0.0; ids.len()];
        ids.par_chunks_mut(k)
            .zip(distances.par_chunks_mut(k))
            .enumerate()
            .for_each(|(query, (row_ids, row_distances))| {
                let mut pairs: Vec<(f64, u32)> = row_ids
                    .iter()
                    .map(|&id| {
                        let base = train.row(id as usize);
                        (exact_distance(metric, base, test.row(query)), id)
                    })
                    .collect();
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                write_row(row_ids, row_distances, &pairs);
            });
        Ok(GroundTruth { k, ids, distances })
    }
}

/// Stores sorted (distance, id) pairs into one row of ids and distances.
fn write_row(ids: &mut [u32], distances: &mut [f64], pairs: &[(f64, u32)]) {
    for ((id, distance), &pair) in ids.iter_mut().zip(distances.iter_mut()).zip(pairs) {
        (*distance, *id) = pair;
    }
}

/// The first `k` of every row of `width` values.
fn first_columns<T: Copy>(values: &[T], width: usize, k: usize) -> Vec<T> {
    values
        .chunks_exact(width)
        .flat_map(|row| &row[..k])
        .copied()
        .collect()
}

/// The `k` smallest (distance, id) pairs seen so far, sorted.
struct TopK {
    k: usize,
    best: Vec<(f64, u32)>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    /// The distance a candidate must beat: the k-th best so far, or
    /// infinity while fewer than `k` were offered.
    fn bound(&self) -> f64 {
        if self.best.len() == self.k {
            self.best[self.k - 1].0
        } else {
            f64::INFINITY
        }
    }

    /// Offers a candidate. Ids must be offered in increasing order: a
    /// candidate that ties the current k-th distance then loses to it, which
    /// breaks ties by id.
    fn offer(&mut self, distance: f64, id: u32) {
        if self.best.len() == self.k {
            if distance >= self.best[self.k - 1].0 {
                return;
            }
            self.best.pop();
        }
        let at = self.best.partition_point(|&(d, _)| d <= distance);
        self.best.insert(at, (distance, id));
    }
}

/// Queries per work item: the block's queries stay in cache while every base
/// vector streams past them once.
const QUERY_BLOCK: usize = 16;

/// The exact `k` nearest neighbours of every query; see
/// [`exact_ground_truth_with_progress`].
pub fn exact_ground_truth(
    train: &Matrix,
    test: &Matrix,
    metric: Metric,
    k: usize,
) -> Result<GroundTruth> {
    exact_ground_truth_with_progress(train, test, metric, k, |_, _| {})
}

/// The exact `k` nearest neighbours of every query by brute force.
///
/// Distances come from [`exact_distance`](crate::exact_distance) (f64,
/// direct differences); ties are broken by the smaller id. Work is spread
/// over rayon's pool in blocks of queries; `progress(done, total)` is called
/// from the worker threads after each block (calls may arrive slightly out of
/// order). Fails when `k` is zero or larger than the number of base vectors,
/// or when the dimensions differ.
pub fn exact_ground_truth_with_progress(
    train: &Matrix,
    test: &Matrix,
    metric: Metric,
    k: usize,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<GroundTruth> {
    check_request(train, test, k)?;
    let total = test.len();
    let mut ids = vec![0u32; total * k];
    let mut distances = vec![0.0f64; total * k];
    let done = AtomicUsize::new(0);
    ids.par_chunks_mut(QUERY_BLOCK * k)
        .zip(distances.par_chunks_mut(QUERY_BLOCK * k))
        .enumerate()
        .for_each(|(block, (block_ids, block_distances))| {
            let first = block * QUERY_BLOCK;
            let queries: Vec<&[f32]> = (first..first + block_ids.len() / k)
                .map(|q| test.row(q))
                .collect();
            let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k)).collect();
            for (id, base) in train.rows().enumerate() {
                for (top, query) in tops.iter_mut().zip(&queries) {
                    if let Some(distance) = distance_within(metric, base, query, top.bound()) {
                        top.offer(distance, id as u32);
                    }
                }
            }
            let rows = block_ids.chunks_mut(k).zip(block_distances.chunks_mut(k));
            for (top, (row_ids, row_distances)) in tops.iter().zip(rows) {
                for ((slot_id, slot_distance), &(distance, id)) in row_ids
                    .iter_mut()
                    .zip(row_distances.iter_mut())
                    .zip(&top.best)
                {
                    *slot_id = id;
                    *slot_distance = distance;
                }
            }
            let now = done.fetch_add(queries.len(), Ordering::Relaxed) + queries.len();
            progress(now, total);
        });
    Ok(GroundTruth { k, ids, distances })
}

/// Fails unless `1 <= k <= train.len()`, the dimensions agree and every
/// base id fits in a `u32`.
fn check_request(train: &Matrix, test: &Matrix, k: usize) -> Result<()> {
    if train.dim() != test.dim() {
        return Err(DataError::Invalid(format!(
            "base vectors have dimension {} but queries have dimension {}",
            train.dim(),
            test.dim()
        )));
    }
    if k == 0 || k > train.len() {
        return Err(DataError::Invalid(format!(
            "k = {k} is not between 1 and the number of base vectors ({})",
            train.len()
        )));
    }
    if u32::try_from(train.len() - 1).is_err() {
        return Err(DataError::Invalid(format!(
            "{} base vectors do not fit 32-bit ids",
            train.len()
        )));
    }
    Ok(())
}

/// Identifies a cache file: format and version.
const CACHE_MAGIC: &[u8; 12] = b"ANNVIL-GT\0v1";

/// Exact ground truth for `dataset` at `k`, cached in `cache_dir`.
///
/// The cache file, `gt-<hash>-<metric>-k<k>.bin` with the first 32 hex
/// digits of [`Dataset::content_hash`], holds a header (format version,
/// metric, k, number of queries and of base vectors, the full content
/// digest), the ids (u32 LE), the distances (f64 LE) and a blake3 checksum
/// of all that. A file whose header, size or checksum does not match is
/// ignored and rewritten. This always returns the exact truth, even when the
/// dataset ships neighbours (see [`Dataset::resolve_ground_truth`]);
/// `progress` is only called while computing.
pub fn ground_truth_cached(
    dataset: &Dataset,
    k: usize,
    cache_dir: &Path,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<GroundTruth> {
    check_request(&dataset.train, &dataset.test, k)?;
    let digest = dataset.content_digest();
    let path = cache_path(cache_dir, &digest, dataset.metric, k);
    let header = cache_header(dataset, &digest, k);
    if let Some(truth) = fs::read(&path)
        .ok()
        .and_then(|bytes| decode_cache(&bytes, &header, dataset, k))
    {
        return Ok(truth);
    }
    fs::create_dir_all(cache_dir).map_err(|source| DataError::Write {
        path: cache_dir.to_path_buf(),
        source,
    })?;
    let truth = exact_ground_truth_with_progress(
        &dataset.train,
        &dataset.test,
        dataset.metric,
        k,
        progress,
    )?;
    write_cache(&path, &encode_cache(&header, &truth))?;
    Ok(truth)
}

/// Where the cache of (`digest`, `metric`, `k`) lives.
fn cache_path(cache_dir: &Path, digest: &blake3::Hash, metric: Metric, k: usize) -> PathBuf {
    let hex = digest.to_hex();
    cache_dir.join(format!("gt-{}-{}-k{k}.bin", &hex[..32], metric.name()))
}

/// The exact header a valid cache file for this request starts with.
fn cache_header(dataset: &Dataset, digest: &blake3::Hash, k: usize) -> Vec<u8> {
    let mut header = CACHE_MAGIC.to_vec();
    header.extend_from_slice(dataset.metric.name().as_bytes());
    header.push(0);
    for value in [k, dataset.test.len(), dataset.train.len()] {
        header.extend_from_slice(&(value as u64).to_le_bytes());
    }
    header.extend_from_slice(digest.as_bytes());
    header
}

/// Header, ids, distances, checksum.
fn encode_cache(header: &[u8], truth: &GroundTruth) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.reserve(truth.ids.len() * 12 + 32);
    bytes.extend(truth.ids.iter().flat_map(|id| id.to_le_bytes()));
    bytes.extend(truth.distances.iter().flat_map(|d| d.to_le_bytes()));
    let checksum = blake3::hash(&bytes);
    bytes.extend_from_slice(checksum.as_bytes());
    bytes
}

/// The ground truth in `bytes`, if they are a valid cache for `header`.
fn decode_cache(bytes: &[u8], header: &[u8], dataset: &Dataset, k: usize) -> Option<GroundTruth> {
    let cells = dataset.test.len() * k;
    if bytes.len() != header.len() + cells * 12 + 32 || !bytes.starts_with(header) {
        return None;
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != checksum {
        return None;
    }
    let (id_bytes, distance_bytes) = body[header.len()..].split_at(cells * 4);
    let ids: Vec<u32> = id_bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let distances = distance_bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let n = dataset.train.len();
    ids.iter()
        .all(|&id| (id as usize) < n)
        .then_some(GroundTruth { k, ids, distances })
}

/// Writes `bytes` to `path` whole or not at all.
fn write_cache(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |out| out.write_all(bytes)).map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// How shipped neighbours compare with the exact ones; see
/// [`verify_ground_truth`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroundTruthCheck {
    /// Queries compared.
    pub queries: usize,
    /// Neighbours compared per query.
    pub k: usize,
    /// Queries whose shipped top-k id set differs from the exact one.
    pub disagreeing: usize,
    /// Of those, the queries whose shipped distances equal the exact ones
    /// rank by rank: the sets differ only in which tied points were chosen,
    /// and tie-aware recall is unaffected.
    pub ties: usize,
    /// The first query whose difference is not explained by ties.
    pub first_wrong: Option<usize>,
}

impl GroundTruthCheck {
    /// Queries whose shipped neighbours are really wrong (not ties).
    pub fn wrong(&self) -> usize {
        self.disagreeing - self.ties
    }
}

/// Compares the first `k` columns of `shipped` (ids from a file, distances
/// recomputed as in [`Dataset::with_shipped_neighbors`]) with `exact` (from
/// [`ground_truth_cached`] or [`exact_ground_truth`]). ann-benchmarks files
/// can list a different one of several tied points, which is counted
/// separately from real errors. Fails when either holds fewer than `k`
/// columns or they cover different numbers of queries.
pub fn verify_ground_truth(
    shipped: &GroundTruth,
    exact: &GroundTruth,
    k: usize,
) -> Result<GroundTruthCheck> {
    if k == 0 || k > shipped.k || k > exact.k || shipped.queries() != exact.queries() {
        return Err(DataError::Invalid(format!(
            "cannot compare {} shipped rows of {} with {} exact rows of {} at k = {k}",
            shipped.queries(),
            shipped.k,
            exact.queries(),
            exact.k
        )));
    }
    let mut check = GroundTruthCheck {
        queries: shipped.queries(),
        k,
        disagreeing: 0,
        ties: 0,
        first_wrong: None,
    };
    for query in 0..check.queries {
        let (given, truth) = (shipped.row(query), exact.row(query));
        let mut given_ids = given.ids[..k].to_vec();
        let mut true_ids = truth.ids[..k].to_vec();
        given_ids.sort_unstable();
        true_ids.sort_unstable();
        if given_ids == true_ids {
            continue;
        }
        check.disagreeing += 1;
        if given.distances[..k] == truth.distances[..k] {
            check.ties += 1;
        } else if check.first_wrong.is_none() {
            check.first_wrong = Some(query);
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_breaks_ties_by_id() {
        let mut top = TopK::new(2);
        for (id, distance) in [3.0, 1.0, 1.0, 0.5, 1.0].into_iter().enumerate() {
            top.offer(distance, id as u32);
        }
        assert_eq!(top.best, vec![(0.5, 3), (1.0, 1)]);
    }
}
