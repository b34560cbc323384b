//! `host evaluate`: the coordinator's half of an evaluation. For each
//! (variant, build-parameter set) it drives a worker through the trusted
//! [`super::measurer`], hands every timed run queries that no worker
//! process of this evaluation has been given before ([`QueryPlan`]),
//! scores every answer against exact ground truth that never leaves this
//! process, extends the sweep adaptively, records everything in the results
//! database and writes the reports.
//!
//! Scoring happens only while the worker waits for its next request, so
//! the coordinator's threads never compete with a timed run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use annvil_core::SplitMix64;
use annvil_data::{ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, GroundTruth, Matrix};
use annvil_results::sweep::{AdaptivePolicy, KnobPoint, propose_knobs};
use annvil_results::{
    BridgeOverhead, EvalConfig, EvalId, EvaluationKey, EvaluationOutcome, Failure, Implementation,
    Machine, Mode, RunId, SlurmAttempt, Store, SweepPoint,
};
use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::executor::mailbox::{Mailbox, TaskSpec};
use super::executor::slurm::{Attempt, Cluster, SideBySide, SlurmOptions};
use super::executor::{self, Executor, Local, WorkerSession};
use super::measurer::{Built, Limits, Timed};
use crate::cli::WorkerLimits;
use crate::prepare::{Prepared, PreparedState, prepare_variants};
use crate::protocol::{EvaluateJob, NO_ID, PipelineSpec, base_file};
use crate::python_env;
use crate::variant::{ParamMap, VariantSpec};

/// Everything `host evaluate` needs besides the variant directories.
#[derive(Clone, Debug)]
pub struct EvaluateOptions {
    /// Dataset spec (see [`DatasetSpec`]).
    pub dataset: String,
    /// Keep only the first N queries.
    pub queries: Option<usize>,
    /// Neighbours per query (recall@k).
    pub k: usize,
    /// Timed runs per sweep point.
    pub runs: usize,
    /// Time budget of the timed runs of one sweep point, in seconds.
    pub point_budget_secs: f64,
    /// Threads for building indexes.
    pub build_threads: usize,
    /// Batch mode with this many search threads (None: single thread).
    pub batch_threads: Option<usize>,
    /// Add sweep points by bisection (see [`propose_knobs`]).
    pub adaptive: bool,
    /// Most distinct knob values per build when adaptive.
    pub max_points: usize,
    /// Re-evaluate what the database already holds.
    pub force: bool,
    /// Rebuild libraries even when cached.
    pub force_build: bool,
    /// Where the database and reports go.
    pub results_dir: PathBuf,
    /// Worker limits.
    pub limits: WorkerLimits,
    /// The command line, for the run record.
    pub command: String,
    /// Where the measurements run.
    pub executor: ExecutorChoice,
}

/// Where `host evaluate` runs its workers (`--executor`).
#[derive(Clone, Debug)]
pub enum ExecutorChoice {
    /// On this machine.
    Local,
    /// One Slurm array task per (variant, build set).
    Slurm(SlurmOptions),
}

impl ExecutorChoice {
    /// The same executor measuring one build set after another on one node
    /// (`node` when known), for figures compared side by side. Local
    /// evaluations already are.
    pub fn side_by_side(&self, node: Option<String>) -> ExecutorChoice {
        match self {
            ExecutorChoice::Local => ExecutorChoice::Local,
            ExecutorChoice::Slurm(options) => ExecutorChoice::Slurm(SlurmOptions {
                side_by_side: Some(SideBySide { node }),
                ..options.clone()
            }),
        }
    }
}

/// The progress display: bars on a terminal, plain lines otherwise.
struct Progress {
    bars: MultiProgress,
    terminal: bool,
}

impl Progress {
    fn new() -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bars = MultiProgress::new();
        if !terminal {
            bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Progress { bars, terminal }
    }

    fn bar(&self, len: u64, template: &str) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A line that stays (printed above the bars, or to stderr).
    fn line(&self, text: &str) {
        if self.terminal {
            let _ = self.bars.println(text);
        } else {
            eprintln!("{text}");
        }
    }
}

/// Directory for annvil's caches (ground truth, worker vector files): the
/// workspace's, else `target/annvil` under the current directory (variants
/// made only of prebuilt libraries). Absolute, since workers see these
/// files through sandbox mounts.
fn cache_dir(prepared_workspace: Option<&crate::compile::Workspace>) -> Result<PathBuf> {
    let dir = match prepared_workspace {
        Some(ws) => ws.target_dir().join("annvil"),
        None => PathBuf::from("target/annvil"),
    };
    std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))
}

