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
//! `PRAGMA user_version`. A database written by a newer schema is refused.
//!
//! A file deleted or replaced under a running store is detected before and
//! after every write: the rows the open connection holds are saved next to
//! it and the write fails with [`StoreError::Vanished`] (see [`Store::open`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::program::Lineage;
use rusqlite::backup::Backup;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::reward::{self, RecallQps, RewardSummary};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 3;
/// `PRAGMA application_id` of an annvil results database (ASCII "annv").
pub const APPLICATION_ID: i64 = 0x616E_6E76;
/// Longest build log excerpt stored, in bytes; longer logs keep their tail.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// A string-to-string parameter map (build or search parameters), kept sorted
/// so that its JSON form is canonical.
pub type Params = BTreeMap<String, String>;

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

/// Id of a row of `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// Id of a row of `evaluations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EvalId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for EvalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The machine and software a run happened on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// CPU model name (e.g. from `/proc/cpuinfo`).
    pub cpu_model: String,
    /// CPU feature flags (e.g. `avx2`, `avx512f`).
    pub cpu_flags: Vec<String>,
    /// Number of logical cores.
    pub logical_cores: u32,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Operating system and kernel.
    pub os: String,
    /// `rustc --version` of the compiler that built the variants.
    pub rustc_version: String,
    /// Version of the host binary.
    pub host_version: String,
    /// Git commit of the workspace, when known.
    pub git_commit: Option<String>,
    /// Anything else worth keeping (free-form).
    #[serde(default)]
    pub extra: Params,
}

impl Environment {
    /// Reads the CPU model, flags, core count, memory and kernel of this Linux
    /// machine from `/proc` (fields that cannot be read stay empty / 0) and
    /// fills in the given software versions.
    pub fn detect(host_version: &str, rustc_version: &str, git_commit: Option<&str>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            cpu_model: field("model name").unwrap_or_default(),
            cpu_flags: field("flags")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            logical_cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            memory_bytes: memory_kib * 1024,
            os: format!("{} {}", std::env::consts::OS, release.trim())
                .trim()
                .to_string(),
            rustc_version: rustc_version.to_string(),
            host_version: host_version.to_string(),
            git_commit: git_commit.map(str::to_string),
            extra: Params::new(),
        }
    }
}

/// A stored run (one host invocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id.
    pub id: RunId,
    /// UTC start time, RFC 3339 (`2025-01-31T12:00:00.000Z`).
    pub started_at: String,
    /// UTC end time, `None` if the run never called [`Store::end_run`] (killed or still going).
    pub finished_at: Option<String>,
    /// Command line of the invocation.
    pub command: String,
    /// Machine and software.
    pub environment: Environment,
}

/// How queries are issued during a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Mode {
    /// One query at a time on one pinned core.
    Single,
    /// All queries as a batch spread over `threads` threads.
    Batch {
        /// Number of worker threads.
        threads: u32,
    },
}

impl Mode {
    /// Number of threads (1 for single).
    pub fn threads(&self) -> u32 {
        match self {
            Mode::Single => 1,
            Mode::Batch { threads } => *threads,
        }
    }

    /// Human-readable label ("single thread", "batch, 8 threads").
    pub fn label(&self) -> String {
        match self {
            Mode::Single => "single thread".to_string(),
            Mode::Batch { threads } => format!("batch, {threads} threads"),
        }
    }

    fn column(&self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Batch { .. } => "batch",
        }
    }

    fn from_columns(kind: &str, threads: u32) -> Result<Self> {
        match kind {
            "single" => Ok(Mode::Single),
            "batch" => Ok(Mode::Batch { threads }),
            other => Err(StoreError::Corrupt(format!("unknown mode {other:?}"))),
        }
    }
}

/// How an evaluation measures: everything that must be equal for two
/// evaluations to be comparable. Hashed into [`EvalConfig::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Number of neighbours asked for (recall@k).
    pub k: u32,
    /// Timed runs per sweep point (R); QPS is the best of them.
    pub runs: u32,
    /// Single-thread or batch mode.
    pub mode: Mode,
    /// Number of queries per run.
    pub query_count: u64,
    /// Further settings that change the measurement (omitted from the
    /// canonical JSON while empty, so adding it kept old keys valid).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: Params,
}

impl EvalConfig {
    /// Canonical JSON of the config: fields in declaration order, maps sorted.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("EvalConfig always serialises")
    }

    /// The config key: 16 lowercase hex digits of the 64-bit FNV-1a hash of
    /// [`EvalConfig::canonical_json`].
    pub fn key(&self) -> String {
        format!("{:016x}", fnv1a64(self.canonical_json().as_bytes()))
    }

    /// Short description, e.g. "k=10, R=5, single thread, 10000 queries".
    pub fn describe(&self) -> String {
        let mut s = format!(
            "k={}, R={}, {}, {} queries",
            self.k,
            self.runs,
            self.mode.label(),
            self.query_count
        );
        for (key, value) in &self.extra {
            s.push_str(&format!(", {key}={value}"));
        }
        s
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Identity of an evaluation: one build-parameter set of one variant version
/// on one dataset version under one measurement config. At most one row of
/// `evaluations` exists per key (`dataset_name` is informative and not part
/// of the identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationKey {
    /// Variant name (directory name under `variants/`).
    pub variant_name: String,
    /// Content hash of the variant (sources and variant.yaml).
    pub variant_hash: String,
    /// Dataset name.
    pub dataset_name: String,
    /// Content hash of the dataset.
    pub dataset_hash: String,
    /// Build parameters of this build.
    pub build_params: Params,
    /// Measurement config.
    pub config: EvalConfig,
}

/// Status of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Started, not finished (or its process died).
    Running,
    /// Finished with sweep points.
    Ok,
    /// Failed (crash, timeout, OOM, error status, invalid results…).
    Failed,
    /// Not attempted (e.g. a required system package is missing).
    Skipped,
}

impl Status {
    /// The text stored in the `status` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(Status::Running),
            "ok" => Ok(Status::Ok),
            "failed" => Ok(Status::Failed),
            "skipped" => Ok(Status::Skipped),
            other => Err(StoreError::Corrupt(format!("unknown status {other:?}"))),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful build reported, stored by [`Store::finish_evaluation`].
/// No `Default`: whether the worker was sandboxed and how many threads the
/// build ran with are always stated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationOutcome {
    /// Wall time of the index build, seconds.
    pub build_seconds: f64,
    /// Index memory reported by the module, bytes.
    pub index_memory_bytes: Option<u64>,
    /// Peak resident set size of the worker, bytes.
    pub rss_bytes: Option<u64>,
    /// Excerpt of the build log (the last [`MAX_LOG_BYTES`] are kept).
    pub build_log: Option<String>,
    /// Whether the worker that ran the variant's code was sandboxed.
    /// Reports mark rows with `false` as `unsandboxed`.
    pub sandboxed: bool,
    /// Threads the index build ran with (>= 1).
    pub build_threads: u32,
}

/// Why an evaluation failed or was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Short reason, e.g. "crash: SIGSEGV", "timeout after 600s",
    /// "out of memory (cap 8 GiB)", "error status 4 (unsupported)",
    /// "invalid results", "missing package libfoo-dev".
    pub reason: String,
    /// Longer detail (message, offending query, install hint…).
    pub detail: String,
    /// Excerpt of the build or worker log (the last [`MAX_LOG_BYTES`] are kept).
    pub log: Option<String>,
    /// Whether the worker that ran (or would have run) the variant's code was
    /// sandboxed; `None` when no worker ran or it is not known. Reports mark
    /// `Some(false)` as `unsandboxed`.
    #[serde(default)]
    pub sandboxed: Option<bool>,
}

impl Failure {
    /// A failure with a reason and detail, no log, sandboxing unknown.
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            detail: detail.into(),
            log: None,
            sandboxed: None,
        }
    }
}

