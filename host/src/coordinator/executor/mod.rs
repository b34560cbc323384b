//! The executor seam: where the worker sessions of one build set run.
//!
//! The coordinator ([`super::evaluate`]) plans queries, scores, extends the
//! sweep, checks CPU time and stores, the same for every executor; an
//! [`Executor`] only starts [`WorkerSession`]s, each a built index that
//! answers `configure` and timed `run`s with ids and timings.
//!
//! * [`Local`]: the trusted [`Session`] in this process (the default).
//! * [`mailbox::Mailbox`]: the same `Session`, driven on a Slurm compute
//!   node by `host slurm-task` through files in a shared directory
//!   ([`slurm`] submits and watches the tasks).

pub mod mailbox;
pub mod slurm;

use std::path::{Path, PathBuf};

use super::measurer::{Built, Limits, Session, Timed};
use crate::protocol::EvaluateJob;
use crate::variant::ParamMap;

/// A built index in a worker, wherever it runs.
pub trait WorkerSession {
    /// Sets the knobs of the next sweep point.
    fn configure(&mut self, knobs: &ParamMap) -> Result<(), String>;
    /// One timed run over `queries`.
    fn run(&mut self, queries: &[&[f32]]) -> Result<Timed, String>;
    /// Ends the worker cleanly.
    fn finish(self: Box<Self>) -> Result<(), String>;
    /// The last lines of the worker's stderr (for the failure record).
    fn stderr_tail(&self) -> String;
}

/// Starts worker sessions for one build set.
pub trait Executor {
    /// Starts a worker for `job` whose runs hold up to `capacity` queries
    /// of `dim` floats, and builds its index.
    fn start<'a>(
        &'a self,
        job: &EvaluateJob,
        dim: usize,
        capacity: usize,
    ) -> Result<(Box<dyn WorkerSession + 'a>, Built), String>;
}

/// Runs workers on this machine, each in a private scratch directory.
pub struct Local {
    /// Every worker's limits.
    pub limits: Limits,
    /// Where the private scratch directories go.
    pub scratch: PathBuf,
}

/// A local session and the scratch directory it owns.
struct LocalSession {
    session: Session,
    _private: tempfile::TempDir,
}

impl Executor for Local {
    fn start<'a>(
        &'a self,
        job: &EvaluateJob,
        dim: usize,
        capacity: usize,
    ) -> Result<(Box<dyn WorkerSession + 'a>, Built), String> {
        let (session, built, private) =
            start_session(job, &self.limits, &self.scratch, dim, capacity)?;
        Ok((
            Box::new(LocalSession {
                session,
                _private: private,
            }),
            built,
        ))
    }
}

/// Starts a [`Session`] for `job` in a fresh private directory under
/// `scratch` (its exchange lives there) and builds.
pub fn start_session(
    job: &EvaluateJob,
    limits: &Limits,
    scratch: &Path,
    dim: usize,
    capacity: usize,
) -> Result<(Session, Built, tempfile::TempDir), String> {
    let private = tempfile::tempdir_in(scratch)
        .map_err(|e| format!("creating a scratch directory in {}: {e}", scratch.display()))?;
    let mut job = job.clone();
    job.exchange = private.path().join("exchange");
    let mut session = Session::start(&job, limits, private.path(), dim, capacity)?;
    let built = session.build()?;
    Ok((session, built, private))
}

impl WorkerSession for LocalSession {
    fn configure(&mut self, knobs: &ParamMap) -> Result<(), String> {
        self.session.configure(knobs)
    }

    fn run(&mut self, queries: &[&[f32]]) -> Result<Timed, String> {
        self.session.run(queries)
    }

    fn finish(self: Box<Self>) -> Result<(), String> {
        self.session.finish()
    }

    fn stderr_tail(&self) -> String {
        self.session.stderr_tail()
    }
}

/// Where the private scratch directories of workers go: a tmpfs when the
/// machine has one, so the exchange is plain shared memory.
pub fn scratch_root() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::Builder::new().prefix("annvil-").tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("annvil-").tempdir()
    }
}
