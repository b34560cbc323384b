//! The `slurm_attempts` table: every Slurm array task that served (or was
//! to serve) an evaluation, with Slurm's state and reason. A row is written
//! when the coordinator submits or adopts the task and rewritten when it
//! learns more (the task started, ended, was given up); its evaluation's
//! row owns it. Attempts of an evaluation left `running` by a killed
//! coordinator move to the row that resumes it ([`carry_over`]).

use rusqlite::{Row, Transaction, params};

use super::{Result, Store, StoreError};
use crate::model::{EvalId, SlurmAttempt};

/// SQLite's text of a Unix time parameter: UTC, RFC 3339 with milliseconds.
macro_rules! utc {
    ($n:literal) => {
        concat!("strftime('%Y-%m-%dT%H:%M:%fZ', ?", $n, ", 'unixepoch')")
    };
}

/// Unix seconds of a time column.
macro_rules! unix {
    ($column:literal) => {
        concat!("CAST(strftime('%s', ", $column, ") AS INTEGER)")
    };
}

/// The columns [`read`] reads, in its order.
const COLUMNS: &str = concat!(
    "attempt, directory, job_id, array_index, state, reason, exit_code, node, lost, ",
    unix!("submitted_at"),
    ", ",
    unix!("started_at"),
    ", ",
    unix!("ended_at")
);

impl Store {
    /// Records `attempt` of the Slurm executor at evaluation `id`, or
    /// updates the row of the same directory: its state, reason and why it
    /// was given up are replaced, its node, exit code and times kept where
    /// `attempt` does not know them, its submission time kept.
    pub fn record_slurm_attempt(&mut self, id: EvalId, attempt: &SlurmAttempt) -> Result<()> {
        check(attempt)?;
        self.write(|tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM evaluations WHERE id = ?1)",
                [id.0],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::UnknownEvaluation(id));
            }
            upsert(tx, id, attempt)
        })
    }

    /// The Slurm attempts at evaluation `id`, first submission first.
    pub fn slurm_attempts(&self, id: EvalId) -> Result<Vec<SlurmAttempt>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM slurm_attempts WHERE evaluation_id = ?1 ORDER BY attempt, id"
        ))?;
        let rows = stmt.query_map([id.0], read)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Writes the row of `attempt` at evaluation `id` inside `tx`.
fn upsert(tx: &Transaction<'_>, id: EvalId, attempt: &SlurmAttempt) -> Result<()> {
    tx.execute(
        concat!(
            "INSERT INTO slurm_attempts (evaluation_id, attempt, directory, job_id, array_index, \
             state, reason, exit_code, node, lost, submitted_at, started_at, ended_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ",
            utc!(11),
            ", ",
            utc!(12),
            ", ",
            utc!(13),
            ", strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             ON CONFLICT (evaluation_id, directory) DO UPDATE SET attempt = excluded.attempt, \
             job_id = excluded.job_id, array_index = excluded.array_index, \
             state = excluded.state, reason = excluded.reason, lost = excluded.lost, \
             exit_code = coalesce(excluded.exit_code, exit_code), \
             node = coalesce(excluded.node, node), \
             started_at = coalesce(excluded.started_at, started_at), \
             ended_at = coalesce(excluded.ended_at, ended_at), \
             updated_at = excluded.updated_at"
        ),
        params![
            id.0,
            attempt.attempt,
            attempt.directory,
            attempt.job_id as i64,
            attempt.array_index,
            attempt.state,
            attempt.reason,
            attempt.exit_code,
            attempt.node,
            attempt.lost,
            attempt.submitted_at,
            attempt.started_at,
            attempt.ended_at,
        ],
    )?;
    Ok(())
}

fn read(r: &Row<'_>) -> rusqlite::Result<SlurmAttempt> {
    Ok(SlurmAttempt {
        attempt: r.get(0)?,
        directory: r.get(1)?,
        job_id: r.get::<_, i64>(2)? as u64,
        array_index: r.get(3)?,
        state: r.get(4)?,
        reason: r.get(5)?,
        exit_code: r.get(6)?,
        node: r.get(7)?,
        lost: r.get(8)?,
        submitted_at: r.get(9)?,
        started_at: r.get(10)?,
        ended_at: r.get(11)?,
    })
}

/// Inside `start_evaluation`, before the row `old` left `running` by a
/// killed coordinator is deleted (its attempts with it): its attempts, for
/// [`restore`] to write under the row that resumes it.
pub(super) fn carry_over(tx: &Transaction<'_>, old: EvalId) -> Result<Vec<SlurmAttempt>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {COLUMNS} FROM slurm_attempts WHERE evaluation_id = ?1 ORDER BY attempt, id"
    ))?;
    let rows = stmt.query_map([old.0], read)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Writes the attempts [`carry_over`] took under evaluation `new`.
pub(super) fn restore(tx: &Transaction<'_>, new: EvalId, attempts: &[SlurmAttempt]) -> Result<()> {
    attempts.iter().try_for_each(|a| upsert(tx, new, a))
}

