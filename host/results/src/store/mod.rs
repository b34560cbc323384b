//! The results database: an embedded SQLite file holding every run, every
//! evaluation (one build-parameter set of one variant on one dataset), its
//! sweep points and failures.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, and every
//! public write is one `BEGIN IMMEDIATE … COMMIT` transaction. A process killed
//! at any instant (SIGKILL included) therefore loses nothing that had been
//! committed and never leaves half of a unit visible: an evaluation is either
//! `running` without points, or finished with all of its points.
//!
//! The schema is described in `docs/RESULTS_DB.md`; [`SCHEMA_VERSION`] is kept in
//! `PRAGMA user_version`. A database written by a newer schema is refused
//! (`schema.rs`: the DDL and its migrations).
//!
//! A file deleted or replaced under a running store is detected before and
//! after every write: the rows the open connection holds are saved next to
//! it and the write fails with [`StoreError::Vanished`] (see [`Store::open`]).
//!
//! The store's methods are split by table: `runs.rs`, `evaluations.rs` (with
//! their sweep points and the scopes they fall in), `program.rs` (lineage
//! and evolve candidates), `bridge.rs` (the Python bridge's overhead) and
//! `attempts.rs` (the Slurm executor's attempts); `vanished.rs` guards the file itself. Ranking is
//! not done here but in [`crate::leaderboard`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::model::{EvalId, RunId, Status};

mod attempts;
mod bridge;
mod evaluations;
mod program;
mod runs;
mod schema;
mod vanished;

pub use evaluations::MAX_LOG_BYTES;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

use vanished::FileId;

/// Errors of the results database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file was written by a newer annvil whose schema this build does not know.
    #[error(
        "results database {path} has schema version {found}, newer than version {supported} \
         understood by this build of annvil; use a newer annvil or another database file"
    )]
    NewerSchema {
        /// Database file.
        path: String,
        /// Version found in `PRAGMA user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// The file is an SQLite database of another application.
    #[error("{path} is not an annvil results database ({reason})")]
    Foreign {
        /// Database file.
        path: String,
        /// What gave it away.
        reason: String,
    },
    /// No evaluation with this id (it may have been replaced by a redo of the same key).
    #[error(
        "evaluation {0} does not exist (it may have been replaced by a newer run of the same evaluation)"
    )]
    UnknownEvaluation(EvalId),
    /// No run with this id.
    #[error("run {0} does not exist")]
    UnknownRun(RunId),
    /// The evaluation already has a final status.
    #[error("evaluation {id} is already {status}; only a running evaluation can be finished")]
    NotRunning {
        /// Evaluation.
        id: EvalId,
        /// Its current status.
        status: Status,
    },
    /// A value handed to the store breaks an invariant of the schema.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being stored (e.g. "sweep point 3").
        what: String,
        /// Which invariant it breaks.
        reason: String,
    },
    /// The session already holds a candidate with this content (the
    /// `UNIQUE (session, content_hash)` constraint of `candidates`).
    #[error("session {session} already holds this content, as candidate {existing}")]
    DuplicateContent {
        /// The evolve session.
        session: String,
        /// The candidate that holds it.
        existing: String,
    },
    /// A stored value could not be decoded.
    #[error("corrupt value in results database: {0}")]
    Corrupt(String),
    /// The database file was deleted or replaced while this store had it
    /// open. The rows the open connection held were saved to `recovered`
    /// (online backup); this write and every later one fail, and reads see
    /// the saved copy.
    #[error(
        "the results database {} was deleted or replaced during the run; the rows recorded so far \
         were saved to {}; nothing from this run was written to the new file",
        path.display(),
        recovered.display()
    )]
    Vanished {
        /// Database file, as opened.
        path: PathBuf,
        /// The saved copy: `<path>.recovered-<unix seconds>`, or that name in
        /// the system temporary directory when `path`'s directory is gone.
        recovered: PathBuf,
    },
    /// As [`StoreError::Vanished`], but saving the rows failed; the next
    /// write tries again.
    #[error(
        "the results database {} was deleted or replaced during the run, and saving the rows \
         recorded so far failed ({reason}); they are held only by this process; nothing from \
         this run was written to the new file",
        path.display()
    )]
    VanishedUnsaved {
        /// Database file, as opened.
        path: PathBuf,
        /// Why each place the rows were to be saved failed.
        reason: String,
    },
    /// SQLite error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// JSON (de)serialisation error.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Result type of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle on a results database file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Identity of `path` when opened; `None` when it had none (an in-memory
    /// database), and then nothing is checked.
    file_id: Option<FileId>,
    /// Where the rows were saved once the file vanished; from then on every
    /// write fails and `conn` reads that copy.
    recovered: Option<PathBuf>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL
    /// mode and brings its schema up to [`SCHEMA_VERSION`]. Refuses a database
    /// of a newer schema or of another application.
    ///
    /// The store remembers which file it opened (device and inode). Should
    /// `path` be deleted or replaced later, the next write saves what the
    /// open connection holds and fails with [`StoreError::Vanished`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let file_id = FileId::of(&path);
        let mut store = Self {
            conn,
            path,
            file_id,
            recovered: None,
        };
        store.check_identity()?;
        store
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
        store.conn.pragma_update(None, "synchronous", "FULL")?;
        store.conn.pragma_update(None, "foreign_keys", "ON")?;
        store.migrate()?;
        Ok(store)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE … COMMIT` transaction: every write
    /// of the store goes through here. Before the transaction and again after
    /// the commit, [`Store::ensure_same_file`] checks that `path` is still the
    /// file opened.
    fn write<T>(&mut self, body: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.ensure_same_file()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = body(&tx)?;
        tx.commit()?;
        self.ensure_same_file()?;
        Ok(value)
    }

    /// Path the store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How many rows `sql` counts (tests of the store's modules).
#[cfg(test)]
fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}
