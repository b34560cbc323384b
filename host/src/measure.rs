//! The measuring half of an evaluation, run inside a worker: build the index
//! once, then for each sweep point configure, warm up and time R runs.
//!
//! Rules (ann-benchmarks' discipline, tightened):
//! * Build once per build-parameter set, with the requested build threads;
//!   the search phase is then pinned to one CPU in single-thread mode.
//! * Each run answers every query on a fresh copy of the queries in a new
//!   shuffled order (seeded by the run number); QPS = queries / wall time of
//!   the fastest run; p50/p95/p99 latency come from that same run.
//! * A warm-up pass over up to [`WARMUP_QUERIES`] queries precedes the runs.
//! * Up to R runs; once the timed runs of a point exceed the point budget,
//!   no further run starts (at least one always runs). The number of runs
//!   actually made is recorded.
//! * The worker never sees ground truth. It returns the ids of every run in
//!   query order, deduplicated: runs with identical ids share one result
//!   set, so the coordinator scores every distinct answer and flags runs
//!   that disagree.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use annvil_abi::Metric;
use annvil_data::Matrix;
use serde::{Deserialize, Serialize};

use crate::pipeline::{BaseVectors, Graph, QueryRunner, Refiner, Searcher, SlotError};
use crate::variant::ParamMap;
use crate::worker::PipelineSpec;

/// Queries answered before the timed runs of each sweep point.
pub const WARMUP_QUERIES: usize = 500;

/// Marks a missing result (fewer than k returned) in a result set.
pub const NO_ID: u32 = u32::MAX;

/// What an evaluation worker does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvaluateJob {
    /// The variant's slots.
    pub pipeline: PipelineSpec,
    /// This build's parameters.
    pub build_params: ParamMap,
    /// The first sweep points; more may be requested through stdin.
    pub knobs: Vec<ParamMap>,
    /// Base and query vectors (see [`write_vectors_file`]).
    pub vectors: PathBuf,
    /// The dataset's metric name.
    pub metric: String,
    /// Results per query.
    pub k: usize,
    /// Timed runs per sweep point (best of).
    pub runs: usize,
    /// Time budget of the timed runs of one point, in seconds.
    pub point_budget_secs: f64,
    /// Threads for the build.
    pub build_threads: usize,
    /// Batch mode: search with this many threads at once.
    pub batch_threads: Option<usize>,
    /// Single-thread mode: pin the search to this CPU.
    pub pin_cpu: Option<usize>,
}

/// What an evaluation worker reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluateItem {
    /// The index is built and prepared.
    Built(BuildReport),
    /// One sweep point is measured.
    Point(PointReport),
    /// All requested points are done: the worker now reads one line from
    /// stdin, a JSON list of further sweep points (empty: finish).
    AwaitingKnobs,
}

/// Build-phase figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildReport {
    /// Wall time of construction.build, in seconds.
    pub build_seconds: f64,
    /// Wall time of search and refinement prepare, in seconds.
    pub prepare_seconds: f64,
    /// Memory the slots report (graph + searcher + refiner), in bytes.
    pub reported_bytes: u64,
    /// Growth of resident memory from before the build to after prepare.
    pub rss_bytes: u64,
    /// Graph levels in the standard view.
    pub levels: u32,
}

/// One measured sweep point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointReport {
    /// The knob values.
    pub knobs: ParamMap,
    /// Timed runs made.
    pub runs: usize,
    /// Wall time of the fastest run, in seconds.
    pub best_seconds: f64,
    /// Queries per second of the fastest run.
    pub qps: f64,
    /// Median latency of the fastest run, in microseconds.
    pub p50_us: f64,
    /// 95th percentile latency, in microseconds.
    pub p95_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Distance computations per query, when the search slot counts them.
    pub distances_per_query: Option<f64>,
    /// Distinct answers: which runs gave them, and the ids (k per query, in
    /// query order, [`NO_ID`] where fewer than k were returned).
    pub result_sets: Vec<ResultSet>,
}

/// One distinct answer to all queries and the runs that gave it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultSet {
    /// Run numbers (0-based) that returned exactly these ids.
    pub runs: Vec<usize>,
    /// k ids per query, in query order.
    pub ids: Vec<u32>,
}

const VECTORS_MAGIC: &[u8; 8] = b"ANNVIL1\0";

