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

use annvil_abi::{Metric, StatusCode};
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

/// The verdict of one conformance check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckVerdict {
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
    pub verdict: CheckVerdict,
    /// Why, or a measured figure.
    pub detail: String,
}

impl CheckRow {
    fn new(name: &str, verdict: CheckVerdict, detail: impl Into<String>) -> CheckRow {
        CheckRow {
            name: name.to_owned(),
            verdict,
            detail: detail.into(),
        }
    }
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

/// A passing row unless `problem` names one.
fn passes_unless(name: &str, problem: Option<String>, ok_detail: &str) -> CheckRow {
    match problem {
        None => CheckRow::new(name, CheckVerdict::Pass, ok_detail),
        Some(p) => CheckRow::new(name, CheckVerdict::Fail, p),
    }
}

/// The row of a call that must return an error status (not crash, not
/// succeed); any error passes, `preferred` is named when it was not it.
fn refused(name: &str, result: Result<(), SlotError>, preferred: StatusCode) -> CheckRow {
    match result {
        Ok(()) => CheckRow::new(
            name,
            CheckVerdict::Fail,
            "accepted (expected an error status)",
        ),
        Err(e) if e.status == preferred.code() => {
            CheckRow::new(name, CheckVerdict::Pass, e.to_string())
        }
        Err(e) => CheckRow::new(
            name,
            CheckVerdict::Pass,
            format!("{e} (status {} would be more precise)", preferred.code()),
        ),
    }
}

/// The variant built and prepared on the euclidean suite data, with the
/// first sweep point configured: what the checks of [`BENCH_CHECKS`] probe.
struct Bench<'g> {
    job: &'g CheckJob,
    slots: &'g LoadedSlots,
    train: &'g Matrix,
    test: &'g Matrix,
    base: &'g BaseVectors<'g>,
    graph: &'g Graph<'g>,
    /// Declared before the searcher, so it is dropped first.
    refiner: Option<Refiner<'g>>,
    searcher: Searcher<'g>,
    /// Candidates the search returns for k = [`K`].
    candidates: usize,
    /// Resident growth over build and prepare.
    rss_growth: u64,
    /// The first pass over the queries at k = [`K`].
    first: Result<Answers, SlotError>,
}

impl Bench<'_> {
    /// Answers every query at `k` with a fresh runner.
    fn answers(&self, k: usize, candidates: usize) -> Result<Answers, SlotError> {
        answers_with(
            &self.searcher,
            self.refiner.as_ref(),
            self.test,
            k,
            candidates,
        )
    }
}

/// Answers every query of `queries` at `k` with a fresh runner of
/// `searcher` (and `refiner`).
fn answers_with(
    searcher: &Searcher<'_>,
    refiner: Option<&Refiner<'_>>,
    queries: &Matrix,
    k: usize,
    candidates: usize,
) -> Result<Answers, SlotError> {
    let mut runner = QueryRunner::new(searcher, refiner, candidates)?;
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

/// A check of the prepared variant: its rows (usually one), in order.
type BenchCheck = fn(&mut Bench<'_>) -> Vec<CheckRow>;

/// The checks run on the prepared variant, in order. The unknown and
/// malformed knob checks leave rejected values behind;
/// `threads_agree_and_repeatable` configures the first sweep point again
/// before it compares passes.
const BENCH_CHECKS: [BenchCheck; 10] = [
    ids_valid_and_sorted,
    k_larger_than_n,
    dimension_mismatch,
    unknown_build_parameter,
    unknown_search_parameter,
    unknown_refinement_parameter,
    malformed_build_parameter,
    malformed_knob,
    threads_agree_and_repeatable,
    memory_bytes_plausible,
];

/// The suite's recorder: rows go straight to the worker's events.
struct Suite<'e> {
    emit: &'e mut dyn FnMut(CheckRow),
    failed: bool,
}

impl Suite<'_> {
    fn report(&mut self, row: CheckRow) {
        self.failed |= row.verdict == CheckVerdict::Fail;
        (self.emit)(row);
    }

    /// Reports the failed setup step's row; the reason the suite stops.
    fn stop(&mut self, setup: SetupFailed) -> String {
        self.report(setup.row);
        setup.reason.to_owned()
    }
}

/// A setup step failed: its row, and why the suite cannot go on.
struct SetupFailed {
    row: CheckRow,
    reason: &'static str,
}

