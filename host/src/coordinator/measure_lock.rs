//! The measurement lock: timed measurements of one workspace never
//! overlap, whether they come from the lanes of one
//! `host evolve --parallel N` or from several `host` processes.
//!
//! The lock is an advisory lock (`flock`, through std's [`File::lock`]) on
//! `measure.lock` in annvil's cache directory (`target/annvil/` of the
//! workspace, shared by every `host` process using that target
//! directory). The kernel drops it when its holder exits, however that
//! happens, so a killed host never leaves it taken.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use anyhow::{Context, Result};

/// Name of the lock file inside the cache directory.
const LOCK_FILE: &str = "measure.lock";

/// Holds the measurement lock until dropped.
#[derive(Debug)]
pub struct MeasureLock {
    /// The locked file; closing it releases the lock.
    _file: File,
}

impl MeasureLock {
    /// Takes the lock in `cache_dir`, waiting for whoever holds it; when it
    /// has to wait, says so through `notify` first.
    pub fn acquire(cache_dir: &Path, notify: impl FnOnce(&str)) -> Result<MeasureLock> {
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        let path = cache_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the measurement lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                notify(&format!(
                    "waiting for another measurement to finish ({})",
                    path.display()
                ));
                file.lock()
                    .with_context(|| format!("taking the measurement lock {}", path.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e)
                    .with_context(|| format!("taking the measurement lock {}", path.display()));
            }
        }
        Ok(MeasureLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_is_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let first = MeasureLock::acquire(dir.path(), |_| panic!("nobody holds it yet")).unwrap();
        let (told_tx, told_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let dir = dir.path().to_path_buf();
            move || {
                let lock =
                    MeasureLock::acquire(&dir, |line| told_tx.send(line.to_owned()).unwrap());
                lock.map(|_| std::time::Instant::now())
            }
        });
        let told = told_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the waiter says it waits");
        assert!(told.contains("waiting for another measurement"), "{told}");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let released = std::time::Instant::now();
        drop(first);
        let taken = waiter.join().unwrap().unwrap();
        assert!(
            taken >= released,
            "the waiter got the lock only after it was released"
        );
    }
}
