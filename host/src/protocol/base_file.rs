//! The base vectors file a worker builds from: a magic, two little-endian
//! u64 (count, dim), then the f32s. It holds no query and no ground truth.
//! The coordinator writes it once per dataset and verifies it before every
//! worker starts ([`ensure`]); a sandboxed worker sees it read-only.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use annvil_data::Matrix;

const MAGIC: &[u8; 8] = b"ANNVILB1";

fn header(base: &Matrix) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for n in [base.len(), base.dim()] {
        bytes.extend_from_slice(&(n as u64).to_le_bytes());
    }
    bytes
}

/// The file's expected content hash.
fn expected_hash(base: &Matrix) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header(base));
    for x in base.as_slice() {
        hasher.update(&x.to_le_bytes());
    }
    hasher.finalize()
}

/// What identifies a verified file: any write or metadata change moves its
/// ctime, which no process can set back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    ctime: i64,
    ctime_nsec: i64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        ctime: m.ctime(),
        ctime_nsec: m.ctime_nsec(),
    })
}

/// Makes `path` hold exactly `base`: keeps the file when its stamp equals
/// `verified` (unchanged since the last check) or its content hash is
/// right, rewrites it otherwise (whole or not at all). Returns the new stamp.
pub fn ensure(path: &Path, base: &Matrix, verified: Option<Stamp>) -> std::io::Result<Stamp> {
    if let (Some(before), Ok(now)) = (verified, stamp(path))
        && before == now
    {
        return Ok(now);
    }
    let intact = std::fs::read(path)
        .map(|bytes| blake3::hash(&bytes) == expected_hash(base))
        .unwrap_or(false);
    if !intact {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        annvil_data::write_atomically(path, |out| {
            out.write_all(&header(base))?;
            for x in base.as_slice() {
                out.write_all(&x.to_le_bytes())?;
            }
            Ok(())
        })?;
    }
    stamp(path)
}

/// Reads a file written by [`ensure`] (worker side).
pub fn read(path: &Path) -> Result<Matrix, String> {
    let fail = |what: &str| format!("{}: {what}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| fail(&e.to_string()))?;
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(fail("not an annvil base vectors file"));
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[8 + 8 * i..16 + 8 * i]);
        usize::try_from(u64::from_le_bytes(w)).unwrap_or(usize::MAX)
    };
    let (n, dim) = (word(0), word(1));
    let floats: Vec<f32> = bytes[24..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if Some(floats.len()) != n.checked_mul(dim) {
        return Err(fail("truncated"));
    }
    Matrix::new(floats, dim).map_err(|e| fail(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_repairs_a_tampered_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        let base = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2).unwrap();
        let first = ensure(&path, &base, None).unwrap();
        assert_eq!(read(&path).unwrap().as_slice(), base.as_slice());
        assert_eq!(ensure(&path, &base, Some(first)).unwrap(), first);
        // Same length, other bytes: the stamp moves, the hash catches it.
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        ensure(&path, &base, Some(first)).unwrap();
        assert_eq!(read(&path).unwrap().as_slice(), base.as_slice());
        std::fs::write(&path, b"junk").unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .contains("not an annvil base vectors file")
        );
    }
}
