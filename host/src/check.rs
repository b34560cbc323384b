//! `host check`: the conformance suite every variant must pass, run on small
//! generated data inside a worker process.
//!
//! Checks (euclidean data unless named): the slots' parameter declarations
//! are consistent (see [`SlotParams::problems`]; vacuous when nothing is
//! declared); the variant builds; the returned
//! ids are in range and unique, and an OK status comes with at least
//! min(k, n) of them; results are sorted by distance; k larger
//! than the number of points works; a query of the wrong dimension gets an
//! error status; unknown build/search/refinement parameters and a malformed
//! build parameter or knob value get an error status; two contexts searching from two threads
//! at once agree with one thread; two passes give identical results; the
//! reported memory (graph, searcher, refiner and one thread's contexts) is
//! plausible (not above a ceiling, not below half of the resident growth
//! over build and prepare once that exceeds 16 MiB); angular and inner-product data build and
//! search (or are declared unsupported). A crash in the worker fails the
//! check it happened in; each check has the full `--timeout` to itself.

use std::fmt::Write as _;

use annvil_abi::{Metric, Status};
use annvil_data::Matrix;
use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::coordinator::measurer::{Ending, Limits, bounded, run_job};
use crate::describe::SlotParams;
use crate::prepare::{Prepared, PreparedState};
use crate::protocol::{Job, PipelineSpec};
use crate::variant::ParamMap;
use crate::worker::LoadedSlots;
use crate::worker::pipeline::{BaseVectors, Graph, QueryRunner, Refiner, Searcher, SlotError};

/// What a check worker runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckJob {
    /// The variant's slots.
    pub pipeline: PipelineSpec,
    /// The first build-parameter set.
    pub build_params: ParamMap,
    /// The first sweep point.
    pub knobs: ParamMap,
    /// Threads for the build.
    pub threads: usize,
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Does not apply to this variant.
    NotApplicable,
}

/// One row of the check table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckRow {
    /// What was checked.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, or a measured figure.
    pub detail: String,
}

const K: usize = 10;
const NUM_BASE: usize = 600;
const NUM_QUERIES: usize = 40;
const DIM: usize = 24;

/// The suite's data: clustered, seeded, small.
fn suite_data(metric: Metric) -> (Matrix, Matrix) {
    let spec = format!(
        "synthetic:n={NUM_BASE},queries={NUM_QUERIES},dim={DIM},clusters=12,metric={},seed=7",
        metric.name()
    );
    let dataset = spec
        .parse::<annvil_data::DatasetSpec>()
        .and_then(|s| s.load())
        .expect("the built-in synthetic generator cannot fail on fixed parameters");
    (dataset.train, dataset.test)
}

/// Resident growth below which under-reported memory is not flagged (the
/// allocator's and loader's own pages dominate small indexes).
const UNDER_REPORT_FLOOR: u64 = 16 << 20;

/// Resident memory of this (worker) process, bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64
}

/// Results of all queries: (ids, distances) per query.
type Answers = Vec<(Vec<u32>, Vec<f32>)>;

fn answer_all(
    runner: &mut QueryRunner<'_>,
    queries: &Matrix,
    k: usize,
) -> Result<Answers, SlotError> {
    (0..queries.len())
        .map(|q| {
            let mut ids = vec![0u32; k];
            let mut distances = vec![0f32; k];
            let n = runner.run(queries.row(q), &mut ids, &mut distances)?;
            ids.truncate(n);
            distances.truncate(n);
            Ok((ids, distances))
        })
        .collect()
}

fn ids_problem(answers: &Answers, num_base: usize) -> Option<String> {
    for (q, (ids, _)) in answers.iter().enumerate() {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= num_base) {
            return Some(format!("query {q}: id {bad} out of range (n = {num_base})"));
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Some(format!("query {q}: id {} returned twice", w[0]));
        }
    }
    None
}

