//! The `runs` table: one row per host invocation, with the machine and
//! software it ran on.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError};
use crate::model::{Environment, ParamMap, RunId, RunRecord};

impl Store {
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
                                extra: ParamMap::new(),
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
}
