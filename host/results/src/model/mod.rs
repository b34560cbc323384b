//! The data model: the records the results database stores and returns, as
//! plain values with no SQL in them.
//!
//! - `evaluation.rs`: runs, evaluations (one build-parameter set of one
//!   variant on one dataset), their sweep points, failures and status, and the
//!   scope (dataset × measurement config × machine type) a leaderboard ranks.
//! - `machine.rs`: the node an evaluation was measured on and the machine
//!   type a leaderboard is scoped to.
//! - `program.rs`: `host evolve`'s program database: lineage and candidates.
//! - `slurm.rs`: the attempts of the Slurm executor at an evaluation.

mod evaluation;
mod machine;
mod program;
mod slurm;

pub use evaluation::{
    BridgeOverhead, Completed, Environment, EvalConfig, EvalId, EvaluationKey, EvaluationOutcome,
    EvaluationRecord, Failure, Implementation, Mode, ParamMap, RunId, RunRecord, Scope, Status,
    SweepPoint,
};
pub use machine::{Machine, simd_level};
pub use program::{
    CandidateId, CandidateRecord, CandidateScore, CandidateStatus, Lineage, NewCandidate,
};
pub use slurm::SlurmAttempt;
