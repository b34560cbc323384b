//! The mailbox: how the coordinator drives a [`Session`] on another machine
//! through a directory both can read and write (the attempt directory of
//! one task, on the shared file system).
//!
//! The coordinator writes numbered requests (`request-00000.json`, …) and
//! the task (`host slurm-task <dir>`, [`serve`]) answers each with the
//! reply of the same number; every file is written whole (a temporary
//! file, then a rename). The queries of a `run` go in `queries-NNNNN.f32`
//! just before its request: the sandboxed worker never sees this
//! directory, and the ground truth never leaves the coordinator.
//!
//! The directory is a journal. A coordinator's requests are a function of
//! the replies it read (the query plan is seeded, the adaptive sweep
//! follows the scores), so a restarted coordinator replays it: a request
//! already written must equal the one it would send (otherwise the
//! attempt is abandoned), and a reply already there is used instead of
//! measuring again.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use annvil_results::Machine;
use serde::{Deserialize, Serialize};

use super::slurm::{Task, TaskInfo};
use super::{Executor, WorkerSession, start_session};
use crate::coordinator::measurer::{Built, Limits, Session, Timed};
use crate::protocol::EvaluateJob;
use crate::variant::ParamMap;

/// What the task needs besides the requests: written once per attempt as
/// `task.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The job, its paths on the shared directory.
    pub job: EvaluateJob,
    /// Blake3 of the base vectors file, checked on the node before use.
    pub base_hash: String,
    /// Floats per vector.
    pub dim: usize,
    /// The most queries one run holds.
    pub capacity: usize,
    /// Wall-clock limit per worker, seconds.
    pub timeout_secs: u64,
    /// Address-space cap per worker, bytes.
    pub memory_bytes: Option<u64>,
    /// Run the worker in the sandbox (refused on a node that has none).
    pub sandboxed: bool,
}

/// One request of the coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskRequest {
    /// Start a fresh worker and build (answered by `Built`).
    Start,
    /// Set the knobs of the next sweep point.
    Configure(ParamMap),
    /// One timed run over the queries in this request's queries file.
    Run {
        /// How many queries the file holds.
        queries: usize,
    },
    /// End the current worker.
    Finish,
    /// End the task.
    Exit,
}

/// One reply of the task.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskReply {
    /// The index is built.
    Built {
        /// Build wall time, seconds.
        seconds: f64,
        /// Memory the slots claim, bytes.
        reported_bytes: u64,
        /// Growth of the worker's resident memory over the build, bytes.
        rss_bytes: u64,
        /// Where it was built (and is measured).
        node: Machine,
    },
    /// The knobs are set.
    Configured,
    /// A timed run, as the node's measurer timed it.
    Ran(Timed),
    /// The worker ended cleanly.
    Finished,
    /// The request failed; the worker is gone.
    Failed {
        /// Why.
        reason: String,
        /// The last lines of the worker's stderr.
        stderr_tail: String,
    },
    /// The task ends.
    Exited,
}

/// The largest reply file read (ids of one run dominate).
const MAX_REPLY_BYTES: u64 = 256 << 20;

/// How often the coordinator asks Slurm whether a silent task still runs.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// How long a task waits for its next request before it ends.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

fn request_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("request-{n:05}.json"))
}

fn reply_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("reply-{n:05}.json"))
}

fn queries_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("queries-{n:05}.f32"))
}

/// Writes `bytes` to `path` whole (see [`annvil_data::write_atomically`]).
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), String> {
    annvil_data::write_atomically(path, |out| out.write_all(bytes))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The blake3 hash of a file's content, in hex.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    Ok(blake3::Hasher::new()
        .update_reader(file)?
        .finalize()
        .to_hex()
        .to_string())
}

/// Reads a file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}

/// The coordinator's end of one attempt's mailbox.
pub struct Mailbox {
    dir: PathBuf,
    task: Task,
    k: usize,
    state: RefCell<Journal>,
}

