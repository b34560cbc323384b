//! Runs worker processes (the host binary re-executed as `host worker`)
//! with a wall timeout, a memory cap and optional CPU pinning, and turns how
//! they ended into a recorded outcome.
//!
//! Protocol: the coordinator writes the job as JSON to a file; the worker
//! appends one JSON event per line to an events file (flushed per line) and
//! ends with a `done` or `failed` event. Because events are read from a
//! file, not stdout, stray prints from variant code cannot corrupt them, and
//! every event written before a crash survives it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Limits applied to one worker process.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock limit; the worker is killed after it.
    pub timeout: Duration,
    /// Address-space cap (RLIMIT_AS), in bytes.
    pub memory_bytes: Option<u64>,
    /// Pin the worker to this CPU.
    pub cpu: Option<usize>,
}

/// How a worker ended.
#[derive(Debug)]
pub enum Ending {
    /// Exited 0 after a final event.
    Finished,
    /// Anything else, with a one-line reason.
    Failed(String),
}

/// What a worker produced.
#[derive(Debug)]
pub struct WorkerRun<T> {
    /// Every item it reported, in order (including any before a crash).
    pub items: Vec<T>,
    /// How it ended.
    pub ending: Ending,
    /// The last lines of its stderr.
    pub stderr_tail: String,
    /// Wall time.
    pub elapsed: Duration,
}

/// One line of a worker's events file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event<T> {
    /// A result the job produced (a check row, a sweep point, ...).
    Item(T),
    /// The job finished normally; always the last event.
    Done,
    /// The job stopped on an error it caught (e.g. an error status).
    Failed {
        /// One-line reason.
        reason: String,
    },
}

impl<T> Event<T> {
    fn failure(&self) -> Option<&str> {
        match self {
            Event::Failed { reason } => Some(reason),
            _ => None,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, Event::Done)
    }
}

/// Appends events to the events file, one flushed line each (worker side).
pub struct EventWriter {
    file: File,
}

impl EventWriter {
    /// Opens the events file for appending.
    pub fn open(path: &Path) -> Result<EventWriter> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening events file {}", path.display()))?;
        Ok(EventWriter { file })
    }

    /// Writes one event as a line and flushes it.
    pub fn emit<T: Serialize>(&mut self, event: &Event<T>) {
        let mut line = serde_json::to_string(event).expect("events serialise");
        line.push('\n');
        // A failed write cannot be reported anywhere better than stderr.
        if let Err(e) = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
        {
            eprintln!("annvil worker: cannot write event: {e}");
        }
    }
}

/// Runs `host worker` on `job`. `on_item` sees each item as it arrives and
/// may answer with a line for the worker's stdin (the worker asks, e.g., for
/// more sweep points by reporting an item and then reading a line).
pub fn run_worker<J: Serialize, T: DeserializeOwned>(
    job: &J,
    limits: &Limits,
    scratch: &Path,
    mut on_item: impl FnMut(&T) -> Option<String>,
) -> Result<WorkerRun<T>> {
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let job_file = tempfile::Builder::new()
        .prefix("job-")
        .suffix(".json")
        .tempfile_in(scratch)?;
    serde_json::to_writer(job_file.as_file(), job)?;
    let events_path = job_file.path().with_extension("events");
    File::create(&events_path)?;
    let stderr_file = tempfile::tempfile_in(scratch)?;
    // /proc/self/exe names the running image even when the file on disk was
    // replaced (e.g. rebuilt) since the coordinator started.
    let exe = if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().context("locating the host binary")?
    };
    let mut command = Command::new(exe);
    command
        .arg("worker")
        .arg("--job")
        .arg(job_file.path())
        .arg("--events")
        .arg(&events_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr_file.try_clone()?);
    let memory = limits.memory_bytes;
    let cpu = limits.cpu;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, setrlimit, sched_setaffinity).
    unsafe {
        command.pre_exec(move || {
            // Die with the coordinator: a killed host leaves no orphan worker.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(bytes) = memory {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = command.spawn().context("starting a worker process")?;
    let mut stdin = child.stdin.take();
    let mut reader = EventReader::new(&events_path);
    let mut items = Vec::new();
    let mut last: Option<Event<T>> = None;
    let mut timed_out = false;
    let mut drain = |reader: &mut EventReader, items: &mut Vec<T>, last: &mut Option<Event<T>>| {
        for event in reader.poll::<Event<T>>() {
            match event {
                Event::Item(item) => {
                    if let (Some(line), Some(pipe)) = (on_item(&item), stdin.as_mut()) {
                        // A worker that died meanwhile is classified below.
                        let _ = writeln!(pipe, "{line}").and_then(|()| pipe.flush());
                    }
                    items.push(item);
                }
                other => *last = Some(other),
            }
        }
    };
    let status = loop {
        drain(&mut reader, &mut items, &mut last);
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > limits.timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drain(&mut reader, &mut items, &mut last);
    let stderr = read_all(stderr_file);
    let _ = std::fs::remove_file(&events_path);
    let ending = classify(last.as_ref(), status, timed_out, limits, &stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let stderr_tail = lines[lines.len().saturating_sub(40)..].join("\n");
    Ok(WorkerRun {
        items,
        ending,
        stderr_tail,
        elapsed: start.elapsed(),
    })
}

fn classify<T>(
    last: Option<&Event<T>>,
    status: std::process::ExitStatus,
    timed_out: bool,
    limits: &Limits,
    stderr: &str,
) -> Ending {
    if timed_out {
        return Ending::Failed(format!("timeout after {}s", limits.timeout.as_secs()));
    }
    if let Some(reason) = last.and_then(Event::failure) {
        return Ending::Failed(reason.to_owned());
    }
    let cap = limits
        .memory_bytes
        .map(|b| format!(" (cap {} MiB)", b >> 20))
        .unwrap_or_default();
    let oom = stderr.contains("memory allocation of") || stderr.contains("std::bad_alloc");
    if let Some(signal) = status.signal() {
        return Ending::Failed(match signal {
            libc::SIGABRT if oom => format!("out of memory{cap}"),
            libc::SIGKILL => format!("killed by SIGKILL (the kernel's OOM killer?){cap}"),
            _ => format!("crash: {} (signal {signal})", signal_name(signal)),
        });
    }
    if !status.success() {
        if oom {
            return Ending::Failed(format!("out of memory{cap}"));
        }
        return Ending::Failed(format!("worker exited with {status}"));
    }
    if last.is_some_and(Event::is_done) {
        Ending::Finished
    } else {
        Ending::Failed("worker exited without a result".into())
    }
}

/// The conventional name of a signal.
pub fn signal_name(signal: i32) -> &'static str {
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

fn read_all(mut file: File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads complete lines appended to a file since the last poll.
struct EventReader {
    path: PathBuf,
    offset: u64,
    pending: String,
}

impl EventReader {
    fn new(path: &Path) -> EventReader {
        EventReader {
            path: path.to_path_buf(),
            offset: 0,
            pending: String::new(),
        }
    }

    fn poll<E: DeserializeOwned>(&mut self) -> Vec<E> {
        let Ok(mut file) = File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut reader = BufReader::new(&mut file);
        let mut events = Vec::new();
        let mut line = String::new();
        while let Ok(n) = reader.read_line(&mut line) {
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            if !line.ends_with('\n') {
                // A partial line: keep it until the rest arrives.
                self.pending.push_str(&line);
                line.clear();
                continue;
            }
            let full = std::mem::take(&mut self.pending) + &line;
            if let Ok(event) = serde_json::from_str(full.trim_end()) {
                events.push(event);
            }
            line.clear();
        }
        events
    }
}
