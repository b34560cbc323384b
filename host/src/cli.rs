//! Command-line interface: parses arguments and runs one command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::check::{CheckOutcome, check_prepared};
use crate::coordinator::evaluate::{EvaluateOptions, ExecutorChoice};
use crate::coordinator::executor::slurm::SlurmOptions;
use crate::coordinator::measurer::Limits;
use crate::evolve::generate::{Cmd, Llm};
use crate::evolve::prompt::Sampling;
use crate::evolve::{EvolveOptions, Generator};
use crate::prepare::{prepare_variants, variant_dirs};
use crate::scaffold::Lang;
use crate::variant::SlotKind;

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
    #[command(after_help = EVALUATE_EXAMPLES)]
    Evaluate(EvaluateArgs),
    /// Regenerate the reports from the results database.
    Report(ReportArgs),
    /// Generate a new variant directory from the slot templates, or from a
    /// parent variant with one slot regenerated.
    New(crate::scaffold::NewVariant),
    /// Evolve a variant slot by slot from measured rewards (CRINN's loop).
    #[command(after_help = EVOLVE_EXAMPLES)]
    Evolve(Box<EvolveArgs>),
    /// Rebuild, check and evaluate variants on every save, comparing each
    /// version with the previous one and the best peer.
    #[command(
        after_help = WATCH_EXAMPLES,
        mut_arg("queries", |a| a.default_value("500")),
        mut_arg("runs", |a| a.default_value("2")),
        mut_arg("point_budget", |a| a.default_value("5")),
        mut_arg("max_points", |a| a.default_value("12"))
    )]
    Watch(WatchArgs),
    /// Print the contrastive prompt for one slot.
    Prompt(PromptCmdArgs),
    /// Write the program database as JSONL records for RL training.
    ExportRl(ExportRlArgs),
    /// Internal: run one job in a worker process (the job comes on stdin).
    #[command(hide = true)]
    Worker,
    /// Internal: serve one evaluation's mailbox on a Slurm compute node.
    #[command(hide = true)]
    SlurmTask {
        /// The attempt directory on the shared directory.
        dir: PathBuf,
    },
}

/// Worked examples closing `host watch --help`.
const WATCH_EXAMPLES: &str = "\
A quick look, not a ranking: by default each version is measured on the
first 500 queries, 2 timed runs per point, at most 12 sweep points and 5 s of
timed runs per point (--queries, --runs, --max-points, --point-budget change
that). Every save is measured afresh; the comparison is with the previous
version of the same variant and the best peer-* variant measured with the
same dataset and settings. Ctrl-C stops after the current round (twice: at
once).

Examples (from the repository root):

  # Edit variants/my-hnsw/src/*.rs or variant.yaml; each save prints a comparison
  host watch variants/my-hnsw --peer variants/peer-hnswlib

  # Two variants, a dataset file
  host watch variants/my-hnsw variants/my-vamana --dataset fashion-mnist";