#[derive(Default)]
struct Journal {
    next: usize,
    stderr_tail: String,
    /// Why the attempt is lost (the task ended without answering, or the
    /// journal diverged): the evaluation is resubmitted.
    lost: Option<String>,
    /// What Slurm said when it saw the task end without answering.
    ended: Option<TaskInfo>,
    /// The node of the last build.
    node: Option<Machine>,
}

impl Mailbox {
    /// The mailbox in `dir`, answered by `task`, for runs of `k` ids per query.
    pub fn new(dir: PathBuf, task: Task, k: usize) -> Mailbox {
        Mailbox {
            dir,
            task,
            k,
            state: RefCell::new(Journal::default()),
        }
    }

    /// Why the attempt was lost, if it was (see [`Journal::lost`]).
    pub fn lost(&self) -> Option<String> {
        self.state.borrow().lost.clone()
    }

    /// What Slurm said about the task when it ended without answering.
    pub fn ended(&self) -> Option<TaskInfo> {
        self.state.borrow().ended.clone()
    }

    /// The node that built the last index.
    pub fn node(&self) -> Option<Machine> {
        self.state.borrow().node.clone()
    }

    /// How many requests were answered from the journal or the task so far.
    pub fn requests(&self) -> usize {
        self.state.borrow().next
    }

    /// Ends the task (best effort; a task also ends on its idle timeout).
    pub fn close(&self) {
        if self.lost().is_none() {
            let _ = self.send(&TaskRequest::Exit, None);
        }
    }

    /// Sends request `request` (with the queries of a run) or replays it
    /// from the journal, and returns its reply.
    fn send(&self, request: &TaskRequest, queries: Option<&[&[f32]]>) -> Result<TaskReply, String> {
        let n = self.state.borrow().next;
        let result = self.exchange(n, request, queries);
        let mut state = self.state.borrow_mut();
        state.next += 1;
        match result {
            Ok(TaskReply::Failed {
                reason,
                stderr_tail,
            }) => {
                state.stderr_tail = stderr_tail;
                Err(reason)
            }
            Ok(reply) => Ok(reply),
            Err(Lost { reason, ended }) => {
                state.lost = Some(reason.clone());
                state.ended = ended.map(|info| *info);
                Err(reason)
            }
        }
    }

