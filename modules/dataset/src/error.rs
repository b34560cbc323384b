//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Why a dataset could not be parsed, loaded, validated or scored.
///
/// Every message names the file (or the dataset source) and the problem, and
/// says how to fix it where the fix is obvious.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error (part of the message, so not also
        /// reported as a separate cause).
        error: io::Error,
    },

    /// A cache file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        source: io::Error,
    },

    /// A file holds no data at all.
    #[error("{} is empty", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// A file ends in the middle of a record.
    #[error("{} is truncated: {what}; the file is incomplete (re-download or regenerate it)", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Which record is cut short and by how much.
        what: String,
    },

    /// A `.fvecs`/`.bvecs`/`.ivecs` vector has a different dimension from
    /// the first vector of the same file.
    #[error(
        "{}: vector {index} has dimension {found}, but vector 0 has dimension {expected}; \
         every vector of a TEXMEX file must have the same dimension",
        path.display()
    )]
    InconsistentDimension {
        /// The file.
        path: PathBuf,
        /// Zero-based index of the offending vector.
        index: usize,
        /// The dimension of vector 0.
        expected: usize,
        /// The dimension of the offending vector.
        found: usize,
    },

    /// Base and query vectors have different dimensions.
    #[error(
        "{dataset}: the base vectors have dimension {train_dim} but the queries have dimension \
         {test_dim}; base and queries must come from the same dataset"
    )]
    DimensionMismatch {
        /// Where the dataset comes from (its source string).
        dataset: String,
        /// Base dimension.
        train_dim: usize,
        /// Query dimension.
        test_dim: usize,
    },

    /// A file's content does not follow its format (bad magic number, bad
    /// header, wrong shape or type, ...).
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A vector holds NaN or an infinity.
    #[error(
        "{dataset}: {matrix} row {row} holds a non-finite value ({value}) at column {column}; \
         remove or repair that vector"
    )]
    NonFinite {
        /// Where the dataset comes from (its source string).
        dataset: String,
        /// `train` or `test`.
        matrix: &'static str,
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        column: usize,
        /// The value found.
        value: f32,
    },

    /// A zero vector in an angular dataset, which has no direction.
    #[error(
        "{dataset}: {matrix} row {row} is a zero vector, which has no direction under the \
         angular metric; remove it or use the euclidean metric"
    )]
    ZeroVector {
        /// Where the dataset comes from (its source string).
        dataset: String,
        /// `train` or `test`.
        matrix: &'static str,
        /// Zero-based row.
        row: usize,
    },

    /// An ann-benchmarks HDF5 file without the root attribute `distance`.
    #[error(
        "{}: the root attribute `distance` is missing; ann-benchmarks files set it to \
         \"euclidean\" or \"angular\" (with h5py: f.attrs[\"distance\"] = \"euclidean\")",
        path.display()
    )]
    MissingDistance {
        /// The file.
        path: PathBuf,
    },

    /// The root attribute `distance` is not a string.
    #[error(
        "{}: the root attribute `distance` is not a string ({problem}); set it to \
         \"euclidean\", \"angular\" or \"dot\"",
        path.display()
    )]
    BadDistance {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        problem: String,
    },

    /// The root attribute `distance` names a metric annvil does not support.
    #[error(
        "{}: unsupported distance \"{value}\"; annvil supports \"euclidean\", \"angular\" and \
         \"dot\"/\"ip\" (set-similarity datasets such as hamming or jaccard are not supported)",
        path.display()
    )]
    UnsupportedDistance {
        /// The file.
        path: PathBuf,
        /// The attribute's value.
        value: String,
    },

    /// An ann-benchmarks HDF5 file lacks a required dataset.
    #[error(
        "{}: missing dataset `{name}` (ann-benchmarks files hold `train` and `test`, and \
         optionally `neighbors` and `distances`); found: {found}",
        path.display()
    )]
    MissingDataset {
        /// The file.
        path: PathBuf,
        /// The dataset that is missing.
        name: &'static str,
        /// The datasets the file does hold, comma-separated.
        found: String,
    },

    /// The HDF5 reader could not decode a file.
    #[error("{}: cannot read it as HDF5: {message}", path.display())]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },

    /// A Fashion-MNIST file of the Debian package is missing.
    #[error(
        "Fashion-MNIST is not installed: {} is missing; install it with `scripts/setup` \
         (which runs `apt-get install dataset-fashion-mnist`)",
        path.display()
    )]
    FashionMnistMissing {
        /// The missing file.
        path: PathBuf,
    },

    /// Shipped ground truth that cannot be right for the vectors.
    #[error("{dataset}: bad ground truth: {problem}")]
    BadGroundTruth {
        /// Where the dataset comes from (its source string).
        dataset: String,
        /// What is wrong.
        problem: String,
    },

    /// A dataset spec string that does not parse.
    #[error("invalid dataset spec `{spec}`: {problem}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong, and the expected grammar.
        problem: String,
    },

    /// A request that the data cannot satisfy (k larger than the base set,
    /// results for a different number of queries, ...).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// An [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: io::Error) -> DataError {
        DataError::Io {
            path: path.into(),
            error,
        }
    }

    /// A [`DataError::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