impl SetupFailed {
    fn new(name: &str, error: &SlotError, reason: &'static str) -> SetupFailed {
        SetupFailed {
            row: CheckRow::new(name, CheckVerdict::Fail, error.to_string()),
            reason,
        }
    }
}

/// Runs the suite in a worker; rows are reported through `emit` as they
/// complete. Returns Err when the suite cannot start or go on (a setup
/// step failed) or when some check failed.
pub fn run_in_worker(job: &CheckJob, emit: &mut dyn FnMut(CheckRow)) -> Result<(), String> {
    let slots = job.pipeline.load().map_err(|e| format!("load: {e}"))?;
    let mut suite = Suite {
        emit,
        failed: false,
    };
    suite.report(CheckRow::new(
        "load",
        CheckVerdict::Pass,
        describe_slots(&slots),
    ));
    suite.report(declared_parameters(&slots));
    let (train, test) = suite_data(Metric::L2);
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let rss_before = resident_bytes();
    let graph = build(&slots, job, &base).map_err(|s| suite.stop(s))?;
    suite.report(CheckRow::new(
        "build",
        CheckVerdict::Pass,
        format!("{} graph levels", graph.view().num_levels),
    ));
    let (mut searcher, refiner) = prepare(&slots, job, &base, &graph).map_err(|s| suite.stop(s))?;
    let rss_growth = resident_bytes().saturating_sub(rss_before);
    searcher
        .configure(&job.knobs)
        .map_err(|e| {
            SetupFailed::new(
                "search configure",
                &e,
                "the search slot rejects its own sweep values",
            )
        })
        .map_err(|s| suite.stop(s))?;
    let candidates = job.pipeline.candidates_for(K, refiner.is_some());
    let first = answers_with(&searcher, refiner.as_ref(), &test, K, candidates);
    let mut bench = Bench {
        job,
        slots: &slots,
        train: &train,
        test: &test,
        base: &base,
        graph: &graph,
        refiner,
        searcher,
        candidates,
        rss_growth,
        first,
    };
    for check in BENCH_CHECKS {
        check(&mut bench)
            .into_iter()
            .for_each(|row| suite.report(row));
    }
    // The other metrics build their own indexes: this one goes first.
    drop(bench);
    drop(graph);
    for metric in [Metric::Angular, Metric::InnerProduct] {
        suite.report(metric_data(&slots, job, metric));
    }
    if suite.failed {
        Err("some checks failed".into())
    } else {
        Ok(())
    }
}

/// The slots' parameter declarations are consistent.
fn declared_parameters(slots: &LoadedSlots) -> CheckRow {
    let name = "declared parameters";
    match SlotParams::read_checked(slots) {
        Ok(declared) => CheckRow::new(name, CheckVerdict::Pass, declared.summary()),
        Err(problems) => CheckRow::new(name, CheckVerdict::Fail, problems),
    }
}

/// Setup: the variant builds on the euclidean suite data.
fn build<'a>(
    slots: &LoadedSlots,
    job: &CheckJob,
    base: &'a BaseVectors<'a>,
) -> Result<Graph<'a>, SetupFailed> {
    Graph::build(
        slots.construction,
        base,
        Metric::L2,
        &job.build_params,
        job.threads,
    )
    .map_err(|e| SetupFailed::new("build", &e, "the variant does not build on the check data"))
}

/// Setup: the search slot (and refinement slot) prepare over the graph.
fn prepare<'g>(
    slots: &LoadedSlots,
    job: &CheckJob,
    base: &'g BaseVectors<'g>,
    graph: &'g Graph<'g>,
) -> Result<(Searcher<'g>, Option<Refiner<'g>>), SetupFailed> {
    slots
        .prepare_search(&job.pipeline, base, graph, Metric::L2)
        .map_err(|e| {
            SetupFailed::new(
                "prepare",
                &e,
                "the search or refinement slot cannot be prepared",
            )
        })
}

/// Returned ids are in range and unique (at least min(k, n) of them), and
/// sorted by distance.
fn ids_valid_and_sorted(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let answers = match &bench.first {
        Ok(answers) => answers,
        Err(e) => {
            return vec![
                CheckRow::new("ids in range and unique", CheckVerdict::Fail, e.to_string()),
                CheckRow::new("sorted by distance", CheckVerdict::Fail, "no results"),
            ];
        }
    };
    let num_base = bench.train.len();
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
    vec![
        passes_unless(
            "ids in range and unique",
            ids_problem(answers, num_base).or_else(|| short_problem(answers, K, num_base)),
            &detail,
        ),
        passes_unless(
            "sorted by distance",
            order_problem(answers),
            "non-decreasing, no NaN",
        ),
    ]
}

