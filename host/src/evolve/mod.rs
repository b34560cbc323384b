//! `host evolve`: CRINN's slot-by-slot evolution loop.
//!
//! A stage evolves one slot from a start variant: each step picks the best
//! variant of the stage so far as the parent, asks the generator for a
//! candidate that changes only that slot, materialises it as a variant
//! directory under `--out` (default `evolved/`), builds it, runs the
//! conformance suite, evaluates it and records everything in the program
//! database (`candidates` in the results database). `--slot all` runs the
//! construction, search and refinement stages in turn, each starting from
//! the best variant of the one before.
//!
//! `--parallel N` keeps up to N candidates of a stage in flight, one per
//! *lane* (a thread): generation requests run concurrently, and so do the
//! builds and conformance checks; every evaluation's timed measurement takes
//! the workspace's measurement lock
//! ([`crate::coordinator::measure_lock`]), so measurements never overlap.
//! Each step's parent is the best candidate *finished* when the step starts
//! (candidates in flight have no reward yet), and prompts draw exemplars from
//! finished candidates only. Every lane opens its own database connection.
//!
//! The loop is resumable: a stage is a *session* keyed by its start variant,
//! slot, generator, language and dataset; the budget counts the session's
//! candidates in the database (a generation starts only while the rows plus
//! the generations under way stay below it), and a candidate left
//! `generated` by an interruption is evaluated before anything new is
//! generated. Content is hashed, and a session never evaluates the same
//! content twice: of two lanes that generate the same content, the database
//! records the first, and the second is dropped unjudged.
//!
//! At the end the start variant and the chain of parents leading to the best
//! candidate are evaluated again in one run (`--force`), so the reported
//! gain compares numbers measured side by side.

pub mod generate;
pub mod prompt;
pub mod rl;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use annvil_core::SplitMix64;
use annvil_data::{Dataset, DatasetSpec};
use annvil_results::{
    CandidateId, CandidateRecord, CandidateScore, CandidateStatus, LeaderboardRow, Lineage,
    NewCandidate, Scope, Status, Store, StoreError,
};
use anyhow::{Context, Result, bail};

use self::generate::{Cmd, Llm};
use self::prompt::{ParentInfo, PromptInput, Sampling};
use crate::coordinator::evaluate::{EvaluateOptions, evaluate};
use crate::describe::{SlotParams, describe};
use crate::judge::{JudgeOptions, Judgement, compiler_errors, judge};
use crate::prepare::{PreparedState, prepare_variants};
use crate::scaffold::{Lang, NewVariant, SlotChoice};
use crate::variant::{SlotKind, VARIANT_FILE, VariantSpec};

/// Where candidates come from.
#[derive(Clone, Debug)]
pub enum Generator {
    /// An OpenAI-compatible endpoint.
    Llm(Llm),
    /// A command: prompt on stdin, answer on stdout.
    Cmd(Cmd),
    /// Offline: mutate declared parameters.
    Tune,
    /// Offline: take the slot from another variant.
    Recombine {
        /// Variants whose slots may be taken.
        donors: Vec<PathBuf>,
    },
}

impl Generator {
    /// The name recorded in the database.
    pub fn name(&self) -> &'static str {
        match self {
            Generator::Llm(_) => "llm",
            Generator::Cmd(_) => "cmd",
            Generator::Tune => "tune",
            Generator::Recombine { .. } => "recombine",
        }
    }

    fn writes_code(&self) -> bool {
        matches!(self, Generator::Llm(_) | Generator::Cmd(_))
    }
}

/// Everything `host evolve` needs.
#[derive(Clone, Debug)]
pub struct EvolveOptions {
    /// The variant to start from.
    pub from: PathBuf,
    /// The slots to evolve, in order.
    pub slots: Vec<SlotKind>,
    /// The generator.
    pub generator: Generator,
    /// Candidates per stage.
    pub budget: usize,
    /// Where candidate directories go.
    pub out: PathBuf,
    /// Language of generated code.
    pub lang: Lang,
    /// Exemplar sampling of the prompt.
    pub sampling: Sampling,
    /// How candidates are evaluated (dataset, runs, results directory…).
    pub evaluate: EvaluateOptions,
    /// Threads of the conformance suite's builds.
    pub check_threads: usize,
    /// Candidates in flight at once per stage (generation, build, check
    /// and evaluation overlap; timed measurements take the machine's
    /// measurement lock one at a time).
    pub parallel: usize,
}

/// How far below the start variant's highest recall a candidate may stay
/// and still count as an improvement (one query in a thousand).
const RECALL_SLACK: f64 = 1e-3;

/// Contenders of a stage re-measured side by side with its start variant
/// before it declares its best.
const FINALISTS: usize = 3;

/// What happened to one candidate.
struct CandidateOutcome {
    status: CandidateStatus,
    build_log: Option<String>,
    failure: Option<String>,
    score: Option<CandidateScore>,
}

impl CandidateOutcome {
    fn failed(status: CandidateStatus, failure: String) -> CandidateOutcome {
        CandidateOutcome {
            status,
            build_log: None,
            failure: Some(failure),
            score: None,
        }
    }
}