fn git_commit(root: &Path) -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let dirty = run(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// What one `host evaluate` did.
#[derive(Clone, Debug)]
pub struct Evaluated {
    /// True when every variant was evaluated (or already was).
    pub all_ok: bool,
    /// The leaderboard the run wrote to.
    pub scope: annvil_results::Scope,
    /// The results database.
    pub database: PathBuf,
}

/// Runs `host evaluate`.
pub fn evaluate(dirs: &[PathBuf], options: &EvaluateOptions) -> Result<Evaluated> {
    let progress = Progress::new();
    let spec: DatasetSpec = options
        .dataset
        .parse()
        .with_context(|| format!("--dataset {}", options.dataset))?;
    let mut dataset = spec
        .load()
        .with_context(|| format!("loading dataset `{spec}`"))?;
    if let Some(n) = options.queries {
        dataset = dataset.first_queries(n)?;
    }
    progress.line(&format!("dataset {dataset}"));
    let spinner = progress.bar(0, "{spinner} building variants: {msg}");
    let (prepared, workspace) = prepare_variants(dirs, options.force_build, |c| {
        spinner.set_message(c.to_owned())
    })?;
    spinner.finish_and_clear();
    let cache = cache_dir(workspace.as_ref())?;
    let dataset_hash = dataset.content_hash();

    let truth_bar = progress.bar(
        dataset.test.len() as u64,
        "ground truth  [{bar:30}] {pos}/{len} queries {msg}",
    );
    let truth = dataset
        .resolve_ground_truth(options.k, &cache.join("ground-truth"), |done, _| {
            truth_bar.set_position(done as u64)
        })
        .context("computing ground truth")?;
    truth_bar.finish_and_clear();
    let base = cache.join("vectors").join(format!("{dataset_hash}.base"));
    let base_stamp = base_file::ensure(&base, &dataset.train, None)
        .with_context(|| format!("writing {}", base.display()))?;

    std::fs::create_dir_all(&options.results_dir)
        .with_context(|| format!("creating {}", options.results_dir.display()))?;
    let db_path = options.results_dir.join("results.sqlite");
    let mut store =
        Store::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?;
    let rustc = workspace.as_ref().map_or("", |w| w.rustc_version());
    let commit = workspace.as_ref().and_then(|w| git_commit(w.root()));
    let environment =
        annvil_results::Environment::detect(env!("CARGO_PKG_VERSION"), rustc, commit.as_deref());
    let run = store.begin_run(&environment, &options.command)?;

    let evaluation = Evaluation {
        options,
        limits: options.limits.limits(),
        dataset: &dataset,
        dataset_hash: &dataset_hash,
        truth: &truth,
        base: &base,
        base_stamp: Mutex::new(base_stamp),
        progress: &progress,
        machine: Machine::detect(),
    };
    let mut all_ok = true;
    let scratch = executor::scratch_root().context("creating the workers' scratch directory")?;
    // Held to the end by a local evaluation: no other measurement (or report
    // write) of this workspace meanwhile. Slurm tasks run on their nodes.
    let _measuring = matches!(options.executor, ExecutorChoice::Local)
        .then(|| super::measure_lock::MeasureLock::acquire(&cache, |l| progress.line(l)))
        .transpose()?;
    let mut pending = Vec::new();
    for variant in &prepared {
        if let PreparedState::Ready { spec, .. } = &variant.state
            && let Some(lineage) = &spec.lineage
        {
            store.record_lineage(&variant.name, lineage)?;
        }
        all_ok &= evaluation.variant(variant, &mut store, run, &mut pending)?;
    }
    all_ok &= match &options.executor {
        ExecutorChoice::Local => {
            let local = Local {
                limits: evaluation.limits.clone(),
                scratch: scratch.path().to_path_buf(),
            };
            let mut ok = true;
            for build_set in &pending {
                // Started as it is measured: its times are its measurement's.
                let id = store.start_evaluation(&build_set.key, run)?;
                store.record_machine(id, &evaluation.machine)?;
                let outcome = evaluation.run_build_set(build_set, &local)?;
                ok &= evaluation.record(id, build_set, outcome, &mut store)?;
            }
            ok
        }
        ExecutorChoice::Slurm(slurm) => {
            evaluation.measure_on_slurm(&pending, run, slurm, &mut store)?
        }
    };
    // The scope of this run's figures: the machine type that measured
    // last (this machine's when nothing was measured).
    let config_key = evaluation.config().key();
    let scope = store
        .scopes(&dataset_hash)?
        .into_iter()
        .find(|s| s.config_key == config_key && s.machine_type.is_some())
        .unwrap_or_else(|| annvil_results::Scope {
            dataset_name: dataset.name.clone(),
            dataset_hash: dataset_hash.clone(),
            config_key: config_key.clone(),
            config: evaluation.config(),
            machine_type: Some(evaluation.machine.machine_type()),
        });
    let bridged = prepared.iter().find_map(|variant| match &variant.state {
        PreparedState::Ready { pipeline, .. } if pipeline.python.is_some() => Some(pipeline),
        _ => None,
    });
    // The overhead is measured here, so it belongs to this machine's type.
    let here = annvil_results::Scope {
        machine_type: Some(evaluation.machine.machine_type()),
        ..scope.clone()
    };
    if let Some(pipeline) = bridged
        && (options.force || store.bridge_overhead(&here)?.is_none())
    {
        match evaluation.bridge_overhead(pipeline, scratch.path()) {
            Ok(overhead) => {
                progress.line(&format!(
                    "python bridge overhead (no-op adapter): {:.1} µs per query",
                    overhead.seconds_per_query * 1e6
                ));
                store.record_bridge_overhead(run, &here, overhead)?;
            }
            Err(reason) => progress.line(&format!("python bridge overhead not measured: {reason}")),
        }
    }
    store.end_run(run)?;

    // Every machine type that measured this dataset and config (one, unless
    // an executor spread the work over several) has its own leaderboard.
    for measured in store.scopes(&dataset_hash)? {
        if measured.config_key == scope.config_key {
            crate::publish::write(&store, &options.results_dir, measured)?;
        }
    }
    Ok(Evaluated {
        all_ok,
        scope,
        database: db_path,
    })
}

/// The per-dataset context of one `host evaluate`.
struct Evaluation<'a> {
    options: &'a EvaluateOptions,
    /// Every worker's limits, sandboxing included (decided once per run).
    limits: Limits,
    dataset: &'a Dataset,
    dataset_hash: &'a str,
    truth: &'a GroundTruth,
    /// The base vectors file workers build from.
    base: &'a Path,
    /// The base file as last verified.
    base_stamp: Mutex<base_file::Stamp>,
    progress: &'a Progress,
    /// The node measuring (this one).
    machine: Machine,
}

