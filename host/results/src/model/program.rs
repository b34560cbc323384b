//! The records of `host evolve`'s program database: variant lineage and
//! every generated candidate with its prompt, raw response, build log,
//! status, reward and metrics.
//!
//! A candidate moves through one status change: it is inserted as
//! `generated` ([`Store::insert_candidate`](crate::Store::insert_candidate))
//! and closed once ([`Store::close_candidate`](crate::Store::close_candidate))
//! as `ok` with its reward, or as a failure whose artifact (compiler error,
//! check table, signal) the next prompt of its lineage shows. Within one
//! evolve session a content hash is unique, so the same content is never
//! evaluated twice.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a variant came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// The parent variant's name.
    pub parent: String,
    /// The slot that differs from the parent: `construction`, `search` or
    /// `refinement`.
    pub slot: String,
    /// What the variant changes, in a few words (`change:` in variant.yaml),
    /// for the "what made the difference" table of `docs/BENCHMARKS.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

/// How a candidate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CandidateStatus {
    /// Materialised, not yet built or evaluated.
    Generated,
    /// Evaluated; it has a reward.
    Ok,
    /// The generator's answer held no usable code.
    InvalidResponse,
    /// The library did not compile.
    BuildFailed,
    /// The conformance suite failed.
    CheckFailed,
    /// The evaluation failed (crash, timeout, invalid results).
    EvaluationFailed,
}

impl CandidateStatus {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateStatus::Generated => "generated",
            CandidateStatus::Ok => "ok",
            CandidateStatus::InvalidResponse => "invalid_response",
            CandidateStatus::BuildFailed => "build_failed",
            CandidateStatus::CheckFailed => "check_failed",
            CandidateStatus::EvaluationFailed => "evaluation_failed",
        }
    }

    /// The status whose [`CandidateStatus::as_str`] is `s`.
    pub(crate) fn parse(s: &str) -> Option<CandidateStatus> {
        Some(match s {
            "generated" => CandidateStatus::Generated,
            "ok" => CandidateStatus::Ok,
            "invalid_response" => CandidateStatus::InvalidResponse,
            "build_failed" => CandidateStatus::BuildFailed,
            "check_failed" => CandidateStatus::CheckFailed,
            "evaluation_failed" => CandidateStatus::EvaluationFailed,
            _ => return None,
        })
    }
}

impl fmt::Display for CandidateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Id of a candidate row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CandidateId(pub i64);

/// A candidate as generated, before evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCandidate {
    /// The evolve session it belongs to (resumption and de-duplication
    /// are per session).
    pub session: String,
    /// Variant name (unique in the database).
    pub name: String,
    /// Variant directory.
    pub dir: String,
    /// Hash of the generated content.
    pub content_hash: String,
    /// Parent variant and changed slot.
    pub lineage: Lineage,
    /// `llm`, `cmd`, `tune` or `recombine`.
    pub generator: String,
    /// The prompt, for generators that take one.
    pub prompt: Option<String>,
    /// The raw answer, or a description of the mutation.
    pub response: Option<String>,
    /// The slot's source code as materialised, when it is code.
    pub slot_code: Option<String>,
    /// `rust`, `c` or `cpp`, when it is code.
    pub language: Option<String>,
}

/// How an evaluated candidate scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// Its reward.
    pub reward: f64,
    /// The parent's reward in the same scope.
    pub parent_reward: Option<f64>,
    /// Further figures (QPS@…, max recall, build seconds), as JSON.
    pub metrics_json: String,
    /// Dataset hash of the scope it was scored in.
    pub dataset_hash: String,
    /// Config key of that scope.
    pub config_key: String,
}

/// One row of the `candidates` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// Row id.
    pub id: CandidateId,
    /// As inserted.
    pub candidate: NewCandidate,
    /// Current status.
    pub status: CandidateStatus,
    /// Compiler output of a failed build.
    pub build_log: Option<String>,
    /// The failure artifact shown to the next prompt.
    pub failure: Option<String>,
    /// The score, when `Ok`.
    pub score: Option<CandidateScore>,
    /// Insertion time, UTC RFC 3339.
    pub created_at: String,
}