/// A stage in progress.
struct Stage<'a> {
    options: &'a EvolveOptions,
    slot: SlotKind,
    session: String,
    start: VariantSpec,
    start_reward: f64,
    /// The start variant's highest recall: a candidate must reach it (less
    /// [`RECALL_SLACK`]) to become a parent or the stage's best.
    start_recall: f64,
    scope: Scope,
    database: PathBuf,
    scratch: tempfile::TempDir,
}

/// Runs `host evolve`; returns true when the best variant beats the start
/// variant in the final side-by-side run.
pub fn evolve(options: &EvolveOptions) -> Result<bool> {
    if options.budget == 0 {
        bail!("--budget must be at least 1");
    }
    if options.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let start = VariantSpec::load(&options.from)?;
    let mut current = start.dir.clone();
    let mut node = None;
    for &slot in &options.slots {
        let stage = Stage::begin(options, slot, &current)?;
        node = stage.start_node()?;
        current = stage.run()?;
    }
    confirm(options, &start, &current, node)
}

/// Evaluates the start variant and every ancestor of `best` back to it in
/// one forced run (one build set after another on `node`, where the last
/// stage's start variant was measured, under Slurm) and prints the gain.
fn confirm(
    options: &EvolveOptions,
    start: &VariantSpec,
    best: &Path,
    node: Option<String>,
) -> Result<bool> {
    let best = VariantSpec::load(best)?;
    if best.dir == start.dir {
        println!(
            "\nevolve: no candidate beat {}; it stays the best variant",
            start.name
        );
        return Ok(false);
    }
    let store = Store::open(options.evaluate.results_dir.join("results.sqlite"))?;
    let mut chain = vec![best.dir.clone()];
    let mut name = best.name.clone();
    while let Some(lineage) = store.lineage(&name)? {
        if lineage.parent == start.name || chain.len() > 64 {
            break;
        }
        match store.candidate_named(&lineage.parent)? {
            Some(parent) => chain.push(PathBuf::from(&parent.candidate.dir)),
            None => break,
        }
        name = lineage.parent;
    }
    chain.push(start.dir.clone());
    chain.reverse();
    drop(store);
    println!(
        "\nevolve: re-measuring {} side by side with its ancestors",
        best.name
    );
    let measured = side_by_side(options, &chain, node)?;
    let reward = |name: &str| measured(name).map(|r| r.reward);
    match (reward(&start.name), reward(&best.name)) {
        (Some(before), Some(after)) => {
            println!(
                "evolve: {} reward {after:.0} vs {} {before:.0} in the same run: {:.2}×",
                best.name,
                start.name,
                after / before.max(f64::MIN_POSITIVE)
            );
            Ok(after > before)
        }
        _ => {
            println!("evolve: the final run did not rank both variants");
            Ok(false)
        }
    }
}

/// Evaluates `dirs` again in one forced run (one build set after another
/// on `node` under Slurm) and returns a lookup of the run's `ok` rows by
/// variant name.
fn side_by_side(
    options: &EvolveOptions,
    dirs: &[PathBuf],
    node: Option<String>,
) -> Result<impl Fn(&str) -> Option<LeaderboardRow>> {
    let mut options = options.evaluate.clone();
    options.force = true;
    options.executor = options.executor.side_by_side(node);
    let evaluated = evaluate(dirs, &options)?;
    let board = Store::open(&evaluated.database)?.leaderboard_for(&evaluated.scope)?;
    Ok(move |name: &str| {
        board
            .rows
            .iter()
            .find(|r| r.variant_name == name && r.status == Status::Ok)
            .cloned()
    })
}

