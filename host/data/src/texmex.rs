//! TEXMEX `.fvecs`, `.bvecs` and `.ivecs` files: each vector is a
//! little-endian i32 dimension followed by that many f32, u8 or i32 values.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::spec::TexmexSpec;
use annvil_dataset::{DataError, Dataset, Matrix, Result};

/// Loads a TEXMEX dataset: base and query vectors, and the neighbour ids of
/// the `.ivecs` file when given (distances recomputed exactly).
pub(crate) fn load(spec: &TexmexSpec, source: String) -> Result<Dataset> {
    let train = read_vectors(&spec.base)?;
    let test = read_vectors(&spec.queries)?;
    let name = dataset_name(spec, train.dim());
    let dataset = Dataset::new(name, spec.metric, train, test, source)?;
    let Some(path) = &spec.ground_truth else {
        return Ok(dataset);
    };
    let (ids, k) = read_vecs(path, 4, |b| {
        i32::from_le_bytes(b.try_into().expect("4 bytes"))
    })?;
    if ids.len() / k != dataset.test.len() {
        return Err(DataError::format(
            path,
            format!(
                "holds neighbours for {} queries but {} has {} queries",
                ids.len() / k,
                spec.queries.display(),
                dataset.test.len()
            ),
        ));
    }
    let ids = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            u32::try_from(id).map_err(|_| {
                DataError::format(
                    path,
                    format!("query {}, neighbour {}: negative id {id}", i / k, i % k),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    dataset.with_shipped_neighbors(ids, k)
}

/// `sift` for `sift_base.fvecs`, then the dimension and metric, as
/// ann-benchmarks names datasets (`sift-128-euclidean`).
fn dataset_name(spec: &TexmexSpec, dim: usize) -> String {
    let stem = spec
        .base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix("_base").unwrap_or(&stem);
    format!("{stem}-{dim}-{}", spec.metric)
}

/// Reads `.fvecs` (f32) or `.bvecs` (u8, widened) by the file's extension.
fn read_vectors(path: &Path) -> Result<Matrix> {
    let bvecs = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("bvecs"));
    let (values, dim) = if bvecs {
        read_vecs(path, 1, |b| f32::from(b[0]))?
    } else {
        read_vecs(path, 4, |b| {
            f32::from_le_bytes(b.try_into().expect("4 bytes"))
        })?
    };
    Matrix::new(values, dim)
}

/// Reads a whole TEXMEX file of `width`-byte values, decoding each with
/// `decode`; returns the values, row-major, and the common dimension.
fn read_vecs<T>(path: &Path, width: usize, decode: impl Fn(&[u8]) -> T) -> Result<(Vec<T>, usize)> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let size = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if size == 0 {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut values = Vec::new();
    let mut record = Vec::new();
    let mut dim = 0;
    for index in 0.. {
        let mut header = [0u8; 4];
        match read_full(&mut reader, &mut header).map_err(|e| DataError::io(path, e))? {
            0 => break,
            4 => {}
            got => {
                return Err(DataError::Truncated {
                    path: path.into(),
                    what: format!(
                        "vector {index} has {got} of the 4 bytes of its dimension header"
                    ),
                });
            }
        }
        let declared = i32::from_le_bytes(header);
        let found = usize::try_from(declared)
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| {
                DataError::format(
                    path,
                    format!(
                        "vector {index} declares dimension {declared}; is this really a \
                         TEXMEX .fvecs/.bvecs/.ivecs file?"
                    ),
                )
            })?;
        if index == 0 {
            dim = found;
            let row_bytes = 4 + dim as u64 * width as u64;
            if row_bytes > size {
                return Err(DataError::Truncated {
                    path: path.into(),
                    what: format!(
                        "vector 0 declares dimension {dim} ({row_bytes} bytes) but the file \
                         has only {size} bytes"
                    ),
                });
            }
            values.reserve((size / row_bytes * dim as u64) as usize);
            record.resize(dim * width, 0);
        } else if found != dim {
            return Err(DataError::InconsistentDimension {
                path: path.into(),
                index,
                expected: dim,
                found,
            });
        }
        let got = read_full(&mut reader, &mut record).map_err(|e| DataError::io(path, e))?;
        if got < record.len() {
            return Err(DataError::Truncated {
                path: path.into(),
                what: format!(
                    "vector {index} has {got} of its {} data bytes",
                    record.len()
                ),
            });
        }
        values.extend(record.chunks_exact(width).map(&decode));
    }
    Ok((values, dim))
}

/// Fills `buf` as far as the input allows; returns the bytes read (short
/// only at end of input).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
