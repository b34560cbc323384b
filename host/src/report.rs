//! Where reports go: one directory per dataset and measurement mode under
//! the results directory, regenerated from the database.

use std::path::{Path, PathBuf};

use annvil_results::report::{ReportData, terminal_table, write_report_files};
use annvil_results::{Mode, Scope, Store};
use anyhow::{Context, Result};

/// The report directory of a scope: `<results>/<dataset>` for single-thread
/// runs, `<results>/<dataset>-batch<T>` for batch runs.
pub fn report_dir(results: &Path, scope: &Scope) -> PathBuf {
    match scope.config.mode {
        Mode::Single => results.join(&scope.dataset_name),
        Mode::Batch { threads } => results.join(format!("{}-batch{threads}", scope.dataset_name)),
    }
}

/// Writes every report of `scope` and prints its ranked table.
pub fn write(store: &Store, results: &Path, scope: Scope) -> Result<()> {
    let dir = report_dir(results, &scope);
    let board = store.leaderboard_for(&scope)?;
    println!("{}", terminal_table(&board));
    let data = ReportData::from_leaderboard(store, board)?;
    write_report_files(&data, &dir)
        .with_context(|| format!("writing reports to {}", dir.display()))?;
    println!("reports: {} (open index.html)", dir.display());
    Ok(())
}
