//! What the trusted side (the coordinator and its measurer) and a worker
//! say to each other. The worker runs variant code and is hostile: every
//! line it sends is bounded ([`MAX_LINE_BYTES`]), parsed into these types
//! and validated by the trusted side before anything is used.
//!
//! Transport: the job goes to the worker's stdin as the first JSON line,
//! followed (in an evaluation) by [`Request`] lines. The worker answers with
//! one [`Event`] per line on its original stdout, which it moves to a
//! private descriptor before any variant code loads (variant prints go to
//! stderr). Bulk data of a timed run (queries in, ids out) goes through the
//! shared [`exchange::Exchange`]; its clock is read only by the measurer.

pub mod base_file;
pub mod exchange;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::variant::ParamMap;

/// The longest line the trusted side reads from a worker; a longer one
/// fails the job ("message too long").
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Marks a missing result (fewer than k returned) in a row of ids.
pub const NO_ID: u32 = u32::MAX;

/// Which libraries fill the slots of one variant, and their parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// Library of the construction slot.
    pub construction: PathBuf,
    /// Library of the search slot.
    pub search: PathBuf,
    /// Library of the refinement slot.
    pub refinement: PathBuf,
    /// True when variant.yaml declares the refinement slot; otherwise a
    /// library without one means "keep the first k".
    pub refinement_declared: bool,
    /// Fixed search parameters (prepare).
    pub search_params: ParamMap,
    /// Refinement parameters.
    pub refine_params: ParamMap,
    /// Candidates the search returns for refinement (None: k).
    pub candidates: Option<usize>,
    /// For a bridged variant, the Python its slots run in.
    pub python: Option<PythonRuntime>,
}

impl PipelineSpec {
    /// The distinct library files of the pipeline.
    pub fn libraries(&self) -> Vec<PathBuf> {
        let mut libs = vec![self.construction.clone()];
        for lib in [&self.search, &self.refinement] {
            if !libs.contains(lib) {
                libs.push(lib.clone());
            }
        }
        libs
    }
}

/// Where annvil-python-bridge finds a bridged variant's Python: set by the
/// coordinator as the worker's environment (the bridge reads these names),
/// and mounted read-only into its sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PythonRuntime {
    /// The variant's virtual environment (`ANNVIL_PYTHON_ENV`).
    pub environment: PathBuf,
    /// The adapter module (`ANNVIL_PYTHON_ADAPTER`).
    pub adapter: PathBuf,
    /// The interpreter's `sys.base_prefix` (its standard library).
    pub prefix: PathBuf,
}

impl PythonRuntime {
    /// The worker's extra environment variables. Besides the two paths,
    /// OpenMP's idle threads are told to sleep rather than spin: a library
    /// that built with several threads (faiss, OpenBLAS) would otherwise
    /// leave them burning CPU into the single-thread timed runs, which the
    /// measurer rightly counts.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OMP_WAIT_POLICY".into(), "PASSIVE".into()),
            (
                "ANNVIL_PYTHON_ENV".into(),
                self.environment.to_string_lossy().into_owned(),
            ),
            (
                "ANNVIL_PYTHON_ADAPTER".into(),
                self.adapter.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// What the worker must be able to read.
    pub fn readable(&self) -> Vec<PathBuf> {
        vec![
            self.environment.clone(),
            self.adapter.clone(),
            self.prefix.clone(),
        ]
    }
}

/// A job for a worker process: the first line of its stdin.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// The conformance suite: [`crate::check::CheckRow`] items.
    Check(crate::check::CheckJob),
    /// An evaluation session driven by [`Request`]s: [`EvaluateItem`]s.
    Evaluate(EvaluateJob),
    /// The slots' parameter declarations: one [`crate::describe::SlotParams`] item.
    Describe(PipelineSpec),
}

impl Job {
    /// The variant's slots this job runs.
    pub fn pipeline(&self) -> &PipelineSpec {
        match self {
            Job::Check(job) => &job.pipeline,
            Job::Evaluate(job) => &job.pipeline,
            Job::Describe(pipeline) => pipeline,
        }
    }
}

/// What an evaluation worker is given up front. It holds no query: queries
/// arrive through the exchange, one timed run at a time, after the build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvaluateJob {
    /// The variant's slots.
    pub pipeline: PipelineSpec,
    /// This build's parameters.
    pub build_params: ParamMap,
    /// The base vectors file (see [`base_file`]).
    pub base: PathBuf,
    /// The exchange file (see [`exchange::Exchange`]).
    pub exchange: PathBuf,
    /// The dataset's metric name.
    pub metric: String,
    /// Results per query.
    pub k: usize,
    /// Threads for the build.
    pub build_threads: usize,
    /// Batch mode: search with this many threads at once.
    pub batch_threads: Option<usize>,
    /// Single-thread mode: pin the search to this CPU once the build is done.
    pub pin_cpu: Option<usize>,
}

/// What the measurer asks of an evaluation worker, one line each.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Build the index and prepare the search (answered by `Built`).
    Build,
    /// Set the knobs of the next sweep point (answered by `Configured`).
    Configure(ParamMap),
    /// Answer the next `queries` queries as the exchange releases them
    /// (completion is seen in the exchange; then answered by `Ran`).
    Run {
        /// Queries in this run.
        queries: usize,
    },
    /// Exit.
    Finish,
}

/// One line from a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event<T> {
    /// A result the job produced (a check row, a step of an evaluation, ...).
    Item(T),
    /// The job finished normally; always the last event.
    Done,
    /// The job stopped on an error it caught (e.g. an error status).
    Failed {
        /// One-line reason.
        reason: String,
    },
}

/// What an evaluation worker reports. None of it is a timing: the measurer
/// reads the clock itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluateItem {
    /// The libraries and base vectors are loaded; waiting for `Build`.
    Loaded,
    /// The index is built and the search prepared.
    Built(BuiltReport),
    /// The sweep point's knobs are set.
    Configured,
    /// A run is answered.
    Ran(RanReport),
}

/// What the slots say about the built index (claims, validated by the
/// measurer, never timings).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuiltReport {
    /// Memory the slots report owning (graph + searcher + refiner), in bytes.
    pub reported_bytes: u64,
    /// Graph levels in the standard view.
    pub levels: u32,
}

/// What the search slot says about a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RanReport {
    /// Distance computations during the run, when the slot counts them.
    pub distance_computations: Option<u64>,
}