/// Fails unless `attempt` keeps the invariants of the schema.
fn check(attempt: &SlurmAttempt) -> Result<()> {
    let reason = if attempt.directory.is_empty() {
        "its directory is empty".to_owned()
    } else if attempt.job_id == 0 || attempt.job_id > i64::MAX as u64 {
        format!("job id {} is not a Slurm job id", attempt.job_id)
    } else if attempt.state.is_empty() || attempt.state.contains(char::is_whitespace) {
        format!("state {:?} is not a Slurm job state", attempt.state)
    } else if let (Some(start), Some(end)) = (attempt.started_at, attempt.ended_at)
        && start > end
    {
        format!("it ended ({end}) before it started ({start})")
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid {
        what: format!("Slurm attempt {} ({})", attempt.attempt, attempt.task_id()),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{env, key, open_tmp};
    use crate::model::Status;
    use crate::store::count;

    fn cancelled() -> SlurmAttempt {
        SlurmAttempt {
            attempt: 0,
            directory: "/shared/tasks/ab12/attempt-0".into(),
            job_id: 41,
            array_index: 2,
            state: "PENDING".into(),
            reason: None,
            exit_code: None,
            node: None,
            lost: None,
            submitted_at: 1_796_474_679,
            started_at: None,
            ended_at: None,
        }
    }

    #[test]
    fn attempts_round_trip_and_updates_keep_what_they_do_not_know() {
        let (dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        let id = store.start_evaluation(&key("hnsw", "h", &[]), run).unwrap();
        let mut first = cancelled();
        store.record_slurm_attempt(id, &first).unwrap();
        assert_eq!(store.slurm_attempts(id).unwrap(), vec![first.clone()]);

        // It started, then was cancelled; the later query no longer names
        // the node, which is kept.
        first.state = "RUNNING".into();
        first.node = Some("node-7".into());
        first.started_at = Some(1_796_474_680);
        store.record_slurm_attempt(id, &first).unwrap();
        first.state = "CANCELLED".into();
        first.reason = Some("Prolog".into());
        first.exit_code = Some("0:15".into());
        first.node = None;
        first.ended_at = Some(1_796_474_690);
        first.lost = Some("Slurm task 41_2 ended CANCELLED (reason: Prolog)".into());
        first.submitted_at += 100; // ignored: the first submission time stays
        store.record_slurm_attempt(id, &first).unwrap();
        let second = SlurmAttempt {
            attempt: 1,
            directory: "/shared/tasks/ab12/attempt-1".into(),
            job_id: 42,
            array_index: 0,
            state: "COMPLETED".into(),
            exit_code: Some("0:0".into()),
            node: Some("node-3".into()),
            started_at: Some(1_796_474_700),
            ended_at: Some(1_796_474_701),
            ..cancelled()
        };
        store.record_slurm_attempt(id, &second).unwrap();
        drop(store);

        let store = Store::open(dir.path().join("results.sqlite")).unwrap();
        let expected_first = SlurmAttempt {
            node: Some("node-7".into()),
            submitted_at: 1_796_474_679,
            ..first
        };
        assert_eq!(
            store.slurm_attempts(id).unwrap(),
            vec![expected_first, second]
        );
        let text: String = store
            .conn
            .query_row(
                "SELECT ended_at FROM slurm_attempts WHERE attempt = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(text, "2026-12-05T12:44:50.000Z", "UTC, RFC 3339");
    }

    #[test]
    fn a_resumed_evaluation_keeps_its_attempts_and_a_redone_one_drops_them() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        let k = key("hnsw", "h", &[]);
        let killed = store.start_evaluation(&k, run).unwrap();
        store.record_slurm_attempt(killed, &cancelled()).unwrap();
        // The coordinator died; the next one starts the key again.
        let resumed = store.start_evaluation(&k, run).unwrap();
        assert_eq!(store.slurm_attempts(resumed).unwrap(), vec![cancelled()]);
        assert_eq!(store.evaluation(resumed).unwrap().status, Status::Running);
        store
            .fail_evaluation(resumed, &crate::model::Failure::new("x", "y"))
            .unwrap();
        // A --force redo of a finished evaluation starts with none.
        let redone = store.start_evaluation(&k, run).unwrap();
        assert!(store.slurm_attempts(redone).unwrap().is_empty());
        assert_eq!(count(&store, "SELECT count(*) FROM slurm_attempts"), 0);
    }

    #[test]
    fn bad_attempts_are_refused_with_what_is_wrong() {
        let (_dir, mut store) = open_tmp();
        let run = store.begin_run(&env(), "host evaluate").unwrap();
        let id = store.start_evaluation(&key("a", "h", &[]), run).unwrap();
        let backwards = SlurmAttempt {
            started_at: Some(10),
            ended_at: Some(9),
            ..cancelled()
        };
        let err = store.record_slurm_attempt(id, &backwards).unwrap_err();
        assert!(err.to_string().contains("41_2"), "{err}");
        assert!(err.to_string().contains("ended (9) before"), "{err}");
        let blank = SlurmAttempt {
            state: String::new(),
            ..cancelled()
        };
        assert!(matches!(
            store.record_slurm_attempt(id, &blank),
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            store.record_slurm_attempt(EvalId(999), &cancelled()),
            Err(StoreError::UnknownEvaluation(_))
        ));
        assert_eq!(count(&store, "SELECT count(*) FROM slurm_attempts"), 0);
    }
}
