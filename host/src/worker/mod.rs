//! The worker process: `host worker`, started by the measurer (inside the
//! sandbox). It is the only place that loads variant code, and it is not
//! trusted: nothing it says is a figure. It reads its job from stdin, moves
//! its stdout to a private descriptor for its events (variant prints go to
//! stderr), drops every capability, and runs one job (a conformance check,
//! an evaluation session, or reading the slots' parameter declarations).

pub mod loader;
pub mod pipeline;
pub mod session;

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::FromRawFd;
use std::path::Path;

use annvil_abi::Metric;
use serde::Serialize;

use crate::protocol::{Event, Job, PipelineSpec};
use loader::Library;
use pipeline::{BaseVectors, Graph, Refiner, Searcher, SlotResult};

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

/// Writes events, one flushed JSON line each, to the worker's private
/// event descriptor.
pub struct EventWriter {
    out: File,
}

impl EventWriter {
    /// Writes one event as a line and flushes it.
    pub fn emit<T: Serialize>(&mut self, event: &Event<T>) {
        let mut line = serde_json::to_string(event).expect("events serialise");
        line.push('\n');
        // A failed write cannot be reported anywhere better than stderr.
        if let Err(e) = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
        {
            eprintln!("annvil worker: cannot write event: {e}");
        }
    }
}

/// Drops every capability (bounding, ambient, inheritable, permitted and
/// effective sets) and sets no_new_privs, before any variant code loads:
/// inside its user namespace the worker would otherwise hold them all, and
/// could remount its read-only view.
pub fn harden() -> Result<(), String> {
    use caps::CapSet;
    for cap in caps::all() {
        // Fails only for capabilities the kernel does not know.
        let _ = caps::drop(None, CapSet::Bounding, cap);
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("dropping capabilities: {e}"))?;
    }
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err("setting no_new_privs failed".into());
    }
    Ok(())
}

/// As the first process of a PID namespace the worker forks: the parent
/// stays as the namespace's init, reaps orphans, and exits with the
/// worker's status (128 + the signal that ended it), so that signals end
/// the worker as they would anywhere else.
fn become_init_if_pid_one() {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        return;
    }
    // SAFETY: no other thread exists yet in this process.
    let child = unsafe { libc::fork() };
    if child <= 0 {
        return; // the worker (or fork failed: go on without an init)
    }
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == child {
            let code = if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            };
            std::process::exit(code);
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(125);
        }
    }
}

/// Moves stdout to a private descriptor for events and points fd 1 at
/// stderr, so prints from variant code cannot corrupt the events.
fn private_events() -> Result<EventWriter, String> {
    // SAFETY: dup/dup2 on the standard descriptors, which exist.
    let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: as above.
    if fd < 0 || unsafe { libc::dup2(2, 1) } < 0 {
        return Err("redirecting stdout failed".into());
    }
    // SAFETY: `fd` is a fresh descriptor this function owns.
    let out = unsafe { File::from_raw_fd(fd) };
    Ok(EventWriter { out })
}

/// Entry point of `host worker`; returns the process exit code.
pub fn main() -> Result<i32, String> {
    become_init_if_pid_one();
    let mut events = private_events()?;
    harden()?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| format!("reading the job: {e}"))?;
    let job: Job = serde_json::from_str(&line).map_err(|e| format!("malformed job: {e}"))?;
    let outcome = match job {
        Job::Check(job) => {
            crate::check::run_in_worker(&job, &mut |row| events.emit(&Event::Item(row)))
        }
        Job::Evaluate(job) => session::serve(&job, &mut events, &mut input),
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
