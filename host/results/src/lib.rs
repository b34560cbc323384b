//! Results database, reward and leaderboard reports for the annvil host.
//!
//! - [`reward`]: pure functions turning sweep points into the reward (mean of
//!   the achievable QPS over recall 0.85–0.95, integrated exactly), QPS@0.90/
//!   0.95/0.99, the Pareto frontier, and adaptive placement of sweep points.
//! - [`store`]: the embedded SQLite results database (runs, evaluations,
//!   sweep points, failures), crash-safe, schema-versioned; leaderboards.
//! - [`report`]: Markdown / JSON / CSV leaderboards, the QPS–recall plot
//!   (SVG and PNG), a self-contained HTML page and the terminal table.
//!
//! The crate depends on no other annvil crate: its API takes plain strings,
//! numbers and maps. The database schema is documented in `docs/RESULTS_DB.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod program;
pub mod report;
pub mod reward;
pub mod store;

pub use program::{
    CandidateId, CandidateRecord, CandidateScore, CandidateStatus, Lineage, NewCandidate,
};
pub use report::{ReportData, ReportFiles, terminal_table, write_reports};
pub use reward::{AdaptivePolicy, KnobPoint, RecallQps, RewardSummary, propose_knobs, summarize};
pub use store::{
    Completed, Environment, EvalConfig, EvalId, EvaluationKey, EvaluationOutcome, EvaluationRecord,
    Failure, Leaderboard, LeaderboardRow, Mode, Params, RunId, RunRecord, Scope, Status, Store,
    StoreError, SweepPoint,
};
