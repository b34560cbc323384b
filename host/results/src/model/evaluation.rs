//! Runs, evaluations and their sweep points: what the results database
//! records about every measurement, as plain values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Machine;
use crate::reward::{RecallQps, RewardSummary};

/// A string-to-string parameter map (build or search parameters), kept sorted
/// so that its JSON form is canonical.
pub type ParamMap = BTreeMap<String, String>;

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
    pub extra: ParamMap,
}

impl Environment {
    /// Reads the CPU model, flags, core count, memory and kernel of this Linux
    /// machine from `/proc` (fields that cannot be read stay empty / 0) and
    /// fills in the given software versions.
    pub fn detect(host_version: &str, rustc_version: &str, git_commit: Option<&str>) -> Self {
        let (cpu_model, cpu_flags) = super::machine::this_cpu();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            cpu_model,
            cpu_flags,
            logical_cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            memory_bytes: memory_kib * 1024,
            os: format!("{} {}", std::env::consts::OS, release.trim())
                .trim()
                .to_string(),
            rustc_version: rustc_version.to_string(),
            host_version: host_version.to_string(),
            git_commit: git_commit.map(str::to_string),
            extra: ParamMap::new(),
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
    /// UTC end time, `None` if the run never called [`Store::end_run`](crate::Store::end_run) (killed or still going).
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
            Mode::Batch { threads: 1 } => "batch, 1 thread".to_string(),
            Mode::Batch { threads } => format!("batch, {threads} threads"),
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
    pub extra: ParamMap,
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
    pub build_params: ParamMap,
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

    /// The status whose [`Status::as_str`] is `s`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Status::Running),
            "ok" => Some(Status::Ok),
            "failed" => Some(Status::Failed),
            "skipped" => Some(Status::Skipped),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful build reported, stored by [`Store::finish_evaluation`](crate::Store::finish_evaluation).
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
    /// Excerpt of the build log (the last [`MAX_LOG_BYTES`](crate::store::MAX_LOG_BYTES) are kept).
    pub build_log: Option<String>,
    /// Whether the worker that ran the variant's code was sandboxed.
    /// Reports mark rows with `false` as `unsandboxed`.
    pub sandboxed: bool,
    /// Threads the index build ran with (>= 1).
    pub build_threads: u32,
    /// Whether the variant's slots are its own compiled code or a Python
    /// library served through the bridge.
    pub implementation: Implementation,
}

/// How a variant's slots are implemented; benchmark tables say which, so a
/// bridged library's figures are read with the bridge's cost in mind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Implementation {
    /// Compiled code loaded straight into the worker (Rust, C or C++).
    Native,
    /// A Python library called through `annvil-python-bridge`.
    PythonBridge,
}

impl Implementation {
    /// Its value in the results database and in JSON (`native`,
    /// `python-bridge`), the one place it is spelled.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::PythonBridge => "python-bridge",
        }
    }

    /// The stored value read back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Native, Self::PythonBridge]
            .into_iter()
            .find(|i| i.as_str() == s)
    }

    /// How reports name it: "native", "Python bridge".
    pub fn label(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::PythonBridge => "Python bridge",
        }
    }
}

impl From<Implementation> for &'static str {
    fn from(implementation: Implementation) -> Self {
        implementation.as_str()
    }
}

impl TryFrom<String> for Implementation {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Implementation::parse(&value).ok_or_else(|| format!("unknown implementation {value:?}"))
    }
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
    /// Excerpt of the build or worker log (the last [`MAX_LOG_BYTES`](crate::store::MAX_LOG_BYTES) are kept).
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
    pub search_params: ParamMap,
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
    /// build set, see [`summarize_points`](crate::leaderboard::summarize_points)).
    pub(crate) fn on_frontier(&self, summary: &RewardSummary) -> bool {
        self.is_valid() && summary.frontier.contains(&self.recall_qps())
    }
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
    /// Native or bridged; `None`: unknown (rows of schema version 4 and
    /// earlier) or no build.
    pub implementation: Option<Implementation>,
    /// The node it was measured on; `None`: never measured (skipped, or
    /// failed before a node reported).
    pub machine: Option<Machine>,
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
            machine_type: self.machine.as_ref().map(Machine::machine_type),
        }
    }
}

/// An evaluation found by [`Store::completed`](crate::Store::completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completed {
    /// Its id.
    pub id: EvalId,
    /// `Ok` or `Failed`.
    pub status: Status,
}

/// What the Python bridge costs per query, measured by the trusted
/// measurer with a no-op adapter (its "library" answers at once) in the
/// same scope as the bridged variants it is reported with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BridgeOverhead {
    /// Wall time per query of the fastest run.
    pub seconds_per_query: f64,
    /// Queries in that run.
    pub queries: u64,
}

/// One leaderboard: a dataset version under one measurement config, on
/// one machine type.
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
    /// [`Machine::machine_type`] of the nodes its figures were measured
    /// on; `None` only where nothing of its dataset and config was.
    pub machine_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::config;

    #[test]
    fn implementations_are_spelled_once_for_json_and_the_database() {
        for implementation in [Implementation::Native, Implementation::PythonBridge] {
            let json = serde_json::to_string(&implementation).unwrap();
            assert_eq!(json, format!("\"{}\"", implementation.as_str()));
            let back: Implementation = serde_json::from_str(&json).unwrap();
            assert_eq!(back, implementation);
        }
        assert!(serde_json::from_str::<Implementation>("\"cython\"").is_err());
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
}
