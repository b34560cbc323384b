//! Tie-aware recall@k, computed by the coordinator from returned ids alone.

use std::fmt;

use annvil_abi::Metric;
use rayon::prelude::*;
use serde::Serialize;

use crate::distance::distance_within;
use crate::error::{DataError, Result};
use crate::matrix::Matrix;
use crate::truth::{GroundTruth, TruthRow};

/// The epsilon ann-benchmarks uses for k-NN recall: `1e-3` on the distance
/// it reports (the non-squared Euclidean distance, or `1 - cos`).
pub const ANN_BENCHMARKS_EPSILON: f64 = 1e-3;

/// Why one query's result cannot be scored: the variant broke the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InvalidResult {
    /// The same id was returned twice.
    DuplicateId {
        /// The repeated id.
        id: u32,
    },
    /// An id is not a base vector.
    IdOutOfRange {
        /// The offending id.
        id: u32,
        /// Number of base vectors.
        base_len: usize,
    },
    /// More ids than the `k` asked for.
    TooManyIds {
        /// Ids returned.
        returned: usize,
        /// Ids asked for.
        k: usize,
    },
}

impl fmt::Display for InvalidResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidResult::DuplicateId { id } => write!(f, "id {id} returned twice"),
            InvalidResult::IdOutOfRange { id, base_len } => {
                write!(f, "id {id} is out of range ({base_len} base vectors)")
            }
            InvalidResult::TooManyIds { returned, k } => {
                write!(f, "{returned} ids returned for k = {k}")
            }
        }
    }
}

/// The outcome of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum QueryScore {
    /// A valid result with this many of its ids within the threshold.
    Hits(usize),
    /// A result that breaks the contract; it is not a miss but an error.
    Invalid(InvalidResult),
}

/// The largest exact distance (ABI convention) that still counts as a hit
/// when the k-th true distance is `kth`.
///
/// ann-benchmarks counts a returned point when its distance is at most the
/// k-th true distance plus `epsilon`, on the distance it reports. For
/// [`Metric::L2`] that is the non-squared Euclidean distance while the ABI
/// uses squared ones, so the threshold is `(sqrt(kth) + epsilon)²`; for
/// [`Metric::Angular`] (`1 - cos` in both) and [`Metric::InnerProduct`] it
/// is `kth + epsilon`. With `epsilon = 0` only points at most as far as the
/// k-th neighbour count, which still credits every tied point.
pub fn hit_threshold(metric: Metric, kth: f64, epsilon: f64) -> f64 {
    match metric {
        Metric::L2 => (kth.max(0.0).sqrt() + epsilon).powi(2),
        Metric::Angular | Metric::InnerProduct => kth + epsilon,
    }
}

/// Scores one query's returned ids against its true neighbours, the way
/// ann-benchmarks does but without trusting anything the variant computed.
///
/// The result is [`QueryScore::Invalid`] when more than `k` ids are
/// returned, when an id is not below `train.len()`, or when an id repeats.
/// Otherwise every id's distance to `query` is recomputed exactly
/// ([`exact_distance`](crate::exact_distance)) and it is a hit when within
/// [`hit_threshold`] of the k-th true distance (so tied points count);
/// fewer than `k` ids simply score fewer hits. `epsilon` must be `>= 0`
/// ([`ANN_BENCHMARKS_EPSILON`] matches ann-benchmarks).
///
/// Panics when `k` is zero or exceeds the row's length, or when `query` and
/// `train` differ in dimension; [`recall`] checks these first.
pub fn score_query(
    train: &Matrix,
    metric: Metric,
    query: &[f32],
    returned: &[u32],
    truth: TruthRow<'_>,
    k: usize,
    epsilon: f64,
) -> QueryScore {
    assert!(
        (1..=truth.distances.len()).contains(&k),
        "k = {k} outside the ground truth's 1..={}",
        truth.distances.len()
    );
    if returned.len() > k {
        return QueryScore::Invalid(InvalidResult::TooManyIds {
            returned: returned.len(),
            k,
        });
    }
    if let Some(&id) = returned.iter().find(|&&id| id as usize >= train.len()) {
        return QueryScore::Invalid(InvalidResult::IdOutOfRange {
            id,
            base_len: train.len(),
        });
    }
    let mut sorted = returned.to_vec();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return QueryScore::Invalid(InvalidResult::DuplicateId { id: pair[0] });
    }
    let threshold = hit_threshold(metric, truth.distances[k - 1], epsilon);
    let hits = returned
        .iter()
        .filter(|&&id| distance_within(metric, train.row(id as usize), query, threshold).is_some())
        .count();
    QueryScore::Hits(hits)
}

/// Recall@k over a whole run; see [`recall`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recall {
    /// Neighbours asked for per query.
    pub k: usize,
    /// Queries scored.
    pub queries: usize,
    /// Hits over all valid queries.
    pub hits: usize,
    /// `hits / (queries × k)`: the mean per-query recall, with invalid
    /// queries counting zero. A run with `invalid > 0` is broken whatever
    /// this says.
    pub mean: f64,
    /// Queries whose result is invalid.
    pub invalid: usize,
    /// The first invalid query and why.
    pub first_invalid: Option<(usize, InvalidResult)>,
}

/// Scores every query of a run (`results[q]` holds the ids returned for
/// query `q`) with [`score_query`], in parallel.
///
/// Fails when `results` and `truth` do not cover every query of `test`,
/// when `k` is zero or larger than `truth.k`, or when `train` and `test`
/// differ in dimension.
pub fn recall<R: AsRef<[u32]> + Sync>(
    train: &Matrix,
    test: &Matrix,
    metric: Metric,
    results: &[R],
    truth: &GroundTruth,
    k: usize,
    epsilon: f64,
) -> Result<Recall> {
    if results.len() != test.len() || truth.queries() != test.len() {
        return Err(DataError::Invalid(format!(
            "cannot score {} results against {} ground-truth rows for {} queries",
            results.len(),
            truth.queries(),
            test.len()
        )));
    }
    if k == 0 || k > truth.k || train.dim() != test.dim() {
        return Err(DataError::Invalid(format!(
            "cannot score recall@{k} with {}-NN ground truth on base dimension {} and query \
             dimension {}",
            truth.k,
            train.dim(),
            test.dim()
        )));
    }
    let scores: Vec<QueryScore> = results
        .par_iter()
        .enumerate()
        .map(|(q, ids)| {
            score_query(
                train,
                metric,
                test.row(q),
                ids.as_ref(),
                truth.row(q),
                k,
                epsilon,
            )
        })
        .collect();
    let mut summary = Recall {
        k,
        queries: scores.len(),
        hits: 0,
        mean: 0.0,
        invalid: 0,
        first_invalid: None,
    };
    for (query, score) in scores.into_iter().enumerate() {
        match score {
            QueryScore::Hits(hits) => summary.hits += hits,
            QueryScore::Invalid(reason) => {
                summary.invalid += 1;
                summary.first_invalid.get_or_insert((query, reason));
            }
        }
    }
    summary.mean = summary.hits as f64 / (summary.queries * k) as f64;
    Ok(summary)
}