/// An OK status with fewer than min(k, n) results is a failure, not a miss.
fn short_problem(answers: &Answers, k: usize, num_base: usize) -> Option<String> {
    let wanted = k.min(num_base);
    let short = answers.iter().filter(|(ids, _)| ids.len() < wanted).count();
    let (q, (ids, _)) = answers
        .iter()
        .enumerate()
        .find(|(_, (ids, _))| ids.len() < wanted)?;
    Some(format!(
        "{short} queries returned fewer than min(k, n) = {wanted} results with an OK status \
         (query {q}: {})",
        ids.len()
    ))
}

fn order_problem(answers: &Answers) -> Option<String> {
    answers.iter().enumerate().find_map(|(q, (_, d))| {
        if let Some(i) = d.iter().position(|x| x.is_nan()) {
            return Some(format!("query {q}: distance {i} is NaN"));
        }
        d.windows(2).position(|w| w[0] > w[1]).map(|i| {
            format!(
                "query {q}: distance {} > {} at position {i}",
                d[i],
                d[i + 1]
            )
        })
    })
}

/// The suite's recorder: rows go straight to the worker's events.
struct Suite<'e> {
    emit: &'e mut dyn FnMut(CheckRow),
    failed: bool,
}

impl Suite<'_> {
    fn row(&mut self, name: &str, verdict: Verdict, detail: impl Into<String>) {
        self.failed |= verdict == Verdict::Fail;
        (self.emit)(CheckRow {
            name: name.to_owned(),
            verdict,
            detail: detail.into(),
        });
    }

    fn expect_ok(&mut self, name: &str, problem: Option<String>, ok_detail: &str) {
        match problem {
            None => self.row(name, Verdict::Pass, ok_detail),
            Some(p) => self.row(name, Verdict::Fail, p),
        }
    }

    /// A call that must return an error status (not crash, not succeed).
    fn expect_error(&mut self, name: &str, result: Result<(), SlotError>, preferred: Status) {
        match result {
            Ok(()) => self.row(name, Verdict::Fail, "accepted (expected an error status)"),
            Err(e) if e.status == preferred.code() => self.row(name, Verdict::Pass, e.to_string()),
            Err(e) => self.row(
                name,
                Verdict::Pass,
                format!("{e} (status {} would be more precise)", preferred.code()),
            ),
        }
    }
}