/// How long a Slurm task that answered `exit` (or was cancelled) is given
/// to be seen ended, so its record holds Slurm's final state.
const SETTLE_TIME: Duration = Duration::from_secs(60);

/// What a thread measuring on Slurm tells the one that stores.
enum Report {
    /// Build set i's attempt, as submitted or as it ended.
    Attempt(usize, SlurmAttempt),
    /// Build set i's outcome, and the node that measured it.
    Done(usize, Result<(Outcome, Option<Machine>)>),
}

/// One (variant, build set) the database does not hold yet.
struct PendingBuildSet<'p> {
    key: EvaluationKey,
    spec: &'p VariantSpec,
    job: EvaluateJob,
    label: String,
}

impl Evaluation<'_> {
    fn config(&self) -> EvalConfig {
        EvalConfig {
            k: self.options.k as u32,
            runs: self.options.runs as u32,
            mode: self.mode(),
            query_count: self.dataset.test.len() as u64,
            extra: Default::default(),
        }
    }

    fn mode(&self) -> Mode {
        match self.options.batch_threads {
            Some(t) => Mode::Batch { threads: t as u32 },
            None => Mode::Single,
        }
    }

    fn key(&self, name: &str, hash: &str, build_params: &ParamMap) -> EvaluationKey {
        EvaluationKey {
            variant_name: name.to_owned(),
            variant_hash: hash.to_owned(),
            dataset_name: self.dataset.name.clone(),
            dataset_hash: self.dataset_hash.to_owned(),
            build_params: build_params.clone(),
            config: self.config(),
        }
    }

    /// Records a variant that cannot be measured, and adds the build sets
    /// the database does not hold yet to `pending`; false when it failed.
    fn variant<'p>(
        &self,
        variant: &'p Prepared,
        store: &mut Store,
        run: annvil_results::RunId,
        pending: &mut Vec<PendingBuildSet<'p>>,
    ) -> Result<bool> {
        let (spec, pipeline, hash) = match &variant.state {
            PreparedState::Ready {
                spec,
                pipeline,
                hash,
            } => (spec, pipeline, hash),
            PreparedState::Skipped { hint } => {
                self.progress
                    .line(&format!("{}: skipped: {hint}", variant.name));
                let id = store
                    .start_evaluation(&self.key(&variant.name, "unbuilt", &ParamMap::new()), run)?;
                store.skip_evaluation(id, &Failure::new(hint.as_str(), ""))?;
                return Ok(true);
            }
            PreparedState::Broken { reason, log } => {
                self.progress
                    .line(&format!("{}: FAILED: {reason}", variant.name));
                let id = store
                    .start_evaluation(&self.key(&variant.name, "unbuilt", &ParamMap::new()), run)?;
                let mut failure = Failure::new(reason.clone(), "");
                failure.log = Some(log.clone());
                store.fail_evaluation(id, &failure)?;
                return Ok(false);
            }
        };
        for build_params in spec.build_sets() {
            let key = self.key(&variant.name, hash, &build_params);
            let label = if build_params.is_empty() {
                variant.name.clone()
            } else {
                format!("{} {}", variant.name, params_text(&build_params))
            };
            if !self.options.force
                && let Some(done) = store.completed(&key)?
            {
                self.progress.line(&format!(
                    "{label}: already in the database ({}); --force re-evaluates",
                    done.status.as_str()
                ));
                continue;
            }
            let job = self.job(pipeline.clone(), build_params.clone());
            pending.push(PendingBuildSet {
                key,
                spec,
                job,
                label,
            });
        }
        Ok(true)
    }

    /// Stores how one build set went (evaluation `id`); false when it failed.
    fn record(
        &self,
        id: EvalId,
        build_set: &PendingBuildSet,
        outcome: Outcome,
        store: &mut Store,
    ) -> Result<bool> {
        match outcome {
            Outcome::Measured { build, points } => {
                let outcome = EvaluationOutcome {
                    build_seconds: build.seconds,
                    index_memory_bytes: Some(build.reported_bytes),
                    rss_bytes: Some(build.rss_bytes),
                    build_log: None,
                    build_threads: self.options.build_threads as u32,
                    sandboxed: self.limits.sandboxed,
                    implementation: if build_set.job.pipeline.python.is_some() {
                        Implementation::PythonBridge
                    } else {
                        Implementation::Native
                    },
                };
                store.finish_evaluation(id, &outcome, &points)?;
                Ok(true)
            }
            Outcome::Failed(mut failure) => {
                self.progress
                    .line(&format!("{}: FAILED: {}", build_set.label, failure.reason));
                failure.sandboxed = Some(self.limits.sandboxed);
                store.fail_evaluation(id, &failure)?;
                Ok(false)
            }
        }
    }

    /// Measures `pending` as tasks of one Slurm job array, all at once,
    /// adopting the tasks a previous coordinator left queued or running,
    /// and resubmitting lost tasks; stores each outcome as it comes, and
    /// every attempt (table `slurm_attempts`) as it is submitted, adopted
    /// and ends.
    fn measure_on_slurm(
        &self,
        pending: &[PendingBuildSet],
        run: RunId,
        slurm: &SlurmOptions,
        store: &mut Store,
    ) -> Result<bool> {
        if pending.is_empty() {
            return Ok(true);
        }
        // All are started at once: their tasks are submitted together.
        let ids = pending
            .iter()
            .map(|build_set| store.start_evaluation(&build_set.key, run))
            .collect::<Result<Vec<EvalId>, _>>()?;
        let cluster = Cluster::new(slurm.clone())?;
        let (base, base_hash) = cluster.stage_base(self.base, self.dataset_hash)?;
        let capacity = QueryPlan::new(self.dataset.test.len(), self.options.runs).slice;
        let mut specs = Vec::new();
        let mut attempts: Vec<Option<Attempt>> = Vec::new();
        let mut to_submit = Vec::new();
        for (i, build_set) in pending.iter().enumerate() {
            let mut job = cluster.stage_job(&build_set.job)?;
            job.base = base.clone();
            let spec = TaskSpec {
                job,
                base_hash: base_hash.clone(),
                dim: self.dataset.train.dim(),
                capacity,
                timeout_secs: self.limits.timeout.as_secs(),
                memory_bytes: self.limits.memory_bytes,
                sandboxed: self.limits.sandboxed,
            };
            let evaluation = cluster.evaluation_dir(&key_hash(&build_set.key));
            // Attempts recorded here are those of a coordinator killed
            // while measuring this evaluation (the store moved them to
            // its new row): the newest is adopted while its mailbox is
            // there. Its journal replays what the task answered, so a
            // task that ended after answering everything (the killed
            // coordinator had sent it `exit`) still gives its figures; one
            // that ended short is lost at the first request it never
            // answered, and resubmitted then.
            let recorded = store.slurm_attempts(ids[i])?;
            let next = recorded.iter().map(|a| a.attempt + 1).max().unwrap_or(0);
            let mut adopted = None;
            if let Some(row) = recorded.last().filter(|a| a.lost.is_none()) {
                let previous = Attempt::recorded(row);
                // Slurm not answering now is no ending: the watch decides.
                let info = previous.task.query();
                let lost = (!previous.dir.join("task.json").is_file())
                    .then(|| format!("its mailbox {} is gone", previous.dir.display()));
                store
                    .record_slurm_attempt(ids[i], &previous.record(info.as_ref(), lost.clone()))?;
                if lost.is_none() {
                    let state = match &info {
                        Some(info) if !info.live() => "ended; replaying its journal",
                        _ => "queued or running",
                    };
                    self.progress.line(&format!(
                        "{}: adopting Slurm task {} ({state}; {})",
                        build_set.label,
                        previous.task,
                        previous.dir.display()
                    ));
                    adopted = Some(previous);
                }
            }
            if adopted.is_none() {
                to_submit.push((i, next, cluster.new_attempt(&evaluation, &spec)?));
            }
            attempts.push(adopted);
            specs.push(spec);
        }
        if !to_submit.is_empty() {
            let dirs: Vec<PathBuf> = to_submit.iter().map(|(_, _, dir)| dir.clone()).collect();
            let tasks = cluster.submit(&dirs, self.task_cpus())?;
            self.progress.line(&format!(
                "submitted {} Slurm task(s): job {}",
                tasks.len(),
                tasks[0].job
            ));
            for ((i, number, dir), task) in to_submit.into_iter().zip(tasks) {
                let attempt = Attempt::submitted_now(dir, number, task);
                store.record_slurm_attempt(ids[i], &attempt.submitted_record())?;
                attempts[i] = Some(attempt);
            }
        }
        let (reports, received) = std::sync::mpsc::channel();
        let mut ok = true;
        std::thread::scope(|scope| -> Result<()> {
            for (i, (attempt, spec)) in attempts.into_iter().zip(&specs).enumerate() {
                let attempt = attempt.expect("every build set has an attempt");
                let (cluster, reports) = (&cluster, reports.clone());
                scope.spawn(move || {
                    let report = |record| {
                        // The receiver is gone only once storing failed.
                        let _ = reports.send(Report::Attempt(i, record));
                    };
                    let outcome =
                        self.measure_remotely(&pending[i], attempt, spec, cluster, &report);
                    let _ = reports.send(Report::Done(i, outcome));
                });
            }
            drop(reports);
            for report in received {
                match report {
                    Report::Attempt(i, record) => {
                        store.record_slurm_attempt(ids[i], &record)?;
                    }
                    Report::Done(i, outcome) => {
                        let (outcome, node) = outcome?;
                        if let Some(node) = node {
                            store.record_machine(ids[i], &node)?;
                        }
                        ok &= self.record(ids[i], &pending[i], outcome, store)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(ok)
    }

    /// CPUs each Slurm task asks for: the build's threads, or the search's
    /// when more.
    fn task_cpus(&self) -> usize {
        self.options
            .build_threads
            .max(self.options.batch_threads.unwrap_or(1))
    }

    /// Measures one build set through the mailbox of `attempt`; a task
    /// that ends without answering is resubmitted in a fresh attempt, up
    /// to the cluster's retries. Every attempt's record goes to `report`
    /// when it is submitted and when it ends. Returns the outcome and the
    /// node that built the index, when one did.
    fn measure_remotely(
        &self,
        build_set: &PendingBuildSet,
        mut attempt: Attempt,
        spec: &TaskSpec,
        cluster: &Cluster,
        report: &dyn Fn(SlurmAttempt),
    ) -> Result<(Outcome, Option<Machine>)> {
        let mut resubmitted = 0;
        loop {
            let mailbox = Mailbox::new(attempt.dir.clone(), attempt.task, self.options.k);
            let outcome = self.run_build_set(build_set, &mailbox)?;
            let lost = mailbox.lost();
            if lost.is_none() {
                mailbox.close();
            }
            // Slurm's last word on the attempt: its end as seen by the
            // watch, or once it exits (after `exit`, or cancelled here
            // when it still serves a mailbox given up).
            let ended = mailbox.ended().or_else(|| {
                if lost.is_some() {
                    // Best effort: a task that cannot be cancelled ends on
                    // its idle timeout.
                    let _ = attempt.task.cancel();
                }
                attempt.task.settle(SETTLE_TIME)
            });
            report(attempt.record(ended.as_ref(), lost.clone()));
            let Some(reason) = lost else {
                let node = mailbox.node();
                if let Some(node) = &node {
                    self.progress.line(&format!(
                        "{}: measured on {} ({})",
                        build_set.label,
                        node.node,
                        node.machine_type()
                    ));
                }
                return Ok((outcome, node));
            };
            if resubmitted == cluster.retries() {
                return Ok((
                    Outcome::Failed(Failure::new(
                        format!("{reason}; given up after {resubmitted} resubmission(s)"),
                        format!(
                            "every attempt is in the results database (table slurm_attempts); the \
                         last one's mailbox is {}",
                            attempt.dir.display()
                        ),
                    )),
                    None,
                ));
            }
            resubmitted += 1;
            self.progress.line(&format!(
                "{}: {reason}; resubmitting ({resubmitted} of {})",
                build_set.label,
                cluster.retries()
            ));
            let evaluation = cluster.evaluation_dir(&key_hash(&build_set.key));
            let dir = cluster.new_attempt(&evaluation, spec)?;
            let task = cluster
                .submit(std::slice::from_ref(&dir), self.task_cpus())?
                .pop()
                .expect("one task per directory");
            attempt = Attempt::submitted_now(dir, attempt.number + 1, task);
            report(attempt.submitted_record());
        }
    }

    /// The job of one build set of `pipeline` in this evaluation's mode.
    fn job(&self, pipeline: PipelineSpec, build_params: ParamMap) -> EvaluateJob {
        EvaluateJob {
            pipeline,
            build_params,
            base: self.base.to_path_buf(),
            exchange: PathBuf::new(),
            metric: self.dataset.metric.name().to_owned(),
            k: self.options.k,
            build_threads: self.options.build_threads,
            batch_threads: self.options.batch_threads,
            // One search thread (single mode, or batch mode on one thread)
            // runs pinned.
            pin_cpu: (self.options.batch_threads.unwrap_or(1) == 1)
                .then(|| num_cpus().saturating_sub(1)),
        }
    }

    /// Starts a worker for `job` through `executor` and builds.
    fn start_worker<'e>(
        &self,
        job: &EvaluateJob,
        executor: &'e dyn Executor,
        capacity: usize,
    ) -> Result<(Box<dyn WorkerSession + 'e>, Built), String> {
        // Repaired here if anything changed it since it was last verified.
        let mut verified = self.base_stamp.lock().unwrap_or_else(|e| e.into_inner());
        *verified = base_file::ensure(self.base, &self.dataset.train, Some(*verified))
            .map_err(|e| format!("verifying {}: {e}", self.base.display()))?;
        drop(verified);
        executor.start(job, self.dataset.train.dim(), capacity)
    }

    /// Measures one build set: builds in a worker, then measures every
    /// sweep point, moving to a freshly built worker whenever the current
    /// one has been given too many of the queries.
    fn run_build_set(
        &self,
        build_set: &PendingBuildSet,
        executor: &dyn Executor,
    ) -> Result<Outcome> {
        let PendingBuildSet {
            spec, job, label, ..
        } = build_set;
        let bar = self.progress.bar(
            spec.sweep_points().len().max(1) as u64,
            "{prefix:30} [{bar:20}] {pos}/{len} points {msg}",
        );
        bar.set_prefix(label.to_owned());
        bar.set_message("building");
        let mut plan = QueryPlan::new(self.dataset.test.len(), self.options.runs);
        let mut stderr_tail = String::new();
        let measured = (|| -> Result<(Built, Vec<SweepPoint>), String> {
            let (mut session, build) = self.start_worker(job, executor, plan.slice)?;
            bar.set_message(format!("built in {:.1}s", build.seconds));
            let adaptive_knob = self.options.adaptive.then(|| adaptive_knob(spec)).flatten();
            let policy = AdaptivePolicy {
                max_points: self.options.max_points,
                ..AdaptivePolicy::default()
            };
            let mut points: Vec<SweepPoint> = Vec::new();
            let mut pending = spec.sweep_points();
            while !pending.is_empty() {
                for knobs in pending.drain(..) {
                    if !plan.can_serve_point() {
                        // Every query of the pool went to this worker: the
                        // next point goes to a fresh process, rebuilt.
                        session.finish()?;
                        plan.refill();
                        (session, _) = self.start_worker(job, executor, plan.slice)?;
                    }
                    let point =
                        self.measure_point(session.as_mut(), &mut plan, &knobs, points.len());
                    stderr_tail = session.stderr_tail();
                    let point = point?;
                    bar.inc(1);
                    bar.set_message(format!(
                        "recall {:.4} at {:.0} QPS",
                        point.recall, point.qps
                    ));
                    points.push(point);
                }
                if let Some(knob) = &adaptive_knob {
                    pending = next_knobs(knob, &policy, &points);
                    bar.inc_length(pending.len() as u64);
                }
            }
            session.finish()?;
            Ok((build, points))
        })();
        bar.finish_and_clear();
        let (build, mut points) = match measured {
            Ok(done) => done,
            Err(reason) => {
                let mut failure = Failure::new(reason, stderr_tail.clone());
                failure.log = Some(stderr_tail);
                return Ok(Outcome::Failed(failure));
            }
        };
        points.sort_by(|a, b| a.recall.total_cmp(&b.recall));
        let best = points.iter().map(|p| p.recall).fold(0.0, f64::max);
        self.progress.line(&format!(
            "{label}: built in {:.1}s, {} points, best recall {best:.4}",
            build.seconds,
            points.len()
        ));
        Ok(Outcome::Measured { build, points })
    }

    /// Configures one sweep point, warms up on unscored queries (base
    /// vectors), then times up to R runs, each on a fresh slice of the
    /// queries, and scores them: the point's recall is the lowest of its
    /// runs, its QPS the fastest run's.
    fn measure_point(
        &self,
        session: &mut dyn WorkerSession,
        plan: &mut QueryPlan,
        knobs: &ParamMap,
        index: usize,
    ) -> Result<SweepPoint, String> {
        let at = point_label(knobs);
        session.configure(knobs)?;
        self.warm_up(session, plan, index)?;
        let train = &self.dataset.train;
        let budget = Duration::from_secs_f64(self.options.point_budget_secs);
        let mut spent = Duration::ZERO;
        let mut runs: Vec<(Timed, f64)> = Vec::new();
        while runs.len() < plan.runs_per_point && (runs.is_empty() || spent < budget) {
            let slice = plan.take().expect("the plan serves whole points");
            let queries: Vec<&[f32]> = slice.iter().map(|&q| self.dataset.test.row(q)).collect();
            let timed = session.run(&queries)?;
            let threads = self.options.batch_threads.unwrap_or(1) as f64;
            if timed.cpu_seconds
                > threads * timed.cpu_window_seconds * CPU_MARGIN + CPU_SLACK_SECONDS
            {
                return Err(format!(
                    "invalid point at {at}: the variant used more than {} CPU \
                     ({:.4}s of CPU time in {:.4}s of wall time)",
                    if threads > 1.0 {
                        format!("{threads}")
                    } else {
                        "one".into()
                    },
                    timed.cpu_seconds,
                    timed.cpu_window_seconds
                ));
            }
            let recall = self
                .score(&slice, &timed.ids)
                .map_err(|reason| format!("invalid results at {at}: {reason}"))?;
            spent += Duration::from_secs_f64(timed.seconds);
            runs.push((timed, recall));
        }
        let recalls: Vec<f64> = runs.iter().map(|(_, r)| *r).collect();
        let recall_min = recalls.iter().copied().fold(f64::INFINITY, f64::min);
        let recall_max = recalls.iter().copied().fold(0.0, f64::max);
        let (best, _) = runs
            .iter()
            .min_by(|a, b| a.0.seconds.total_cmp(&b.0.seconds))
            .expect("at least one run");
        let mut latencies = best.latencies_us.clone();
        latencies.sort_by(f64::total_cmp);
        let answered = plan.slice as f64;
        Ok(SweepPoint {
            search_params: knobs.clone(),
            recall: recall_min,
            recall_min,
            recall_max,
            runs_disagree: runs_disagree(&recalls, plan.slice),
            qps: answered / best.seconds,
            latency_p50_us: percentile(&latencies, 50.0),
            latency_p95_us: percentile(&latencies, 95.0),
            latency_p99_us: percentile(&latencies, 99.0),
            runs: runs.len() as u32,
            distance_computations: best
                .distance_computations
                .map(|c| c as f64 / answered)
                .filter(|&per_query| per_query <= 64.0 * train.len() as f64),
            invalid_queries: 0,
            mode: self.mode(),
        })
    }

    /// Answers one slice of unscored queries (base vectors), so caches and
    /// lazily made state are warm before the timed runs.
    fn warm_up(
        &self,
        session: &mut dyn WorkerSession,
        plan: &QueryPlan,
        index: usize,
    ) -> Result<(), String> {
        let train = &self.dataset.train;
        let warmup: Vec<&[f32]> = shuffled(train.len(), 1_000 + index as u64)
            .into_iter()
            .take(plan.slice)
            .map(|i| train.row(i))
            .collect();
        session.run(&warmup).map(drop)
    }

    /// What the Python bridge itself costs per query: the no-op adapter
    /// (its "library" answers at once) served through `pipeline`'s bridge and
    /// environment, in the same sandbox, mode and measurer as the bridged
    /// variants; the fastest of R runs on fresh slices.
    fn bridge_overhead(
        &self,
        pipeline: &PipelineSpec,
        scratch: &Path,
    ) -> Result<BridgeOverhead, String> {
        let mut pipeline = pipeline.clone();
        let python = pipeline.python.as_mut().ok_or("not a bridged variant")?;
        python.adapter = python_env::noop_adapter(&python.environment)?;
        pipeline.search_params.clear();
        let job = self.job(pipeline, ParamMap::new());
        let mut plan = QueryPlan::new(self.dataset.test.len(), self.options.runs);
        let local = Local {
            limits: self.limits.clone(),
            scratch: scratch.to_path_buf(),
        };
        let (mut session, _) = self.start_worker(&job, &local, plan.slice)?;
        session.configure(&ParamMap::new())?;
        self.warm_up(session.as_mut(), &plan, 0)?;
        let mut fastest = f64::INFINITY;
        for _ in 0..plan.runs_per_point {
            let slice = plan.take().expect("the plan serves whole points");
            let queries: Vec<&[f32]> = slice.iter().map(|&q| self.dataset.test.row(q)).collect();
            fastest = fastest.min(session.run(&queries)?.seconds);
        }
        session.finish()?;
        Ok(BridgeOverhead {
            seconds_per_query: fastest / plan.slice as f64,
            queries: plan.slice as u64,
        })
    }

    /// Recall@k of one run over the queries `slice` (ids in slice order);
    /// an error names the first invalid query.
    fn score(&self, slice: &[usize], ids: &[u32]) -> Result<f64, String> {
        let k = self.options.k;
        let test = &self.dataset.test;
        let queries = Matrix::new(
            slice
                .iter()
                .flat_map(|&q| test.row(q).iter().copied())
                .collect(),
            test.dim(),
        )
        .map_err(|e| e.to_string())?;
        let truth = GroundTruth {
            k: self.truth.k,
            ids: rows_of(&self.truth.ids, slice, self.truth.k),
            distances: rows_of(&self.truth.distances, slice, self.truth.k),
        };
        let results: Vec<&[u32]> = ids
            .chunks_exact(k)
            .map(|row| &row[..row.iter().position(|&id| id == NO_ID).unwrap_or(k)])
            .collect();
        let recall = annvil_data::recall(
            &self.dataset.train,
            &queries,
            self.dataset.metric,
            &results,
            &truth,
            k,
            ANN_BENCHMARKS_EPSILON,
        )
        .map_err(|e| e.to_string())?;
        match recall.first_invalid {
            Some((q, why)) => Err(format!("query {}: {why}", slice[q])),
            None => Ok(recall.mean),
        }
    }
}

/// The rows `slice` of a row-major table with `width` columns.
fn rows_of<T: Copy>(table: &[T], slice: &[usize], width: usize) -> Vec<T> {
    slice
        .iter()
        .flat_map(|&row| table[row * width..(row + 1) * width].iter().copied())
        .collect()
}

/// CPU time a run may use beyond its threads × wall time: a relative margin
/// and a constant slack for the reads around the clock.
const CPU_MARGIN: f64 = 1.05;
const CPU_SLACK_SECONDS: f64 = 0.002;

/// True when the runs' recalls spread further than sampling different
/// query slices explains: four standard errors of a slice's mean recall,
/// taking each query as one unit (its k neighbours are not independent),
/// and at least 0.02.
fn runs_disagree(recalls: &[f64], queries_per_run: usize) -> bool {
    let mean = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    let spread =
        recalls.iter().copied().fold(0.0, f64::max) - recalls.iter().copied().fold(1.0, f64::min);
    let error = (mean * (1.0 - mean) / queries_per_run.max(1) as f64).sqrt();
    spread > (4.0 * error).max(0.02)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A worker serves at most this many sweep points before the next ones go
/// to a fresh, rebuilt worker (when the queries allow runs of
/// [`MIN_RUN_QUERIES`] or more).
pub const POINTS_PER_WORKER: usize = 8;

/// The fewest queries a timed run gets when the dataset has enough.
pub const MIN_RUN_QUERIES: usize = 100;

/// How one evaluation hands out its queries: the pool is shuffled and cut
/// into slices; each timed run takes the next slice, so no worker process
/// is ever given a query twice. When the pool cannot serve a whole point,
/// the next worker starts with the pool reshuffled.
#[derive(Debug)]
pub struct QueryPlan {
    queries: usize,
    order: Vec<usize>,
    next: usize,
    refills: u64,
    /// Queries per run.
    pub slice: usize,
    /// Timed runs per point (R, or fewer when there are fewer queries).
    pub runs_per_point: usize,
}

impl QueryPlan {
    /// A plan for `queries` queries and `runs` timed runs per point.
    pub fn new(queries: usize, runs: usize) -> QueryPlan {
        let runs_per_point = runs.clamp(1, queries.max(1));
        let slice = (queries / (POINTS_PER_WORKER * runs_per_point))
            .max((queries / runs_per_point).min(MIN_RUN_QUERIES))
            .max(1);
        QueryPlan {
            queries,
            order: shuffled(queries, 1),
            next: 0,
            refills: 0,
            slice,
            runs_per_point,
        }
    }

    /// True when the pool still holds a whole point's runs.
    pub fn can_serve_point(&self) -> bool {
        self.next + self.runs_per_point * self.slice <= self.order.len()
    }

    /// The next slice, if the pool holds one.
    pub fn take(&mut self) -> Option<Vec<usize>> {
        let end = self.next + self.slice;
        let slice = self.order.get(self.next..end)?.to_vec();
        self.next = end;
        Some(slice)
    }

    /// A fresh pool for a fresh worker.
    pub fn refill(&mut self) {
        self.refills += 1;
        self.order = shuffled(self.queries, 1 + self.refills);
        self.next = 0;
    }
}

/// A deterministic permutation of 0..n, one per seed.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    order
}

/// How a sweep point is named in messages.
fn point_label(knobs: &ParamMap) -> String {
    if knobs.is_empty() {
        "the only sweep point".into()
    } else {
        params_text(knobs)
    }
}

enum Outcome {
    Measured {
        build: Built,
        points: Vec<SweepPoint>,
    },
    Failed(Failure),
}

/// The knob the adaptive sweep may refine: the only swept knob, when all its
/// declared values are non-negative integers.
fn adaptive_knob(spec: &VariantSpec) -> Option<String> {
    match &spec.sweep[..] {
        [(name, values)] if values.iter().all(|v| v.parse::<u64>().is_ok()) => Some(name.clone()),
        _ => None,
    }
}

fn next_knobs(knob: &str, policy: &AdaptivePolicy, points: &[SweepPoint]) -> Vec<ParamMap> {
    let measured: Vec<KnobPoint> = points
        .iter()
        .filter_map(|p| {
            Some(KnobPoint {
                knob: p.search_params.get(knob)?.parse().ok()?,
                recall: p.recall,
                qps: p.qps,
            })
        })
        .collect();
    propose_knobs(policy, &measured)
        .into_iter()
        .map(|value| BTreeMap::from([(knob.to_owned(), value.to_string())]))
        .collect()
}

/// A short, stable name of an evaluation key (its attempt directory).
fn key_hash(key: &EvaluationKey) -> String {
    let text = serde_json::to_vec(key).expect("keys serialize");
    blake3::hash(&text).to_hex()[..24].to_owned()
}

fn params_text(params: &ParamMap) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_never_gives_one_worker_a_query_twice() {
        let mut plan = QueryPlan::new(10_000, 5);
        assert_eq!((plan.slice, plan.runs_per_point), (250, 5));
        let mut seen = std::collections::HashSet::new();
        let mut points = 0;
        while plan.can_serve_point() {
            for _ in 0..plan.runs_per_point {
                for q in plan.take().unwrap() {
                    assert!(seen.insert(q), "query {q} handed out twice");
                }
            }
            points += 1;
        }
        assert_eq!(points, POINTS_PER_WORKER);
        plan.refill();
        assert!(plan.can_serve_point());
        assert_ne!(plan.take().unwrap(), shuffled(10_000, 1)[..250].to_vec());
    }

    #[test]
    fn small_query_sets_get_whole_runs_and_a_worker_per_point() {
        let plan = QueryPlan::new(200, 2);
        assert_eq!(plan.slice, 100);
        let plan = QueryPlan::new(3, 5);
        assert_eq!((plan.slice, plan.runs_per_point), (1, 3));
    }

    #[test]
    fn only_a_spread_beyond_sampling_noise_is_disagreement() {
        assert!(!runs_disagree(&[0.90, 0.93, 0.905], 250));
        assert!(runs_disagree(&[0.99, 0.40], 250));
        // Few queries per run: a wider spread is still sampling noise.
        assert!(!runs_disagree(&[0.8, 0.9], 40));
    }

    #[test]
    fn shuffles_are_permutations_and_differ_by_seed() {
        let a = shuffled(1000, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, shuffled(1000, 2));
        assert_eq!(a, shuffled(1000, 1));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
    }
}