/// Worked examples closing `host evaluate --help`.
const EVALUATE_EXAMPLES: &str = "\
Examples (from the repository root; `host` is target/release/host, or
`cargo run --release -p host --`):

  # Rank every variant on the built-in synthetic set; reports go to annvil-results/
  host evaluate variants/*

  # A quick look: two variants, the first 200 queries, one timed run per point
  host evaluate variants/hnsw variants/ivf-flat --queries 200 --runs 1

  # A dataset file: ann-benchmarks HDF5 (here the small one the tests use), or
  # TEXMEX files BASE.fvecs,QUERY.fvecs[,GT.ivecs]
  host evaluate variants/hnsw --dataset host/data/tests/fixtures/euclidean.hdf5

  # Fashion-MNIST (installed by scripts/setup), on its first 1000 queries
  host evaluate variants/hnsw --dataset fashion-mnist --queries 1000

  # Batch mode: 2 search threads at once, ranked on a leaderboard of its own
  # (annvil-results/<dataset>-batch2/)
  host evaluate variants/hnsw variants/vamana --threads 2

  # Single-thread batch mode (ann-benchmarks' --batch): one batched call per
  # timed run on one pinned core (annvil-results/<dataset>-batch1/)
  host evaluate variants/peer-faiss variants/glass-style --batch

  # A small synthetic set of your own, with the results kept elsewhere
  host evaluate variants/hnsw --dataset synthetic:n=2000,queries=100,dim=16 --results /tmp/annvil

  # Resuming: after an interruption, run the same command again; what finished is
  # kept and skipped, the rest is measured (--force measures everything again)
  host evaluate variants/*";

/// Worked examples closing `host evolve --help`.
const EVOLVE_EXAMPLES: &str = "\
Examples (from the repository root; `host` is target/release/host, or
`cargo run --release -p host --`):

  # A quick look: tune the search slot's parameters, 3 candidates, each measured on
  # the first 200 queries of the built-in synthetic set with one timed run per point
  host evolve --from variants/hnsw --slot search --generator tune --budget 3 \\
      --queries 200 --runs 1

  # Fashion-MNIST (installed by scripts/setup) on its first 2000 queries, 20 candidates
  host evolve --from variants/hnsw --slot search --generator tune --budget 20 \\
      --dataset fashion-mnist --queries 2000

  # A dataset file (here the small HDF5 file the tests use), construction slot
  host evolve --from variants/hnsw --slot construction --generator tune --budget 2 \\
      --dataset host/data/tests/fixtures/euclidean.hdf5

  # Batch mode: candidates ranked by their QPS with 2 search threads at once
  host evolve --from variants/hnsw --slot search --generator tune --budget 3 \\
      --queries 200 --runs 1 --threads 2

  # Four candidates in flight: generation, builds and checks overlap; the timed
  # measurements still run one at a time (never two at once)
  host evolve --from variants/hnsw --slot construction --generator tune --budget 8 \\
      --parallel 4 --queries 200 --runs 1

  # Resuming: run the same command again; the budget counts the candidates already in
  # the database, an interrupted one is judged first, nothing is evaluated twice
  host evolve --from variants/hnsw --slot search --generator tune --budget 20 \\
      --dataset fashion-mnist --queries 2000

  # Code-writing generators (llm, cmd): see README.md, \"Evolving a variant\"";

/// Limits for worker processes.
#[derive(Args, Clone, Debug)]
pub struct WorkerLimits {
    /// Wall-clock limit per worker, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Address-space cap per worker, in MiB (default: 3/4 of physical memory).
    #[arg(long)]
    pub memory_cap_mb: Option<u64>,
    /// Run variant code without the sandbox (see README, "Running untrusted
    /// variants"); such rows are marked `unsandboxed` in every report.
    #[arg(long)]
    pub unsandboxed: bool,
}

impl WorkerLimits {
    /// The limits for one worker.
    pub fn limits(&self) -> Limits {
        let memory = self
            .memory_cap_mb
            .map(|mb| mb << 20)
            .unwrap_or_else(|| physical_memory() / 4 * 3);
        Limits {
            timeout: Duration::from_secs(self.timeout),
            memory_bytes: Some(memory),
            sandboxed: !self.unsandboxed && sandbox_ready(),
        }
    }
}

/// Whether workers can be sandboxed here; the first call says why not,
/// once, on stderr.
pub fn sandbox_ready() -> bool {
    static WARNED: std::sync::Once = std::sync::Once::new();
    match crate::coordinator::sandbox::availability() {
        Ok(()) => true,
        Err(reason) => {
            WARNED.call_once(|| {
                eprintln!(
                    "annvil: the sandbox is unavailable here ({reason}); variants run \
                     unsandboxed and are marked so in every report"
                )
            });
            false
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
    #[command(flatten)]
    measure: MeasureArgs,
}

/// How variants are measured: shared by `evaluate` and `evolve`.
#[derive(Args, Clone)]
struct MeasureArgs {
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
    /// Each thread answers its share of a run's queries in one batched call
    /// (the slot's `search_batch` when it has one).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Batch mode on one pinned core (ann-benchmarks' `--batch`): each timed
    /// run's queries go to the search in one batched call. Ranked on its own
    /// leaderboard (annvil-results/<dataset>-batch1/).
    #[arg(long, conflicts_with = "threads")]
    batch: bool,
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
    #[command(flatten)]
    executor: ExecutorArgs,
}

/// Where the measurements run (see README, "Running on a Slurm cluster").
#[derive(Args, Clone)]
struct ExecutorArgs {
    /// `local` (this machine) or `slurm` (one `sbatch` array task per
    /// variant and build set; needs --shared-dir).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// The Slurm partition (default: the cluster's default partition).
    #[arg(long, value_name = "NAME")]
    slurm_partition: Option<String>,
    /// Further `sbatch` arguments, as shell words, e.g. `--slurm-args '--exclusive --time=30'`.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    slurm_args: Option<String>,
    /// A directory every node sees at the same path: the host binary, the
    /// variants' libraries, the base vectors and the tasks' mailboxes go there.
    #[arg(long, value_name = "DIR")]
    shared_dir: Option<PathBuf>,
    /// Resubmissions of a failed, cancelled or pre-empted task.
    #[arg(long, default_value_t = 2, value_name = "N")]
    slurm_retries: u32,
}

/// The `--executor` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExecutorKind {
    /// Workers on this machine.
    Local,
    /// Workers in Slurm array tasks.
    Slurm,
}

impl ExecutorArgs {
    fn choice(&self) -> Result<ExecutorChoice> {
        let slurm_only = self.slurm_partition.is_some() || self.slurm_args.is_some();
        match self.executor {
            ExecutorKind::Local if slurm_only || self.shared_dir.is_some() => anyhow::bail!(
                "--slurm-partition, --slurm-args and --shared-dir apply to --executor slurm"
            ),
            ExecutorKind::Local => Ok(ExecutorChoice::Local),
            ExecutorKind::Slurm => {
                let shared_dir = self.shared_dir.clone().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--executor slurm needs --shared-dir: a directory every node sees \
                         at the same path"
                    )
                })?;
                let extra_args = match &self.slurm_args {
                    Some(args) => shell_words::split(args)
                        .map_err(|e| anyhow::anyhow!("--slurm-args `{args}`: {e}"))?,
                    None => Vec::new(),
                };
                Ok(ExecutorChoice::Slurm(SlurmOptions {
                    partition: self.slurm_partition.clone(),
                    extra_args,
                    shared_dir,
                    retries: self.slurm_retries,
                    side_by_side: None,
                }))
            }
        }
    }
}

impl MeasureArgs {
    /// The evaluation options these arguments ask for.
    fn options(&self) -> Result<EvaluateOptions> {
        if self.k == 0 || self.runs == 0 {
            anyhow::bail!("--k and --runs must be at least 1");
        }
        Ok(EvaluateOptions {
            dataset: self.dataset.clone(),
            queries: self.queries,
            k: self.k,
            runs: self.runs,
            point_budget_secs: self.point_budget,
            build_threads: self.build_threads.max(1),
            batch_threads: if self.batch { Some(1) } else { self.threads },
            adaptive: !self.no_adaptive,
            max_points: self.max_points,
            force: self.force,
            force_build: self.force_build,
            results_dir: self.results.clone(),
            limits: self.limits.clone(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            executor: self.executor.choice()?,
        })
    }
}

/// Which slots `host evolve` evolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EvolveSlot {
    /// Construction, then search, then refinement.
    All,
    /// Graph construction.
    Construction,
    /// Search.
    Search,
    /// Refinement.
    Refinement,
}

/// The generator of `host evolve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GeneratorKind {
    /// An OpenAI-compatible chat-completions endpoint (--endpoint, --model).
    Llm,
    /// A command: prompt on stdin, answer on stdout (--command).
    Cmd,
    /// Offline: mutate the slot's declared parameters.
    Tune,
    /// Offline: take the slot from another variant (--donors).
    Recombine,
}

#[derive(Args)]
struct WatchArgs {
    /// Variant directories to watch (each with the packages its libraries
    /// are built from).
    #[arg(required = true, value_name = "VARIANT_DIR")]
    variants: Vec<PathBuf>,
    /// Peers to measure once at startup with the same settings, when the
    /// results database does not hold them yet; the comparison uses the
    /// best peer-* variant measured with these settings.
    #[arg(long, value_name = "VARIANT_DIR")]
    peer: Vec<PathBuf>,
    /// Threads for the conformance suite's builds.
    #[arg(long, default_value_t = 2)]
    check_threads: usize,
    /// Milliseconds the files must stay quiet after a save before a round
    /// starts.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    debounce_ms: u64,
    #[command(flatten)]
    measure: MeasureArgs,
}

#[derive(Args)]
struct EvolveArgs {
    /// The variant to start from.
    #[arg(long, value_name = "VARIANT_DIR")]
    from: PathBuf,
    /// The slot to evolve; `all` runs construction, search, refinement in turn.
    #[arg(long, value_enum)]
    slot: EvolveSlot,
    /// Where candidates come from.
    #[arg(long, value_enum)]
    generator: GeneratorKind,
    /// Candidates per stage (the database counts them; a rerun resumes).
    #[arg(long, default_value_t = 10)]
    budget: usize,
    /// Directory for candidate variants.
    #[arg(long, default_value = "evolved")]
    out: PathBuf,
    /// Language of generated code (llm, cmd).
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    #[command(flatten)]
    prompt: PromptArgs,
    /// llm: the endpoint's base URL (…/v1) or its /chat/completions URL.
    #[arg(long)]
    endpoint: Option<String>,
    /// llm: model name.
    #[arg(long)]
    model: Option<String>,
    /// llm: the environment variable holding the API key (none sent if unset).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// llm: sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    llm_temperature: f64,
    /// llm: seconds per request.
    #[arg(long, default_value_t = 600)]
    llm_timeout: u64,
    /// cmd: the shell command that answers a prompt.
    #[arg(long)]
    command: Option<String>,
    /// recombine: variants whose slots may be taken (default: the
    /// directories beside --from).
    #[arg(long, num_args = 1..)]
    donors: Vec<PathBuf>,
    /// Threads for the conformance suite's builds.
    #[arg(long, default_value_t = 2)]
    check_threads: usize,
    /// Candidates in flight at once per stage: generation requests run
    /// concurrently, builds and conformance checks overlap, but timed
    /// measurements never run concurrently with each other: they take turns
    /// through a lock file, target/annvil/measure.lock, which every `host`
    /// process of this workspace (evaluate, watch, another evolve) respects.
    /// Each step's parent is the best candidate finished when it starts.
    #[arg(long, default_value_t = 1, value_name = "N")]
    parallel: usize,
    #[command(flatten)]
    measure: MeasureArgs,
}

/// Exemplar sampling of the contrastive prompt.
#[derive(Args, Clone)]
struct PromptArgs {
    /// Previous implementations shown in the prompt.
    #[arg(long, default_value_t = 4)]
    exemplars: usize,
    /// Softmax temperature τ over scores relative to the parent.
    #[arg(long, default_value_t = 0.25)]
    tau: f64,
}

#[derive(Args)]
struct PromptCmdArgs {
    /// The slot whose prompt to print.
    #[arg(long, value_enum)]
    slot: SlotChoiceOne,
    /// The parent variant (default: the best variant that changed this
    /// slot, else --from).
    #[arg(long, value_name = "VARIANT_DIR")]
    from: PathBuf,
    /// Language of the answer.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// Dataset whose leaderboard gives the scores: the spec given to `host
    /// evaluate --dataset`, or a dataset name or hash from the results
    /// database (default: the most recent leaderboard holding the parent).
    #[arg(long)]
    dataset: Option<String>,
    /// Seed of the exemplar draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    prompt: PromptArgs,
    /// Directory of the results database.
    #[arg(long, default_value = "annvil-results")]
    results: PathBuf,
}

/// One slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SlotChoiceOne {
    /// Graph construction.
    Construction,
    /// Search.
    Search,
    /// Refinement.
    Refinement,
}

impl SlotChoiceOne {
    fn kind(self) -> SlotKind {
        match self {
            SlotChoiceOne::Construction => SlotKind::Construction,
            SlotChoiceOne::Search => SlotKind::Search,
            SlotChoiceOne::Refinement => SlotKind::Refinement,
        }
    }
}

#[derive(Args)]
struct ExportRlArgs {
    /// Output file (JSON lines); `-` for stdout.
    #[arg(long, short, default_value = "-")]
    output: PathBuf,
    /// Directory of the results database.
    #[arg(long, default_value = "annvil-results")]
    results: PathBuf,
}

#[derive(Args)]
struct ReportArgs {
    /// Dataset name or content hash, repeatable (default: every dataset in
    /// the database).
    #[arg(long)]
    dataset: Vec<String>,
    /// Directory of the results database and reports.
    #[arg(long, default_value = "annvil-results")]
    results: PathBuf,
    /// Also write this benchmark document (e.g. docs/BENCHMARKS.md) from
    /// the leaderboards, with their plots in a `benchmarks/` directory
    /// beside it.
    #[arg(long, value_name = "FILE")]
    benchmarks: Option<PathBuf>,
}

/// Runs the command line; the exit code is non-zero when anything failed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Evaluate(args) => evaluate(&args),
        Command::Report(args) => report(&args),
        Command::New(request) => crate::scaffold::run(&request),
        Command::Evolve(args) => evolve(&args),
        Command::Watch(args) => watch(&args).map(|()| true),
        Command::Prompt(args) => prompt(&args),
        Command::ExportRl(args) => export_rl(&args),
        Command::Worker => crate::worker::main()
            .map(|code| code == 0)
            .map_err(|e| anyhow::anyhow!(e)),
        Command::SlurmTask { dir } => crate::coordinator::executor::mailbox::serve(&dir)
            .map(|()| true)
            .map_err(|e| anyhow::anyhow!(e)),
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
        let outcome = check_prepared(
            variant,
            args.threads,
            &args.limits.limits(),
            scratch.path(),
            &mut |line| println!("{line}"),
        )?;
        match outcome {
            CheckOutcome::Passed => passed += 1,
            CheckOutcome::Failed => failed += 1,
            CheckOutcome::Skipped => skipped += 1,
        }
    }
    println!(
        "\n{} variants: {passed} passed, {failed} failed, {skipped} skipped",
        prepared.len()
    );
    Ok(failed == 0)
}

fn evaluate(args: &EvaluateArgs) -> Result<bool> {
    let dirs = variant_dirs(&args.variants)?;
    Ok(crate::coordinator::evaluate::evaluate(&dirs, &args.measure.options()?)?.all_ok)
}

fn watch(args: &WatchArgs) -> Result<()> {
    crate::watch::watch(&crate::watch::WatchOptions {
        variants: variant_dirs(&args.variants)?,
        peers: variant_dirs(&args.peer)?,
        evaluate: args.measure.options()?,
        check_threads: args.check_threads,
        debounce: Duration::from_millis(args.debounce_ms),
    })
}

fn evolve(args: &EvolveArgs) -> Result<bool> {
    let writes_code = matches!(args.generator, GeneratorKind::Llm | GeneratorKind::Cmd);
    if writes_code
        && !args.measure.limits.unsandboxed
        && let Err(reason) = crate::coordinator::sandbox::availability()
    {
        anyhow::bail!(
            "refusing to run generated code without the sandbox, which is unavailable here \
             ({reason}); pass --unsandboxed to run it anyway (see README, \"Running untrusted \
             variants\")"
        );
    }
    let generator = match args.generator {
        GeneratorKind::Llm => {
            let (Some(endpoint), Some(model)) = (&args.endpoint, &args.model) else {
                anyhow::bail!("--generator llm needs --endpoint URL and --model NAME");
            };
            Generator::Llm(Llm {
                endpoint: endpoint.clone(),
                model: model.clone(),
                api_key: std::env::var(&args.api_key_env).ok(),
                temperature: args.llm_temperature,
                timeout: Duration::from_secs(args.llm_timeout),
            })
        }
        GeneratorKind::Cmd => Generator::Cmd(Cmd {
            command: args.command.clone().ok_or_else(|| {
                anyhow::anyhow!("--generator cmd needs --command 'SHELL COMMAND'")
            })?,
        }),
        GeneratorKind::Tune => Generator::Tune,
        GeneratorKind::Recombine => Generator::Recombine {
            donors: if args.donors.is_empty() {
                sibling_variants(&args.from)?
            } else {
                variant_dirs(&args.donors)?
            },
        },
    };
    let slots = match args.slot {
        EvolveSlot::All => SlotKind::ALL.to_vec(),
        EvolveSlot::Construction => vec![SlotKind::Construction],
        EvolveSlot::Search => vec![SlotKind::Search],
        EvolveSlot::Refinement => vec![SlotKind::Refinement],
    };
    crate::evolve::evolve(&EvolveOptions {
        from: args.from.clone(),
        slots,
        generator,
        budget: args.budget,
        out: args.out.clone(),
        lang: args.lang,
        sampling: Sampling {
            k: args.prompt.exemplars,
            temperature: args.prompt.tau,
            seed: 0,
        },
        evaluate: args.measure.options()?,
        check_threads: args.check_threads,
        parallel: args.parallel,
    })
}

/// The variant directories beside `dir` (recombine's default donors).
fn sibling_variants(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let parent = dir
        .canonicalize()?
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("{}: no parent directory", dir.display()))?;
    let mut out: Vec<PathBuf> = std::fs::read_dir(&parent)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(crate::variant::VARIANT_FILE).is_file())
        .collect();
    out.sort();
    Ok(out)
}

fn prompt(args: &PromptCmdArgs) -> Result<bool> {
    let text = crate::evolve::prompt_for(
        &args.from,
        args.slot.kind(),
        args.lang,
        &args.results,
        args.dataset.as_deref(),
        &Sampling {
            k: args.prompt.exemplars,
            temperature: args.prompt.tau,
            seed: args.seed,
        },
    )?;
    print!("{text}");
    Ok(true)
}

fn export_rl(args: &ExportRlArgs) -> Result<bool> {
    let db = args.results.join("results.sqlite");
    if !db.exists() {
        anyhow::bail!(
            "{}: no results database; run `host evolve` first",
            db.display()
        );
    }
    let store = annvil_results::Store::open(&db)?;
    let records = crate::evolve::rl::records(&store.all_candidates()?);
    if args.output.as_os_str() == "-" {
        crate::evolve::rl::write_jsonl(&records, std::io::stdout().lock())?;
    } else {
        let file = std::fs::File::create(&args.output)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.output.display()))?;
        crate::evolve::rl::write_jsonl(&records, std::io::BufWriter::new(file))?;
        eprintln!(
            "{} records written to {}",
            records.len(),
            args.output.display()
        );
    }
    Ok(true)
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
    let mut scopes = Vec::new();
    if args.dataset.is_empty() {
        scopes = store.all_scopes()?;
    }
    for dataset in &args.dataset {
        let found = store.scopes(dataset)?;
        if found.is_empty() {
            anyhow::bail!(
                "{}: no finished evaluations for dataset `{dataset}`",
                db.display()
            );
        }
        scopes.extend(found);
    }
    if scopes.is_empty() {
        anyhow::bail!("{}: no finished evaluations", db.display());
    }
    for scope in &scopes {
        crate::publish::write(&store, &args.results, scope.clone())?;
    }
    if let Some(file) = &args.benchmarks {
        crate::publish::write_benchmarks(&store, scopes, file)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        // Catches clashing argument names across flattened groups.
        super::Cli::command().debug_assert();
    }
}
