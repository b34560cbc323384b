//! `host evaluate`: the coordinator's half of an evaluation. For each
//! (variant, build-parameter set) it starts a worker (see [`crate::measure`]),
//! scores every answer the worker returns against exact ground truth that
//! never leaves this process, extends the sweep adaptively, records
//! everything in the results database and writes the reports.
//!
//! Scoring happens only while the worker waits for its next sweep points,
//! so the coordinator's threads never compete with a timed run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use annvil_data::{ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, GroundTruth};
use annvil_results::reward::{AdaptivePolicy, KnobPoint, propose_knobs};
use annvil_results::{
    EvalConfig, EvaluationKey, EvaluationOutcome, Failure, Mode, Store, SweepPoint,
};
use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::WorkerLimits;
use crate::isolate::{Ending, run_worker};
use crate::measure::{
    BuildReport, EvaluateItem, EvaluateJob, NO_ID, PointReport, write_vectors_file,
};
use crate::prepare::{Prepared, PreparedState, prepare_variants};
use crate::variant::{ParamMap, VariantSpec};
use crate::worker::Job;

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

/// Directory for annvil's caches (ground truth, worker vector files).
fn cache_dir(prepared_workspace: Option<&crate::compile::Workspace>) -> PathBuf {
    match prepared_workspace {
        Some(ws) => ws.target_dir().join("annvil"),
        None => PathBuf::from("target/annvil"),
    }
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
    let cache = cache_dir(workspace.as_ref());
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
    let vectors = cache.join("vectors").join(format!("{dataset_hash}.bin"));
    if !vectors.exists() {
        std::fs::create_dir_all(vectors.parent().expect("has a parent"))?;
        write_vectors_file(&vectors, &dataset.train, &dataset.test)
            .with_context(|| format!("writing {}", vectors.display()))?;
    }

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
        dataset: &dataset,
        dataset_hash: &dataset_hash,
        truth: &truth,
        vectors: &vectors,
        progress: &progress,
    };
    let mut all_ok = true;
    let scratch = tempfile::tempdir()?;
    for variant in &prepared {
        if let PreparedState::Ready { spec, .. } = &variant.state
            && let Some(lineage) = &spec.lineage
        {
            store.record_lineage(&variant.name, lineage)?;
        }
        all_ok &= evaluation.variant(variant, &mut store, run, scratch.path())?;
    }
    store.end_run(run)?;

    let scope = annvil_results::Scope {
        dataset_name: dataset.name.clone(),
        dataset_hash: dataset_hash.clone(),
        config_key: evaluation.config().key(),
        config: evaluation.config(),
    };
    crate::report::write(&store, &options.results_dir, scope.clone())?;
    Ok(Evaluated {
        all_ok,
        scope,
        database: db_path,
    })
}

