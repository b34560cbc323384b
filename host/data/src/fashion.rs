//! Fashion-MNIST from gzipped IDX files, as Debian's `dataset-fashion-mnist`
//! installs them.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use annvil_abi::Metric;
use flate2::read::GzDecoder;

use annvil_dataset::{DataError, Dataset, Matrix, Result};

/// The base images (60,000).
const TRAIN_FILE: &str = "train-images-idx3-ubyte.gz";
/// The query images (10,000).
const TEST_FILE: &str = "t10k-images-idx3-ubyte.gz";
/// IDX magic of a rank-3 array of unsigned bytes.
const IDX3_UBYTE: u32 = 0x0000_0803;

/// Loads `fashion-mnist-784-euclidean` from `dir`: pixels as f32, raw
/// 0-255 values, euclidean, exactly as ann-benchmarks builds it.
pub(crate) fn load(dir: &Path, source: String) -> Result<Dataset> {
    let [train, test] = [TRAIN_FILE, TEST_FILE].map(|name| dir.join(name));
    for path in [&train, &test] {
        if !path.is_file() {
            return Err(DataError::FashionMnistMissing { path: path.clone() });
        }
    }
    Dataset::new(
        "fashion-mnist-784-euclidean",
        Metric::L2,
        read_idx_images(&train)?,
        read_idx_images(&test)?,
        source,
    )
}

/// Reads a gzipped IDX file of u8 images (magic `0x00000803`, then three
/// big-endian u32 dimensions: count, rows, columns) as one row per image.
fn read_idx_images(path: &Path) -> Result<Matrix> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if file.metadata().map_err(|e| DataError::io(path, e))?.len() == 0 {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    let mut bytes = Vec::new();
    GzDecoder::new(BufReader::new(file))
        .read_to_end(&mut bytes)
        .map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => DataError::Truncated {
                path: path.into(),
                what: "the gzip stream ends early".into(),
            },
            ErrorKind::InvalidInput | ErrorKind::InvalidData => {
                DataError::format(path, format!("not a gzip file ({e})"))
            }
            _ => DataError::io(path, e),
        })?;
    if bytes.len() < 16 {
        return Err(DataError::Truncated {
            path: path.into(),
            what: format!("the IDX header has {} of its 16 bytes", bytes.len()),
        });
    }
    let (header, pixels) = bytes.split_at(16);
    let [magic, count, rows, columns] =
        [0, 4, 8, 12].map(|at| u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes")));
    if magic != IDX3_UBYTE {
        return Err(DataError::format(
            path,
            format!(
                "IDX magic number is 0x{magic:08x}, expected 0x{IDX3_UBYTE:08x} (unsigned-byte images)"
            ),
        ));
    }
    let dim = rows as usize * columns as usize;
    let expected = count as usize * dim;
    if dim == 0 || pixels.len() != expected {
        let problem = format!(
            "the IDX header declares {count} images of {rows}×{columns} pixels ({expected} bytes) \
             but {} bytes follow",
            pixels.len()
        );
        return Err(if pixels.len() < expected {
            DataError::Truncated {
                path: path.into(),
                what: problem,
            }
        } else {
            DataError::format(path, problem)
        });
    }
    Matrix::new(pixels.iter().map(|&p| f32::from(p)).collect(), dim)
}
