//! Command-line interface: parses arguments and runs one command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::check::{CheckJob, CheckRow, Verdict};
use crate::evaluate::EvaluateOptions;
use crate::isolate::{Ending, Limits, run_worker};
use crate::prepare::{PreparedState, prepare_variants, variant_dirs};
use crate::worker::Job;

/// annvil: forge, check and rank approximate-nearest-neighbour index variants.
#[derive(Parser)]
#[command(name = "host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the conformance suite on variant directories.
    Check(CheckArgs),
    /// Build, measure, score and rank variants on a dataset.
    Evaluate(EvaluateArgs),
    /// Regenerate the reports from the results database.
    Report(ReportArgs),
    /// Internal: run one job in an isolated worker process.
    #[command(hide = true)]
    Worker {
        /// The job file (JSON).
        #[arg(long)]
        job: PathBuf,
        /// The events file to append to.
        #[arg(long)]
        events: PathBuf,
    },
}

/// Limits for worker processes.
#[derive(Args, Clone, Debug)]
pub struct WorkerLimits {
    /// Wall-clock limit per worker, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Address-space cap per worker, in MiB (default: 3/4 of physical memory).
    #[arg(long)]
    pub memory_cap_mb: Option<u64>,
}

impl WorkerLimits {
    /// The limits for one worker, optionally pinned to a CPU.
    pub fn limits(&self, cpu: Option<usize>) -> Limits {
        let memory = self
            .memory_cap_mb
            .map(|mb| mb << 20)
            .unwrap_or_else(|| physical_memory() / 4 * 3);
        Limits {
            timeout: Duration::from_secs(self.timeout),
            memory_bytes: Some(memory),
            cpu,
        }
    }
}

/// Physical memory in bytes.
pub fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64) * (page_size.max(0) as u64)
}

