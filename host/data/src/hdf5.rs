//! ann-benchmarks HDF5 files, read with the pure-Rust `hdf5-reader` crate
//! (no libhdf5).
//!
//! The layout is the one ann-benchmarks writes with h5py: root attribute
//! `distance` (`"euclidean"`, `"angular"`; `"dot"`/`"ip"` are accepted too),
//! 2-D datasets `train` (base vectors), `test` (queries), and optionally
//! `neighbors` (ids, i32) and `distances` (f32, non-squared Euclidean or
//! `1 - cos`). Any numeric element type, contiguous or chunked storage, and
//! the standard filters (gzip, shuffle, fletcher32) are read.

use std::fs;
use std::path::Path;

use annvil_abi::Metric;
use hdf5_reader::group::Group;
use hdf5_reader::{Datatype, H5Type, Hdf5File};

use annvil_dataset::{DataError, Dataset, Matrix, Result};

/// How far a distance stored in the file may stray from the exact one
/// (relative, or absolute below 1) before the file is called inconsistent.
const DISTANCE_TOLERANCE: f64 = 1e-3;

/// Loads an ann-benchmarks HDF5 file; shipped `neighbors` become
/// [`Dataset::ground_truth`] with exactly recomputed distances, and shipped
/// `distances` are checked against those.
pub(crate) fn load(path: &Path, source: String) -> Result<Dataset> {
    let size = fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    if size == 0 {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    let fail = |e: hdf5_reader::error::Error| DataError::Hdf5 {
        path: path.into(),
        message: e.to_string(),
    };
    let file = Hdf5File::open(path).map_err(fail)?;
    let root = file.root_group().map_err(fail)?;
    let metric = read_metric(path, &root)?;
    let (_, names) = root.member_names().map_err(fail)?;
    let open = |name: &'static str| -> Result<Option<hdf5_reader::Dataset>> {
        if names.iter().any(|n| n == name) {
            Ok(Some(root.dataset(name).map_err(fail)?))
        } else {
            Ok(None)
        }
    };
    let require = |name: &'static str| {
        open(name)?.ok_or_else(|| DataError::MissingDataset {
            path: path.into(),
            name,
            found: if names.is_empty() {
                "nothing".into()
            } else {
                names.join(", ")
            },
        })
    };
    let train = read_matrix(path, "train", &require("train")?)?;
    let test = read_matrix(path, "test", &require("test")?)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dataset = Dataset::new(name, metric, train, test, source)?;
    let Some(neighbors) = open("neighbors")? else {
        return Ok(dataset);
    };
    let (ids, k) = read_neighbor_ids(path, &neighbors, dataset.test.len())?;
    let dataset = dataset.with_shipped_neighbors(ids, k)?;
    if let Some(distances) = open("distances")? {
        check_distances(path, &distances, &dataset)?;
    }
    Ok(dataset)
}

/// The metric named by the root attribute `distance`.
fn read_metric(path: &Path, root: &Group) -> Result<Metric> {
    let attributes = root.attributes().map_err(|e| DataError::Hdf5 {
        path: path.into(),
        message: e.to_string(),
    })?;
    let attribute = attributes
        .iter()
        .find(|a| a.name == "distance")
        .ok_or_else(|| DataError::MissingDistance { path: path.into() })?;
    let value = attribute
        .read_string()
        .map_err(|e| DataError::BadDistance {
            path: path.into(),
            problem: e.to_string(),
        })?;
    value
        .trim()
        .parse()
        .map_err(|_| DataError::UnsupportedDistance {
            path: path.into(),
            value,
        })
}

/// `(rows, columns)` of a 2-D dataset.
fn shape_2d(path: &Path, name: &str, dataset: &hdf5_reader::Dataset) -> Result<(usize, usize)> {
    match *dataset.shape() {
        [rows, columns] => Ok((rows as usize, columns as usize)),
        ref shape => Err(DataError::format(
            path,
            format!("dataset `{name}` has shape {shape:?}; expected a 2-D array (rows × columns)"),
        )),
    }
}

/// A 2-D numeric dataset as f32 vectors.
fn read_matrix(path: &Path, name: &str, dataset: &hdf5_reader::Dataset) -> Result<Matrix> {
    let (_, dim) = shape_2d(path, name, dataset)?;
    let values = match dataset.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => read_typed::<f32>(path, name, dataset)?,
        _ => read_numbers(path, name, dataset)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
    };
    Matrix::new(values, dim).map_err(|_| {
        DataError::format(path, format!("dataset `{name}` has vectors of dimension 0"))
    })
}

/// Every element of a dataset as `T`, which must be its exact type.
fn read_typed<T: H5Type + Copy + Default>(
    path: &Path,
    name: &str,
    dataset: &hdf5_reader::Dataset,
) -> Result<Vec<T>> {
    let fail = |message: String| DataError::Hdf5 {
        path: path.into(),
        message: format!("dataset `{name}`: {message}"),
    };
    let count = dataset.num_elements().map_err(|e| fail(e.to_string()))?;
    let count = usize::try_from(count).map_err(|e| fail(e.to_string()))?;
    let mut values = Vec::new();
    values
        .try_reserve_exact(count)
        .map_err(|_| fail(format!("{count} elements do not fit in memory")))?;
    values.resize(count, T::default());
    dataset
        .read_into(&mut values)
        .map_err(|e| fail(e.to_string()))?;
    Ok(values)
}