/// Runs the suite in a worker; rows are reported through `emit` as they
/// complete. Returns Err only when the suite cannot start at all.
pub fn run_in_worker(job: &CheckJob, emit: &mut dyn FnMut(CheckRow)) -> Result<(), String> {
    let slots = job.pipeline.load().map_err(|e| format!("load: {e}"))?;
    let mut suite = Suite {
        emit,
        failed: false,
    };
    suite.row("load", Verdict::Pass, describe_slots(&slots));
    match SlotParams::read_checked(&slots) {
        Ok(declared) => suite.row("declared parameters", Verdict::Pass, declared.summary()),
        Err(problems) => suite.row("declared parameters", Verdict::Fail, problems),
    }
    let (train, test) = suite_data(Metric::L2);
    let base = BaseVectors::new(train.as_slice(), train.dim());

    let rss_before = resident_bytes();
    let graph = match Graph::build(
        slots.construction,
        &base,
        Metric::L2,
        &job.build_params,
        job.threads,
    ) {
        Ok(g) => g,
        Err(e) => {
            suite.row("build", Verdict::Fail, e.to_string());
            return Err("the variant does not build on the check data".into());
        }
    };
    suite.row(
        "build",
        Verdict::Pass,
        format!("{} graph levels", graph.view().num_levels),
    );
    let (mut searcher, refiner) =
        match slots.prepare_search(&job.pipeline, &base, &graph, Metric::L2) {
            Ok(prepared) => prepared,
            Err(e) => {
                suite.row("prepare", Verdict::Fail, e.to_string());
                return Err("the search or refinement slot cannot be prepared".into());
            }
        };
    let rss_growth = resident_bytes().saturating_sub(rss_before);
    if let Err(e) = searcher.configure(&job.knobs) {
        suite.row("search configure", Verdict::Fail, e.to_string());
        return Err("the search slot rejects its own sweep values".into());
    }
    let candidates = job.pipeline.candidates_for(K, refiner.is_some());
    let run =
        |searcher: &Searcher<'_>, k: usize, candidates: usize| -> Result<Answers, SlotError> {
            let mut runner = QueryRunner::new(searcher, refiner.as_ref(), candidates)?;
            answer_all(&mut runner, &test, k)
        };

    let first = run(&searcher, K, candidates);
    match &first {
        Ok(answers) => {
            let short = answers.iter().filter(|(ids, _)| ids.len() < K).count();
            let detail = format!(
                "k = {K}, {} queries{}",
                answers.len(),
                if short > 0 {
                    format!(", {short} with fewer than k")
                } else {
                    String::new()
                }
            );
            suite.expect_ok(
                "ids in range and unique",
                ids_problem(answers, train.len())
                    .or_else(|| short_problem(answers, K, train.len())),
                &detail,
            );
            suite.expect_ok(
                "sorted by distance",
                order_problem(answers),
                "non-decreasing, no NaN",
            );
        }
        Err(e) => {
            suite.row("ids in range and unique", Verdict::Fail, e.to_string());
            suite.row("sorted by distance", Verdict::Fail, "no results");
        }
    }

    let big_k = train.len() + 7;
    match run(
        &searcher,
        big_k,
        job.pipeline.candidates_for(big_k, refiner.is_some()),
    ) {
        Ok(answers) => {
            let most = answers.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
            let problem = ids_problem(&answers, train.len())
                .or_else(|| order_problem(&answers))
                .or_else(|| short_problem(&answers, big_k, train.len()));
            suite.expect_ok(
                "k larger than n",
                problem,
                &format!("k = {big_k}, n = {}: up to {most} results", train.len()),
            );
        }
        Err(e) => suite.row("k larger than n", Verdict::Fail, e.to_string()),
    }

    let wrong_dim = vec![0.5f32; DIM + 1];
    let dim_result =
        QueryRunner::new(&searcher, refiner.as_ref(), candidates).and_then(|mut runner| {
            let (mut ids, mut d) = (vec![0u32; K], vec![0f32; K]);
            runner.run(&wrong_dim, &mut ids, &mut d).map(|_| ())
        });
    suite.expect_error("dimension mismatch", dim_result, Status::DimensionMismatch);

    let mut unknown = job.build_params.clone();
    unknown.insert("annvil_check_unknown".into(), "1".into());
    suite.expect_error(
        "unknown build parameter",
        Graph::build(slots.construction, &base, Metric::L2, &unknown, 1).map(drop),
        Status::UnknownParameter,
    );
    let unknown = ParamMap::from([("annvil_check_unknown".to_owned(), "1".to_owned())]);
    suite.expect_error(
        "unknown search parameter",
        searcher.configure(&unknown),
        Status::UnknownParameter,
    );
    if let Some(lib) = slots.refinement {
        let mut params = job.pipeline.refine_params.clone();
        params.insert("annvil_check_unknown".into(), "1".into());
        suite.expect_error(
            "unknown refinement parameter",
            Refiner::prepare(lib, &base, Metric::L2, &params).map(drop),
            Status::UnknownParameter,
        );
    } else {
        suite.row(
            "unknown refinement parameter",
            Verdict::NotApplicable,
            "no refinement slot",
        );
    }
    match job
        .build_params
        .iter()
        .find(|(_, v)| v.parse::<f64>().is_ok())
    {
        Some((key, _)) => {
            let mut malformed = job.build_params.clone();
            malformed.insert(key.clone(), "not-a-number".to_owned());
            suite.expect_error(
                &format!("malformed build parameter `{key}`"),
                Graph::build(slots.construction, &base, Metric::L2, &malformed, 1).map(drop),
                Status::InvalidArgument,
            );
        }
        None => suite.row(
            "malformed build parameter",
            Verdict::NotApplicable,
            "no numeric build parameter",
        ),
    }
    match job.knobs.iter().find(|(_, v)| v.parse::<f64>().is_ok()) {
        Some((knob, _)) => {
            let malformed = ParamMap::from([(knob.clone(), "not-a-number".to_owned())]);
            suite.expect_error(
                &format!("malformed knob `{knob}`"),
                searcher.configure(&malformed),
                Status::InvalidArgument,
            );
        }
        None => suite.row(
            "malformed knob",
            Verdict::NotApplicable,
            "no numeric knob to sweep",
        ),
    }
    // The failed configure calls above must leave the searcher usable.
    let restored = searcher.configure(&job.knobs);

    match (&first, restored) {
        (Ok(first), Ok(())) => {
            let one_thread = run(&searcher, K, candidates);
            let two_threads = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..2)
                    .map(|_| scope.spawn(|| run(&searcher, K, candidates)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("check thread panicked"))
                    .collect::<Vec<_>>()
            });
            let problem = match (&one_thread, &two_threads[..]) {
                (Ok(a), [Ok(b), Ok(c)]) => differing_query(a, b).or_else(|| differing_query(a, c)),
                _ => Some("a search returned an error".to_owned()),
            };
            suite.expect_ok(
                "two threads agree with one",
                problem,
                "2 contexts searching concurrently",
            );
            let problem = match &one_thread {
                Ok(again) => differing_query(first, again),
                Err(e) => Some(e.to_string()),
            };
            suite.expect_ok(
                "repeatable",
                problem,
                "two passes, identical ids and distances",
            );
        }
        (_, Err(e)) => suite.row(
            "repeatable",
            Verdict::Fail,
            format!("configure after rejected params: {e}"),
        ),
        (Err(_), _) => suite.row("repeatable", Verdict::Fail, "no results"),
    }

    let contexts =
        QueryRunner::new(&searcher, refiner.as_ref(), candidates).map_or(0, |r| r.memory_bytes());
    let reported = graph.memory_bytes()
        + searcher.memory_bytes()
        + refiner.as_ref().map_or(0, Refiner::memory_bytes)
        + contexts;
    let data_bytes = train.as_slice().len() * 4;
    let ceiling = 64 * data_bytes + (64 << 20);
    let detail = format!(
        "{reported} bytes reported for {data_bytes} bytes of vectors; resident memory grew \
         {rss_growth} bytes over build and prepare"
    );
    let problem = if reported > ceiling {
        Some(format!(
            "{detail}: above the plausible ceiling of {ceiling}"
        ))
    } else if rss_growth > UNDER_REPORT_FLOOR && (reported as u64) < rss_growth / 2 {
        Some(format!("{detail}: below half of the resident growth"))
    } else {
        None
    };
    suite.expect_ok("memory_bytes plausible", problem, &detail);
    drop(refiner);
    drop(searcher);
    drop(graph);

    for metric in [Metric::Angular, Metric::InnerProduct] {
        let name = format!("{metric} data");
        match metric_round(&slots, job, metric) {
            Ok(None) => suite.row(
                &name,
                Verdict::Pass,
                "builds, searches, ids valid and sorted",
            ),
            Ok(Some(problem)) => suite.row(&name, Verdict::Fail, problem),
            Err(e) if e.status == Status::Unsupported.code() => {
                suite.row(&name, Verdict::NotApplicable, e.to_string())
            }
            Err(e) => suite.row(&name, Verdict::Fail, e.to_string()),
        }
    }
    if suite.failed {
        Err("some checks failed".into())
    } else {
        Ok(())
    }
}

