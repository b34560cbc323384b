//! The trusted measurer: starts a worker (sandboxed, see [`super::sandbox`]),
//! talks to it through the [`crate::protocol`], and is the only code that
//! reads a clock or a CPU-time counter for a figure.
//!
//! * [`run_job`] runs a one-shot job (the conformance check, reading the
//!   declared parameters) and collects its items.
//! * [`Session`] drives an evaluation: the build (timed from the `Build`
//!   request to the `Built` answer), then sweep points and timed runs whose
//!   queries it streams through the [`Exchange`] only once the run's clock
//!   has started, and whose end it sees there.
//!
//! The measurer holds no ground truth: it returns ids and timings, so it
//! can run next to the worker on another machine than the coordinator.
//! Every line from the worker is bounded and parsed into the protocol's
//! types; anything else fails the job with a named reason.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::sandbox::{self, Exit, WorkerChild, WorkerCommand};
use crate::cpu_affinity::AvoidCpu;
use crate::protocol::exchange::Exchange;
use crate::protocol::{
    EvaluateItem, EvaluateJob, Event, Job, MAX_LINE_BYTES, PythonRuntime, RanReport, Request,
};
use crate::variant::ParamMap;

/// Limits applied to one worker.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock limit of the whole worker; it is killed after it.
    pub timeout: Duration,
    /// Address-space cap (RLIMIT_AS), in bytes.
    pub memory_bytes: Option<u64>,
    /// Run the worker inside the sandbox.
    pub sandboxed: bool,
}

/// How a one-shot job ended.
#[derive(Debug)]
pub enum Ending {
    /// Exited 0 after a final event.
    Finished,
    /// Anything else, with a one-line reason.
    Failed(String),
}

/// What a one-shot job produced.
#[derive(Debug)]
pub struct WorkerRun<T> {
    /// Every item it reported, in order (including any before a crash).
    pub items: Vec<T>,
    /// How it ended.
    pub ending: Ending,
    /// The last lines of its stderr.
    pub stderr_tail: String,
}

/// Bytes of a worker's stderr kept for the failure record.
const STDERR_KEEP: usize = 64 << 10;

/// A running worker, seen from the trusted side.
struct Worker {
    child: WorkerChild,
    stdin: Option<Box<dyn Write + Send>>,
    lines: Receiver<Result<String, String>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    deadline: Instant,
    timeout: Duration,
    memory_bytes: Option<u64>,
    /// A line read while a timed run was waited on, not yet consumed.
    held: Option<String>,
}

/// What the worker did while a timed run was waited on.
enum RunPoll {
    /// Nothing yet.
    Quiet,
    /// It sent a line (held for the next read).
    Spoke,
    /// It failed, died or ran out of time: the reason.
    Stop(String),
}

/// The trusted side's view of why a worker stopped.
fn classify(
    exit: Option<&Exit>,
    timed_out: bool,
    limits: (Duration, Option<u64>),
    stderr: &str,
) -> String {
    let (timeout, memory) = limits;
    if timed_out {
        return format!("timeout after {}s", timeout.as_secs());
    }
    let cap = memory
        .map(|b| format!(" (cap {} MiB)", b >> 20))
        .unwrap_or_default();
    let oom = stderr.contains("memory allocation of") || stderr.contains("std::bad_alloc");
    // A worker in the sandbox reports a signal as 128 + its number (the
    // PID namespace's first process cannot be killed by most signals).
    let signal = match exit {
        Some(Exit::Signal(signal)) => Some(*signal),
        Some(Exit::Code(code @ 129..=192)) => Some(code - 128),
        _ => None,
    };
    if let Some(signal) = signal {
        return if oom {
            format!("out of memory{cap}")
        } else if signal == libc::SIGKILL {
            format!("killed by SIGKILL (the kernel's OOM killer?){cap}")
        } else {
            format!("crash: {} (signal {signal})", signal_name(signal))
        };
    }
    match exit {
        Some(Exit::Code(_)) if oom => format!("out of memory{cap}"),
        Some(Exit::Code(0)) => "worker exited without a result".into(),
        Some(Exit::Code(code)) => format!("worker exited with code {code}"),
        Some(Exit::Refused(reason)) => format!("the sandbox refused the worker: {reason}"),
        Some(Exit::Signal(_)) | None => "worker stopped answering".into(),
    }
}