/// A k larger than the number of points gives valid, sorted results.
fn k_larger_than_n(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let name = "k larger than n";
    let num_base = bench.train.len();
    let big_k = num_base + 7;
    let candidates = bench
        .job
        .pipeline
        .candidates_for(big_k, bench.refiner.is_some());
    let row = match bench.answers(big_k, candidates) {
        Ok(answers) => {
            let most = answers.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
            let problem = ids_problem(&answers, num_base)
                .or_else(|| order_problem(&answers))
                .or_else(|| short_problem(&answers, big_k, num_base));
            passes_unless(
                name,
                problem,
                &format!("k = {big_k}, n = {num_base}: up to {most} results"),
            )
        }
        Err(e) => CheckRow::new(name, CheckVerdict::Fail, e.to_string()),
    };
    vec![row]
}

/// A query of the wrong dimension gets an error status.
fn dimension_mismatch(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let wrong_dim = vec![0.5f32; DIM + 1];
    let result = QueryRunner::new(&bench.searcher, bench.refiner.as_ref(), bench.candidates)
        .and_then(|mut runner| {
            let (mut ids, mut d) = (vec![0u32; K], vec![0f32; K]);
            runner.run(&wrong_dim, &mut ids, &mut d).map(|_| ())
        });
    vec![refused(
        "dimension mismatch",
        result,
        StatusCode::DimensionMismatch,
    )]
}

/// The key no slot knows.
const UNKNOWN_KEY: &str = "annvil_check_unknown";

/// An unknown build parameter gets an error status.
fn unknown_build_parameter(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let mut unknown = bench.job.build_params.clone();
    unknown.insert(UNKNOWN_KEY.into(), "1".into());
    let result = Graph::build(
        bench.slots.construction,
        bench.base,
        Metric::L2,
        &unknown,
        1,
    );
    vec![refused(
        "unknown build parameter",
        result.map(drop),
        StatusCode::UnknownParameter,
    )]
}

/// An unknown search knob gets an error status.
fn unknown_search_parameter(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let unknown = ParamMap::from([(UNKNOWN_KEY.to_owned(), "1".to_owned())]);
    vec![refused(
        "unknown search parameter",
        bench.searcher.configure(&unknown),
        StatusCode::UnknownParameter,
    )]
}

/// An unknown refinement parameter gets an error status.
fn unknown_refinement_parameter(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let name = "unknown refinement parameter";
    let Some(lib) = bench.slots.refinement else {
        return vec![CheckRow::new(
            name,
            CheckVerdict::NotApplicable,
            "no refinement slot",
        )];
    };
    let mut params = bench.job.pipeline.refine_params.clone();
    params.insert(UNKNOWN_KEY.into(), "1".into());
    vec![refused(
        name,
        Refiner::prepare(lib, bench.base, Metric::L2, &params).map(drop),
        StatusCode::UnknownParameter,
    )]
}

/// A non-numeric value for the first numeric build parameter gets an error
/// status.
fn malformed_build_parameter(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let build_params = &bench.job.build_params;
    let Some((key, _)) = build_params.iter().find(|(_, v)| v.parse::<f64>().is_ok()) else {
        return vec![CheckRow::new(
            "malformed build parameter",
            CheckVerdict::NotApplicable,
            "no numeric build parameter",
        )];
    };
    let mut malformed = build_params.clone();
    malformed.insert(key.clone(), "not-a-number".to_owned());
    let result = Graph::build(
        bench.slots.construction,
        bench.base,
        Metric::L2,
        &malformed,
        1,
    );
    vec![refused(
        &format!("malformed build parameter `{key}`"),
        result.map(drop),
        StatusCode::InvalidArgument,
    )]
}

/// A non-numeric value for the first numeric knob gets an error status.
fn malformed_knob(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let knobs = &bench.job.knobs;
    let Some((knob, _)) = knobs.iter().find(|(_, v)| v.parse::<f64>().is_ok()) else {
        return vec![CheckRow::new(
            "malformed knob",
            CheckVerdict::NotApplicable,
            "no numeric knob to sweep",
        )];
    };
    let malformed = ParamMap::from([(knob.clone(), "not-a-number".to_owned())]);
    vec![refused(
        &format!("malformed knob `{knob}`"),
        bench.searcher.configure(&malformed),
        StatusCode::InvalidArgument,
    )]
}