/// One measured point of a search-parameter sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Search parameters of this point (ef, nprobe, …).
    pub search_params: Params,
    /// Recall@k (mean over the queries) of the run with the lowest recall
    /// among the R runs, in [0, 1]: equal to `recall_min`. The reward, QPS@x
    /// and the adaptive sweep use this figure. (Rows written before the host
    /// stored the lowest run hold the mean over the runs.)
    pub recall: f64,
    /// Lowest recall among the R runs.
    pub recall_min: f64,
    /// Highest recall among the R runs.
    pub recall_max: f64,
    /// True when the runs returned different results; reports mark the
    /// figures such a point stands behind.
    pub runs_disagree: bool,
    /// Queries per second of the best run.
    pub qps: f64,
    /// Median per-query latency of the best run, microseconds.
    pub latency_p50_us: f64,
    /// 95th percentile latency of the best run, microseconds.
    pub latency_p95_us: f64,
    /// 99th percentile latency of the best run, microseconds.
    pub latency_p99_us: f64,
    /// Number of timed runs (R).
    pub runs: u32,
    /// Mean distance computations per query, when the module reports them.
    pub distance_computations: Option<f64>,
    /// Queries whose results were invalid (duplicate or out-of-range ids).
    /// Such a point is shown but takes no part in rewards or frontiers.
    pub invalid_queries: u64,
    /// How queries were issued.
    pub mode: Mode,
}

impl SweepPoint {
    /// The (recall, QPS) pair the reward uses.
    pub fn recall_qps(&self) -> RecallQps {
        RecallQps::new(self.recall, self.qps)
    }

    /// Whether the point counts for rewards and frontiers (no invalid queries).
    pub(crate) fn is_valid(&self) -> bool {
        self.invalid_queries == 0
    }

    /// Whether this point is on the frontier of `summary` (the summary of its
    /// build set, see [`summarize_points`]).
    pub(crate) fn on_frontier(&self, summary: &RewardSummary) -> bool {
        self.is_valid() && summary.frontier.contains(&self.recall_qps())
    }

    fn validate(&self, index: usize) -> Result<()> {
        let bad = |reason: String| {
            Err(StoreError::Invalid {
                what: format!("sweep point {index}"),
                reason,
            })
        };
        let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        let slack = 1e-9;
        if !(unit(self.recall) && unit(self.recall_min) && unit(self.recall_max)) {
            return bad(format!(
                "recall {}, min {}, max {} must lie in [0, 1]",
                self.recall, self.recall_min, self.recall_max
            ));
        }
        if self.recall_min > self.recall + slack || self.recall > self.recall_max + slack {
            return bad(format!(
                "recall min {} <= mean {} <= max {} does not hold",
                self.recall_min, self.recall, self.recall_max
            ));
        }
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return bad(format!("qps {} must be finite and > 0", self.qps));
        }
        let lat = [
            self.latency_p50_us,
            self.latency_p95_us,
            self.latency_p99_us,
        ];
        if lat.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || lat[0] > lat[1] || lat[1] > lat[2] {
            return bad(format!(
                "latencies p50 {} <= p95 {} <= p99 {} (finite, >= 0) do not hold",
                lat[0], lat[1], lat[2]
            ));
        }
        if self.runs == 0 {
            return bad("runs must be >= 1".to_string());
        }
        if let Some(d) = self
            .distance_computations
            .filter(|d| !(d.is_finite() && *d >= 0.0))
        {
            return bad(format!("distance computations {d} must be finite and >= 0"));
        }
        if self.mode.threads() == 0 {
            return bad("batch mode needs at least one thread".to_string());
        }
        Ok(())
    }
}

/// Reward, QPS@x, max recall and frontier of one build set's sweep points;
/// points with invalid queries take no part.
pub(crate) fn summarize_points(points: &[SweepPoint]) -> RewardSummary {
    let valid: Vec<RecallQps> = points
        .iter()
        .filter(|p| p.is_valid())
        .map(SweepPoint::recall_qps)
        .collect();
    reward::summarize(&valid)
}

/// Whether a point on the frontier of `points` had runs that disagreed: then
/// a figure computed from them (reward, QPS@x, max recall) rests on the lowest
/// run's recall.
pub(crate) fn frontier_disagrees(points: &[SweepPoint], summary: &RewardSummary) -> bool {
    points
        .iter()
        .any(|p| p.runs_disagree && p.on_frontier(summary))
}

/// A stored evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// Id.
    pub id: EvalId,
    /// Run that (last) started it.
    pub run_id: RunId,
    /// Its identity.
    pub key: EvaluationKey,
    /// [`EvalConfig::key`] of `key.config`.
    pub config_key: String,
    /// Status.
    pub status: Status,
    /// Failure or skip reason.
    pub failure_reason: Option<String>,
    /// Failure or skip detail.
    pub failure_detail: Option<String>,
    /// Build wall time, seconds (ok only).
    pub build_seconds: Option<f64>,
    /// Module-reported index memory, bytes.
    pub index_memory_bytes: Option<u64>,
    /// Peak RSS of the worker, bytes.
    pub rss_bytes: Option<u64>,
    /// Whether the worker was sandboxed; `None`: unknown (rows of schema
    /// version 2 and earlier, or a failure that did not say).
    pub sandboxed: Option<bool>,
    /// Threads the index build ran with; `None`: unknown or no build.
    pub build_threads: Option<u32>,
    /// Build or failure log excerpt.
    pub log: Option<String>,
    /// UTC start time, RFC 3339.
    pub started_at: String,
    /// UTC end time, RFC 3339; `None` while running.
    pub finished_at: Option<String>,
}

impl EvaluationRecord {
    /// The leaderboard scope this evaluation belongs to.
    pub fn scope(self) -> Scope {
        Scope {
            dataset_name: self.key.dataset_name,
            dataset_hash: self.key.dataset_hash,
            config_key: self.config_key,
            config: self.key.config,
        }
    }
}

/// An evaluation found by [`Store::completed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completed {
    /// Its id.
    pub id: EvalId,
    /// `Ok` or `Failed`.
    pub status: Status,
}

/// One leaderboard: a dataset version under one measurement config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Dataset name (as last recorded for this hash).
    pub dataset_name: String,
    /// Dataset content hash.
    pub dataset_hash: String,
    /// [`EvalConfig::key`].
    pub config_key: String,
    /// The config itself.
    pub config: EvalConfig,
}

/// One row of a leaderboard: a variant name with its latest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    /// Position, 1-based.
    pub rank: usize,
    /// Variant name.
    pub variant_name: String,
    /// Variant content hash (the latest evaluated version of that name).
    pub variant_hash: String,
    /// `Ok` when at least one build-parameter set succeeded; else the status
    /// of the most recent failed or skipped one.
    pub status: Status,
    /// "ok", "ok (1 of 3 build sets failed)", "failed: crash: SIGSEGV", "skipped: …",
    /// followed by " (unsandboxed)" when the shown evaluation ran unsandboxed.
    pub status_text: String,
    /// Reward of the best build set (0 when failed).
    pub reward: f64,
    /// QPS@0.90 of the best build set.
    pub qps_at_090: Option<f64>,
    /// QPS@0.95 of the best build set.
    pub qps_at_095: Option<f64>,
    /// QPS@0.99 of the best build set.
    pub qps_at_099: Option<f64>,
    /// Highest recall of the best build set.
    pub max_recall: Option<f64>,
    /// Build parameters of the best build set (or of the shown failure).
    pub build_params: Params,
    /// Build time of the best build set, seconds.
    pub build_seconds: Option<f64>,
    /// Module-reported index memory of the best build set, bytes.
    pub index_memory_bytes: Option<u64>,
    /// Peak RSS of the best build set, bytes.
    pub rss_bytes: Option<u64>,
    /// Whether the shown evaluation's worker was sandboxed (`None`: unknown).
    pub sandboxed: Option<bool>,
    /// Threads the shown evaluation's build ran with (`None`: unknown).
    pub build_threads: Option<u32>,
    /// True when a point on the frontier of the best build set had runs that
    /// disagreed: its figures rest on the lowest run's recall. Reports mark
    /// such rows.
    pub runs_disagree: bool,
    /// Evaluation shown in this row.
    pub evaluation_id: EvalId,
    /// All evaluations (build sets) of this variant version in the scope, oldest first.
    pub evaluation_ids: Vec<EvalId>,
    /// Parent and changed slot, when the variant was derived from another.
    pub lineage: Option<Lineage>,
}