/// Writes base and query vectors for workers (no ground truth): a magic,
/// three little-endian u64 (base count, query count, dim), then the f32s.
/// Written whole or not at all ([`annvil_data::write_atomically`]).
pub fn write_vectors_file(path: &Path, base: &Matrix, queries: &Matrix) -> std::io::Result<()> {
    annvil_data::write_atomically(path, |out| {
        out.write_all(VECTORS_MAGIC)?;
        for n in [base.len(), queries.len(), base.dim()] {
            out.write_all(&(n as u64).to_le_bytes())?;
        }
        for x in base.as_slice().iter().chain(queries.as_slice()) {
            out.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    })
}

/// Reads a file written by [`write_vectors_file`].
pub fn read_vectors_file(path: &Path) -> Result<(Matrix, Matrix), String> {
    let fail = |what: &str| format!("{}: {what}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| fail(&e.to_string()))?;
    if bytes.len() < 32 || &bytes[..8] != VECTORS_MAGIC {
        return Err(fail("not an annvil vectors file"));
    }
    let header = |i: usize| {
        u64::from_le_bytes(bytes[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes")) as usize
    };
    let (n, q, dim) = (header(0), header(1), header(2));
    let floats: Vec<f32> = bytes[32..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if floats.len() != (n + q) * dim {
        return Err(fail("truncated"));
    }
    let (base, queries) = floats.split_at(n * dim);
    let matrix = |v: &[f32]| Matrix::new(v.to_vec(), dim).map_err(|e| fail(&e.to_string()));
    Ok((matrix(base)?, matrix(queries)?))
}

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

fn pin_current_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is the empty set; sched_setaffinity(0, ..)
    // affects only the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A deterministic permutation of 0..n (splitmix64-driven Fisher–Yates).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0xD1B5_4A32_D192_ED03);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// One thread's answers during a run, preallocated for every query.
struct Answers {
    /// Positions in the shuffled order, in answering order.
    positions: Vec<usize>,
    /// k ids per answered position ([`NO_ID`]-padded).
    ids: Vec<u32>,
    /// Latency per answered position, in microseconds.
    micros: Vec<f64>,
}

impl Answers {
    fn with_capacity(queries: usize, k: usize) -> Answers {
        Answers {
            positions: Vec::with_capacity(queries),
            ids: vec![NO_ID; queries * k],
            micros: Vec::with_capacity(queries),
        }
    }
}

/// One timed run's raw figures.
struct Run {
    seconds: f64,
    latencies_us: Vec<f64>,
    ids: Vec<u32>,
    distance_computations: Option<u64>,
}

/// The search side of a prepared index, shared by all runs.
struct Index<'a> {
    searcher: &'a Searcher<'a>,
    refiner: Option<&'a Refiner<'a>>,
    candidates: usize,
    k: usize,
}

impl Index<'_> {
    fn runner(&self) -> Result<QueryRunner<'_>, SlotError> {
        QueryRunner::new(self.searcher, self.refiner, self.candidates)
    }

    /// Answers `order` (indices into `queries`) on a fresh contiguous copy,
    /// with `threads` threads (1 = the calling thread).
    fn run(&self, queries: &Matrix, order: &[usize], threads: usize) -> Result<Run, SlotError> {
        let dim = queries.dim();
        let copy: Vec<f32> = order
            .iter()
            .flat_map(|&q| queries.row(q).iter().copied())
            .collect();
        let k = self.k;
        let next = AtomicUsize::new(0);
        // Each thread answers chunks of the shuffled order into its own
        // buffers, allocated before the clock starts: nothing is allocated
        // or shared on the timed path.
        let work = |runner: &mut QueryRunner<'_>, out: &mut Answers| -> Result<(), SlotError> {
            let mut distances = vec![0f32; k];
            loop {
                let start = next.fetch_add(16, Ordering::Relaxed);
                if start >= order.len() {
                    return Ok(());
                }
                for pos in start..(start + 16).min(order.len()) {
                    let row = out.positions.len() * k;
                    let t = Instant::now();
                    let n = runner.run(
                        &copy[pos * dim..(pos + 1) * dim],
                        &mut out.ids[row..row + k],
                        &mut distances,
                    )?;
                    out.micros.push(t.elapsed().as_secs_f64() * 1e6);
                    out.ids[row + n..row + k].fill(NO_ID);
                    out.positions.push(pos);
                }
            }
        };
        let mut runners = (0..threads)
            .map(|_| self.runner())
            .collect::<Result<Vec<_>, _>>()?;
        let mut buffers: Vec<Answers> = (0..threads)
            .map(|_| Answers::with_capacity(order.len(), k))
            .collect();
        let counted_before: Option<u64> = runners.iter().map(QueryRunner::distance_count).sum();
        let start = Instant::now();
        let outcomes: Vec<Result<(), SlotError>> = if threads == 1 {
            vec![work(&mut runners[0], &mut buffers[0])]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = runners
                    .iter_mut()
                    .zip(buffers.iter_mut())
                    .map(|(r, b)| scope.spawn(|| work(r, b)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("search thread panicked"))
                    .collect()
            })
        };
        let seconds = start.elapsed().as_secs_f64();
        let counted_after: Option<u64> = runners.iter().map(QueryRunner::distance_count).sum();
        outcomes.into_iter().collect::<Result<(), _>>()?;
        let mut ids = vec![NO_ID; queries.len() * k];
        let mut latencies_us = vec![0.0; order.len()];
        for buffer in &buffers {
            for (i, &pos) in buffer.positions.iter().enumerate() {
                let q = order[pos];
                ids[q * k..(q + 1) * k].copy_from_slice(&buffer.ids[i * k..(i + 1) * k]);
                latencies_us[pos] = buffer.micros[i];
            }
        }
        Ok(Run {
            seconds,
            latencies_us,
            ids,
            distance_computations: counted_after.zip(counted_before).map(|(a, b)| a - b),
        })
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn measure_point(
    index: &Index<'_>,
    queries: &Matrix,
    job: &EvaluateJob,
    knobs: &ParamMap,
) -> Result<PointReport, SlotError> {
    let threads = job.batch_threads.unwrap_or(1).max(1);
    let warmup: Vec<usize> = (0..queries.len().min(WARMUP_QUERIES)).collect();
    index.run(queries, &warmup, threads)?;
    let budget = Duration::from_secs_f64(job.point_budget_secs);
    let mut spent = Duration::ZERO;
    let mut runs: Vec<Run> = Vec::new();
    while runs.len() < job.runs.max(1) && (runs.is_empty() || spent < budget) {
        let order = shuffled(queries.len(), runs.len() as u64 + 1);
        let run = index.run(queries, &order, threads)?;
        spent += Duration::from_secs_f64(run.seconds);
        runs.push(run);
    }
    let best = runs
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds))
        .map(|(i, _)| i)
        .expect("at least one run");
    let mut result_sets: Vec<ResultSet> = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        match result_sets.iter_mut().find(|s| s.ids == run.ids) {
            Some(set) => set.runs.push(r),
            None => result_sets.push(ResultSet {
                runs: vec![r],
                ids: run.ids.clone(),
            }),
        }
    }
    let best_run = &runs[best];
    let mut latencies = best_run.latencies_us.clone();
    latencies.sort_by(f64::total_cmp);
    Ok(PointReport {
        knobs: knobs.clone(),
        runs: runs.len(),
        best_seconds: best_run.seconds,
        qps: queries.len() as f64 / best_run.seconds,
        p50_us: percentile(&latencies, 50.0),
        p95_us: percentile(&latencies, 95.0),
        p99_us: percentile(&latencies, 99.0),
        distances_per_query: best_run
            .distance_computations
            .map(|c| c as f64 / queries.len() as f64),
        result_sets,
    })
}