/// After the rejected parameters above, the searcher takes its first sweep
/// point again; then two contexts searching from two threads at once agree
/// with one thread, and a second pass repeats the first exactly.
fn threads_agree_and_repeatable(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    // The failed configure calls above must leave the searcher usable.
    let restored = bench.searcher.configure(&bench.job.knobs);
    let first = match (&bench.first, restored) {
        (Ok(first), Ok(())) => first,
        (_, Err(e)) => {
            return vec![CheckRow::new(
                "repeatable",
                CheckVerdict::Fail,
                format!("configure after rejected params: {e}"),
            )];
        }
        (Err(_), _) => {
            return vec![CheckRow::new(
                "repeatable",
                CheckVerdict::Fail,
                "no results",
            )];
        }
    };
    let (searcher, refiner) = (&bench.searcher, bench.refiner.as_ref());
    let run = || answers_with(searcher, refiner, bench.test, K, bench.candidates);
    let one_thread = run();
    let two_threads = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2).map(|_| scope.spawn(run)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("check thread panicked"))
            .collect::<Vec<_>>()
    });
    let agree = match (&one_thread, &two_threads[..]) {
        (Ok(a), [Ok(b), Ok(c)]) => differing_query(a, b).or_else(|| differing_query(a, c)),
        _ => Some("a search returned an error".to_owned()),
    };
    let repeats = match &one_thread {
        Ok(again) => differing_query(first, again),
        Err(e) => Some(e.to_string()),
    };
    vec![
        passes_unless(
            "two threads agree with one",
            agree,
            "2 contexts searching concurrently",
        ),
        passes_unless(
            "repeatable",
            repeats,
            "two passes, identical ids and distances",
        ),
    ]
}

/// The reported memory (graph, searcher, refiner and one thread's
/// contexts) is not above a ceiling, nor below half of the resident growth
/// over build and prepare once that exceeds [`UNDER_REPORT_FLOOR`].
fn memory_bytes_plausible(bench: &mut Bench<'_>) -> Vec<CheckRow> {
    let contexts = QueryRunner::new(&bench.searcher, bench.refiner.as_ref(), bench.candidates)
        .map_or(0, |r| r.memory_bytes());
    let reported = bench.graph.memory_bytes()
        + bench.searcher.memory_bytes()
        + bench.refiner.as_ref().map_or(0, Refiner::memory_bytes)
        + contexts;
    let rss_growth = bench.rss_growth;
    let data_bytes = bench.train.as_slice().len() * 4;
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
    vec![passes_unless("memory_bytes plausible", problem, &detail)]
}

/// Data of `metric` builds and searches with valid, sorted ids, or the
/// variant declares the metric unsupported.
fn metric_data(slots: &LoadedSlots, job: &CheckJob, metric: Metric) -> CheckRow {
    let name = format!("{metric} data");
    match metric_round(slots, job, metric) {
        Ok(None) => CheckRow::new(
            &name,
            CheckVerdict::Pass,
            "builds, searches, ids valid and sorted",
        ),
        Ok(Some(problem)) => CheckRow::new(&name, CheckVerdict::Fail, problem),
        Err(e) if e.status == StatusCode::Unsupported.code() => {
            CheckRow::new(&name, CheckVerdict::NotApplicable, e.to_string())
        }
        Err(e) => CheckRow::new(&name, CheckVerdict::Fail, e.to_string()),
    }
}

/// Builds, prepares and searches data of `metric`; the first problem with
/// the results, if any.
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
    let candidates = job.pipeline.candidates_for(K, refiner.is_some());
    let answers = answers_with(&searcher, refiner.as_ref(), &test, K, candidates)?;
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
    let mut ok = !run.items.iter().any(|r| r.verdict == CheckVerdict::Fail);
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
                verdict: CheckVerdict::Fail,
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
        CheckVerdict::Pass => "PASS",
        CheckVerdict::Fail => "FAIL",
        CheckVerdict::NotApplicable => "n/a ",
    };
    // The row comes from the worker: its text is cut to a readable length.
    format!(
        "  {tag}  {:<40} {}",
        bounded(row.name.clone(), 80),
        bounded(row.detail.clone(), 2000)
    )
}
