//! A loaded, validated dataset.

use std::fmt;
use std::path::Path;

use annvil_abi::Metric;

use crate::distance::squared_norm;
use crate::error::{DataError, Result};
use crate::matrix::Matrix;
use crate::truth::{GroundTruth, ground_truth_cached};

/// Base vectors, query vectors and (optionally) shipped ground truth, ready
/// for evaluation.
///
/// Every loader goes through [`Dataset::new`], which guarantees: base and
/// queries are non-empty and of the same dimension, every value is finite,
/// and for [`Metric::Angular`] every vector is unit-normalised (so the ABI's
/// `1 - <x, q>` is the cosine distance). Code that edits the public fields
/// afterwards must keep these invariants.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Short name, ann-benchmarks style (`fashion-mnist-784-euclidean`).
    pub name: String,
    /// The metric the dataset is evaluated under.
    pub metric: Metric,
    /// Base vectors (ann-benchmarks' `train`).
    pub train: Matrix,
    /// Query vectors (ann-benchmarks' `test`).
    pub test: Matrix,
    /// Neighbours shipped with the data (HDF5 `neighbors`, TEXMEX
    /// `.ivecs`), with distances recomputed exactly; see
    /// [`Dataset::with_shipped_neighbors`].
    pub ground_truth: Option<GroundTruth>,
    /// Where the data came from: the canonical spec string.
    pub source: String,
}

impl Dataset {
    /// Validates and prepares vectors for `metric`.
    ///
    /// Fails when either matrix is empty, when their dimensions differ, when
    /// a value is NaN or infinite (the error names the matrix and row), or,
    /// for [`Metric::Angular`], when a vector is zero. Angular datasets are
    /// unit-normalised here, base and queries alike (norms in f64), before
    /// anything else sees them.
    pub fn new(
        name: impl Into<String>,
        metric: Metric,
        mut train: Matrix,
        mut test: Matrix,
        source: impl Into<String>,
    ) -> Result<Dataset> {
        let source = source.into();
        for (matrix, label) in [(&train, "train"), (&test, "test")] {
            if matrix.is_empty() {
                return Err(DataError::Invalid(format!(
                    "{source}: the {label} set holds no vectors"
                )));
            }
        }
        if train.dim() != test.dim() {
            return Err(DataError::DimensionMismatch {
                dataset: source,
                train_dim: train.dim(),
                test_dim: test.dim(),
            });
        }
        for (matrix, label) in [(&mut train, "train"), (&mut test, "test")] {
            check_finite(matrix, &source, label)?;
            if metric == Metric::Angular {
                normalise(matrix, &source, label)?;
            }
        }
        Ok(Dataset {
            name: name.into(),
            metric,
            train,
            test,
            ground_truth: None,
            source,
        })
    }

    /// Attaches neighbour ids shipped with the data: `ids` holds `k` ids per
    /// query, row-major. Their distances are recomputed exactly in f64 (the
    /// file's rounded distances are never used) and each row is re-sorted by
    /// (distance, id). Fails when an id is out of range or repeated in a row.
    pub fn with_shipped_neighbors(mut self, ids: Vec<u32>, k: usize) -> Result<Dataset> {
        let truth = GroundTruth::from_neighbor_ids(&self.train, &self.test, self.metric, ids, k)
            .map_err(|problem| DataError::BadGroundTruth {
                dataset: self.source.clone(),
                problem,
            })?;
        self.ground_truth = Some(truth);
        Ok(self)
    }

    /// The same dataset with only its first `n` queries (and their shipped
    /// neighbours); the name gains `-q{n}`. Nothing changes when `n` is at
    /// least the number of queries.
    pub fn first_queries(mut self, n: usize) -> Result<Dataset> {
        if n >= self.test.len() {
            return Ok(self);
        }
        let dim = self.test.dim();
        let mut data =
            std::mem::replace(&mut self.test, Matrix::new(vec![0.0; dim], dim)?).into_vec();
        data.truncate(n * dim);
        self.test = Matrix::new(data, dim)?;
        if let Some(truth) = &mut self.ground_truth {
            truth.ids.truncate(n * truth.k);
            truth.distances.truncate(n * truth.k);
        }
        self.name = format!("{}-q{n}", self.name);
        Ok(self)
    }

    /// The shipped ground truth cut to its first `k` columns, when the data
    /// ships at least `k` neighbours per query.
    pub fn shipped_ground_truth(&self, k: usize) -> Option<GroundTruth> {
        self.ground_truth.as_ref()?.truncated(k)
    }

    /// The ground truth an evaluation at `k` uses: the shipped one when it
    /// holds at least `k` neighbours per query (as ann-benchmarks does),
    /// otherwise the exact one from [`ground_truth_cached`]. `progress` is
    /// only called while computing.
    pub fn resolve_ground_truth(
        &self,
        k: usize,
        cache_dir: &Path,
        progress: impl Fn(usize, usize) + Sync,
    ) -> Result<GroundTruth> {
        match self.shipped_ground_truth(k) {
            Some(truth) => Ok(truth),
            None => ground_truth_cached(self, k, cache_dir, progress),
        }
    }

    /// A blake3 hex digest of the metric, the shapes and the (prepared)
    /// vector bytes in little-endian order: stable across runs and machines,
    /// independent of the name and the source. Ground-truth caches are keyed
    /// by it.
    pub fn content_hash(&self) -> String {
        self.content_digest().to_hex().to_string()
    }

    /// The raw digest behind [`Dataset::content_hash`].
    pub(crate) fn content_digest(&self) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"annvil-dataset-v1\0");
        hasher.update(self.metric.name().as_bytes());
        hasher.update(b"\0");
        for matrix in [&self.train, &self.test] {
            hasher.update(&(matrix.len() as u64).to_le_bytes());
            hasher.update(&(matrix.dim() as u64).to_le_bytes());
        }
        let mut buffer = Vec::with_capacity(4 * 4096);
        for matrix in [&self.train, &self.test] {
            for block in matrix.as_slice().chunks(4096) {
                buffer.clear();
                buffer.extend(block.iter().flat_map(|x| x.to_le_bytes()));
                hasher.update(&buffer);
            }
        }
        hasher.finalize()
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} base and {} query vectors of dimension {}, metric {}",
            self.name,
            self.train.len(),
            self.test.len(),
            self.train.dim(),
            self.metric
        )
    }
}

/// Fails on the first NaN or infinity, naming its row and column.
fn check_finite(matrix: &Matrix, source: &str, label: &'static str) -> Result<()> {
    for (row, values) in matrix.rows().enumerate() {
        if let Some(column) = values.iter().position(|x| !x.is_finite()) {
            return Err(DataError::NonFinite {
                dataset: source.to_string(),
                matrix: label,
                row,
                column,
                value: values[column],
            });
        }
    }
    Ok(())
}

/// Scales every row to unit length; fails on a zero row.
fn normalise(matrix: &mut Matrix, source: &str, label: &'static str) -> Result<()> {
    for (row, values) in matrix.rows_mut().enumerate() {
        let norm = squared_norm(values).sqrt();
        if norm == 0.0 {
            return Err(DataError::ZeroVector {
                dataset: source.to_string(),
                matrix: label,
                row,
            });
        }
        for x in values {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
    Ok(())
}
