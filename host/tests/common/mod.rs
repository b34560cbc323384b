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
