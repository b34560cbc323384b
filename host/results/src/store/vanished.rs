//! A database file deleted or replaced under an open store: detected before
//! and after every write, the rows the open connection holds are saved
//! beside it (or in the temporary directory) and the write fails with
//! [`StoreError::Vanished`].

use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use rusqlite::backup::Backup;

use super::{Result, Store, StoreError};

/// Identity of a file: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file at `path` now (symbolic links followed);
    /// `None` when nothing can be found there.
    pub(super) fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Store {
    /// Fails unless `path` still names the file [`Store::open`] opened. When
    /// it does not (deleted, or replaced by another file), saves everything
    /// the open connection holds with SQLite's online backup, empties this
    /// connection's write-ahead log (so the file now at `path` can never
    /// replay it), switches reads to the saved copy and returns
    /// [`StoreError::Vanished`]; if saving fails, returns
    /// [`StoreError::VanishedUnsaved`] and keeps the connection for a retry.
    pub(super) fn ensure_same_file(&mut self) -> Result<()> {
        let vanished = |recovered: &Path| StoreError::Vanished {
            path: self.path.clone(),
            recovered: recovered.to_path_buf(),
        };
        if let Some(recovered) = &self.recovered {
            return Err(vanished(recovered));
        }
        let Some(opened) = self.file_id else {
            return Ok(());
        };
        if FileId::of(&self.path) == Some(opened) {
            return Ok(());
        }
        let recovered = self
            .save_rows()
            .map_err(|reason| StoreError::VanishedUnsaved {
                path: self.path.clone(),
                reason,
            })?;
        let err = vanished(&recovered);
        // Checkpointing writes into the file this connection opened (wherever
        // it went), never into the one now at `path`; truncating the log
        // leaves nothing a later opener of `path` could replay.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
        if let Ok(copy) = Connection::open(&recovered) {
            self.conn = copy;
        }
        self.recovered = Some(recovered);
        Err(err)
    }

    /// Saves the open database into a new file `<name>.recovered-<unix
    /// seconds>` beside `path` or, when that fails (its directory is gone),
    /// in the system temporary directory. Returns the file, or why every
    /// place failed.
    fn save_rows(&self) -> Result<PathBuf, String> {
        let name = self
            .path
            .file_name()
            .map_or_else(|| "results.sqlite".into(), |n| n.to_string_lossy());
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("{name}.recovered-{seconds}");
        let beside = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut failures = Vec::new();
        for dir in [beside, std::env::temp_dir()] {
            match self.backup_into(&dir, &name) {
                Ok(file) => return Ok(file),
                Err(e) => failures.push(format!("{}: {e}", dir.display())),
            }
        }
        Err(failures.join("; "))
    }

    /// Online backup of the open database into a file named `name` (or
    /// `name.2`, `name.3`, … when taken) created in `dir`.
    fn backup_into(&self, dir: &Path, name: &str) -> Result<PathBuf, String> {
        let mut attempt = 1;
        let file = loop {
            let file = if attempt == 1 {
                dir.join(name)
            } else {
                dir.join(format!("{name}.{attempt}"))
            };
            match OpenOptions::new().write(true).create_new(true).open(&file) {
                Ok(_) => break file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let copy = || -> rusqlite::Result<()> {
            let mut target = Connection::open(&file)?;
            Backup::new(&self.conn, &mut target)?.run_to_completion(
                1000,
                Duration::from_millis(10),
                None,
            )
        };
        copy().map(|()| file.clone()).map_err(|e| {
            let _ = std::fs::remove_file(&file);
            e.to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{env, finished, key, point};
    use crate::model::{EvalId, Failure, Lineage, RunId, Status};
    use crate::store::count;

    /// A store at `path` with one finished evaluation; returns it and the evaluation.
    fn store_with_finished_row(path: &Path) -> (Store, EvalId) {
        let mut store = Store::open(path).unwrap();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = finished(
            &mut store,
            run,
            &key("hnsw", "h1", &[]),
            &[point(10, 0.9, 100.0)],
        );
        (store, id)
    }

    /// Checks that `err` is `Vanished` for `path` and that the file it names
    /// holds the finished evaluation `id` with its point; returns that file.
    fn assert_saved(err: StoreError, path: &Path, id: EvalId) -> PathBuf {
        let StoreError::Vanished {
            path: reported,
            recovered,
        } = &err
        else {
            panic!("expected Vanished, got {err}");
        };
        assert_eq!(reported, path);
        let message = err.to_string();
        for part in [
            format!(
                "the results database {} was deleted or replaced during the run",
                path.display()
            ),
            format!(
                "the rows recorded so far were saved to {}",
                recovered.display()
            ),
            "nothing from this run was written to the new file".to_string(),
        ] {
            assert!(message.contains(&part), "{message}");
        }
        let name = recovered
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let prefix = format!("{}.recovered-", path.file_name().unwrap().to_string_lossy());
        assert!(
            name.strip_prefix(&prefix)
                .is_some_and(|secs| secs.parse::<u64>().is_ok()),
            "{name}"
        );
        let saved = Store::open(recovered).unwrap();
        let e = saved.evaluation(id).unwrap();
        assert_eq!(e.status, Status::Ok);
        assert_eq!(e.sandboxed, Some(true));
        assert_eq!(saved.sweep_points(id).unwrap(), vec![point(10, 0.9, 100.0)]);
        recovered.clone()
    }

    #[test]
    fn deleted_database_fails_the_next_write_and_saves_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        let (mut store, id) = store_with_finished_row(&path);
        std::fs::remove_file(&path).unwrap();

        let err = store.begin_run(&env(), "host run").unwrap_err();
        let recovered = assert_saved(err, &path, id);
        assert_eq!(
            recovered.parent(),
            Some(dir.path()),
            "saved beside the original"
        );
        // Every later write fails the same way, through every write path;
        // reads see the saved rows.
        let lineage = Lineage {
            parent: "hnsw".into(),
            slot: "search".into(),
            change: None,
        };
        for err in [
            store.record_lineage("x", &lineage).unwrap_err(),
            store
                .start_evaluation(&key("ivf", "h", &[]), RunId(1))
                .unwrap_err(),
            store.end_run(RunId(1)).unwrap_err(),
        ] {
            assert!(
                matches!(&err, StoreError::Vanished { recovered: r, .. } if *r == recovered),
                "{err}"
            );
        }
        assert_eq!(store.evaluation(id).unwrap().status, Status::Ok);
        assert!(!path.exists(), "nothing is written at the old path");
    }

    #[test]
    fn replaced_database_fails_the_next_write_and_the_new_file_stays_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        let (mut store, id) = store_with_finished_row(&path);
        let other = dir.path().join("other.sqlite");
        {
            let mut other = Store::open(&other).unwrap();
            other.begin_run(&env(), "the other file").unwrap();
        }
        std::fs::rename(&other, &path).unwrap();

        let failure = Failure {
            sandboxed: Some(true),
            ..Failure::new("crash: SIGSEGV", "")
        };
        let running = store.start_evaluation(&key("ivf", "h", &[]), RunId(1));
        let err = running.unwrap_err();
        let recovered = assert_saved(err, &path, id);
        assert!(matches!(
            store.fail_evaluation(id, &failure),
            Err(StoreError::Vanished { .. })
        ));
        drop(store);

        // The file now at the path is the other one, whole: none of this
        // run's rows (nor its write-ahead log) reached it.
        let now = Store::open(&path).unwrap();
        let integrity: String = now
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        assert_eq!(count(&now, "SELECT count(*) FROM evaluations"), 0);
        assert_eq!(now.run(RunId(1)).unwrap().command, "the other file");
        let saved = Store::open(&recovered).unwrap();
        assert_eq!(saved.run(RunId(1)).unwrap().command, "host run");
    }

    #[test]
    fn rows_are_saved_to_the_temp_dir_when_the_directory_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("results");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join(format!("vanish-test-{}.sqlite", std::process::id()));
        let (mut store, id) = store_with_finished_row(&path);
        std::fs::remove_dir_all(&sub).unwrap();
        let err = store.end_run(RunId(1)).unwrap_err();
        let recovered = assert_saved(err, &path, id);
        assert_eq!(recovered.parent(), Some(std::env::temp_dir().as_path()));
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = recovered.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}