/// Every element of a numeric dataset (any integer or float type) as f64.
fn read_numbers(path: &Path, name: &str, dataset: &hdf5_reader::Dataset) -> Result<Vec<f64>> {
    fn widen<T: H5Type + Copy + Default>(
        path: &Path,
        name: &str,
        dataset: &hdf5_reader::Dataset,
        to_f64: fn(T) -> f64,
    ) -> Result<Vec<f64>> {
        Ok(read_typed::<T>(path, name, dataset)?
            .into_iter()
            .map(to_f64)
            .collect())
    }
    match *dataset.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => widen::<f32>(path, name, dataset, f64::from),
        Datatype::FloatingPoint { size: 8, .. } => read_typed::<f64>(path, name, dataset),
        Datatype::FixedPoint { size, signed, .. } => match (size, signed) {
            (1, true) => widen::<i8>(path, name, dataset, f64::from),
            (1, false) => widen::<u8>(path, name, dataset, f64::from),
            (2, true) => widen::<i16>(path, name, dataset, f64::from),
            (2, false) => widen::<u16>(path, name, dataset, f64::from),
            (4, true) => widen::<i32>(path, name, dataset, f64::from),
            (4, false) => widen::<u32>(path, name, dataset, f64::from),
            (8, true) => widen::<i64>(path, name, dataset, |x| x as f64),
            (8, false) => widen::<u64>(path, name, dataset, |x| x as f64),
            _ => Err(unsupported_type(path, name, dataset.dtype())),
        },
        ref other => Err(unsupported_type(path, name, other)),
    }
}

/// The error for a dataset whose elements are not numbers annvil reads.
fn unsupported_type(path: &Path, name: &str, dtype: &Datatype) -> DataError {
    DataError::format(
        path,
        format!("dataset `{name}` has element type {dtype:?}; expected integers or IEEE floats"),
    )
}

/// The `neighbors` dataset as ids, with its number of columns.
fn read_neighbor_ids(
    path: &Path,
    dataset: &hdf5_reader::Dataset,
    queries: usize,
) -> Result<(Vec<u32>, usize)> {
    let (rows, k) = shape_2d(path, "neighbors", dataset)?;
    if rows != queries || k == 0 {
        return Err(DataError::format(
            path,
            format!("dataset `neighbors` is {rows}×{k} but there are {queries} test queries"),
        ));
    }
    let ids = read_numbers(path, "neighbors", dataset)?
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            if id >= 0.0 && id <= f64::from(u32::MAX) && id.fract() == 0.0 {
                Ok(id as u32)
            } else {
                Err(DataError::format(
                    path,
                    format!(
                        "dataset `neighbors`, query {}, rank {}: {id} is not a vector id",
                        i / k,
                        i % k
                    ),
                ))
            }
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok((ids, k))
}

/// Fails when the file's `distances` disagree with the exact distances of
/// its `neighbors` (rank by rank, both sorted), which means the `distance`
/// attribute does not describe how the file was made. Skipped for inner
/// product, whose sign convention in files varies.
fn check_distances(path: &Path, dataset: &hdf5_reader::Dataset, data: &Dataset) -> Result<()> {
    let truth = data.ground_truth.as_ref().expect("neighbors were loaded");
    let to_abi: fn(f64) -> f64 = match data.metric {
        Metric::L2 => |d| d * d,
        Metric::Angular => |d| d,
        Metric::InnerProduct => return Ok(()),
    };
    let (rows, columns) = shape_2d(path, "distances", dataset)?;
    if (rows, columns) != (truth.queries(), truth.k) {
        return Err(DataError::format(
            path,
            format!(
                "dataset `distances` is {rows}×{columns} but `neighbors` is {}×{}",
                truth.queries(),
                truth.k
            ),
        ));
    }
    let stored = read_numbers(path, "distances", dataset)?;
    for (query, row) in stored.chunks_exact(columns).enumerate() {
        let mut row: Vec<f64> = row.iter().map(|&d| to_abi(d)).collect();
        row.sort_by(f64::total_cmp);
        let exact = truth.row(query).distances;
        if let Some(rank) = (0..columns)
            .find(|&r| (row[r] - exact[r]).abs() > DISTANCE_TOLERANCE * exact[r].abs().max(1.0))
        {
            return Err(DataError::BadGroundTruth {
                dataset: data.source.clone(),
                problem: format!(
                    "query {query}, rank {rank}: the file's distance ({} in annvil's {} \
                     convention) differs from the exact distance {} of its neighbour; does the \
                     `distance` attribute (\"{}\") match how the file was made?",
                    row[rank], data.metric, exact[rank], data.metric
                ),
            });
        }
    }
    Ok(())
}