/// Runs an evaluation job in a worker, reporting through `emit`.
pub fn run_in_worker(job: &EvaluateJob, emit: &mut dyn FnMut(EvaluateItem)) -> Result<(), String> {
    let metric: Metric = job.metric.parse()?;
    let (train, queries) = read_vectors_file(&job.vectors)?;
    let slots = job.pipeline.load()?;
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let rss_before = resident_bytes();
    let start = Instant::now();
    let graph = Graph::build(
        slots.construction,
        &base,
        metric,
        &job.build_params,
        job.build_threads,
    )
    .map_err(|e| e.to_string())?;
    let build_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (mut searcher, refiner) = slots
        .prepare_search(&job.pipeline, &base, &graph, metric)
        .map_err(|e| e.to_string())?;
    let prepare_seconds = start.elapsed().as_secs_f64();
    emit(EvaluateItem::Built(BuildReport {
        build_seconds,
        prepare_seconds,
        reported_bytes: (graph.memory_bytes()
            + searcher.memory_bytes()
            + refiner.as_ref().map_or(0, Refiner::memory_bytes)) as u64,
        rss_bytes: resident_bytes().saturating_sub(rss_before),
        levels: graph.view().num_levels,
    }));
    if let Some(cpu) = job.pin_cpu {
        pin_current_thread(cpu);
    }
    let candidates = job.pipeline.candidates_for(job.k, refiner.is_some());
    let mut pending = job.knobs.clone();
    let stdin = std::io::stdin();
    loop {
        for knobs in pending.drain(..) {
            searcher
                .configure(&knobs)
                .map_err(|e| format!("sweep point {knobs:?}: {e}"))?;
            let index = Index {
                searcher: &searcher,
                refiner: refiner.as_ref(),
                candidates,
                k: job.k,
            };
            let point = measure_point(&index, &queries, job, &knobs)
                .map_err(|e| format!("sweep point {knobs:?}: {e}"))?;
            emit(EvaluateItem::Point(point));
        }
        emit(EvaluateItem::AwaitingKnobs);
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(());
        }
        pending = serde_json::from_str(line.trim())
            .map_err(|e| format!("bad sweep request from the coordinator: {e}"))?;
        if pending.is_empty() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_and_differ_by_seed() {
        let a = shuffled(1000, 1);
        let b = shuffled(1000, 2);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, b);
        assert_eq!(a, shuffled(1000, 1));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
    }

    #[test]
    fn vectors_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        let base = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2).unwrap();
        let queries = Matrix::new(vec![5.0, 6.0], 2).unwrap();
        write_vectors_file(&path, &base, &queries).unwrap();
        let (b, q) = read_vectors_file(&path).unwrap();
        assert_eq!(b.as_slice(), base.as_slice());
        assert_eq!(q.as_slice(), queries.as_slice());
        std::fs::write(&path, b"junk").unwrap();
        assert!(
            read_vectors_file(&path)
                .unwrap_err()
                .contains("not an annvil vectors file")
        );
    }
}