/// The conventional name of a signal.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        _ => "signal",
    }
}

/// Forwards the worker's stdout as bounded lines.
fn read_lines(stdout: Box<dyn Read + Send>) -> Receiver<Result<String, String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = (MAX_LINE_BYTES + 1) as u64;
            match (&mut reader).take(limit).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) if !buf.ends_with(b"\n") && buf.len() > MAX_LINE_BYTES => {
                    let _ = tx.send(Err(format!(
                        "message too long (over {MAX_LINE_BYTES} bytes)"
                    )));
                    return;
                }
                Ok(_) => {
                    let line = String::from_utf8(std::mem::take(&mut buf))
                        .map_err(|_| "message is not UTF-8".to_owned());
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Keeps the last [`STDERR_KEEP`] bytes of the worker's stderr.
fn keep_tail(mut stderr: Box<dyn Read + Send>) -> Arc<Mutex<Vec<u8>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&kept);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = stderr.read(&mut chunk) {
            let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > 2 * STDERR_KEEP {
                let cut = kept.len() - STDERR_KEEP;
                kept.drain(..cut);
            }
        }
    });
    kept
}

impl Worker {
    fn start(job: &Job, readable: Vec<PathBuf>, scratch: &Path, limits: &Limits) -> Result<Worker> {
        // Every worker runs this host binary as `host worker`.
        let exe = std::env::current_exe()?;
        let mut readable = readable;
        readable.push(exe.clone());
        let python = job.pipeline().python.as_ref();
        readable.extend(python.map(PythonRuntime::readable).unwrap_or_default());
        let command = WorkerCommand {
            readable,
            env: python.map(PythonRuntime::env).unwrap_or_default(),
            scratch: scratch.to_path_buf(),
            memory_bytes: limits.memory_bytes,
            sandboxed: limits.sandboxed,
        };
        let mut child = sandbox::spawn(&command, &exe, &["worker".to_owned()])?;
        let lines = read_lines(child.stdout.take().expect("piped"));
        let stderr = keep_tail(child.stderr.take().expect("piped"));
        let stdin = child.stdin.take();
        let mut worker = Worker {
            child,
            stdin,
            lines,
            stderr,
            deadline: Instant::now() + limits.timeout,
            timeout: limits.timeout,
            memory_bytes: limits.memory_bytes,
            held: None,
        };
        // A worker that died at once is classified when its first event is awaited.
        let _ = worker.send(job);
        Ok(worker)
    }

    fn send<R: Serialize>(&mut self, message: &R) -> Result<(), String> {
        let mut line = serde_json::to_string(message).map_err(|e| e.to_string())?;
        line.push('\n');
        let pipe = self.stdin.as_mut().ok_or("worker stdin closed")?;
        pipe.write_all(line.as_bytes())
            .and_then(|()| pipe.flush())
            .map_err(|e| format!("writing to the worker: {e}"))
    }

    fn stderr_text(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }

