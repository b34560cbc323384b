//! The `lineage` and `candidates` tables of `host evolve`'s program
//! database (schema version 2).

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Result, Store, StoreError};
use crate::model::{
    CandidateId, CandidateRecord, CandidateScore, CandidateStatus, Lineage, NewCandidate,
};

/// The columns [`read_candidate`] reads, in its order.
const CANDIDATE_COLUMNS: &str = "id, session, name, dir, content_hash, parent_name, slot, generator, \
     prompt, response, slot_code, language, status, build_log, failure, reward, parent_reward, \
     metrics_json, dataset_hash, config_key, created_at";

/// Reads a `candidates` row; its status column is returned undecoded.
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
                change: None,
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
        "INSERT INTO lineage (variant_name, parent_name, slot, change) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (variant_name) DO UPDATE SET parent_name = excluded.parent_name, \
         slot = excluded.slot, change = excluded.change",
        params![variant, lineage.parent, lineage.slot, lineage.change],
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
            .conn
            .query_row(
                "SELECT parent_name, slot, change FROM lineage WHERE variant_name = ?1",
                [variant],
                |r| {
                    Ok(Lineage {
                        parent: r.get(0)?,
                        slot: r.get(1)?,
                        change: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a generated candidate (status `generated`) and its lineage.
    /// Fails with [`StoreError::DuplicateContent`] when the session already
    /// holds the same content hash (checked in the write transaction, so of
    /// two writers racing with the same content exactly one wins).
    pub fn insert_candidate(&mut self, candidate: &NewCandidate) -> Result<CandidateId> {
        self.write(|tx| {
        let existing: Option<String> = tx
            .query_row(
                "SELECT name FROM candidates WHERE session = ?1 AND content_hash = ?2",
                params![candidate.session, candidate.content_hash],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = existing {
            return Err(StoreError::DuplicateContent {
                session: candidate.session.clone(),
                existing,
            });
        }
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
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CANDIDATE_COLUMNS} FROM candidates {filter} ORDER BY id"
        ))?;
        let rows = stmt.query_map(args, read_candidate)?;
        rows.map(|row| {
            let (mut record, status) = row?;
            record.status = candidate_status_column(&status)?;
            Ok(record)
        })
        .collect()
    }
}

/// Decodes the `status` column of `candidates`.
fn candidate_status_column(s: &str) -> Result<CandidateStatus> {
    CandidateStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown candidate status `{s}`")))
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
                change: None,
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
    fn a_lineage_keeps_its_change_and_a_new_record_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("r.sqlite")).unwrap();
        let mut lineage = Lineage {
            parent: "sub-dim-2".into(),
            slot: "search".into(),
            change: Some("plain PQ loss".into()),
        };
        store.record_lineage("isotropic", &lineage).unwrap();
        assert_eq!(store.lineage("isotropic").unwrap(), Some(lineage.clone()));
        lineage.change = None;
        store.record_lineage("isotropic", &lineage).unwrap();
        assert_eq!(store.lineage("isotropic").unwrap(), Some(lineage));
        assert_eq!(store.lineage("sub-dim-2").unwrap(), None);
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
                slot: "search".into(),
                change: None,
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
        assert!(matches!(
            store.insert_candidate(&candidate("s", "b", "h")),
            Err(StoreError::DuplicateContent { existing, .. }) if existing == "a"
        ));
        store.insert_candidate(&candidate("t", "c", "h")).unwrap();
        assert_eq!(store.session_candidates("s").unwrap().len(), 1);
        assert_eq!(store.slot_candidates("search").unwrap().len(), 2);
    }
}
