//! The worker process: `host worker --job FILE --events FILE`. It is the
//! only place that loads variant code. It runs one job (a conformance check,
//! an evaluation, or reading the slots' parameter declarations) and reports
//! through the events file (see [`crate::isolate`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::isolate::{Event, EventWriter};
use annvil_abi::Metric;

use crate::loader::{self, Library};
use crate::pipeline::{BaseVectors, Graph, Refiner, Searcher, SlotResult};
use crate::variant::ParamMap;

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
}

/// The libraries of a pipeline, loaded and checked.
pub struct LoadedSlots {
    /// Construction slot's library.
    pub construction: &'static Library,
    /// Search slot's library.
    pub search: &'static Library,
    /// Refinement slot's library, when there is a refinement slot.
    pub refinement: Option<&'static Library>,
}

impl LoadedSlots {
    /// Prepares the search slot over `graph` (with the fixed search
    /// parameters) and, when there is one, the refinement slot.
    pub fn prepare_search<'g>(
        &self,
        spec: &PipelineSpec,
        base: &'g BaseVectors<'g>,
        graph: &'g Graph<'g>,
        metric: Metric,
    ) -> SlotResult<(Searcher<'g>, Option<Refiner<'g>>)> {
        let searcher = Searcher::prepare(self.search, base, graph, metric, &spec.search_params)?;
        let refiner = self
            .refinement
            .map(|lib| Refiner::prepare(lib, base, metric, &spec.refine_params))
            .transpose()?;
        Ok((searcher, refiner))
    }
}

impl PipelineSpec {
    /// Loads the libraries (each file once) and checks each provides its slot.
    pub fn load(&self) -> Result<LoadedSlots, String> {
        let mut opened: Vec<&'static Library> = Vec::new();
        let mut open = |path: &Path| -> Result<&'static Library, String> {
            if let Some(lib) = opened.iter().find(|l| l.path == path) {
                return Ok(lib);
            }
            let lib = loader::open(path).map_err(|e| e.to_string())?;
            opened.push(lib);
            Ok(lib)
        };
        let construction = open(&self.construction)?;
        let search = open(&self.search)?;
        let refinement = open(&self.refinement)?;
        let missing = |lib: &Library, slot: &str| {
            format!(
                "slot {slot}: library {} ({}) provides no {slot} table",
                lib.name,
                lib.path.display()
            )
        };
        if construction.construction.is_none() {
            return Err(missing(construction, "construction"));
        }
        if search.search.is_none() {
            return Err(missing(search, "search"));
        }
        let refinement = match (refinement.refinement.is_some(), self.refinement_declared) {
            (true, _) => Some(refinement),
            (false, false) => None,
            (false, true) => return Err(missing(refinement, "refinement")),
        };
        Ok(LoadedSlots {
            construction,
            search,
            refinement,
        })
    }

    /// Number of candidates to ask the search for when the final answer has
    /// `k` results.
    pub fn candidates_for(&self, k: usize, has_refinement: bool) -> usize {
        if has_refinement {
            self.candidates.unwrap_or(k).max(k)
        } else {
            k
        }
    }
}

/// A job for a worker process.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// The conformance suite.
    Check(crate::check::CheckJob),
    /// A measured evaluation.
    Evaluate(crate::measure::EvaluateJob),
    /// The slots' parameter declarations: one [`crate::describe::SlotParams`] item.
    Describe(PipelineSpec),
}

/// Entry point of `host worker`; returns the process exit code.
pub fn main(job_path: &Path, events_path: &Path) -> Result<i32> {
    let job: Job = serde_json::from_slice(&std::fs::read(job_path)?)?;
    let mut events = EventWriter::open(events_path)?;
    let outcome = match job {
        Job::Check(job) => {
            crate::check::run_in_worker(&job, &mut |row| events.emit(&Event::Item(row)))
        }
        Job::Evaluate(job) => {
            crate::measure::run_in_worker(&job, &mut |item| events.emit(&Event::Item(item)))
        }
        Job::Describe(pipeline) => crate::describe::run_in_worker(&pipeline)
            .map(|declared| events.emit(&Event::Item(declared))),
    };
    match outcome {
        Ok(()) => {
            events.emit::<()>(&Event::Done);
            Ok(0)
        }
        Err(reason) => {
            events.emit::<()>(&Event::Failed { reason });
            Ok(1)
        }
    }
}