    fn exchange(
        &self,
        n: usize,
        request: &TaskRequest,
        queries: Option<&[&[f32]]>,
    ) -> Result<TaskReply, Lost> {
        let text = serde_json::to_vec(request).expect("requests serialize");
        let request_file = request_path(&self.dir, n);
        let reply_file = reply_path(&self.dir, n);
        if request_file.exists() {
            let written = std::fs::read(&request_file)
                .map_err(|e| Lost::new(format!("{}: {e}", request_file.display())))?;
            if written != text {
                return Err(Lost::new(format!(
                    "the journal in {} diverged at request {n}",
                    self.dir.display()
                )));
            }
        } else {
            if let Some(queries) = queries {
                let bytes: Vec<u8> = queries
                    .iter()
                    .flat_map(|q| q.iter().flat_map(|x| x.to_le_bytes()))
                    .collect();
                write_whole(&queries_path(&self.dir, n), &bytes).map_err(Lost::new)?;
            }
            write_whole(&request_file, &text).map_err(Lost::new)?;
        }
        let mut watched = Instant::now();
        loop {
            if reply_file.exists() {
                let bytes = read_bounded(&reply_file, MAX_REPLY_BYTES).map_err(Lost::new)?;
                return serde_json::from_slice(&bytes).map_err(|e| {
                    Lost::new(format!("invalid reply {}: {e}", reply_file.display()))
                });
            }
            if watched.elapsed() >= WATCH_INTERVAL {
                watched = Instant::now();
                if let Some(info) = self.task.query().filter(|info| !info.live()) {
                    // A reply written just before the task ended still counts.
                    if !reply_file.exists() {
                        return Err(Lost {
                            reason: info.ending(self.task),
                            ended: Some(Box::new(info)),
                        });
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// An attempt that can go no further.
struct Lost {
    reason: String,
    /// What Slurm said, when the task ended.
    ended: Option<Box<TaskInfo>>,
}

impl Lost {
    fn new(reason: String) -> Lost {
        Lost {
            reason,
            ended: None,
        }
    }
}

/// A worker on the node, seen through the mailbox.
struct RemoteSession<'a> {
    mailbox: &'a Mailbox,
    dim: usize,
}

impl Executor for Mailbox {
    fn start<'a>(
        &'a self,
        _job: &EvaluateJob,
        dim: usize,
        _capacity: usize,
    ) -> Result<(Box<dyn WorkerSession + 'a>, Built), String> {
        match self.send(&TaskRequest::Start, None)? {
            TaskReply::Built {
                seconds,
                reported_bytes,
                rss_bytes,
                node,
            } => {
                if !(seconds.is_finite() && seconds >= 0.0) {
                    return Err(format!(
                        "invalid reply from the task: build took {seconds}s"
                    ));
                }
                self.state.borrow_mut().node = Some(node);
                Ok((
                    Box::new(RemoteSession { mailbox: self, dim }),
                    Built {
                        seconds,
                        reported_bytes,
                        rss_bytes,
                    },
                ))
            }
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(reply: &TaskReply) -> String {
    let name = serde_json::to_value(reply)
        .ok()
        .and_then(|v| match v {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Object(o) => o.keys().next().cloned(),
            _ => None,
        })
        .unwrap_or_default();
    format!("protocol violation: the task replied `{name}` out of turn")
}

impl WorkerSession for RemoteSession<'_> {
    fn configure(&mut self, knobs: &ParamMap) -> Result<(), String> {
        match self
            .mailbox
            .send(&TaskRequest::Configure(knobs.clone()), None)?
        {
            TaskReply::Configured => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn run(&mut self, queries: &[&[f32]]) -> Result<Timed, String> {
        debug_assert!(queries.iter().all(|q| q.len() == self.dim));
        let n = queries.len();
        let request = TaskRequest::Run { queries: n };
        match self.mailbox.send(&request, Some(queries))? {
            TaskReply::Ran(timed) => {
                validate_ran(&timed, n, self.mailbox.k)
                    .map_err(|why| format!("invalid reply from the task: {why}"))?;
                Ok(timed)
            }
            other => Err(unexpected(&other)),
        }
    }

    fn finish(self: Box<Self>) -> Result<(), String> {
        match self.mailbox.send(&TaskRequest::Finish, None)? {
            TaskReply::Finished => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn stderr_tail(&self) -> String {
        self.mailbox.state.borrow().stderr_tail.clone()
    }
}

/// Checks a run's reply as the local measurer's figures would be: one
/// latency per query, k ids per query, finite non-negative times.
fn validate_ran(timed: &Timed, queries: usize, k: usize) -> Result<(), String> {
    if !(timed.seconds.is_finite() && timed.seconds > 0.0) {
        return Err(format!("run wall time {}s", timed.seconds));
    }
    if !(timed.cpu_seconds.is_finite() && timed.cpu_seconds >= 0.0) {
        return Err(format!("run CPU time {}s", timed.cpu_seconds));
    }
    if !(timed.cpu_window_seconds.is_finite() && timed.cpu_window_seconds >= timed.seconds) {
        return Err(format!(
            "CPU window {}s shorter than the run's {}s",
            timed.cpu_window_seconds, timed.seconds
        ));
    }
    if timed.ids.len() != queries * k {
        return Err(format!(
            "{} ids for {queries} queries of k = {k}",
            timed.ids.len()
        ));
    }
    if timed.latencies_us.len() != queries
        || timed
            .latencies_us
            .iter()
            .any(|l| !(l.is_finite() && *l >= 0.0))
    {
        return Err(format!(
            "{} latencies (each finite, non-negative) for {queries} queries",
            timed.latencies_us.len()
        ));
    }
    Ok(())
}

/// `host slurm-task <dir>`: serves the mailbox in `dir` on this node until
/// the coordinator sends `exit` or no request comes for [`IDLE_TIMEOUT`].
/// Requests that fail are answered with `failed`; only a broken mailbox
/// (an unreadable `task.json`, a base file that does not match) is an error.
pub fn serve(dir: &Path) -> Result<(), String> {
    let spec_file = dir.join("task.json");
    let spec: TaskSpec = serde_json::from_slice(&read_bounded(&spec_file, 1 << 20)?)
        .map_err(|e| format!("{}: {e}", spec_file.display()))?;
    let found = file_hash(&spec.job.base)
        .map_err(|e| format!("reading {}: {e}", spec.job.base.display()))?;
    if found != spec.base_hash {
        return Err(format!(
            "{} does not hold the coordinator's base vectors (blake3 {found}, expected {})",
            spec.job.base.display(),
            spec.base_hash
        ));
    }
    let limits = Limits {
        timeout: Duration::from_secs(spec.timeout_secs),
        memory_bytes: spec.memory_bytes,
        sandboxed: spec.sandboxed,
    };
    let mut job = spec.job.clone();
    // The coordinator's CPU numbers mean nothing here: pin to the last CPU
    // Slurm gave this task.
    if job.pin_cpu.is_some() {
        job.pin_cpu = crate::cpu_affinity::allowed_cpus().last().copied();
    }
    let scratch =
        super::scratch_root().map_err(|e| format!("creating a scratch directory: {e}"))?;
    let mut server = Server {
        spec: TaskSpec { job, ..spec },
        limits,
        scratch,
        node: Machine::detect(),
        worker: None,
    };
    // Only Slurm restarting this task (a requeue) starts it again on its
    // mailbox; the worker of the replies there is gone, so the task ends
    // and the coordinator resubmits the evaluation in a fresh attempt.
    if reply_path(dir, 0).exists() {
        return Err(format!(
            "{} was served before: Slurm restarted this task, whose worker is gone; \
             the coordinator resubmits the evaluation",
            dir.display()
        ));
    }
    let mut n = 0;
    loop {
        let reply = match wait_for_request(dir, n)? {
            TaskRequest::Exit => {
                write_reply(dir, n, &TaskReply::Exited)?;
                return Ok(());
            }
            TaskRequest::Run { queries } => server.run(queries, &queries_path(dir, n)),
            request => server.answer(request),
        };
        if matches!(reply, TaskReply::Failed { .. }) {
            server.worker = None;
        }
        write_reply(dir, n, &reply)?;
        n += 1;
    }
}

fn write_reply(dir: &Path, n: usize, reply: &TaskReply) -> Result<(), String> {
    let bytes = serde_json::to_vec(reply).map_err(|e| e.to_string())?;
    write_whole(&reply_path(dir, n), &bytes)
}

fn wait_for_request(dir: &Path, n: usize) -> Result<TaskRequest, String> {
    let path = request_path(dir, n);
    let until = Instant::now() + IDLE_TIMEOUT;
    while !path.exists() {
        if Instant::now() > until {
            return Err(format!(
                "no request {n} in {} for {}s",
                dir.display(),
                IDLE_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    serde_json::from_slice(&read_bounded(&path, 1 << 20)?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The task's side: the local measurer and the worker it drives.
struct Server {
    spec: TaskSpec,
    limits: Limits,
    scratch: tempfile::TempDir,
    node: Machine,
    worker: Option<(Session, tempfile::TempDir)>,
}

fn failed(reason: impl Into<String>, session: Option<&Session>) -> TaskReply {
    TaskReply::Failed {
        reason: reason.into(),
        stderr_tail: session.map(Session::stderr_tail).unwrap_or_default(),
    }
}

impl Server {
    /// Answers `start`, `configure` and `finish`.
    fn answer(&mut self, request: TaskRequest) -> TaskReply {
        let spec = &self.spec;
        match request {
            TaskRequest::Start => {
                // A worker left from before is ended first.
                self.worker = None;
                match start_session(
                    &spec.job,
                    &self.limits,
                    self.scratch.path(),
                    spec.dim,
                    spec.capacity,
                ) {
                    Ok((session, built, private)) => {
                        self.worker = Some((session, private));
                        TaskReply::Built {
                            seconds: built.seconds,
                            reported_bytes: built.reported_bytes,
                            rss_bytes: built.rss_bytes,
                            node: self.node.clone(),
                        }
                    }
                    Err(reason) => failed(reason, None),
                }
            }
            TaskRequest::Configure(knobs) => match self.worker.as_mut() {
                Some((session, _)) => match session.configure(&knobs) {
                    Ok(()) => TaskReply::Configured,
                    Err(reason) => failed(reason, Some(&*session)),
                },
                None => failed("protocol violation: configure before start", None),
            },
            TaskRequest::Finish => match self.worker.take() {
                Some((session, _private)) => match session.finish() {
                    Ok(()) => TaskReply::Finished,
                    Err(reason) => failed(reason, None),
                },
                None => failed("protocol violation: finish before start", None),
            },
            TaskRequest::Run { .. } | TaskRequest::Exit => {
                unreachable!("answered by serve")
            }
        }
    }

    /// One timed run over the `queries` vectors in `file`.
    fn run(&mut self, queries: usize, file: &Path) -> TaskReply {
        let (dim, capacity) = (self.spec.dim, self.spec.capacity);
        let Some((session, _)) = self.worker.as_mut() else {
            return failed("protocol violation: run before start", None);
        };
        if queries == 0 || queries > capacity {
            return failed(
                format!("protocol violation: a run of {queries} queries (capacity {capacity})"),
                None,
            );
        }
        let expected = queries * dim * 4;
        let bytes = match read_bounded(file, expected as u64) {
            Ok(bytes) if bytes.len() == expected => bytes,
            Ok(bytes) => {
                return failed(
                    format!(
                        "{} holds {} bytes, not {queries} queries of {dim} floats",
                        file.display(),
                        bytes.len()
                    ),
                    None,
                );
            }
            Err(reason) => return failed(reason, None),
        };
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let rows: Vec<&[f32]> = floats.chunks_exact(dim).collect();
        match session.run(&rows) {
            Ok(timed) => TaskReply::Ran(timed),
            Err(reason) => failed(reason, Some(&*session)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(ids: usize, latencies: usize) -> Timed {
        Timed {
            seconds: 0.01,
            cpu_seconds: 0.01,
            cpu_window_seconds: 0.012,
            latencies_us: vec![3.0; latencies],
            ids: vec![0; ids],
            distance_computations: None,
        }
    }

    #[test]
    fn replies_of_the_wrong_shape_are_refused() {
        assert!(validate_ran(&timed(20, 2), 2, 10).is_ok());
        assert!(
            validate_ran(&timed(19, 2), 2, 10)
                .unwrap_err()
                .contains("19 ids")
        );
        assert!(
            validate_ran(&timed(20, 1), 2, 10)
                .unwrap_err()
                .contains("1 latencies")
        );
        let mut nan = timed(20, 2);
        nan.seconds = f64::NAN;
        assert!(validate_ran(&nan, 2, 10).is_err());
        let mut negative = timed(20, 2);
        negative.latencies_us[1] = -1.0;
        assert!(validate_ran(&negative, 2, 10).is_err());
    }

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let request = TaskRequest::Run { queries: 7 };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<TaskRequest>(&text).unwrap(), request);
        assert!(serde_json::from_str::<TaskReply>(r#"{"configured":1}"#).is_err());
        assert!(serde_json::from_str::<TaskReply>(r#"{"ran":{"seconds":1,"extra":2}}"#).is_err());
    }
}