fn metric_round(
    slots: &LoadedSlots,
    job: &CheckJob,
    metric: Metric,
) -> Result<Option<String>, SlotError> {
    let (train, test) = suite_data(metric);
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let graph = Graph::build(
        slots.construction,
        &base,
        metric,
        &job.build_params,
        job.threads,
    )?;
    let (mut searcher, refiner) = slots.prepare_search(&job.pipeline, &base, &graph, metric)?;
    searcher.configure(&job.knobs)?;
    let mut runner = QueryRunner::new(
        &searcher,
        refiner.as_ref(),
        job.pipeline.candidates_for(K, refiner.is_some()),
    )?;
    let answers = answer_all(&mut runner, &test, K)?;
    Ok(ids_problem(&answers, train.len()).or_else(|| order_problem(&answers)))
}

fn differing_query(a: &Answers, b: &Answers) -> Option<String> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|q| format!("query {q} differs: {:?} vs {:?}", a[q].0, b[q].0))
}

fn describe_slots(slots: &LoadedSlots) -> String {
    let mut s = format!(
        "construction {} {}, search {} {}",
        slots.construction.name,
        slots.construction.version,
        slots.search.name,
        slots.search.version
    );
    match slots.refinement {
        Some(r) => {
            let _ = write!(s, ", refinement {} {}", r.name, r.version);
        }
        None => s.push_str(", no refinement (first k kept)"),
    }
    s
}