impl<'a> Stage<'a> {
    fn begin(options: &'a EvolveOptions, slot: SlotKind, start_dir: &Path) -> Result<Stage<'a>> {
        let start = VariantSpec::load(start_dir)?;
        println!(
            "\nevolve: {} stage from {} with the {} generator, budget {}",
            slot.name(),
            start.name,
            options.generator.name(),
            options.budget
        );
        let evaluated = evaluate(std::slice::from_ref(&start.dir), &options.evaluate)?;
        let store = Store::open(&evaluated.database)?;
        let start_row = row_of(&store, &evaluated.scope, &start.name)?
            .filter(|r| r.status == Status::Ok)
            .with_context(|| format!("{}: the start variant could not be evaluated", start.name))?;
        let start_reward = start_row.reward;
        let start_recall = start_row.max_recall.unwrap_or(0.0);
        let session = format!(
            "{}|{}|{}|{}|{}|{}",
            start.name,
            slot.name(),
            options.generator.name(),
            options.lang.name(),
            evaluated.scope.dataset_hash,
            evaluated.scope.config_key
        );
        Ok(Stage {
            options,
            slot,
            session,
            start,
            start_reward,
            start_recall,
            scope: evaluated.scope,
            database: evaluated.database,
            scratch: tempfile::tempdir()?,
        })
    }

    fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.database)?)
    }

    /// Runs the stage to its budget; returns the directory of its best variant.
    fn run(self) -> Result<PathBuf> {
        if matches!(self.options.generator, Generator::Tune)
            && self
                .declared(&self.start)?
                .slot(self.slot)
                .iter()
                .all(|p| p.knob)
        {
            println!(
                "evolve: the {} slot of {} declares no tunable parameters; tune skips this stage",
                self.slot.name(),
                self.start.name
            );
            return Ok(self.start.dir.clone());
        }
        let schedule = Mutex::new(self.schedule()?);
        std::thread::scope(|threads| {
            let lanes: Vec<_> = (0..self.options.parallel)
                .map(|_| threads.spawn(|| self.lane(&schedule)))
                .collect();
            // Every lane finishes its candidate before the first error is
            // reported, so nothing in flight is left half-recorded.
            lanes
                .into_iter()
                .map(|lane| lane.join().expect("an evolve lane panicked"))
                .collect::<Result<Vec<()>>>()
        })?;
        let (best_dir, best_name, best_reward) = self.final_best()?;
        println!(
            "evolve: {} stage done: best {best_name} (reward {best_reward:.0} in the finalists' \
             run; start {} {:.0} when the stage began)",
            self.slot.name(),
            self.start.name,
            self.start_reward
        );
        Ok(best_dir)
    }

    /// The best variant of the session so far: the start variant unless a
    /// candidate beat its reward while still reaching its highest recall
    /// (CRINN's rule: recall may not fall below the parent's).
    fn best(&self) -> Result<(PathBuf, String, f64)> {
        Ok(self
            .contenders()?
            .into_iter()
            .next()
            .filter(|c| c.2 > self.start_reward)
            .unwrap_or_else(|| {
                (
                    self.start.dir.clone(),
                    self.start.name.clone(),
                    self.start_reward,
                )
            }))
    }

    /// The session's measured candidates that keep the start variant's
    /// highest recall, best recorded reward first (directory, name, reward).
    fn contenders(&self) -> Result<Vec<(PathBuf, String, f64)>> {
        let mut contenders = Vec::new();
        for c in self.store()?.session_candidates(&self.session)? {
            let Some(score) = &c.score else { continue };
            let recall = serde_json::from_str::<serde_json::Value>(&score.metrics_json)
                .ok()
                .and_then(|m| m["max_recall"].as_f64())
                .unwrap_or(0.0);
            if recall >= self.start_recall - RECALL_SLACK {
                contenders.push((
                    PathBuf::from(&c.candidate.dir),
                    c.candidate.name,
                    score.reward,
                ));
            }
        }
        contenders.sort_by(|a, b| b.2.total_cmp(&a.2));
        Ok(contenders)
    }

    /// The node the start variant was measured on when the stage began.
    fn start_node(&self) -> Result<Option<String>> {
        let store = self.store()?;
        let Some(row) = row_of(&store, &self.scope, &self.start.name)? else {
            return Ok(None);
        };
        Ok(store
            .evaluation(row.evaluation_id)?
            .machine
            .map(|machine| machine.node)
            .filter(|node| !node.is_empty()))
    }

    /// The stage's best, decided side by side: the start variant and the
    /// [`FINALISTS`] contenders with the highest recorded rewards are
    /// measured again in one run (with `--executor slurm`, one after
    /// another on one node), and a finalist wins only if it beats the start
    /// variant there while keeping its highest recall. Candidates measured
    /// at different times, or on different nodes, are never compared
    /// directly.
    fn final_best(&self) -> Result<(PathBuf, String, f64)> {
        let finalists: Vec<_> = self.contenders()?.into_iter().take(FINALISTS).collect();
        let start = (
            self.start.dir.clone(),
            self.start.name.clone(),
            self.start_reward,
        );
        if finalists.is_empty() {
            return Ok(start);
        }
        println!(
            "evolve: re-measuring the {} stage's finalists ({}) side by side with {}",
            self.slot.name(),
            finalists
                .iter()
                .map(|f| f.1.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.start.name
        );
        let dirs: Vec<PathBuf> = std::iter::once(&start)
            .chain(&finalists)
            .map(|f| f.0.clone())
            .collect();
        let rows = side_by_side(self.options, &dirs, self.start_node()?)?;
        let measured = |name: &str| rows(name).map(|r| (r.reward, r.max_recall.unwrap_or(0.0)));
        let Some((start_reward, start_recall)) = measured(&self.start.name) else {
            bail!(
                "{}: the start variant failed in the finalists' run",
                self.start.name
            );
        };
        let mut best = (start.0, start.1, start_reward);
        for (dir, name, _) in finalists {
            if let Some((reward, recall)) = measured(&name)
                && reward > best.2
                && recall >= start_recall - RECALL_SLACK
            {
                best = (dir, name, reward);
            }
        }
        Ok(best)
    }

    /// The stage's schedule as the database leaves it: candidates left
    /// `generated` by an interruption are judged first; the draws made
    /// before it are skipped.
    fn schedule(&self) -> Result<Schedule> {
        let candidates = self.store()?.session_candidates(&self.session)?;
        let mut rng = SplitMix64::new(blake3_u64(&self.session));
        for _ in 0..candidates.len() {
            rng.next_u64();
        }
        Ok(Schedule {
            recorded: candidates.len(),
            generating: 0,
            open: candidates
                .into_iter()
                .filter(|c| c.status == CandidateStatus::Generated)
                .collect(),
            claimed: BTreeSet::new(),
            rng,
            fruitless: 0,
            halted: false,
        })
    }

    /// One of the `--parallel` lanes: takes work from `schedule` until the
    /// budget is spent (or another lane failed).
    fn lane(&self, schedule: &Mutex<Schedule>) -> Result<()> {
        loop {
            let work = lock(schedule).next(self, self.options.budget);
            let result = match work {
                Ok(None) => return Ok(()),
                Ok(Some(Work::Resume(open))) => {
                    println!("evolve: resuming {}", open.candidate.name);
                    self.judge(
                        open.id,
                        Path::new(&open.candidate.dir),
                        &open.candidate.name,
                    )
                }
                Ok(Some(Work::Generate { seed, name })) => {
                    self.generate_and_judge(schedule, &mut SplitMix64::new(seed), &name)
                }
                Err(e) => Err(e),
            };
            if result.is_err() {
                lock(schedule).halted = true;
                return result;
            }
        }
    }

    /// Generates and records one candidate named `name`, reports the draw
    /// to `schedule`, and judges the candidate when one was recorded.
    fn generate_and_judge(
        &self,
        schedule: &Mutex<Schedule>,
        rng: &mut SplitMix64,
        name: &str,
    ) -> Result<()> {
        let recorded = self.generate(rng, name);
        lock(schedule).drawn(name, recorded.as_ref().is_ok_and(Option::is_some), self);
        match recorded? {
            Some((id, dir, None)) => self.judge(id, &dir, name),
            Some((id, _, Some(why))) => {
                println!("evolve: {name}: invalid response: {why}");
                self.store()?.close_candidate(
                    id,
                    CandidateStatus::InvalidResponse,
                    None,
                    Some(&why),
                    None,
                )?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Generates a candidate named `name` from the best candidate finished
    /// so far and records it as `generated`; returns its id, directory and
    /// why the answer is unusable (if it is), or `None` when the draw gave
    /// content the session already holds.
    fn generate(
        &self,
        rng: &mut SplitMix64,
        name: &str,
    ) -> Result<Option<(CandidateId, PathBuf, Option<String>)>> {
        let (parent_dir, parent_name, parent_reward) = self.best()?;
        let parent = VariantSpec::load(&parent_dir)?;
        let dir = self.options.out.canonicalize()?.join(name);
        let generated = match &self.options.generator {
            Generator::Tune => self.tune(&parent, &dir, rng)?,
            Generator::Recombine { donors } => self.recombine(&parent, donors, &dir, rng)?,
            Generator::Llm(_) | Generator::Cmd(_) => {
                self.write_code(&parent, parent_reward, name, &dir, rng)?
            }
        };
        let Some(generated) = generated else {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(None);
        };
        let inserted = self.store()?.insert_candidate(&NewCandidate {
            session: self.session.clone(),
            name: name.to_owned(),
            dir: dir.display().to_string(),
            content_hash: generated.content_hash,
            lineage: Lineage {
                parent: parent_name,
                slot: self.slot.name().to_owned(),
                change: None,
            },
            generator: self.options.generator.name().to_owned(),
            prompt: generated.prompt,
            response: Some(generated.response),
            slot_code: generated.code,
            language: self
                .options
                .generator
                .writes_code()
                .then(|| self.options.lang.name().to_owned()),
        });
        match inserted {
            Ok(id) => Ok(Some((id, dir, generated.invalid))),
            Err(StoreError::DuplicateContent { existing, .. }) => {
                // Another lane recorded the same content first: this one is
                // never judged.
                println!("evolve: {name}: same content as {existing}; not evaluated");
                let _ = std::fs::remove_dir_all(&dir);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A name for the `ordinal`-th candidate that no variant has yet and
    /// no lane holds (`claimed`).
    fn candidate_name(&self, ordinal: usize, claimed: &BTreeSet<String>) -> Result<String> {
        let store = self.store()?;
        let prefix = format!(
            "{}-{}-{}",
            self.start.name,
            self.slot.name(),
            self.options.generator.name()
        );
        (ordinal..)
            .map(|n| format!("{prefix}-{n:03}"))
            .find(|n| {
                !claimed.contains(n)
                    && !self.options.out.join(n).exists()
                    && store.candidate_named(n).ok().flatten().is_none()
            })
            .context("no free candidate name")
    }

    /// Builds, checks and evaluates a materialised candidate, and closes
    /// its record.
    fn judge(&self, id: CandidateId, dir: &Path, name: &str) -> Result<()> {
        let verdict = self.verdict(dir, name)?;
        let summary = match (&verdict.score, &verdict.failure) {
            (Some(s), _) => format!(
                "reward {:.0} ({:.2}× its parent)",
                s.reward,
                s.reward / s.parent_reward.unwrap_or(s.reward).max(f64::MIN_POSITIVE)
            ),
            (None, Some(f)) => format!(
                "{}: {}",
                verdict.status,
                f.lines().next().unwrap_or_default()
            ),
            (None, None) => verdict.status.to_string(),
        };
        println!("evolve: {name}: {summary}");
        self.store()?.close_candidate(
            id,
            verdict.status,
            verdict.build_log.as_deref(),
            verdict.failure.as_deref(),
            verdict.score.as_ref(),
        )?;
        Ok(())
    }

    fn verdict(&self, dir: &Path, name: &str) -> Result<CandidateOutcome> {
        let (prepared, _) = prepare_variants(&[dir.to_path_buf()], false, |_| {})?;
        let variant = prepared.first().context("one variant prepared")?;
        // Lanes run workers at once: each gets a scratch directory of its own.
        let scratch = tempfile::tempdir_in(self.scratch.path())?;
        let options = JudgeOptions {
            evaluate: &self.options.evaluate,
            check_threads: self.options.check_threads,
            scratch: scratch.path(),
        };
        let (row, evaluated) = match judge(variant, &options, &mut |_: &str| {})? {
            Judgement::BuildFailed { reason, log } => {
                return Ok(CandidateOutcome {
                    status: CandidateStatus::BuildFailed,
                    failure: Some(format!("{reason}\n{}", compiler_errors(&log))),
                    build_log: Some(log),
                    score: None,
                });
            }
            Judgement::CheckFailed { table } => {
                return Ok(CandidateOutcome::failed(
                    CandidateStatus::CheckFailed,
                    format!("host check failed:\n{table}"),
                ));
            }
            Judgement::EvaluationFailed { status } => {
                return Ok(CandidateOutcome::failed(
                    CandidateStatus::EvaluationFailed,
                    status,
                ));
            }
            Judgement::Measured { row, evaluated } => (row, evaluated),
        };
        let store = Store::open(&evaluated.database)?;
        let parent_reward = store
            .lineage(name)?
            .and_then(|l| row_of(&store, &evaluated.scope, &l.parent).ok().flatten())
            .filter(|r| r.status == Status::Ok)
            .map(|r| r.reward);
        let metrics = serde_json::json!({
            "qps_at_090": row.qps_at_090,
            "qps_at_095": row.qps_at_095,
            "qps_at_099": row.qps_at_099,
            "max_recall": row.max_recall,
            "build_seconds": row.build_seconds,
            "index_memory_bytes": row.index_memory_bytes,
            "build_params": row.build_params,
        });
        Ok(CandidateOutcome {
            status: CandidateStatus::Ok,
            build_log: None,
            failure: None,
            score: Some(CandidateScore {
                reward: row.reward,
                parent_reward,
                metrics_json: metrics.to_string(),
                dataset_hash: self.scope.dataset_hash.clone(),
                config_key: self.scope.config_key.clone(),
            }),
        })
    }

    /// `tune`: the parent with the slot's parameters mutated.
    fn tune(
        &self,
        parent: &VariantSpec,
        dir: &Path,
        rng: &mut SplitMix64,
    ) -> Result<Option<Generated>> {
        let declared = self.declared(parent)?;
        let mut current = parent.slot(self.slot).params.clone();
        if self.slot == SlotKind::Construction {
            // A grid axis becomes a fixed value: tune picks one point.
            for (key, values) in &parent.grid {
                current
                    .entry(key.clone())
                    .or_insert_with(|| values[0].clone());
            }
        }
        for _ in 0..20 {
            let mutation = generate::tune(self.slot, declared.slot(self.slot), &current, rng)?;
            let mut child = parent.clone();
            match self.slot {
                SlotKind::Construction => {
                    child.construction.params = mutation.params;
                    child.grid.clear();
                }
                SlotKind::Search => child.search.params = mutation.params,
                SlotKind::Refinement => child.refinement.params = mutation.params,
            }
            let hash = config_hash(&child);
            if self
                .store()?
                .candidate_by_hash(&self.session, &hash)?
                .is_some()
            {
                continue;
            }
            self.write_config(&mut child, parent, dir, &mutation.description)?;
            return Ok(Some(Generated {
                content_hash: hash,
                prompt: None,
                response: mutation.description,
                code: None,
                invalid: None,
            }));
        }
        Ok(None)
    }

    /// The declared parameters of a variant's slots, read in a worker.
    fn declared(&self, variant: &VariantSpec) -> Result<SlotParams> {
        let (prepared, _) = prepare_variants(std::slice::from_ref(&variant.dir), false, |_| {})?;
        match &prepared[0].state {
            PreparedState::Ready { pipeline, .. } => describe(
                pipeline,
                &self.options.evaluate.limits.limits(),
                tempfile::tempdir_in(self.scratch.path())?.path(),
            ),
            PreparedState::Skipped { hint } => bail!("{}: skipped: {hint}", variant.name),
            PreparedState::Broken { reason, .. } => bail!("{}: {reason}", variant.name),
        }
    }

    /// `recombine`: the parent with the slot of a donor drawn by a softmax
    /// over the donors' rewards.
    fn recombine(
        &self,
        parent: &VariantSpec,
        donors: &[PathBuf],
        dir: &Path,
        rng: &mut SplitMix64,
    ) -> Result<Option<Generated>> {
        let evaluated = evaluate(donors, &self.options.evaluate)?;
        let store = Store::open(&evaluated.database)?;
        let mut pool: Vec<(VariantSpec, f64)> = Vec::new();
        for dir in donors {
            let donor = VariantSpec::load(dir)?;
            let differs = donor.slot(self.slot) != parent.slot(self.slot)
                || (self.slot == SlotKind::Search && donor.sweep != parent.sweep);
            let reward = row_of(&store, &evaluated.scope, &donor.name)?
                .filter(|r| r.status == Status::Ok)
                .map(|r| r.reward);
            if let (true, Some(reward)) = (differs, reward) {
                pool.push((donor, reward));
            }
        }
        drop(store);
        while !pool.is_empty() {
            let scores: Vec<f64> = pool
                .iter()
                .map(|(_, r)| r / self.start_reward.max(f64::MIN_POSITIVE))
                .collect();
            let weights = prompt::softmax_weights(&scores, self.options.sampling.temperature);
            let mut draw = rng.unit();
            let pick = weights
                .iter()
                .position(|w| {
                    let hit = draw < *w;
                    draw -= w;
                    hit
                })
                .unwrap_or(pool.len() - 1);
            let (donor, _) = pool.swap_remove(pick);
            let mut child = generate::recombine(parent, &donor, self.slot);
            let hash = config_hash(&child);
            if self
                .store()?
                .candidate_by_hash(&self.session, &hash)?
                .is_some()
            {
                continue;
            }
            let description = format!("{} slot from {}", self.slot.name(), donor.name);
            self.write_config(&mut child, parent, dir, &description)?;
            return Ok(Some(Generated {
                content_hash: hash,
                prompt: None,
                response: description,
                code: None,
                invalid: None,
            }));
        }
        Ok(None)
    }

    /// Writes a configuration-only candidate: variant.yaml whose libraries
    /// point at the existing ones.
    fn write_config(
        &self,
        child: &mut VariantSpec,
        parent: &VariantSpec,
        dir: &Path,
        description: &str,
    ) -> Result<()> {
        child.description = format!("{} ({description})", parent.name);
        child.lineage = Some(Lineage {
            parent: parent.name.clone(),
            slot: self.slot.name().to_owned(),
            change: None,
        });
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(VARIANT_FILE), child.to_yaml(dir))
            .with_context(|| format!("writing {}", dir.join(VARIANT_FILE).display()))?;
        Ok(())
    }

    /// `llm` / `cmd`: asks for the slot's code with the contrastive prompt
    /// and materialises the answer on top of a generated variant.
    fn write_code(
        &self,
        parent: &VariantSpec,
        parent_reward: f64,
        name: &str,
        dir: &Path,
        rng: &mut SplitMix64,
    ) -> Result<Option<Generated>> {
        let lang = self.options.lang;
        let store = self.store()?;
        let last_failure = store
            .session_candidates(&self.session)?
            .into_iter()
            .rev()
            .find(|c| {
                c.candidate.lineage.parent == parent.name && c.status != CandidateStatus::Generated
            })
            .filter(|c| c.status != CandidateStatus::Ok)
            .and_then(|c| c.failure);
        let sampling = Sampling {
            seed: rng.next_u64(),
            ..self.options.sampling
        };
        let score = ParentScore::Known {
            store: &store,
            scope: &self.scope,
            reward: parent_reward,
        };
        let text = compose_prompt(
            parent,
            &score,
            self.slot,
            lang,
            &sampling,
            last_failure.as_deref(),
        )?;
        drop(store);
        let answer = match &self.options.generator {
            Generator::Llm(llm) => llm.complete(&text),
            Generator::Cmd(cmd) => cmd.complete(&text),
            _ => unreachable!("only code generators write code"),
        };
        let (response, code) = match answer {
            Ok(response) => {
                let code = prompt::extract_code(&response);
                (response, code)
            }
            Err(e) => (String::new(), Err(format!("the generator failed: {e:#}"))),
        };
        let content = format!(
            "{}|{}|{}|{}",
            parent.name,
            self.slot.name(),
            lang.name(),
            code.as_deref().unwrap_or(&response)
        );
        let hash = blake3::hash(content.as_bytes()).to_hex()[..16].to_owned();
        if self
            .store()?
            .candidate_by_hash(&self.session, &hash)?
            .is_some()
        {
            return Ok(None);
        }
        let code = match code {
            Ok(code) => code,
            Err(why) => {
                return Ok(Some(Generated {
                    content_hash: hash,
                    prompt: Some(text),
                    response,
                    code: None,
                    invalid: Some(why),
                }));
            }
        };
        crate::scaffold::create(&NewVariant {
            name: name.to_owned(),
            from: Some(parent.dir.clone()),
            lang,
            slot: match self.slot {
                SlotKind::Construction => SlotChoice::Construction,
                SlotKind::Search => SlotChoice::Search,
                SlotKind::Refinement => SlotChoice::Refinement,
            },
            out: Some(self.options.out.clone()),
        })?;
        let file = dir.join(lang.slot_file(self.slot));
        std::fs::write(&file, &code).with_context(|| format!("writing {}", file.display()))?;
        Ok(Some(Generated {
            content_hash: hash,
            prompt: Some(text),
            response,
            code: Some(code),
            invalid: None,
        }))
    }
}

/// What a prompt knows of its parent's score.
enum ParentScore<'a> {
    /// Its reward on the leaderboard `scope` of `store`, where the
    /// exemplars are scored too.
    Known {
        store: &'a Store,
        scope: &'a Scope,
        reward: f64,
    },
    /// No successful evaluation of the parent on `dataset` (a name) yet.
    Unknown { dataset: &'a str },
}

/// The contrastive prompt for `slot` of `parent`: exemplars are the
/// evaluated candidates of that slot in `lang`, scored where the parent is
/// (none when its score is unknown).
fn compose_prompt(
    parent: &VariantSpec,
    score: &ParentScore<'_>,
    slot: SlotKind,
    lang: Lang,
    sampling: &Sampling,
    last_failure: Option<&str>,
) -> Result<String> {
    let (exemplars, reward, max_recall, dataset) = match score {
        ParentScore::Known {
            store,
            scope,
            reward,
        } => {
            let pool: Vec<CandidateRecord> = store
                .slot_candidates(slot.name())?
                .into_iter()
                .filter(|c| c.candidate.language.as_deref() == Some(lang.name()))
                .filter(|c| {
                    c.score.as_ref().is_some_and(|s| {
                        s.config_key == scope.config_key && s.dataset_hash == scope.dataset_hash
                    })
                })
                .collect();
            (
                prompt::sample_exemplars(&pool, *reward, sampling),
                Some(*reward),
                row_of(store, scope, &parent.name)?.and_then(|r| r.max_recall),
                scope.dataset_name.as_str(),
            )
        }
        ParentScore::Unknown { dataset } => (Vec::new(), None, None, *dataset),
    };
    let own_file = parent.dir.join(lang.slot_file(slot));
    let own = (parent.slot(slot).library.path() == parent.dir && own_file.is_file())
        .then(|| std::fs::read_to_string(&own_file).ok())
        .flatten();
    let parent_info = ParentInfo {
        name: parent.name.clone(),
        reward,
        max_recall,
        code_is_template: own.is_none(),
        code: own.unwrap_or_else(|| lang.template(slot).to_owned()),
    };
    Ok(prompt::build_prompt(&PromptInput {
        slot,
        lang,
        parent: &parent_info,
        exemplars: &exemplars,
        last_failure,
        dataset,
    }))
}

/// `host prompt`: the prompt the next `llm`/`cmd` step would send for
/// `slot` of the variant `from`, scored on the most recent leaderboard of
/// `dataset` that holds a successful evaluation of `from` (any dataset when
/// `None`). `dataset` is a name or content hash from the results database,
/// or a spec as `host evaluate --dataset` takes it. Without such an
/// evaluation the prompt still comes, with the parent's score unknown, and
/// stderr says how to measure it.
pub fn prompt_for(
    from: &Path,
    slot: SlotKind,
    lang: Lang,
    results: &Path,
    dataset: Option<&str>,
    sampling: &Sampling,
) -> Result<String> {
    let parent = VariantSpec::load(from)?;
    let resolved = dataset.map(resolve_dataset).transpose()?.flatten();
    let db = results.join("results.sqlite");
    // A prompt only reads: no database is created where none is.
    let store = if db.exists() {
        Some(Store::open(&db)?)
    } else {
        None
    };
    let scopes = match &store {
        Some(store) => dataset_scopes(store, dataset, resolved.as_ref())?,
        None => Vec::new(),
    };
    if let Some(d) = dataset
        && resolved.is_none()
        && scopes.is_empty()
    {
        bail!(
            "--dataset {d}: {}, and it is not a dataset spec either ({})",
            if store.is_some() {
                format!("{} holds no dataset of that name or hash", db.display())
            } else {
                format!("{} does not exist", db.display())
            },
            d.parse::<DatasetSpec>()
                .err()
                .map_or_else(String::new, |e| e.to_string())
        );
    }
    if let Some(store) = &store {
        for scope in &scopes {
            let Some(row) = row_of(store, scope, &parent.name)?.filter(|r| r.status == Status::Ok)
            else {
                continue;
            };
            eprintln!(
                "prompt: {} scored on {} ({}): reward {:.0}",
                parent.name,
                scope.dataset_name,
                scope.config.describe(),
                row.reward
            );
            let score = ParentScore::Known {
                store,
                scope,
                reward: row.reward,
            };
            return compose_prompt(&parent, &score, slot, lang, sampling, None);
        }
    }
    let name = match (resolved, dataset) {
        (Some(data), _) => data.name,
        (None, Some(d)) => d.to_owned(),
        (None, None) => DatasetSpec::default().load()?.name,
    };
    let results_arg = if results == Path::new(DEFAULT_RESULTS) {
        String::new()
    } else {
        format!(" --results {}", shell_word(&results.display().to_string()))
    };
    eprintln!(
        "prompt: {} has no successful evaluation on {name} {}, so the prompt gives its score \
         as unknown; measure it with `host evaluate {}{}{results_arg}`",
        parent.name,
        if store.is_some() {
            format!("in {}", db.display())
        } else {
            format!("yet ({} does not exist)", db.display())
        },
        shell_word(&from.display().to_string()),
        dataset
            .map(|d| format!(" --dataset {}", shell_word(d)))
            .unwrap_or_default(),
    );
    let score = ParentScore::Unknown { dataset: &name };
    compose_prompt(&parent, &score, slot, lang, sampling, None)
}

/// `word` as one shell word: as it is when it holds nothing a shell reads
/// specially, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:=/+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The results directory the command line defaults to.
const DEFAULT_RESULTS: &str = "annvil-results";

/// The leaderboards of `dataset`, most recently evaluated first: all of
/// them for `None`; else those whose dataset has that name or content
/// hash, and, when `dataset` is a spec (loaded as `resolved`), those
/// holding the data it loads, whole or cut to its first N queries
/// (`--queries N`).
fn dataset_scopes(
    store: &Store,
    dataset: Option<&str>,
    resolved: Option<&Dataset>,
) -> Result<Vec<Scope>> {
    let all = store.all_scopes()?;
    let Some(dataset) = dataset else {
        return Ok(all);
    };
    let hash = resolved.map(Dataset::content_hash);
    Ok(all
        .into_iter()
        .filter(|scope| {
            scope.dataset_name == dataset
                || scope.dataset_hash == dataset
                || hash.as_ref() == Some(&scope.dataset_hash)
                || resolved.is_some_and(|data| {
                    first_queries_of(&scope.dataset_name, &data.name).is_some_and(|n| {
                        data.clone()
                            .first_queries(n)
                            .is_ok_and(|cut| cut.content_hash() == scope.dataset_hash)
                    })
                })
        })
        .collect())
}

/// `dataset` loaded as `host evaluate --dataset` loads it; `None` when it
/// is not a spec (a stored name or hash, say).
fn resolve_dataset(dataset: &str) -> Result<Option<Dataset>> {
    let Ok(spec) = dataset.parse::<DatasetSpec>() else {
        return Ok(None);
    };
    let data = spec
        .load()
        .with_context(|| format!("loading dataset `{spec}`"))?;
    Ok(Some(data))
}

/// N when `scope_name` is the dataset `name` cut to its first N queries
/// (`NAME-qN`).
fn first_queries_of(scope_name: &str, name: &str) -> Option<usize> {
    scope_name
        .strip_prefix(name)?
        .strip_prefix("-q")?
        .parse()
        .ok()
}

/// What a lane does next.
enum Work {
    /// Judge a candidate an interruption left `generated`.
    Resume(Box<CandidateRecord>),
    /// Generate a candidate named `name` with a generator seeded by `seed`.
    Generate {
        /// Seed of the step's random draws.
        seed: u64,
        /// The candidate's name (held in [`Schedule::claimed`]).
        name: String,
    },
}

/// Draws in a row that gave content already held, before a stage stops.
const FRUITLESS_LIMIT: usize = 20;

/// The work of a stage shared by its lanes. The budget is exact: a
/// generation starts only while the session's rows plus the generations
/// under way stay below it.
struct Schedule {
    /// Candidates the session holds in the database.
    recorded: usize,
    /// Generations under way whose candidates are not recorded yet.
    generating: usize,
    /// Candidates an interruption left `generated`, still to judge.
    open: Vec<CandidateRecord>,
    /// Names of the generations under way.
    claimed: BTreeSet<String>,
    /// Gives each generation its seed.
    rng: SplitMix64,
    /// Draws in a row that gave content already held.
    fruitless: usize,
    /// Set when a lane failed or the draws stopped giving new content.
    halted: bool,
}

impl Schedule {
    /// The next piece of work, or `None` when the stage is done.
    fn next(&mut self, stage: &Stage<'_>, budget: usize) -> Result<Option<Work>> {
        if self.halted {
            return Ok(None);
        }
        if !self.open.is_empty() {
            return Ok(Some(Work::Resume(Box::new(self.open.remove(0)))));
        }
        if self.recorded + self.generating >= budget {
            return Ok(None);
        }
        let name = stage.candidate_name(self.recorded + self.generating + 1, &self.claimed)?;
        self.claimed.insert(name.clone());
        self.generating += 1;
        Ok(Some(Work::Generate {
            seed: self.rng.next_u64(),
            name,
        }))
    }

    /// Closes the generation of `name`: `recorded` when it gave a candidate
    /// row, else a fruitless draw (or a failure).
    fn drawn(&mut self, name: &str, recorded: bool, stage: &Stage<'_>) {
        self.claimed.remove(name);
        self.generating -= 1;
        if recorded {
            self.recorded += 1;
            self.fruitless = 0;
            return;
        }
        self.fruitless += 1;
        if self.fruitless >= FRUITLESS_LIMIT && !self.halted {
            self.halted = true;
            println!(
                "evolve: {FRUITLESS_LIMIT} draws in a row gave content already evaluated; \
                 stopping the {} stage early",
                stage.slot.name()
            );
        }
    }
}

/// `mutex` locked; a lane that panicked holding it leaves nothing
/// half-updated that the others could trip over, so its poison is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A materialised candidate, before it is judged.
struct Generated {
    content_hash: String,
    prompt: Option<String>,
    response: String,
    code: Option<String>,
    /// Why the answer is unusable, if it is.
    invalid: Option<String>,
}

/// The leaderboard row of `name` in `scope`.
fn row_of(store: &Store, scope: &Scope, name: &str) -> Result<Option<LeaderboardRow>> {
    Ok(store
        .leaderboard_for(scope)?
        .rows
        .into_iter()
        .find(|r| r.variant_name == name))
}

/// Hash of what a configuration-only candidate runs: its libraries,
/// parameters, grid, sweep and candidate count (not its name or lineage).
fn config_hash(spec: &VariantSpec) -> String {
    let content = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        spec.construction, spec.grid, spec.search, spec.sweep, spec.refinement, spec.candidates
    );
    blake3::hash(content.as_bytes()).to_hex()[..16].to_owned()
}

fn blake3_u64(text: &str) -> u64 {
    let hash = blake3::hash(text.as_bytes());
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}
