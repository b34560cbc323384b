//! The record of one attempt of the Slurm executor at an evaluation: the
//! array task that served (or was to serve) the evaluation's mailbox, and
//! what Slurm said about it.

use serde::{Deserialize, Serialize};

/// One Slurm array task at one evaluation, as the coordinator last saw it.
///
/// Times are Unix seconds here and UTC RFC 3339 text in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmAttempt {
    /// 0 for the first submission, n for the n-th resubmission.
    pub attempt: u32,
    /// The attempt's mailbox directory on the shared directory; one row per
    /// (evaluation, directory).
    pub directory: String,
    /// Slurm's id of the array job.
    pub job_id: u64,
    /// The task's index in the array.
    pub array_index: u32,
    /// Slurm's job state as last seen (`PENDING`, `RUNNING`, `COMPLETED`,
    /// `CANCELLED`, `FAILED`, `TIMEOUT`, `PREEMPTED`, `NODE_FAIL`, …).
    pub state: String,
    /// Slurm's reason for the state; `None` when Slurm gives none.
    pub reason: Option<String>,
    /// Slurm's exit code, `status:signal` (e.g. `0:15`).
    pub exit_code: Option<String>,
    /// The node the task ran on; `None` when it never ran.
    pub node: Option<String>,
    /// Why the coordinator gave the attempt up (the evaluation was then
    /// resubmitted or failed); `None` when it answered to the end or is
    /// still live.
    pub lost: Option<String>,
    /// When it was submitted.
    pub submitted_at: i64,
    /// When it started on its node.
    pub started_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
}

impl SlurmAttempt {
    /// Slurm's name of the task, `<job>_<index>`.
    pub fn task_id(&self) -> String {
        format!("{}_{}", self.job_id, self.array_index)
    }
}
