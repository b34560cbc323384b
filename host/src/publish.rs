//! Publishing the leaderboards: where the rendered reports go (one
//! directory per dataset and measurement mode under the results directory,
//! and per machine type where several measured it, regenerated from the
//! database) and `docs/BENCHMARKS.md`. Rendering
//! itself is `annvil_results::report`.

use std::path::{Path, PathBuf};

use annvil_results::report::{
    RecallAxis, ReportData, benchmark_section, svg_plot, terminal_table, write_report_files,
};
use annvil_results::{Mode, Scope, Store};
use anyhow::{Context, Result};

/// The report directory of a scope: `<results>/<dataset>` for single-thread
/// runs, `<results>/<dataset>-batch<T>` for batch runs; where the database
/// holds figures of this dataset and config from several machine types,
/// each gets its own directory, suffixed with its machine type.
pub fn report_dir(store: &Store, results: &Path, scope: &Scope) -> Result<PathBuf> {
    let mut name = match scope.config.mode {
        Mode::Single => scope.dataset_name.clone(),
        Mode::Batch { threads } => format!("{}-batch{threads}", scope.dataset_name),
    };
    let machine_types = store
        .scopes(&scope.dataset_hash)?
        .into_iter()
        .filter(|other| other.config_key == scope.config_key)
        .count();
    if let Some(machine_type) = scope.machine_type.as_deref().filter(|_| machine_types > 1) {
        name.push('-');
        name.push_str(&slug(machine_type));
    }
    Ok(results.join(name))
}

/// `text` as a file-name part: lowercase letters, digits and single dashes.
fn slug(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.join("-")
}

/// Writes every report of `scope` and prints its ranked table.
pub fn write(store: &Store, results: &Path, scope: Scope) -> Result<()> {
    let dir = report_dir(store, results, &scope)?;
    let board = store.leaderboard_for(&scope)?;
    println!("{}", terminal_table(&board));
    let data = ReportData::from_leaderboard(store, board)?;
    write_report_files(&data, &dir)
        .with_context(|| format!("writing reports to {}", dir.display()))?;
    println!("reports: {} (open index.html)", dir.display());
    Ok(())
}

/// Writes `file` (e.g. `docs/BENCHMARKS.md`) from the leaderboards of
/// `scopes`, single-thread ones first, with each plot as an SVG in a
/// `benchmarks/` directory beside it.
pub fn write_benchmarks(store: &Store, scopes: Vec<Scope>, file: &Path) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let plots = dir.join("benchmarks");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let mut scopes = scopes;
    scopes.sort_by_key(|s| (s.config.mode.threads(), s.dataset_name.clone()));
    let mut doc = String::from(
        "# Benchmarks\n\nWritten by `host report --benchmarks` from the results database; \
         regenerate it rather than editing it. Every figure below was measured by `host \
         evaluate` (the command is given under each table) on the machine named there; \
         compare variants only within one table, measured in one run.\n\n",
    );
    for scope in scopes {
        let slug = report_dir(store, Path::new(""), &scope)?
            .display()
            .to_string();
        let data = ReportData::from_leaderboard(store, store.leaderboard_for(&scope)?)?;
        let svg_file = plots.join(format!("{slug}.svg"));
        std::fs::write(&svg_file, svg_plot(&data, RecallAxis::default())?)
            .with_context(|| format!("writing {}", svg_file.display()))?;
        doc.push_str(&benchmark_section(&data, &format!("benchmarks/{slug}.svg")));
    }
    std::fs::write(file, doc).with_context(|| format!("writing {}", file.display()))?;
    println!("benchmarks: {}", file.display());
    Ok(())
}
