//! The program database of `host evolve` (schema version 2): variant
//! lineage and every generated candidate with its prompt, raw response,
//! build log, status, reward and metrics.
//!
//! A candidate moves through one status change: it is inserted as
//! `generated` ([`Store::insert_candidate`]) and closed once
//! ([`Store::close_candidate`]) as `ok` with its reward, or as a failure
//! whose artifact (compiler error, check table, signal) the next prompt of
//! its lineage shows. Within one evolve session a content hash is unique,
//! so the same content is never evaluated twice.

use std::fmt;

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::store::{Result, Store, StoreError};

/// Where a variant came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// The parent variant's name.
    pub parent: String,
    /// The slot that differs from the parent: `construction`, `search` or
    /// `refinement`.
    pub slot: String,
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

    fn parse(s: &str) -> Result<CandidateStatus> {
        Ok(match s {
            "generated" => CandidateStatus::Generated,
            "ok" => CandidateStatus::Ok,
            "invalid_response" => CandidateStatus::InvalidResponse,
            "build_failed" => CandidateStatus::BuildFailed,
            "check_failed" => CandidateStatus::CheckFailed,
            "evaluation_failed" => CandidateStatus::EvaluationFailed,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown candidate status `{other}`"
                )));
            }
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

const CANDIDATE_COLUMNS: &str = "id, session, name, dir, content_hash, parent_name, slot, generator, \
     prompt, response, slot_code, language, status, build_log, failure, reward, parent_reward, \
     metrics_json, dataset_hash, config_key, created_at";

fn read_candidate(r: &Row<'_>) -> rusqlite::Result<(CandidateRecord, String)> {
    let reward: Option<f64> = r.get(15)?;
    let score = match reward {
        Some(reward) => Some(CandidateScore {
            reward,
            parent_reward: r.get(16)?,
            metrics_json: r.get::<_, Option<String>>(17)?.unwrap_or_default(),
            dataset_hash: r.get::<_, Option<String>>(18)?.unwrap_or_default(),
            config_key: r.get::<_, Option<String>>(19)?.unwrap_or_default(),
        }),
        None => None,
    };
    let record = CandidateRecord {
        id: CandidateId(r.get(0)?),
        candidate: NewCandidate {
            session: r.get(1)?,
            name: r.get(2)?,
            dir: r.get(3)?,
            content_hash: r.get(4)?,
            lineage: Lineage {
                parent: r.get(5)?,
                slot: r.get(6)?,
            },
            generator: r.get(7)?,
            prompt: r.get(8)?,
            response: r.get(9)?,
            slot_code: r.get(10)?,
            language: r.get(11)?,
        },
        status: CandidateStatus::Generated,
        build_log: r.get(13)?,
        failure: r.get(14)?,
        score,
        created_at: r.get(20)?,
    };
    Ok((record, r.get(12)?))
}

/// Records (or replaces) where `variant` came from, inside `tx`.
fn upsert_lineage(tx: &Transaction<'_>, variant: &str, lineage: &Lineage) -> Result<()> {
    tx.execute(
        "INSERT INTO lineage (variant_name, parent_name, slot) VALUES (?1, ?2, ?3) \
         ON CONFLICT (variant_name) DO UPDATE SET parent_name = excluded.parent_name, \
         slot = excluded.slot",
        params![variant, lineage.parent, lineage.slot],
    )?;
    Ok(())
}

impl Store {
    /// Records (or replaces) where `variant` came from.
    pub fn record_lineage(&mut self, variant: &str, lineage: &Lineage) -> Result<()> {
        self.write(|tx| upsert_lineage(tx, variant, lineage))
    }

    /// Where `variant` came from, if recorded.
    pub fn lineage(&self, variant: &str) -> Result<Option<Lineage>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT parent_name, slot FROM lineage WHERE variant_name = ?1",
                [variant],
                |r| {
                    Ok(Lineage {
                        parent: r.get(0)?,
                        slot: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a generated candidate (status `generated`) and its lineage.
    /// Fails when the session already holds the same content hash.
    pub fn insert_candidate(&mut self, candidate: &NewCandidate) -> Result<CandidateId> {
        self.write(|tx| {
        tx.execute(
            "INSERT INTO candidates (session, name, dir, content_hash, parent_name, slot, generator, \
             prompt, response, slot_code, language, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'generated')",
            params![
                candidate.session,
                candidate.name,
                candidate.dir,
                candidate.content_hash,
                candidate.lineage.parent,
                candidate.lineage.slot,
                candidate.generator,
                candidate.prompt,
                candidate.response,
                candidate.slot_code,
                candidate.language,
            ],
        )?;
        let id = tx.last_insert_rowid();
        upsert_lineage(tx, &candidate.name, &candidate.lineage)?;
        Ok(CandidateId(id))
        })
    }

    /// Closes a `generated` candidate as `status`. An `Ok` candidate needs
    /// `score`; a failure needs the artifact in `failure`.
    pub fn close_candidate(
        &mut self,
        id: CandidateId,
        status: CandidateStatus,
        build_log: Option<&str>,
        failure: Option<&str>,
        score: Option<&CandidateScore>,
    ) -> Result<()> {
        if (status == CandidateStatus::Ok) != score.is_some()
            || status == CandidateStatus::Generated
        {
            return Err(StoreError::Invalid {
                what: format!("candidate {}", id.0),
                reason: format!("status {status} needs a score exactly when it is ok"),
            });
        }
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE candidates SET status = ?2, build_log = ?3, failure = ?4, reward = ?5, \
             parent_reward = ?6, metrics_json = ?7, dataset_hash = ?8, config_key = ?9, \
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE id = ?1 AND status = 'generated'",
                params![
                    id.0,
                    status.as_str(),
                    build_log,
                    failure,
                    score.map(|s| s.reward),
                    score.and_then(|s| s.parent_reward),
                    score.map(|s| s.metrics_json.as_str()),
                    score.map(|s| s.dataset_hash.as_str()),
                    score.map(|s| s.config_key.as_str()),
                ],
            )?;
            if changed != 1 {
                return Err(StoreError::Invalid {
                    what: format!("candidate {}", id.0),
                    reason: "it is not open (already closed, or unknown)".into(),
                });
            }
            Ok(())
        })
    }

