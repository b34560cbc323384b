//! Results database, reward and leaderboard reports for the annvil host.
//!
//! - [`model`]: the records, as plain values: runs, evaluations, sweep
//!   points, failures, status, scopes; evolve's lineage and candidates.
//! - [`store`]: the embedded SQLite results database that keeps them
//!   (SQL, schema and migrations), crash-safe and schema-versioned.
//! - [`reward`]: pure functions turning sweep points into the reward (mean of
//!   the achievable QPS over recall 0.85–0.95, integrated exactly), QPS@0.90/
//!   0.95/0.99 and the Pareto frontier.
//! - [`sweep`]: the adaptive sweep rule (which knob values to measure next).
//! - [`leaderboard`]: one ranked row per variant of a scope, at its best
//!   build set.
//! - [`report`]: one module per format: the terminal table, Markdown / JSON /
//!   CSV leaderboards, the QPS–recall plot (SVG and PNG), a self-contained
//!   HTML page, the lineage tree and `docs/BENCHMARKS.md` sections.
//!
//! The crate depends on no other annvil crate: its API takes plain strings,
//! numbers and maps. The database schema is documented in `docs/RESULTS_DB.md`.
#![forbid(unsafe_code)]

pub mod leaderboard;
pub mod model;
pub mod report;
pub mod reward;
pub mod store;
pub mod sweep;

#[cfg(test)]
mod fixtures;

pub use leaderboard::{Leaderboard, LeaderboardRow};
pub use model::{
    BridgeOverhead, CandidateId, CandidateRecord, CandidateScore, CandidateStatus, Completed,
    Environment, EvalConfig, EvalId, EvaluationKey, EvaluationOutcome, EvaluationRecord, Failure,
    Implementation, Lineage, Machine, Mode, NewCandidate, ParamMap, RunId, RunRecord, Scope,
    SlurmAttempt, Status, SweepPoint,
};
pub use report::{ReportData, ReportFiles, terminal_table, write_reports};
pub use reward::{RecallQps, RewardSummary, summarize};
pub use store::{Store, StoreError};
pub use sweep::{AdaptivePolicy, KnobPoint, propose_knobs};