    /// Why the worker can no longer be used: kills it and classifies.
    fn failure(&mut self, timed_out: bool) -> String {
        // A worker that died on its own gets a moment to be reaped with its
        // real status; one that hangs or timed out is killed.
        let settle = Instant::now() + Duration::from_secs(if timed_out { 0 } else { 2 });
        let exit = loop {
            if let Some(exit) = self.child.try_wait() {
                break exit;
            }
            if Instant::now() >= settle {
                self.child.kill();
                break self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Let the stderr reader catch up with the last words.
        std::thread::sleep(Duration::from_millis(20));
        classify(
            Some(&exit),
            timed_out,
            (self.timeout, self.memory_bytes),
            &self.stderr_text(),
        )
    }

    /// The next event, waiting until the deadline.
    fn next<T: DeserializeOwned>(&mut self) -> Result<Event<T>, String> {
        if let Some(line) = self.held.take() {
            return self.parse(&line);
        }
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(Ok(line)) => return self.parse(&line),
                Ok(Err(reason)) => {
                    self.child.kill();
                    return Err(format!("invalid message from the worker: {reason}"));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.failure(false)),
                Err(RecvTimeoutError::Timeout) if left.is_zero() => return Err(self.failure(true)),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// One message line, parsed; a malformed one kills the worker.
    fn parse<T: DeserializeOwned>(&mut self, line: &str) -> Result<Event<T>, String> {
        serde_json::from_str(line.trim_end()).map_err(|e| {
            self.child.kill();
            format!("malformed message from the worker: {e}")
        })
    }

    /// A non-blocking look at the worker while the exchange is being
    /// waited on. A line that is not a failure is held for [`Self::next`]:
    /// the caller decides whether it came too early.
    fn poll_during_run(&mut self) -> RunPoll {
        if Instant::now() >= self.deadline {
            return RunPoll::Stop(self.failure(true));
        }
        match self.lines.try_recv() {
            Ok(Ok(line)) => match serde_json::from_str::<Event<EvaluateItem>>(&line) {
                Ok(Event::Failed { reason }) => {
                    self.child.kill();
                    RunPoll::Stop(reason)
                }
                _ => {
                    self.held = Some(line);
                    RunPoll::Spoke
                }
            },
            Ok(Err(reason)) => {
                self.child.kill();
                RunPoll::Stop(format!("invalid message from the worker: {reason}"))
            }
            Err(TryRecvError::Disconnected) => RunPoll::Stop(self.failure(false)),
            Err(TryRecvError::Empty) => RunPoll::Quiet,
        }
    }

    /// Waits for a clean exit after `Done`/`Finish`.
    fn close(&mut self) -> Option<String> {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(exit) = self.child.try_wait() {
                return match exit {
                    Exit::Code(0) => None,
                    other => Some(classify(
                        Some(&other),
                        false,
                        (self.timeout, self.memory_bytes),
                        &self.stderr_text(),
                    )),
                };
            }
            if Instant::now() > until {
                self.child.kill();
                return Some("worker did not exit after finishing".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stderr_tail(&self) -> String {
        let text = self.stderr_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.child.kill();
        let _ = self.child.try_wait();
    }
}

/// Runs a one-shot `job` in a worker that may read `readable`; `on_item`
/// sees each item as it arrives. The timeout applies to each item in turn
/// (each check of the conformance suite has its own).
pub fn run_job<T: DeserializeOwned>(
    job: &Job,
    readable: Vec<PathBuf>,
    limits: &Limits,
    scratch: &Path,
    mut on_item: impl FnMut(&T),
) -> Result<WorkerRun<T>> {
    let mut worker = Worker::start(job, readable, scratch, limits)?;
    let mut items = Vec::new();
    let ending = loop {
        match worker.next::<T>() {
            Ok(Event::Item(item)) => {
                // Each item (a check of the suite) gets the full timeout.
                worker.deadline = Instant::now() + worker.timeout;
                on_item(&item);
                items.push(item);
            }
            Ok(Event::Done) => {
                break match worker.close() {
                    None => Ending::Finished,
                    Some(reason) => Ending::Failed(reason),
                };
            }
            Ok(Event::Failed { reason }) => {
                worker.close();
                break Ending::Failed(bounded(reason, 2000));
            }
            Err(reason) => break Ending::Failed(reason),
        }
    };
    Ok(WorkerRun {
        items,
        ending,
        stderr_tail: worker.stderr_tail(),
    })
}

/// Text from the worker, cut to at most `max` bytes.
pub fn bounded(mut reason: String, max: usize) -> String {
    if reason.len() > max {
        let mut cut = max;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    reason
}

/// The build as the measurer saw it.
#[derive(Clone, Debug)]
pub struct Built {
    /// Wall time from the `Build` request to the `Built` answer (construction
    /// and the search and refinement prepare), seconds.
    pub seconds: f64,
    /// Memory the slots claim (bounded by the machine's memory).
    pub reported_bytes: u64,
    /// Growth of the worker's resident memory over the build.
    pub rss_bytes: u64,
}

/// One timed run as the measurer saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timed {
    /// Wall time from the first query handed over to the last answer seen.
    pub seconds: f64,
    /// CPU time of all the worker's processes over the run, seconds.
    pub cpu_seconds: f64,
    /// Wall time over which `cpu_seconds` was counted: from just before
    /// the first CPU reading to just after the last, so it encloses every
    /// moment the worker could spend CPU on the run (it is told to start
    /// only after the first reading). Compare CPU with this, not with
    /// `seconds`.
    pub cpu_window_seconds: f64,
    /// Per-query latency as the spacing of answers the measurer saw, µs.
    pub latencies_us: Vec<f64>,
    /// k ids per query, in the order handed over ([`crate::protocol::NO_ID`]
    /// where fewer than k were returned).
    pub ids: Vec<u32>,
    /// Distance computations the search slot reports for the run.
    pub distance_computations: Option<u64>,
}

/// Queries handed over per publication of the exchange's counter.
const CHUNK: usize = 16;

/// An evaluation worker driven by the measurer.
pub struct Session {
    worker: Worker,
    exchange: Exchange,
    threads: usize,
    /// The CPU the worker's search thread is pinned to, which the thread
    /// timing a run keeps off.
    worker_cpu: Option<usize>,
}

impl Session {
    /// Starts a worker for `job` and waits until it has loaded its
    /// libraries and base vectors. Runs may hold up to `capacity` queries
    /// of `dim` floats.
    pub fn start(
        job: &EvaluateJob,
        limits: &Limits,
        scratch: &Path,
        dim: usize,
        capacity: usize,
    ) -> Result<Session, String> {
        let exchange = Exchange::create(&job.exchange, dim, job.k, capacity)
            .map_err(|e| format!("creating {}: {e}", job.exchange.display()))?;
        let mut readable = job.pipeline.libraries();
        readable.push(job.base.clone());
        let worker = Worker::start(&Job::Evaluate(job.clone()), readable, scratch, limits)
            .map_err(|e| format!("{e:#}"))?;
        let mut session = Session {
            worker,
            exchange,
            threads: job.batch_threads.unwrap_or(1).max(1),
            worker_cpu: job.pin_cpu,
        };
        match session.worker.next::<EvaluateItem>()? {
            Event::Item(EvaluateItem::Loaded) => Ok(session),
            other => Err(session.unexpected(other)),
        }
    }

    fn unexpected(&mut self, event: Event<EvaluateItem>) -> String {
        self.worker.child.kill();
        match event {
            Event::Failed { reason } => bounded(reason, 2000),
            other => format!("protocol violation: unexpected message {other:?}"),
        }
    }

    fn expect(&mut self, wanted: fn(&EvaluateItem) -> bool) -> Result<EvaluateItem, String> {
        match self.worker.next::<EvaluateItem>()? {
            Event::Item(item) if wanted(&item) => Ok(item),
            other => Err(self.unexpected(other)),
        }
    }

    /// Builds the index; the clock runs from the request to the answer.
    pub fn build(&mut self) -> Result<Built, String> {
        let tree = process_tree(self.worker.child.pid());
        let rss_before = resident_bytes(&tree);
        let start = Instant::now();
        self.worker.send(&Request::Build)?;
        let item = self.expect(|i| matches!(i, EvaluateItem::Built(_)))?;
        let seconds = start.elapsed().as_secs_f64();
        let EvaluateItem::Built(report) = item else {
            unreachable!("checked by expect")
        };
        let rss_bytes =
            resident_bytes(&process_tree(self.worker.child.pid())).saturating_sub(rss_before);
        let machine = crate::cli::physical_memory();
        if report.reported_bytes > machine {
            self.worker.child.kill();
            return Err(format!(
                "invalid report: the slots claim {} bytes of index memory, more than the \
                 machine's {machine}",
                report.reported_bytes
            ));
        }
        Ok(Built {
            seconds,
            reported_bytes: report.reported_bytes,
            rss_bytes,
        })
    }

    /// Sets the knobs of the next sweep point.
    pub fn configure(&mut self, knobs: &ParamMap) -> Result<(), String> {
        self.worker.send(&Request::Configure(knobs.clone()))?;
        self.expect(|i| matches!(i, EvaluateItem::Configured))
            .map(drop)
    }

    /// One run over `queries`, timed by this process.
    pub fn run(&mut self, queries: &[&[f32]]) -> Result<Timed, String> {
        let n = queries.len();
        assert!(
            n <= self.exchange.capacity(),
            "run larger than the exchange"
        );
        let _off_worker_cpu = self.worker_cpu.map(AvoidCpu::new);
        self.exchange.reset(n);
        // The worker idles until told to run, so reading its CPU time
        // first keeps all of the run's CPU inside the window.
        let tree = process_tree(self.worker.child.pid());
        let window = Instant::now();
        let cpu_before = cpu_seconds(&tree);
        self.worker.send(&Request::Run { queries: n })?;
        let start = Instant::now();
        for (chunk_start, chunk) in (0..n).step_by(CHUNK).zip(queries.chunks(CHUNK)) {
            for (i, q) in chunk.iter().enumerate() {
                self.exchange.write_query(chunk_start + i, q);
            }
            self.exchange.release(chunk_start + chunk.len());
        }
        let threads = self.threads;
        let (exchange, worker) = (&self.exchange, &mut self.worker);
        let waited = await_answers(
            n,
            threads,
            start,
            || exchange.answered(),
            || {
                let poll = worker.poll_during_run();
                if threads > 1 {
                    // Leave the CPUs to the worker's threads.
                    std::thread::sleep(Duration::from_micros(20));
                }
                poll
            },
        );
        let (seconds, latencies_us) = match waited {
            Ok(answered) => answered,
            Err(reason) => {
                self.worker.child.kill();
                return Err(reason);
            }
        };
        let ids = self.exchange.read_ids(n);
        let cpu_after = cpu_seconds(&process_tree(self.worker.child.pid()));
        let cpu_window_seconds = window.elapsed().as_secs_f64();
        let report = match self.expect(|i| matches!(i, EvaluateItem::Ran(_)))? {
            EvaluateItem::Ran(report) => report,
            _ => unreachable!("checked by expect"),
        };
        let RanReport {
            distance_computations,
        } = report;
        Ok(Timed {
            seconds,
            cpu_seconds: (cpu_after - cpu_before).max(0.0),
            cpu_window_seconds,
            latencies_us,
            ids,
            distance_computations,
        })
    }

    /// Tells the worker to exit and waits for it.
    pub fn finish(mut self) -> Result<(), String> {
        self.worker.send(&Request::Finish)?;
        match self.worker.next::<EvaluateItem>()? {
            Event::Done => self.worker.close().map_or(Ok(()), Err),
            other => Err(self.unexpected(other)),
        }
    }

    /// The last lines of the worker's stderr.
    pub fn stderr_tail(&self) -> String {
        self.worker.stderr_tail()
    }
}

/// Spins until `answered()` reaches `n`, polling the worker every few
/// thousand spins. Returns the seconds since `start` and one latency per
/// query (each batch of answers shares the time since the previous one,
/// times `threads`). A line from the worker is a protocol violation only
/// while answers are still missing: the worker marks its last answer and
/// reports at once, so the report may be seen before the last count.
fn await_answers(
    n: usize,
    threads: usize,
    start: Instant,
    mut answered: impl FnMut() -> u64,
    mut poll: impl FnMut() -> RunPoll,
) -> Result<(f64, Vec<f64>), String> {
    let mut latencies_us = Vec::with_capacity(n);
    let (mut seen, mut seen_at) = (0usize, start);
    let mut spins = 0u32;
    loop {
        let count = answered();
        if count > n as u64 {
            return Err(format!(
                "protocol violation: {count} answers claimed for {n} queries"
            ));
        }
        let count = count as usize;
        if count > seen {
            let now = Instant::now();
            let each = (now - seen_at).as_secs_f64() * 1e6 / (count - seen) as f64;
            latencies_us.extend(std::iter::repeat_n(each * threads as f64, count - seen));
            (seen, seen_at) = (count, now);
            if seen == n {
                return Ok(((now - start).as_secs_f64(), latencies_us));
            }
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(4096) {
            match poll() {
                RunPoll::Quiet => {}
                RunPoll::Stop(reason) => return Err(reason),
                RunPoll::Spoke if answered() >= n as u64 => {}
                RunPoll::Spoke => {
                    return Err("protocol violation: the worker spoke during a timed run".into());
                }
            }
        }
        std::hint::spin_loop();
    }
}

/// `root` and every process below it (from `/proc/*/stat`).
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name may hold spaces and parentheses: fields
            // resume after its last ')'.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// CPU time consumed so far by the processes `pids` (all their threads,
/// live and ended), seconds.
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|&pid| {
            let mut clock: libc::clockid_t = 0;
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: both out-pointers are valid for writes; a process that
            // ended meanwhile makes either call fail, and it is skipped.
            let ok = unsafe {
                libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
                    && libc::clock_gettime(clock, &mut now) == 0
            };
            ok.then_some(now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9)
        })
        .sum()
}

/// Resident memory of the processes `pids`, bytes.
fn resident_bytes(pids: &[u32]) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    pids.iter()
        .filter_map(|pid| {
            let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
            statm.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|pages| pages.saturating_mul(page))
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_codes_are_named() {
        let limits = (Duration::from_secs(5), Some(1 << 30));
        assert_eq!(
            classify(Some(&Exit::Signal(libc::SIGSEGV)), false, limits, ""),
            "crash: SIGSEGV (signal 11)"
        );
        assert_eq!(
            classify(Some(&Exit::Code(128 + libc::SIGSEGV)), false, limits, ""),
            "crash: SIGSEGV (signal 11)"
        );
        assert_eq!(
            classify(
                Some(&Exit::Code(128 + 6)),
                false,
                limits,
                "memory allocation of 5 bytes failed"
            ),
            "out of memory (cap 1024 MiB)"
        );
        assert_eq!(classify(None, true, limits, ""), "timeout after 5s");
        assert_eq!(
            classify(Some(&Exit::Code(3)), false, limits, ""),
            "worker exited with code 3"
        );
    }

    /// Answers that reach `n` only at the spin where the worker is polled.
    fn last_answer_at_poll(n: u64) -> (impl FnMut() -> u64, impl FnMut() -> RunPoll) {
        let count = std::rc::Rc::new(std::cell::Cell::new(n - 1));
        let polled = std::rc::Rc::clone(&count);
        let answered = move || count.get();
        let poll = move || {
            polled.set(n);
            RunPoll::Spoke
        };
        (answered, poll)
    }

    #[test]
    fn a_report_sent_with_the_last_answer_ends_the_run() {
        let (answered, poll) = last_answer_at_poll(8);
        let (_, latencies) = await_answers(8, 1, Instant::now(), answered, poll).unwrap();
        assert_eq!(latencies.len(), 8);
    }

    #[test]
    fn a_line_while_answers_are_missing_is_a_violation() {
        let error = await_answers(8, 1, Instant::now(), || 7, || RunPoll::Spoke).unwrap_err();
        assert!(error.contains("spoke during a timed run"), "{error}");
        let error = await_answers(8, 1, Instant::now(), || 9, || RunPoll::Quiet).unwrap_err();
        assert!(error.contains("9 answers claimed"), "{error}");
        let error = await_answers(8, 1, Instant::now(), || 0, || RunPoll::Stop("gone".into()));
        assert_eq!(error.unwrap_err(), "gone");
    }

    #[test]
    fn the_process_tree_holds_this_process_and_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let tree = process_tree(me);
        assert!(tree.contains(&me) && tree.contains(&child.id()));
        assert!(cpu_seconds(&[me]) > 0.0);
        assert!(resident_bytes(&[me]) > 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