    /// The candidate of `session` with `content_hash`, if any.
    pub fn candidate_by_hash(
        &self,
        session: &str,
        content_hash: &str,
    ) -> Result<Option<CandidateRecord>> {
        self.query_candidates(
            "WHERE session = ?1 AND content_hash = ?2",
            params![session, content_hash],
        )
        .map(|mut v| v.pop())
    }

    /// The candidate named `name`, if any.
    pub fn candidate_named(&self, name: &str) -> Result<Option<CandidateRecord>> {
        self.query_candidates("WHERE name = ?1", params![name])
            .map(|mut v| v.pop())
    }

    /// Every candidate of `session`, oldest first.
    pub fn session_candidates(&self, session: &str) -> Result<Vec<CandidateRecord>> {
        self.query_candidates("WHERE session = ?1", params![session])
    }

    /// Every candidate that changed `slot` (any session), oldest first.
    pub fn slot_candidates(&self, slot: &str) -> Result<Vec<CandidateRecord>> {
        self.query_candidates("WHERE slot = ?1", params![slot])
    }

    /// Every candidate, oldest first.
    pub fn all_candidates(&self) -> Result<Vec<CandidateRecord>> {
        self.query_candidates("", params![])
    }

    fn query_candidates(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<CandidateRecord>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {CANDIDATE_COLUMNS} FROM candidates {filter} ORDER BY id"
        ))?;
        let rows = stmt.query_map(args, read_candidate)?;
        rows.map(|row| {
            let (mut record, status) = row?;
            record.status = CandidateStatus::parse(&status)?;
            Ok(record)
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(session: &str, name: &str, hash: &str) -> NewCandidate {
        NewCandidate {
            session: session.into(),
            name: name.into(),
            dir: format!("evolved/{name}"),
            content_hash: hash.into(),
            lineage: Lineage {
                parent: "hnsw".into(),
                slot: "search".into(),
            },
            generator: "tune".into(),
            prompt: None,
            response: Some("traversal: f32 -> sq8".into()),
            slot_code: None,
            language: None,
        }
    }

    fn score(reward: f64) -> CandidateScore {
        CandidateScore {
            reward,
            parent_reward: Some(100.0),
            metrics_json: "{}".into(),
            dataset_hash: "d".into(),
            config_key: "c".into(),
        }
    }

    #[test]
    fn candidates_round_trip_and_close_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("r.sqlite")).unwrap();
        let id = store.insert_candidate(&candidate("s", "a", "h1")).unwrap();
        assert_eq!(
            store.lineage("a").unwrap(),
            Some(Lineage {
                parent: "hnsw".into(),
                slot: "search".into()
            })
        );
        let open = store.candidate_named("a").unwrap().unwrap();
        assert_eq!(open.status, CandidateStatus::Generated);
        assert!(
            store
                .close_candidate(id, CandidateStatus::Ok, None, None, None)
                .is_err(),
            "ok needs a score"
        );
        store
            .close_candidate(id, CandidateStatus::Ok, None, None, Some(&score(120.0)))
            .unwrap();
        let closed = store.candidate_by_hash("s", "h1").unwrap().unwrap();
        assert_eq!(closed.status, CandidateStatus::Ok);
        assert_eq!(closed.score.unwrap().reward, 120.0);
        assert!(
            store
                .close_candidate(id, CandidateStatus::BuildFailed, Some("e"), Some("e"), None)
                .is_err(),
            "a closed candidate stays closed"
        );
    }

    #[test]
    fn a_session_never_holds_the_same_content_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("r.sqlite")).unwrap();
        store.insert_candidate(&candidate("s", "a", "h")).unwrap();
        assert!(store.insert_candidate(&candidate("s", "b", "h")).is_err());
        store.insert_candidate(&candidate("t", "c", "h")).unwrap();
        assert_eq!(store.session_candidates("s").unwrap().len(), 1);
        assert_eq!(store.slot_candidates("search").unwrap().len(), 2);
    }
}
