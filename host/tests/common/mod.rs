//! Helpers shared by the host's integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use annvil_host::prepare::{PreparedState, prepare_variants};
use annvil_host::protocol::PipelineSpec;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Builds the variants under `dirs` (relative to the root) and returns their
/// pipelines, in order.
pub fn pipelines(dirs: &[&str]) -> Vec<PipelineSpec> {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| root().join(d)).collect();
    let (prepared, _) = prepare_variants(&dirs, false, |_| {}).expect("variants prepare");
    prepared
        .into_iter()
        .map(|p| match p.state {
            PreparedState::Ready { pipeline, .. } => pipeline,
            PreparedState::Skipped { hint } => panic!("{} skipped: {hint}", p.name),
            PreparedState::Broken { reason, log } => panic!("{} broken: {reason}\n{log}", p.name),
        })
        .collect()
}

/// Runs the host binary from the workspace root.
pub fn host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("host runs")
}

/// stdout and stderr of a run, for assertions and failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts the host binary from the workspace root, its output discarded
/// (for tests that kill it).
pub fn spawn_host(args: &[impl AsRef<std::ffi::OsStr>]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(root())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("host starts")
}

/// Every row `sql` (with `params`) selects from the results database `db`,
/// each read by `read`.
pub fn select<T>(
    db: &Path,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let conn = rusqlite::Connection::open(db).expect("the results database opens");
    let mut stmt = conn.prepare(sql).expect("the query is valid");
    stmt.query_map(params, read)
        .expect("the query runs")
        .collect::<rusqlite::Result<_>>()
        .expect("the rows read")
}