/// The per-dataset context of one `host evaluate`.
struct Evaluation<'a> {
    options: &'a EvaluateOptions,
    dataset: &'a Dataset,
    dataset_hash: &'a str,
    truth: &'a GroundTruth,
    vectors: &'a Path,
    progress: &'a Progress,
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

    /// Evaluates every build-parameter set of one variant; true when all
    /// succeeded (or were already in the database).
    fn variant(
        &self,
        variant: &Prepared,
        store: &mut Store,
        run: annvil_results::RunId,
        scratch: &Path,
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
                store.skip_evaluation(id, &Failure::new(format!("skipped: {hint}"), ""))?;
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
        let mut ok = true;
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
            let id = store.start_evaluation(&key, run)?;
            let job = EvaluateJob {
                pipeline: pipeline.clone(),
                build_params: build_params.clone(),
                knobs: spec.sweep_points(),
                vectors: self.vectors.to_path_buf(),
                metric: self.dataset.metric.name().to_owned(),
                k: self.options.k,
                runs: self.options.runs,
                point_budget_secs: self.options.point_budget_secs,
                build_threads: self.options.build_threads,
                batch_threads: self.options.batch_threads,
                pin_cpu: self
                    .options
                    .batch_threads
                    .is_none()
                    .then(|| num_cpus().saturating_sub(1)),
            };
            match self.run_build_set(spec, &job, &label, scratch)? {
                Outcome::Measured { build, points } => {
                    let outcome = EvaluationOutcome {
                        build_seconds: build.build_seconds,
                        index_memory_bytes: Some(build.reported_bytes),
                        rss_bytes: Some(build.rss_bytes),
                        build_log: None,
                    };
                    store.finish_evaluation(id, &outcome, &points)?;
                }
                Outcome::Failed(failure) => {
                    self.progress
                        .line(&format!("{label}: FAILED: {}", failure.reason));
                    store.fail_evaluation(id, &failure)?;
                    ok = false;
                }
            }
        }
        Ok(ok)
    }

    /// Runs one worker for one build set, scoring as it goes.
    fn run_build_set(
        &self,
        spec: &VariantSpec,
        job: &EvaluateJob,
        label: &str,
        scratch: &Path,
    ) -> Result<Outcome> {
        let bar = self.progress.bar(
            job.knobs.len().max(1) as u64,
            "{prefix:30} [{bar:20}] {pos}/{len} points {msg}",
        );
        bar.set_prefix(label.to_owned());
        bar.set_message("building");
        let adaptive_knob = self.options.adaptive.then(|| adaptive_knob(spec)).flatten();
        let policy = AdaptivePolicy {
            max_points: self.options.max_points,
            ..AdaptivePolicy::default()
        };
        let mut build: Option<BuildReport> = None;
        let mut pending: Vec<PointReport> = Vec::new();
        let mut points: Vec<SweepPoint> = Vec::new();
        let mut invalid: Option<String> = None;
        let worker = run_worker(
            &Job::Evaluate(job.clone()),
            &self.options.limits.limits(job.pin_cpu),
            scratch,
            |item: &EvaluateItem| match item {
                EvaluateItem::Built(report) => {
                    bar.set_message(format!("built in {:.1}s", report.build_seconds));
                    build = Some(report.clone());
                    None
                }
                EvaluateItem::Point(point) => {
                    bar.inc(1);
                    pending.push(point.clone());
                    None
                }
                EvaluateItem::AwaitingKnobs => {
                    for point in pending.drain(..) {
                        let scored = self.score(&point, self.mode());
                        if let Some((q, reason)) = &scored.1 {
                            invalid.get_or_insert_with(|| {
                                format!(
                                    "invalid results at {}: query {q}: {reason}",
                                    params_text(&point.knobs)
                                )
                            });
                        }
                        bar.set_message(format!(
                            "recall {:.4} at {:.0} QPS",
                            scored.0.recall, scored.0.qps
                        ));
                        points.push(scored.0);
                    }
                    let next = match (&adaptive_knob, &invalid) {
                        (Some(knob), None) => next_knobs(knob, &policy, &points),
                        _ => Vec::new(),
                    };
                    bar.inc_length(next.len() as u64);
                    Some(serde_json::to_string(&next).expect("knob maps serialise"))
                }
            },
        )?;
        bar.finish_and_clear();
        if let Ending::Failed(reason) = worker.ending {
            let mut failure = Failure::new(reason, worker.stderr_tail.clone());
            failure.log = Some(worker.stderr_tail);
            return Ok(Outcome::Failed(failure));
        }
        if let Some(reason) = invalid {
            return Ok(Outcome::Failed(Failure::new(
                reason,
                "duplicate or out-of-range ids make a result invalid, not a miss",
            )));
        }
        let build = build.context("the worker finished without reporting its build")?;
        points.sort_by(|a, b| a.recall.total_cmp(&b.recall));
        let best = points.iter().map(|p| p.recall).fold(0.0, f64::max);
        self.progress.line(&format!(
            "{label}: built in {:.1}s, {} points, best recall {best:.4}",
            build.build_seconds,
            points.len()
        ));
        Ok(Outcome::Measured { build, points })
    }

    /// Scores every distinct answer of a point; returns the sweep point and
    /// the first invalid query, if any.
    fn score(&self, point: &PointReport, mode: Mode) -> (SweepPoint, Option<(usize, String)>) {
        let k = self.options.k;
        let mut per_run: Vec<f64> = Vec::new();
        let mut invalid_queries = 0u64;
        let mut first_invalid = None;
        for set in &point.result_sets {
            let results: Vec<&[u32]> = set
                .ids
                .chunks_exact(k)
                .map(|row| &row[..row.iter().position(|&id| id == NO_ID).unwrap_or(k)])
                .collect();
            let recall = annvil_data::recall(
                &self.dataset.train,
                &self.dataset.test,
                self.dataset.metric,
                &results,
                self.truth,
                k,
                ANN_BENCHMARKS_EPSILON,
            )
            .expect("result sets cover every query");
            invalid_queries = invalid_queries.max(recall.invalid as u64);
            if first_invalid.is_none() {
                first_invalid = recall.first_invalid.map(|(q, why)| (q, why.to_string()));
            }
            per_run.extend(std::iter::repeat_n(recall.mean, set.runs.len()));
        }
        let mean = per_run.iter().sum::<f64>() / per_run.len().max(1) as f64;
        let sweep_point = SweepPoint {
            search_params: point.knobs.clone(),
            recall: mean,
            recall_min: per_run
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
                .min(mean),
            recall_max: per_run.iter().copied().fold(0.0, f64::max).max(mean),
            runs_disagree: point.result_sets.len() > 1,
            qps: point.qps,
            latency_p50_us: point.p50_us,
            latency_p95_us: point.p95_us,
            latency_p99_us: point.p99_us,
            runs: point.runs as u32,
            distance_computations: point.distances_per_query,
            invalid_queries,
            mode,
        };
        (sweep_point, first_invalid)
    }
}

enum Outcome {
    Measured {
        build: BuildReport,
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