#[derive(Args)]
struct CheckArgs {
    /// Variant directories (each holds a variant.yaml).
    #[arg(required = true)]
    variants: Vec<PathBuf>,
    /// Threads for the builds.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Rebuild libraries even when the cache has them.
    #[arg(long)]
    force_build: bool,
    #[command(flatten)]
    limits: WorkerLimits,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Variant directories (each holds a variant.yaml), e.g. `variants/*`.
    #[arg(required = true)]
    variants: Vec<PathBuf>,
    /// Dataset: `synthetic[:n=..,queries=..,dim=..,clusters=..,metric=..,seed=..]`,
    /// `fashion-mnist`, an ann-benchmarks `.hdf5` file, or
    /// `BASE.fvecs,QUERY.fvecs[,GT.ivecs][;metric=..]`.
    #[arg(long, default_value = "synthetic")]
    dataset: String,
    /// Neighbours per query (recall@k).
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Use only the first N queries of the dataset (a quicker, noisier look;
    /// the dataset name gains `-qN`).
    #[arg(long, value_name = "N")]
    queries: Option<usize>,
    /// Timed runs per sweep point; QPS is the best of them.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds of timed runs per sweep point after which no further run starts.
    #[arg(long, default_value_t = 20.0)]
    point_budget: f64,
    /// Threads for building indexes.
    #[arg(long, default_value_t = 2)]
    build_threads: usize,
    /// Batch mode: search with T threads at once (default: single thread, pinned).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Measure only the declared sweep values (no bisection).
    #[arg(long)]
    no_adaptive: bool,
    /// Most distinct knob values per build in the adaptive sweep.
    #[arg(long, default_value_t = 24)]
    max_points: usize,
    /// Re-evaluate what the results database already holds.
    #[arg(long)]
    force: bool,
    /// Rebuild libraries even when the cache has them.
    #[arg(long)]
    force_build: bool,
    /// Directory of the results database and reports.
    #[arg(long, default_value = "annvil-results")]
    results: PathBuf,
    #[command(flatten)]
    limits: WorkerLimits,
}

#[derive(Args)]
struct ReportArgs {
    /// Dataset name or content hash (default: every dataset in the database).
    #[arg(long)]
    dataset: Option<String>,
    /// Directory of the results database and reports.
    #[arg(long, default_value = "annvil-results")]
    results: PathBuf,
}

/// Runs the command line; the exit code is non-zero when anything failed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Evaluate(args) => evaluate(&args),
        Command::Report(args) => report(&args),
        Command::Worker { job, events } => crate::worker::main(&job, &events).map(|code| code == 0),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A spinner for compiling (hidden when stderr is not a terminal).
pub fn build_spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} building variants: {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn check(args: &CheckArgs) -> Result<bool> {
    let dirs = variant_dirs(&args.variants)?;
    let spinner = build_spinner();
    let (prepared, _) = prepare_variants(&dirs, args.force_build, |crate_name| {
        spinner.set_message(crate_name.to_owned())
    })?;
    spinner.finish_and_clear();
    let scratch = tempfile::tempdir()?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for variant in &prepared {
        println!("\n{} ({})", variant.name, variant.dir.display());
        let pipeline = match &variant.state {
            PreparedState::Ready { spec, pipeline, .. } => CheckJob {
                pipeline: pipeline.clone(),
                build_params: spec.build_sets().into_iter().next().unwrap_or_default(),
                knobs: spec.sweep_points().into_iter().next().unwrap_or_default(),
                threads: args.threads,
            },
            PreparedState::Skipped { hint } => {
                println!("  SKIP  {hint}");
                skipped += 1;
                continue;
            }
            PreparedState::Broken { reason, log } => {
                println!("  FAIL  {reason}");
                let errors: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("Blocking waiting"))
                    .collect();
                for line in errors.iter().take(40) {
                    println!("        {line}");
                }
                failed += 1;
                continue;
            }
        };
        let mut rows: Vec<CheckRow> = Vec::new();
        let run = run_worker(
            &Job::Check(pipeline),
            &args.limits.limits(None),
            scratch.path(),
            |row: &CheckRow| {
                print_row(row);
                None
            },
        )?;
        rows.extend(run.items);
        let mut ok = !rows.iter().any(|r| r.verdict == Verdict::Fail);
        if let Ending::Failed(reason) = &run.ending {
            if ok {
                // Not a failed check row: the worker itself died or gave up.
                let after = rows
                    .last()
                    .map(|r| format!(" (after check `{}`)", r.name))
                    .unwrap_or_default();
                print_row(&CheckRow {
                    name: "worker".into(),
                    verdict: Verdict::Fail,
                    detail: format!("{reason}{after}"),
                });
                for line in run
                    .stderr_tail
                    .lines()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    println!("        {line}");
                }
            }
            ok = false;
        }
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!(
        "\n{} variants: {passed} passed, {failed} failed, {skipped} skipped",
        prepared.len()
    );
    Ok(failed == 0)
}

fn evaluate(args: &EvaluateArgs) -> Result<bool> {
    if args.k == 0 || args.runs == 0 {
        anyhow::bail!("--k and --runs must be at least 1");
    }
    let dirs = variant_dirs(&args.variants)?;
    let options = EvaluateOptions {
        dataset: args.dataset.clone(),
        queries: args.queries,
        k: args.k,
        runs: args.runs,
        point_budget_secs: args.point_budget,
        build_threads: args.build_threads.max(1),
        batch_threads: args.threads,
        adaptive: !args.no_adaptive,
        max_points: args.max_points,
        force: args.force,
        force_build: args.force_build,
        results_dir: args.results.clone(),
        limits: args.limits.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    crate::evaluate::evaluate(&dirs, &options)
}

fn report(args: &ReportArgs) -> Result<bool> {
    let db = args.results.join("results.sqlite");
    if !db.exists() {
        anyhow::bail!(
            "{}: no results database; run `host evaluate` first",
            db.display()
        );
    }
    let store = annvil_results::Store::open(&db)?;
    let scopes = match &args.dataset {
        Some(d) => store.scopes(d)?,
        None => store.all_scopes()?,
    };
    if scopes.is_empty() {
        anyhow::bail!(
            "{}: no finished evaluations{}",
            db.display(),
            args.dataset
                .as_ref()
                .map(|d| format!(" for dataset `{d}`"))
                .unwrap_or_default()
        );
    }
    for scope in scopes {
        crate::report::write(&store, &args.results, scope)?;
    }
    Ok(true)
}

fn print_row(row: &CheckRow) {
    let tag = match row.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::NotApplicable => "n/a ",
    };
    println!("  {tag}  {:<40} {}", row.name, row.detail);
}
