//! Datasets in memory, exact ground truth and recall scoring: what the
//! host and the modules' tests judge answers against.
//!
//! * [`Dataset::new`] validates base and query vectors (finite values,
//!   equal dimensions, angular data unit-normalised); [`SyntheticSpec`]
//!   generates a clustered Gaussian dataset, bit-identical on every
//!   machine. Reading datasets from files is annvil-data's (host/data).
//! * [`exact_ground_truth`] and [`ground_truth_cached`] compute the true
//!   neighbours by brute force in f64; [`verify_ground_truth`] checks
//!   neighbours shipped with a file against them.
//! * [`score_query`] and [`recall`] score returned ids the way
//!   ann-benchmarks does (tie-aware, with an epsilon), recomputing every
//!   distance: nothing a variant reports is trusted.
//!
//! All distances follow the ABI's convention, smaller is closer: squared
//! Euclidean for [`Metric::L2`], `1 - <x, q>` on unit vectors for
//! [`Metric::Angular`], `-<x, q>` for [`Metric::InnerProduct`].
//!
//! ```
//! use annvil_dataset::{SyntheticSpec, exact_ground_truth, recall, ANN_BENCHMARKS_EPSILON};
//!
//! let data = SyntheticSpec::parse_keys("n=300,queries=4,dim=8,metric=angular")?.generate()?;
//! let truth = exact_ground_truth(&data.train, &data.test, data.metric, 10)?;
//! // What a worker would return: here the true ids themselves.
//! let results: Vec<&[u32]> = (0..data.test.len()).map(|q| truth.row(q).ids).collect();
//! let run = recall(&data.train, &data.test, data.metric, &results, &truth, 10,
//!                  ANN_BENCHMARKS_EPSILON)?;
//! assert_eq!((run.mean, run.invalid), (1.0, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod atomic;
mod dataset;
mod distance;
mod error;
mod matrix;
mod score;
mod synthetic;
mod truth;

pub use annvil_abi::Metric;
pub use atomic::write_atomically;
pub use dataset::Dataset;
pub use distance::exact_distance;
pub use error::{DataError, Result};
pub use matrix::Matrix;
pub use score::{
    ANN_BENCHMARKS_EPSILON, InvalidResult, QueryScore, Recall, hit_threshold, recall, score_query,
};
pub use synthetic::SyntheticSpec;
pub use truth::{
    GroundTruth, GroundTruthCheck, TruthRow, exact_ground_truth, exact_ground_truth_with_progress,
    ground_truth_cached, verify_ground_truth,
};