/// A ranked leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    /// Dataset and config it ranks.
    pub scope: Scope,
    /// Rows, rank order.
    pub rows: Vec<LeaderboardRow>,
}

/// Schema migrations: `MIGRATIONS[i]` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
];
const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

const KEY_WHERE: &str = "variant_name = ?1 AND variant_hash = ?2 AND dataset_hash = ?3 \
                         AND build_params_json = ?4 AND config_key = ?5";

const EVAL_COLUMNS: &str = "id, run_id, variant_name, variant_hash, dataset_name, dataset_hash, \
     build_params_json, config_json, config_key, status, failure_reason, failure_detail, \
     build_seconds, index_memory_bytes, rss_bytes, log, started_at, finished_at, sandboxed, \
     build_threads";

/// Identity of a file: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file at `path` now (symbolic links followed);
    /// `None` when nothing can be found there.
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

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

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `body` in one `BEGIN IMMEDIATE … COMMIT` transaction: every write
    /// of the store goes through here. Before the transaction and again after
    /// the commit, [`Store::ensure_same_file`] checks that `path` is still the
    /// file opened.
    pub(crate) fn write<T>(
        &mut self,
        body: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.ensure_same_file()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = body(&tx)?;
        tx.commit()?;
        self.ensure_same_file()?;
        Ok(value)
    }

    /// Fails unless `path` still names the file [`Store::open`] opened. When
    /// it does not (deleted, or replaced by another file), saves everything
    /// the open connection holds with SQLite's online backup, empties this
    /// connection's write-ahead log (so the file now at `path` can never
    /// replay it), switches reads to the saved copy and returns
    /// [`StoreError::Vanished`]; if saving fails, returns
    /// [`StoreError::VanishedUnsaved`] and keeps the connection for a retry.
    fn ensure_same_file(&mut self) -> Result<()> {
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

    /// Path the store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version of the open database (always [`SCHEMA_VERSION`] after [`Store::open`]).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn check_identity(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let app: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))?;
        let display = self.path.display().to_string();
        if app != 0 && app != APPLICATION_ID {
            return Err(StoreError::Foreign {
                path: display,
                reason: format!("application_id {app:#x}"),
            });
        }
        if version < 0 {
            return Err(StoreError::Foreign {
                path: display,
                reason: format!("negative schema version {version}"),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: display,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            let tables: i64 = self.conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::Foreign {
                    path: display,
                    reason: format!("{tables} tables but no schema version"),
                });
            }
        }
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        if self.schema_version()? == SCHEMA_VERSION {
            return Ok(());
        }
        let path = self.path.display().to_string();
        self.write(|tx| {
            // Re-read under the write lock: another process may have migrated meanwhile.
            let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let Ok(mut version) = usize::try_from(found) else {
                return Err(StoreError::Foreign {
                    path,
                    reason: format!("negative schema version {found}"),
                });
            };
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    path,
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            while version < MIGRATIONS.len() {
                tx.execute_batch(MIGRATIONS[version])?;
                version += 1;
                tx.pragma_update(None, "user_version", version)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            Ok(())
        })
    }

    /// Records the start of a host invocation.
    pub fn begin_run(&mut self, environment: &Environment, command: &str) -> Result<RunId> {
        let extra = serde_json::to_string(&environment.extra)?;
        self.write(|tx| {
            tx.execute(
            "INSERT INTO runs (started_at, command, cpu_model, cpu_flags, logical_cores, memory_bytes, \
             os, rustc_version, host_version, git_commit, extra_json) \
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                command,
                environment.cpu_model,
                environment.cpu_flags.join(" "),
                environment.logical_cores,
                environment.memory_bytes,
                environment.os,
                environment.rustc_version,
                environment.host_version,
                environment.git_commit,
                extra,
            ],
        )?;
            Ok(RunId(tx.last_insert_rowid()))
        })
    }

    /// Records the end of a run (a run without an end was killed or is still going).
    pub fn end_run(&mut self, run: RunId) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
                [run.0],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownRun(run));
            }
            Ok(())
        })
    }

    /// Reads a run.
    pub fn run(&self, id: RunId) -> Result<RunRecord> {
        let raw = self
            .conn
            .query_row(
                "SELECT id, started_at, finished_at, command, cpu_model, cpu_flags, logical_cores, \
                 memory_bytes, os, rustc_version, host_version, git_commit, extra_json \
                 FROM runs WHERE id = ?1",
                [id.0],
                |r| {
                    Ok((
                        RunRecord {
                            id: RunId(r.get(0)?),
                            started_at: r.get(1)?,
                            finished_at: r.get(2)?,
                            command: r.get(3)?,
                            environment: Environment {
                                cpu_model: r.get(4)?,
                                cpu_flags: r
                                    .get::<_, String>(5)?
                                    .split_whitespace()
                                    .map(str::to_string)
                                    .collect(),
                                logical_cores: r.get(6)?,
                                memory_bytes: r.get(7)?,
                                os: r.get(8)?,
                                rustc_version: r.get(9)?,
                                host_version: r.get(10)?,
                                git_commit: r.get(11)?,
                                extra: Params::new(),
                            },
                        },
                        r.get::<_, String>(12)?,
                    ))
                },
            )
            .optional()?;
        let (mut record, extra) = raw.ok_or(StoreError::UnknownRun(id))?;
        record.environment.extra = serde_json::from_str(&extra)?;
        Ok(record)
    }

    /// Starts an evaluation (status `running`) in `run`. Any earlier row with
    /// the same key — a finished one being redone with `--force`, or one left
    /// `running` by a killed process — is replaced together with its sweep
    /// points, so a key never has more than one row.
    pub fn start_evaluation(&mut self, key: &EvaluationKey, run: RunId) -> Result<EvalId> {
        let build_params = serde_json::to_string(&key.build_params)?;
        let config_key = key.config.key();
        self.write(|tx| {
        let run_exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)",
            [run.0],
            |r| r.get(0),
        )?;
        if !run_exists {
            return Err(StoreError::UnknownRun(run));
        }
        tx.execute(
            &format!("DELETE FROM evaluations WHERE {KEY_WHERE}"),
            params![
                key.variant_name,
                key.variant_hash,
                key.dataset_hash,
                build_params,
                config_key
            ],
        )?;
        tx.execute(
            "INSERT INTO evaluations (run_id, variant_name, variant_hash, dataset_name, dataset_hash, \
             build_params_json, config_json, config_key, k, runs, mode, threads, query_count, status, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'running', \
             strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
            params![
                run.0,
                key.variant_name,
                key.variant_hash,
                key.dataset_name,
                key.dataset_hash,
                build_params,
                key.config.canonical_json(),
                config_key,
                key.config.k,
                key.config.runs,
                key.config.mode.column(),
                key.config.mode.threads(),
                key.config.query_count,
            ],
        )?;
        Ok(EvalId(tx.last_insert_rowid()))
        })
    }

    /// Finishes a running evaluation: stores its sweep points and outcome and
    /// sets status `ok`, all in one transaction. Points are validated first
    /// (recall in [0, 1] with min ≤ mean ≤ max, QPS > 0, p50 ≤ p95 ≤ p99, R ≥ 1).
    pub fn finish_evaluation(
        &mut self,
        id: EvalId,
        outcome: &EvaluationOutcome,
        points: &[SweepPoint],
    ) -> Result<()> {
        let bad_outcome = |reason: String| {
            Err(StoreError::Invalid {
                what: "outcome".to_string(),
                reason,
            })
        };
        if !(outcome.build_seconds.is_finite() && outcome.build_seconds >= 0.0) {
            return bad_outcome(format!(
                "build seconds {} must be finite and >= 0",
                outcome.build_seconds
            ));
        }
        if outcome.build_threads == 0 {
            return bad_outcome("build threads must be >= 1".to_string());
        }
        for (i, p) in points.iter().enumerate() {
            p.validate(i)?;
        }
        self.write(|tx| {
        require_running(tx, id)?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO sweep_points (evaluation_id, ordinal, search_params_json, recall, recall_min, \
                 recall_max, runs_disagree, qps, latency_p50_us, latency_p95_us, latency_p99_us, runs, \
                 distance_computations, invalid_queries, mode, threads) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for (i, p) in points.iter().enumerate() {
                insert.execute(params![
                    id.0,
                    i as i64,
                    serde_json::to_string(&p.search_params)?,
                    p.recall,
                    p.recall_min,
                    p.recall_max,
                    p.runs_disagree,
                    p.qps,
                    p.latency_p50_us,
                    p.latency_p95_us,
                    p.latency_p99_us,
                    p.runs,
                    p.distance_computations,
                    p.invalid_queries,
                    p.mode.column(),
                    p.mode.threads(),
                ])?;
            }
        }
        tx.execute(
            "UPDATE evaluations SET status = 'ok', build_seconds = ?2, index_memory_bytes = ?3, \
             rss_bytes = ?4, log = ?5, sandboxed = ?6, build_threads = ?7, \
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
            params![
                id.0,
                outcome.build_seconds,
                outcome.index_memory_bytes,
                outcome.rss_bytes,
                outcome.build_log.as_deref().map(log_excerpt),
                outcome.sandboxed,
                outcome.build_threads,
            ],
        )?;
        Ok(())
        })
    }

    /// Marks a running evaluation as failed, with its reason.
    pub fn fail_evaluation(&mut self, id: EvalId, failure: &Failure) -> Result<()> {
        self.close_unsuccessfully(id, Status::Failed, failure)
    }

    /// Marks a running evaluation as skipped (not attempted), with its reason.
    pub fn skip_evaluation(&mut self, id: EvalId, failure: &Failure) -> Result<()> {
        self.close_unsuccessfully(id, Status::Skipped, failure)
    }

    fn close_unsuccessfully(
        &mut self,
        id: EvalId,
        status: Status,
        failure: &Failure,
    ) -> Result<()> {
        self.write(|tx| {
            require_running(tx, id)?;
            tx.execute(
                "UPDATE evaluations SET status = ?2, failure_reason = ?3, failure_detail = ?4, \
                 log = ?5, sandboxed = ?6, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') \
                 WHERE id = ?1",
                params![
                    id.0,
                    status.as_str(),
                    failure.reason,
                    failure.detail,
                    failure.log.as_deref().map(log_excerpt),
                    failure.sandboxed,
                ],
            )?;
            Ok(())
        })
    }

    /// The finished evaluation of this key, if any, so that a rerun can skip
    /// it. `ok` and `failed` count as finished (a failure is a result: rerun
    /// it with `--force`); `skipped` does not (it depends on the machine) and
    /// neither does `running` (its process was killed).
    pub fn completed(&self, key: &EvaluationKey) -> Result<Option<Completed>> {
        let build_params = serde_json::to_string(&key.build_params)?;
        let found = self
            .conn
            .query_row(
                &format!("SELECT id, status FROM evaluations WHERE {KEY_WHERE} AND status IN ('ok', 'failed')"),
                params![key.variant_name, key.variant_hash, key.dataset_hash, build_params, key.config.key()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        found
            .map(|(id, status)| {
                Ok(Completed {
                    id: EvalId(id),
                    status: Status::parse(&status)?,
                })
            })
            .transpose()
    }

    /// Reads an evaluation.
    pub fn evaluation(&self, id: EvalId) -> Result<EvaluationRecord> {
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {EVAL_COLUMNS} FROM evaluations WHERE id = ?1"),
                [id.0],
                RawEvaluation::read,
            )
            .optional()?;
        raw.ok_or(StoreError::UnknownEvaluation(id))?.decode()
    }

    /// The sweep points of an evaluation, in the order they were stored.
    pub fn sweep_points(&self, id: EvalId) -> Result<Vec<SweepPoint>> {
        let mut stmt = self.conn.prepare(
            "SELECT search_params_json, recall, recall_min, recall_max, runs_disagree, qps, latency_p50_us, \
             latency_p95_us, latency_p99_us, runs, distance_computations, invalid_queries, mode, threads \
             FROM sweep_points WHERE evaluation_id = ?1 ORDER BY ordinal",
        )?;
        let rows = stmt.query_map([id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                SweepPoint {
                    search_params: Params::new(),
                    recall: r.get(1)?,
                    recall_min: r.get(2)?,
                    recall_max: r.get(3)?,
                    runs_disagree: r.get(4)?,
                    qps: r.get(5)?,
                    latency_p50_us: r.get(6)?,
                    latency_p95_us: r.get(7)?,
                    latency_p99_us: r.get(8)?,
                    runs: r.get(9)?,
                    distance_computations: r.get(10)?,
                    invalid_queries: r.get(11)?,
                    mode: Mode::Single,
                },
                r.get::<_, String>(12)?,
                r.get::<_, u32>(13)?,
            ))
        })?;
        let mut points = Vec::new();
        for row in rows {
            let (params_json, mut point, mode, threads) = row?;
            point.search_params = serde_json::from_str(&params_json)?;
            point.mode = Mode::from_columns(&mode, threads)?;
            points.push(point);
        }
        Ok(points)
    }

    /// Every scope (dataset version × config) with a finished evaluation,
    /// most recently evaluated first.
    pub fn all_scopes(&self) -> Result<Vec<Scope>> {
        let mut stmt = self.conn.prepare(
            "SELECT max(id) AS latest FROM evaluations WHERE status != 'running' \
             GROUP BY dataset_hash, config_key ORDER BY latest DESC",
        )?;
        let found = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        found
            .into_iter()
            .map(|latest| Ok(self.evaluation(EvalId(latest))?.scope()))
            .collect()
    }

    /// Every leaderboard scope (dataset version × config) whose dataset name
    /// or hash equals `dataset`, most recently evaluated first.
    pub fn scopes(&self, dataset: &str) -> Result<Vec<Scope>> {
        let mut stmt = self.conn.prepare(
            "SELECT dataset_hash, config_key, max(id) AS latest FROM evaluations \
             WHERE (dataset_name = ?1 OR dataset_hash = ?1) AND status != 'running' \
             GROUP BY dataset_hash, config_key ORDER BY latest DESC",
        )?;
        let found = stmt
            .query_map([dataset], |r| r.get::<_, i64>(2))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        found
            .into_iter()
            .map(|latest| Ok(self.evaluation(EvalId(latest))?.scope()))
            .collect()
    }

    /// The leaderboard of the most recently evaluated scope of `dataset` (a
    /// dataset name or content hash), or `None` when nothing finished on it.
    pub fn leaderboard(&self, dataset: &str) -> Result<Option<Leaderboard>> {
        match self.scopes(dataset)?.into_iter().next() {
            Some(scope) => self.leaderboard_for(&scope).map(Some),
            None => Ok(None),
        }
    }

    /// The leaderboard of one scope.
    ///
    /// One row per variant name, from the variant hash of that name whose
    /// evaluation in this scope is the most recent (rows still `running` are
    /// ignored). Its reward is the best over its build-parameter sets (ties:
    /// higher max recall, then shorter build, then older evaluation); the row
    /// shows that set. Points with invalid queries are left out of rewards.
    /// Variants without any `ok` set show the most recent failure, reward 0,
    /// and rank after all working variants. Ties are broken by name.
    pub fn leaderboard_for(&self, scope: &Scope) -> Result<Leaderboard> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVAL_COLUMNS} FROM evaluations WHERE dataset_hash = ?1 AND config_key = ?2 \
             AND status != 'running' ORDER BY id"
        ))?;
        let evaluations = stmt
            .query_map(
                [&scope.dataset_hash, &scope.config_key],
                RawEvaluation::read,
            )?
            .map(|raw| raw?.decode())
            .collect::<Result<Vec<_>>>()?;

        let mut latest_hash: BTreeMap<&str, &str> = BTreeMap::new();
        for e in &evaluations {
            latest_hash.insert(&e.key.variant_name, &e.key.variant_hash);
        }
        let mut working = Vec::new();
        let mut broken = Vec::new();
        for (name, hash) in latest_hash {
            let sets: Vec<&EvaluationRecord> = evaluations
                .iter()
                .filter(|e| e.key.variant_name == name && e.key.variant_hash == hash)
                .collect();
            let row = self.variant_row(&sets)?;
            if row.status == Status::Ok {
                working.push(row);
            } else {
                broken.push(row);
            }
        }
        working.sort_by(|a, b| {
            b.reward
                .total_cmp(&a.reward)
                .then_with(|| a.variant_name.cmp(&b.variant_name))
        });
        let mut rows = working;
        rows.extend(broken);
        for (i, row) in rows.iter_mut().enumerate() {
            row.rank = i + 1;
            row.lineage = self.lineage(&row.variant_name)?;
        }
        Ok(Leaderboard {
            scope: scope.clone(),
            rows,
        })
    }

    /// Distinct runs that produced the evaluations of a leaderboard, oldest first.
    pub fn runs_of(&self, leaderboard: &Leaderboard) -> Result<Vec<RunRecord>> {
        let mut ids = BTreeSet::new();
        for row in &leaderboard.rows {
            for id in &row.evaluation_ids {
                ids.insert(self.evaluation(*id)?.run_id);
            }
        }
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    fn variant_row(&self, sets: &[&EvaluationRecord]) -> Result<LeaderboardRow> {
        let latest = sets.last().expect("a variant has at least one evaluation");
        let evaluation_ids = sets.iter().map(|e| e.id).collect();
        let mut best: Option<(&EvaluationRecord, RewardSummary, bool)> = None;
        for e in sets.iter().filter(|e| e.status == Status::Ok) {
            let points = self.sweep_points(e.id)?;
            let summary = summarize_points(&points);
            let better = match &best {
                None => true,
                Some((b, s, _)) => summary
                    .reward
                    .total_cmp(&s.reward)
                    .then(
                        summary
                            .max_recall
                            .unwrap_or(-1.0)
                            .total_cmp(&s.max_recall.unwrap_or(-1.0)),
                    )
                    .then(
                        b.build_seconds
                            .unwrap_or(f64::INFINITY)
                            .total_cmp(&e.build_seconds.unwrap_or(f64::INFINITY)),
                    )
                    .is_gt(),
            };
            if better {
                let disagree = frontier_disagrees(&points, &summary);
                best = Some((e, summary, disagree));
            }
        }
        let unsuccessful = sets.iter().filter(|e| e.status != Status::Ok).count();
        let mut row = match best {
            Some((e, s, runs_disagree)) => LeaderboardRow {
                rank: 0,
                variant_name: e.key.variant_name.clone(),
                variant_hash: e.key.variant_hash.clone(),
                status: Status::Ok,
                status_text: if unsuccessful == 0 {
                    "ok".to_string()
                } else {
                    format!("ok ({unsuccessful} of {} build sets failed)", sets.len())
                },
                reward: s.reward,
                qps_at_090: s.qps_at_090,
                qps_at_095: s.qps_at_095,
                qps_at_099: s.qps_at_099,
                max_recall: s.max_recall,
                build_params: e.key.build_params.clone(),
                build_seconds: e.build_seconds,
                index_memory_bytes: e.index_memory_bytes,
                rss_bytes: e.rss_bytes,
                sandboxed: e.sandboxed,
                build_threads: e.build_threads,
                runs_disagree,
                evaluation_id: e.id,
                evaluation_ids,
                lineage: None,
            },
            None => LeaderboardRow {
                rank: 0,
                variant_name: latest.key.variant_name.clone(),
                variant_hash: latest.key.variant_hash.clone(),
                status: latest.status,
                status_text: failure_text(latest.status, latest.failure_reason.as_deref()),
                reward: 0.0,
                qps_at_090: None,
                qps_at_095: None,
                qps_at_099: None,
                max_recall: None,
                build_params: latest.key.build_params.clone(),
                build_seconds: latest.build_seconds,
                index_memory_bytes: latest.index_memory_bytes,
                rss_bytes: latest.rss_bytes,
                sandboxed: latest.sandboxed,
                build_threads: latest.build_threads,
                runs_disagree: false,
                evaluation_id: latest.id,
                evaluation_ids,
                lineage: None,
            },
        };
        row.status_text.push_str(sandbox_note(row.sandboxed));
        Ok(row)
    }
}

