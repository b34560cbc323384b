//! Dataset sources for the annvil host, over annvil-dataset.
//!
//! [`DatasetSpec`] parses what the command line names (the built-in
//! synthetic generator, Fashion-MNIST from Debian's package, an
//! ann-benchmarks HDF5 file, or TEXMEX `.fvecs`/`.bvecs`/`.ivecs` files)
//! and [`DatasetSpec::load`] reads it into a validated [`Dataset`]
//! (finite values, equal dimensions, angular data unit-normalised).
//!
//! Everything else a dataset is used for lives in annvil-dataset
//! (modules/dataset) and is re-exported here, so the host names one crate:
//! [`exact_ground_truth`] and [`ground_truth_cached`] compute the true
//! neighbours by brute force in f64, [`verify_ground_truth`] checks
//! neighbours shipped with a file against them, and [`score_query`] and
//! [`recall`] score a variant's returned ids the way ann-benchmarks does
//! (tie-aware, with an epsilon), recomputing every distance on the host:
//! nothing a variant reports is trusted. The modules' tests use
//! annvil-dataset directly, so no module depends on the host.
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

mod fashion;
mod hdf5;
mod spec;
mod texmex;

pub use annvil_dataset::{
    ANN_BENCHMARKS_EPSILON, DataError, Dataset, GroundTruth, GroundTruthCheck, InvalidResult,
    Matrix, Metric, QueryScore, Recall, Result, SyntheticSpec, TruthRow, exact_distance,
    exact_ground_truth, exact_ground_truth_with_progress, ground_truth_cached, hit_threshold,
    recall, score_query, verify_ground_truth, write_atomically,
};
pub use spec::{DatasetSpec, FASHION_MNIST_DIR, TexmexSpec};
