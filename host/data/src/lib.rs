//! Datasets, exact ground truth and recall scoring for the annvil host.
//!
//! * [`DatasetSpec`] parses what the command line names (the built-in
//!   synthetic generator, Fashion-MNIST from Debian's package, an
//!   ann-benchmarks HDF5 file, or TEXMEX `.fvecs`/`.bvecs`/`.ivecs` files)
//!   and [`DatasetSpec::load`] turns it into a validated [`Dataset`]
//!   (finite values, equal dimensions, angular data unit-normalised).
//! * [`exact_ground_truth`] and [`ground_truth_cached`] compute the true
//!   neighbours by brute force in f64; [`verify_ground_truth`] checks
//!   neighbours shipped with a file against them.
//! * [`score_query`] and [`recall`] score a variant's returned ids the way
//!   ann-benchmarks does (tie-aware, with an epsilon), recomputing every
//!   distance on the host: nothing a variant reports is trusted.
//!
//! All distances follow the ABI's convention, smaller is closer: squared
//! Euclidean for [`Metric::L2`], `1 - <x, q>` on unit vectors for
//! [`Metric::Angular`], `-<x, q>` for [`Metric::InnerProduct`].
//!
//! ```
//! use annvil_data::{DatasetSpec, exact_ground_truth, recall, ANN_BENCHMARKS_EPSILON};
//!
//! let spec: DatasetSpec = "synthetic:n=300,queries=4,dim=8,metric=angular".parse()?;
//! let data = spec.load()?;
//! let truth = exact_ground_truth(&data.train, &data.test, data.metric, 10)?;
//! // What a worker would return: here the true ids themselves.
//! let results: Vec<&[u32]> = (0..data.test.len()).map(|q| truth.row(q).ids).collect();
//! let run = recall(&data.train, &data.test, data.metric, &results, &truth, 10,
//!                  ANN_BENCHMARKS_EPSILON)?;
//! assert_eq!((run.mean, run.invalid), (1.0, 0));
//! # Ok::<(), annvil_data::DataError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod atomic;
mod dataset;
mod distance;
mod error;
mod fashion;
mod hdf5;
mod matrix;
mod score;
mod spec;
mod synthetic;
mod texmex;
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
pub use spec::{DatasetSpec, FASHION_MNIST_DIR, TexmexSpec};
pub use synthetic::SyntheticSpec;
pub use truth::{
    GroundTruth, GroundTruthCheck, TruthRow, exact_ground_truth, exact_ground_truth_with_progress,
    ground_truth_cached, verify_ground_truth,
};