/// "failed: crash: SIGSEGV", "skipped: libfoo-dev missing (…)": the status
/// and its reason, with the status word once even where the stored reason
/// already starts with it (older hosts recorded skips as "skipped: …").
fn failure_text(status: Status, reason: Option<&str>) -> String {
    let prefix = format!("{status}: ");
    let reason = reason.unwrap_or("no reason recorded");
    format!("{prefix}{}", reason.strip_prefix(&prefix).unwrap_or(reason))
}

/// What follows the status of an evaluation whose worker ran unsandboxed:
/// " (unsandboxed)"; nothing when it was sandboxed or it is unknown.
pub(crate) fn sandbox_note(sandboxed: Option<bool>) -> &'static str {
    if sandboxed == Some(false) {
        " (unsandboxed)"
    } else {
        ""
    }
}

fn require_running(tx: &Transaction<'_>, id: EvalId) -> Result<()> {
    let status: Option<String> = tx
        .query_row(
            "SELECT status FROM evaluations WHERE id = ?1",
            [id.0],
            |r| r.get(0),
        )
        .optional()?;
    match status {
        None => Err(StoreError::UnknownEvaluation(id)),
        Some(s) => match Status::parse(&s)? {
            Status::Running => Ok(()),
            status => Err(StoreError::NotRunning { id, status }),
        },
    }
}