/// How the conformance suite went for one prepared variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every row passed (or did not apply).
    Passed,
    /// A row failed, the build failed or the worker died.
    Failed,
    /// A system requirement is missing.
    Skipped,
}

/// Runs the conformance suite on one prepared variant in a worker, writing
/// the table (one line per row, as `host check` prints it) to `out`.
pub fn check_prepared(
    variant: &Prepared,
    threads: usize,
    limits: &Limits,
    scratch: &Path,
    out: &mut dyn FnMut(&str),
) -> anyhow::Result<CheckOutcome> {
    let job = match &variant.state {
        PreparedState::Ready { spec, pipeline, .. } => CheckJob {
            pipeline: pipeline.clone(),
            build_params: spec.build_sets().into_iter().next().unwrap_or_default(),
            knobs: spec.sweep_points().into_iter().next().unwrap_or_default(),
            threads,
        },
        PreparedState::Skipped { hint } => {
            out(&format!("  SKIP  {hint}"));
            return Ok(CheckOutcome::Skipped);
        }
        PreparedState::Broken { reason, log } => {
            out(&format!("  FAIL  {reason}"));
            log.lines()
                .filter(|l| !l.trim_start().starts_with("Blocking waiting"))
                .take(40)
                .for_each(|line| out(&format!("        {line}")));
            return Ok(CheckOutcome::Failed);
        }
    };
    let readable = job.pipeline.libraries();
    let run = run_job(
        &Job::Check(job),
        readable,
        limits,
        scratch,
        |row: &CheckRow| out(&row_line(row)),
    )?;
    let mut ok = !run.items.iter().any(|r| r.verdict == Verdict::Fail);
    if let Ending::Failed(reason) = &run.ending {
        if ok {
            // Not a failed check row: the worker itself died or gave up.
            let after = run
                .items
                .last()
                .map(|r| format!(" (after check `{}`)", r.name))
                .unwrap_or_default();
            out(&row_line(&CheckRow {
                name: "worker".into(),
                verdict: Verdict::Fail,
                detail: format!("{reason}{after}"),
            }));
            let tail: Vec<&str> = run.stderr_tail.lines().rev().take(8).collect();
            for line in tail.into_iter().rev() {
                out(&format!("        {line}"));
            }
        }
        ok = false;
    }
    Ok(if ok {
        CheckOutcome::Passed
    } else {
        CheckOutcome::Failed
    })
}

/// One row of the check table as printed.
fn row_line(row: &CheckRow) -> String {
    let tag = match row.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::NotApplicable => "n/a ",
    };
    // The row comes from the worker: its text is cut to a readable length.
    format!(
        "  {tag}  {:<40} {}",
        bounded(row.name.clone(), 80),
        bounded(row.detail.clone(), 2000)
    )
}