/// The last [`MAX_LOG_BYTES`] of a log, cut at a character boundary, with a
/// marker saying how much was dropped.
fn log_excerpt(log: &str) -> String {
    if log.len() <= MAX_LOG_BYTES {
        return log.to_string();
    }
    let mut start = log.len() - MAX_LOG_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]\n{}", &log[start..])
}

struct RawEvaluation {
    id: i64,
    run_id: i64,
    variant_name: String,
    variant_hash: String,
    dataset_name: String,
    dataset_hash: String,
    build_params_json: String,
    config_json: String,
    config_key: String,
    status: String,
    failure_reason: Option<String>,
    failure_detail: Option<String>,
    build_seconds: Option<f64>,
    index_memory_bytes: Option<u64>,
    rss_bytes: Option<u64>,
    log: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    sandboxed: Option<bool>,
    build_threads: Option<u32>,
}

impl RawEvaluation {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            run_id: r.get(1)?,
            variant_name: r.get(2)?,
            variant_hash: r.get(3)?,
            dataset_name: r.get(4)?,
            dataset_hash: r.get(5)?,
            build_params_json: r.get(6)?,
            config_json: r.get(7)?,
            config_key: r.get(8)?,
            status: r.get(9)?,
            failure_reason: r.get(10)?,
            failure_detail: r.get(11)?,
            build_seconds: r.get(12)?,
            index_memory_bytes: r.get(13)?,
            rss_bytes: r.get(14)?,
            log: r.get(15)?,
            started_at: r.get(16)?,
            finished_at: r.get(17)?,
            sandboxed: r.get(18)?,
            build_threads: r.get(19)?,
        })
    }

    fn decode(self) -> Result<EvaluationRecord> {
        Ok(EvaluationRecord {
            id: EvalId(self.id),
            run_id: RunId(self.run_id),
            key: EvaluationKey {
                variant_name: self.variant_name,
                variant_hash: self.variant_hash,
                dataset_name: self.dataset_name,
                dataset_hash: self.dataset_hash,
                build_params: serde_json::from_str(&self.build_params_json)?,
                config: serde_json::from_str(&self.config_json)?,
            },
            config_key: self.config_key,
            status: Status::parse(&self.status)?,
            failure_reason: self.failure_reason,
            failure_detail: self.failure_detail,
            build_seconds: self.build_seconds,
            index_memory_bytes: self.index_memory_bytes,
            rss_bytes: self.rss_bytes,
            sandboxed: self.sandboxed,
            build_threads: self.build_threads,
            log: self.log,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn env() -> Environment {
        Environment {
            cpu_model: "Test CPU @ 3.0GHz".to_string(),
            cpu_flags: vec!["sse2".to_string(), "avx2".to_string()],
            logical_cores: 2,
            memory_bytes: 24 << 30,
            os: "linux 6.1".to_string(),
            rustc_version: "rustc 1.95.0".to_string(),
            host_version: "0.1.0".to_string(),
            git_commit: Some("abc123".to_string()),
            extra: Params::from([("note".to_string(), "unit test".to_string())]),
        }
    }

    pub(crate) fn config() -> EvalConfig {
        EvalConfig {
            k: 10,
            runs: 3,
            mode: Mode::Single,
            query_count: 1000,
            extra: Params::new(),
        }
    }

    pub(crate) fn key(variant: &str, hash: &str, build: &[(&str, &str)]) -> EvaluationKey {
        EvaluationKey {
            variant_name: variant.to_string(),
            variant_hash: hash.to_string(),
            dataset_name: "synthetic".to_string(),
            dataset_hash: "d5a7a5e7".to_string(),
            build_params: build
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            config: config(),
        }
    }

    pub(crate) fn point(ef: u32, recall: f64, qps: f64) -> SweepPoint {
        SweepPoint {
            search_params: Params::from([("ef".to_string(), ef.to_string())]),
            recall,
            recall_min: recall,
            recall_max: recall,
            runs_disagree: false,
            qps,
            latency_p50_us: 1e6 / qps,
            latency_p95_us: 1.5e6 / qps,
            latency_p99_us: 2e6 / qps,
            runs: 3,
            distance_computations: Some(123.5),
            invalid_queries: 0,
            mode: Mode::Single,
        }
    }

    pub(crate) fn outcome() -> EvaluationOutcome {
        EvaluationOutcome {
            build_seconds: 1.25,
            index_memory_bytes: Some(10 << 20),
            rss_bytes: Some(50 << 20),
            build_log: Some("built".to_string()),
            sandboxed: true,
            build_threads: 2,
        }
    }

    fn open_tmp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("results.sqlite")).unwrap();
        (dir, store)
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Stores one finished evaluation and returns its id.
    fn finished(
        store: &mut Store,
        run: RunId,
        key: &EvaluationKey,
        points: &[SweepPoint],
    ) -> EvalId {
        let id = store.start_evaluation(key, run).unwrap();
        store.finish_evaluation(id, &outcome(), points).unwrap();
        id
    }

    fn failed(store: &mut Store, run: RunId, key: &EvaluationKey, reason: &str) -> EvalId {
        let id = store.start_evaluation(key, run).unwrap();
        store
            .fail_evaluation(id, &Failure::new(reason, "detail"))
            .unwrap();
        id
    }

    #[test]
    fn round_trip() {
        let (dir, mut store) = open_tmp();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let run = store
            .begin_run(&env(), "host run --dataset synthetic")
            .unwrap();
        let k = key("hnsw", "h1", &[("M", "16"), ("ef_construction", "200")]);
        assert_eq!(store.completed(&k).unwrap(), None);
        let id = store.start_evaluation(&k, run).unwrap();
        assert_eq!(store.evaluation(id).unwrap().status, Status::Running);
        let mut points = vec![
            point(10, 0.8, 5000.0),
            point(20, 0.9, 3000.0),
            point(40, 0.97, 1500.0),
        ];
        points[1].runs_disagree = true;
        points[1].recall_min = 0.89;
        points[1].recall_max = 0.91;
        points[2].distance_computations = None;
        points[2].mode = Mode::Batch { threads: 2 };
        store.finish_evaluation(id, &outcome(), &points).unwrap();
        store.end_run(run).unwrap();
        drop(store);

        let store = Store::open(dir.path().join("results.sqlite")).unwrap();
        assert_eq!(
            store.completed(&k).unwrap(),
            Some(Completed {
                id,
                status: Status::Ok
            })
        );
        let e = store.evaluation(id).unwrap();
        assert_eq!(e.key, k);
        assert_eq!(e.run_id, run);
        assert_eq!(e.config_key, config().key());
        assert_eq!(e.build_seconds, Some(1.25));
        assert_eq!(e.index_memory_bytes, Some(10 << 20));
        assert_eq!(e.rss_bytes, Some(50 << 20));
        assert_eq!(e.log.as_deref(), Some("built"));
        assert!(e.finished_at.is_some());
        assert_eq!(store.sweep_points(id).unwrap(), points);
        let r = store.run(run).unwrap();
        assert_eq!(r.environment, env());
        assert_eq!(r.command, "host run --dataset synthetic");
        assert!(
            r.started_at.ends_with('Z') && r.finished_at.is_some(),
            "{r:?}"
        );
        assert!(matches!(
            store.run(RunId(999)),
            Err(StoreError::UnknownRun(_))
        ));
        assert!(matches!(
            store.evaluation(EvalId(999)),
            Err(StoreError::UnknownEvaluation(_))
        ));
    }

    #[test]
    fn unfinished_evaluation_is_not_completed_and_redo_replaces_it() {
        let (dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let k = key("ivf", "h1", &[("nlist", "64")]);
        let abandoned = store.start_evaluation(&k, run).unwrap();
        drop(store); // the process "dies" here

        let mut store = Store::open(dir.path().join("results.sqlite")).unwrap();
        assert_eq!(store.completed(&k).unwrap(), None);
        assert_eq!(store.evaluation(abandoned).unwrap().status, Status::Running);
        assert!(
            store.leaderboard("synthetic").unwrap().is_none(),
            "running rows are not ranked"
        );
        let run2 = store.begin_run(&env(), "host run").unwrap();
        let redo = store.start_evaluation(&k, run2).unwrap();
        assert_ne!(redo, abandoned);
        assert!(matches!(
            store.evaluation(abandoned),
            Err(StoreError::UnknownEvaluation(_))
        ));
        assert!(matches!(
            store.finish_evaluation(abandoned, &outcome(), &[]),
            Err(StoreError::UnknownEvaluation(_))
        ));
        store
            .finish_evaluation(redo, &outcome(), &[point(10, 0.9, 100.0)])
            .unwrap();
        assert_eq!(count(&store, "SELECT count(*) FROM evaluations"), 1);
        assert_eq!(store.completed(&k).unwrap().map(|c| c.id), Some(redo));
    }

    #[test]
    fn forced_redo_replaces_row_and_points() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let k = key("hnsw", "h1", &[]);
        let first = finished(
            &mut store,
            run,
            &k,
            &[point(10, 0.9, 100.0), point(20, 0.95, 50.0)],
        );
        let second = finished(&mut store, run, &k, &[point(10, 0.91, 110.0)]);
        assert_ne!(first, second);
        assert_eq!(count(&store, "SELECT count(*) FROM evaluations"), 1);
        assert_eq!(count(&store, "SELECT count(*) FROM sweep_points"), 1);
        assert_eq!(store.sweep_points(first).unwrap(), vec![]);
        // Another build-param set is another key.
        finished(
            &mut store,
            run,
            &key("hnsw", "h1", &[("M", "8")]),
            &[point(10, 0.9, 1.0)],
        );
        assert_eq!(count(&store, "SELECT count(*) FROM evaluations"), 2);
    }

    #[test]
    fn final_states_are_final() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let ok = finished(&mut store, run, &key("a", "h", &[]), &[point(1, 0.9, 1.0)]);
        assert!(matches!(
            store.finish_evaluation(ok, &outcome(), &[]),
            Err(StoreError::NotRunning {
                status: Status::Ok,
                ..
            })
        ));
        assert!(matches!(
            store.fail_evaluation(ok, &Failure::new("x", "y")),
            Err(StoreError::NotRunning { .. })
        ));
        let bad = failed(&mut store, run, &key("b", "h", &[]), "crash: SIGSEGV");
        assert!(matches!(
            store.finish_evaluation(bad, &outcome(), &[]),
            Err(StoreError::NotRunning {
                status: Status::Failed,
                ..
            })
        ));
        assert_eq!(
            store.completed(&key("b", "h", &[])).unwrap(),
            Some(Completed {
                id: bad,
                status: Status::Failed
            })
        );
        let e = store.evaluation(bad).unwrap();
        assert_eq!(e.failure_reason.as_deref(), Some("crash: SIGSEGV"));
        assert_eq!(e.failure_detail.as_deref(), Some("detail"));
        let skipped = store.start_evaluation(&key("c", "h", &[]), run).unwrap();
        store
            .skip_evaluation(
                skipped,
                &Failure::new("missing package libfoo-dev", "apt-get install libfoo-dev"),
            )
            .unwrap();
        assert_eq!(
            store.completed(&key("c", "h", &[])).unwrap(),
            None,
            "skipped is retried"
        );
        assert!(matches!(
            store.start_evaluation(&key("d", "h", &[]), RunId(77)),
            Err(StoreError::UnknownRun(_))
        ));
    }

    #[test]
    fn invalid_points_are_rejected_whole() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store.start_evaluation(&key("a", "h", &[]), run).unwrap();
        let mut cases = Vec::new();
        let mut p = point(1, 0.9, 100.0);
        p.recall = 1.2;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.qps = 0.0;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.recall_min = 0.95;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.latency_p99_us = 0.0;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.runs = 0;
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.distance_computations = Some(f64::NAN);
        cases.push(p);
        let mut p = point(1, 0.9, 100.0);
        p.mode = Mode::Batch { threads: 0 };
        cases.push(p);
        for bad in cases {
            let err = store
                .finish_evaluation(id, &outcome(), &[point(2, 0.5, 10.0), bad.clone()])
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("sweep point 1"), "{err}");
        }
        let bad_outcome = EvaluationOutcome {
            build_seconds: f64::NAN,
            ..outcome()
        };
        assert!(store.finish_evaluation(id, &bad_outcome, &[]).is_err());
        assert_eq!(count(&store, "SELECT count(*) FROM sweep_points"), 0);
        assert_eq!(store.evaluation(id).unwrap().status, Status::Running);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        drop(Store::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("newer than version {SCHEMA_VERSION}")),
            "{err}"
        );
    }

    #[test]
    fn foreign_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Foreign { .. })
        ));
        let path = dir.path().join("other2.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "application_id", 42).unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Foreign { .. })
        ));
    }

    #[test]
    fn database_is_wal_with_foreign_keys() {
        let (_dir, store) = open_tmp();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(count(&store, "PRAGMA foreign_keys"), 1);
        assert_eq!(count(&store, "PRAGMA application_id"), APPLICATION_ID);
    }

    #[test]
    fn config_key_is_stable() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let c = config();
        assert_eq!(
            c.canonical_json(),
            r#"{"k":10,"runs":3,"mode":{"kind":"single"},"query_count":1000}"#
        );
        assert_eq!(
            c.key(),
            format!("{:016x}", fnv1a64(c.canonical_json().as_bytes()))
        );
        let batch = EvalConfig {
            mode: Mode::Batch { threads: 4 },
            ..config()
        };
        assert_ne!(batch.key(), c.key());
        assert!(
            batch
                .canonical_json()
                .contains(r#""mode":{"kind":"batch","threads":4}"#)
        );
        assert_eq!(
            batch.describe(),
            "k=10, R=3, batch, 4 threads, 1000 queries"
        );
    }

    #[test]
    fn long_logs_keep_their_tail() {
        let log = format!("{}END", "é".repeat(MAX_LOG_BYTES));
        let cut = log_excerpt(&log);
        assert!(cut.ends_with("END"));
        assert!(cut.starts_with("[… "));
        assert!(cut.len() < MAX_LOG_BYTES + 64);
        assert_eq!(log_excerpt("short"), "short");
    }

    #[test]
    fn leaderboard_semantics() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        // alpha: two build sets, rewards 500 and 1000; the best is shown.
        finished(
            &mut store,
            run,
            &key("alpha", "a1", &[("M", "8")]),
            &[point(10, 0.9, 1000.0)],
        );
        let alpha_best = finished(
            &mut store,
            run,
            &key("alpha", "a1", &[("M", "16")]),
            &[point(10, 0.96, 1000.0)],
        );
        // beta: reward 1000 too: tie broken by name (alpha first).
        finished(
            &mut store,
            run,
            &key("beta", "b1", &[]),
            &[point(10, 0.95, 1000.0)],
        );
        // gamma: reward 2000 but one build set failed.
        finished(
            &mut store,
            run,
            &key("gamma", "g1", &[("M", "8")]),
            &[point(10, 0.99, 2000.0)],
        );
        failed(
            &mut store,
            run,
            &key("gamma", "g1", &[("M", "64")]),
            "out of memory (cap 8 GiB)",
        );
        // delta: works but never reaches 0.85: reward 0, still above failures.
        finished(
            &mut store,
            run,
            &key("delta", "d1", &[]),
            &[point(10, 0.5, 9000.0)],
        );
        // epsilon: the old version was good, the newest version crashes.
        finished(
            &mut store,
            run,
            &key("epsilon", "e1", &[]),
            &[point(10, 0.99, 5000.0)],
        );
        failed(
            &mut store,
            run,
            &key("epsilon", "e2", &[]),
            "crash: SIGSEGV",
        );
        // zeta: skipped; eta: only running (ignored).
        let z = store
            .start_evaluation(&key("zeta", "z1", &[]), run)
            .unwrap();
        store
            .skip_evaluation(z, &Failure::new("missing package libfoo-dev", ""))
            .unwrap();
        store.start_evaluation(&key("eta", "t1", &[]), run).unwrap();
        // theta: points with invalid queries do not count.
        let mut invalid = point(10, 0.99, 1e6);
        invalid.invalid_queries = 3;
        finished(
            &mut store,
            run,
            &key("theta", "t1", &[]),
            &[invalid, point(20, 0.9, 100.0)],
        );
        // A different config is another leaderboard.
        let mut other = key("alpha", "a1", &[]);
        other.config.k = 100;
        finished(&mut store, run, &other, &[point(10, 0.99, 1.0)]);

        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        assert_eq!(lb.scope.config.k, 100, "the most recent scope is chosen");
        let scopes = store.scopes("d5a7a5e7").unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0].config.k, 100);
        let lb = store.leaderboard_for(&scopes[1]).unwrap();
        let names: Vec<&str> = lb.rows.iter().map(|r| r.variant_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gamma", "alpha", "beta", "theta", "delta", "epsilon", "zeta"
            ]
        );
        assert_eq!(
            lb.rows.iter().map(|r| r.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        let row = |name: &str| lb.rows.iter().find(|r| r.variant_name == name).unwrap();

        assert!((row("gamma").reward - 2000.0).abs() < 1e-9);
        assert_eq!(row("gamma").status_text, "ok (1 of 2 build sets failed)");
        assert_eq!(row("gamma").evaluation_ids.len(), 2);
        let alpha = row("alpha");
        assert_eq!(alpha.evaluation_id, alpha_best);
        assert_eq!(alpha.build_params.get("M").map(String::as_str), Some("16"));
        assert_eq!(alpha.qps_at_095, Some(1000.0));
        assert_eq!(alpha.qps_at_099, None);
        assert_eq!(alpha.build_seconds, Some(1.25));
        assert_eq!(alpha.index_memory_bytes, Some(10 << 20));
        assert_eq!(alpha.status, Status::Ok);
        assert!(
            (row("theta").reward - 50.0).abs() < 1e-9,
            "invalid point excluded"
        );
        assert_eq!(row("delta").reward, 0.0);
        assert_eq!(row("delta").status, Status::Ok);
        assert_eq!(row("delta").max_recall, Some(0.5));
        let eps = row("epsilon");
        assert_eq!(eps.variant_hash, "e2");
        assert_eq!(eps.status, Status::Failed);
        assert_eq!(eps.status_text, "failed: crash: SIGSEGV");
        assert_eq!(eps.reward, 0.0);
        assert_eq!(row("zeta").status, Status::Skipped);
        assert_eq!(
            row("zeta").status_text,
            "skipped: missing package libfoo-dev"
        );
        assert!(!names.contains(&"eta"));

        let runs = store.runs_of(&lb).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, run);
        assert!(store.leaderboard("no-such-dataset").unwrap().is_none());
    }

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

    #[test]
    fn sandboxing_and_build_threads_are_stored_and_shown() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store.start_evaluation(&key("open", "h", &[]), run).unwrap();
        let unsandboxed = EvaluationOutcome {
            sandboxed: false,
            build_threads: 4,
            ..outcome()
        };
        store
            .finish_evaluation(id, &unsandboxed, &[point(10, 0.9, 100.0)])
            .unwrap();
        let e = store.evaluation(id).unwrap();
        assert_eq!((e.sandboxed, e.build_threads), (Some(false), Some(4)));
        finished(
            &mut store,
            run,
            &key("boxed", "h", &[]),
            &[point(10, 0.9, 90.0)],
        );
        let crash = store
            .start_evaluation(&key("crash", "h", &[]), run)
            .unwrap();
        let failure = Failure {
            sandboxed: Some(false),
            ..Failure::new("crash: SIGSEGV", "")
        };
        store.fail_evaluation(crash, &failure).unwrap();
        let unknown = store
            .start_evaluation(&key("unknown", "h", &[]), run)
            .unwrap();
        store
            .skip_evaluation(unknown, &Failure::new("missing package libfoo-dev", ""))
            .unwrap();
        // An older host recorded skips with the status word in the reason.
        let older = store
            .start_evaluation(&key("older", "h", &[]), run)
            .unwrap();
        store
            .skip_evaluation(older, &Failure::new("skipped: libbar-dev missing", ""))
            .unwrap();
        assert_eq!(store.evaluation(crash).unwrap().sandboxed, Some(false));
        assert_eq!(store.evaluation(unknown).unwrap().sandboxed, None);

        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        let row = |name: &str| lb.rows.iter().find(|r| r.variant_name == name).unwrap();
        assert_eq!(row("open").status_text, "ok (unsandboxed)");
        assert_eq!(row("open").sandboxed, Some(false));
        assert_eq!(row("open").build_threads, Some(4));
        assert_eq!(row("boxed").status_text, "ok");
        assert_eq!(row("boxed").sandboxed, Some(true));
        assert_eq!(
            row("crash").status_text,
            "failed: crash: SIGSEGV (unsandboxed)"
        );
        assert_eq!(
            row("unknown").status_text,
            "skipped: missing package libfoo-dev"
        );
        assert_eq!(row("older").status_text, "skipped: libbar-dev missing");

        let id = store.start_evaluation(&key("zero", "h", &[]), run).unwrap();
        let zero_threads = EvaluationOutcome {
            build_threads: 0,
            ..outcome()
        };
        let err = store.finish_evaluation(id, &zero_threads, &[]).unwrap_err();
        assert!(
            err.to_string().contains("build threads must be >= 1"),
            "{err}"
        );
    }

    #[test]
    fn rows_whose_frontier_rests_on_disagreeing_runs_are_flagged() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host run").unwrap();
        let disagreeing = |ef, recall, qps| SweepPoint {
            recall_min: recall,
            recall_max: recall + 0.01,
            runs_disagree: true,
            ..point(ef, recall, qps)
        };
        // On the frontier: flagged.
        finished(
            &mut store,
            run,
            &key("flaky", "h", &[]),
            &[point(10, 0.9, 100.0), disagreeing(20, 0.95, 50.0)],
        );
        // Dominated (lower recall and QPS than another point): not flagged.
        finished(
            &mut store,
            run,
            &key("steady", "h", &[]),
            &[point(10, 0.9, 100.0), disagreeing(5, 0.8, 90.0)],
        );
        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        let row = |name: &str| lb.rows.iter().find(|r| r.variant_name == name).unwrap();
        assert!(row("flaky").runs_disagree);
        assert!(!row("steady").runs_disagree);
    }

    #[test]
    fn version_2_database_is_migrated_and_old_rows_read_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO runs (started_at, command, cpu_model, cpu_flags, logical_cores, \
                 memory_bytes, os, rustc_version, host_version) \
                 VALUES ('2025-01-01T00:00:00.000Z', 'old', 'cpu', '', 2, 0, 'linux', 'rustc', '0');
                 INSERT INTO evaluations (run_id, variant_name, variant_hash, dataset_name, \
                 dataset_hash, build_params_json, config_json, config_key, k, runs, mode, threads, \
                 query_count, status, build_seconds, started_at, finished_at) \
                 VALUES (1, 'old', 'h', 'synthetic', 'd5a7a5e7', '{{}}', '{}', '{}', 10, 3, \
                 'single', 1, 1000, 'ok', 1.25, '2025-01-01T00:00:00.000Z', \
                 '2025-01-01T00:00:01.000Z');
                 INSERT INTO sweep_points (evaluation_id, ordinal, search_params_json, recall, \
                 recall_min, recall_max, runs_disagree, qps, latency_p50_us, latency_p95_us, \
                 latency_p99_us, runs, invalid_queries, mode, threads) \
                 VALUES (1, 0, '{{\"ef\":\"10\"}}', 0.9, 0.9, 0.9, 0, 100, 1, 2, 3, 3, 0, 'single', 1);",
                config().canonical_json(),
                config().key()
            ))
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        let e = store.evaluation(EvalId(1)).unwrap();
        assert_eq!((e.sandboxed, e.build_threads), (None, None));
        assert_eq!(e.build_seconds, Some(1.25));
        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        assert_eq!(lb.rows[0].status_text, "ok");
        assert_eq!(
            (lb.rows[0].sandboxed, lb.rows[0].build_threads),
            (None, None)
        );
        // The migrated file takes new rows with the new columns.
        let run = store.begin_run(&env(), "new").unwrap();
        let id = finished(
            &mut store,
            run,
            &key("new", "h", &[]),
            &[point(1, 0.9, 1.0)],
        );
        assert_eq!(store.evaluation(id).unwrap().build_threads, Some(2));
    }

    #[test]
    fn negative_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", -1).unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    }
}
