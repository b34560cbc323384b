//! Starts the processes that run variant code, inside a sandbox.
//!
//! The sandbox is [hakoniwa](https://docs.rs/hakoniwa) (a maintained Rust
//! library over Linux namespaces, bind mounts and rlimits; no setuid helper
//! and nothing to install). Each worker gets:
//! * new mount, PID, network (no interface but a down loopback), IPC, UTS
//!   and user namespaces; the worker is the first process of its PID
//!   namespace, so everything it forks dies with it and it sees no process
//!   of the host, the coordinator included;
//! * a root of its own: a tmpfs, with the system directories (`/usr`,
//!   `/lib*`, `/bin`, `/sbin`, the dynamic linker's files under `/etc`)
//!   read-only, `/dev` with the usual null/zero/random nodes, a private
//!   `/tmp`, the files it needs (the host binary, the variant's libraries,
//!   the base vectors) read-only at their own paths, and one scratch
//!   directory writable. The results, the ground truth, the queries, other
//!   evaluations, the user's home and the checkout are not there at all;
//! * an environment cleared to [`ENV_ALLOWLIST`];
//! * an address-space limit (RLIMIT_AS), and death with its parent.
//!
//! The worker drops every capability before it loads variant code
//! ([`crate::worker::harden`]). Where the kernel refuses namespaces,
//! [`availability`] says why and workers run unsandboxed (see README).

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use hakoniwa::{Container, Namespace, Rlimit};

/// Environment variables a worker may inherit; everything else (keys,
/// tokens, the user's settings) is cleared.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    // Needed for correct results of older OpenBLAS builds on some CPUs.
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
];

/// What to start and what it may see.
pub struct WorkerCommand {
    /// Files and directories the worker reads (mounted read-only at their
    /// own paths).
    pub readable: Vec<PathBuf>,
    /// The one writable directory (also the worker's HOME and TMPDIR).
    pub scratch: PathBuf,
    /// Environment variables the coordinator sets for this worker, on top
    /// of [`ENV_ALLOWLIST`].
    pub env: Vec<(String, String)>,
    /// Address-space cap, in bytes.
    pub memory_bytes: Option<u64>,
    /// Run inside the sandbox.
    pub sandboxed: bool,
}

/// How a worker process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// The sandbox could not start it.
    Refused(String),
}

enum Process {
    Sandboxed(Box<hakoniwa::Child>),
    Plain(std::process::Child),
}

/// A running worker and its three standard streams.
pub struct WorkerChild {
    process: Process,
    /// The worker's stdin (jobs and requests).
    pub stdin: Option<Box<dyn Write + Send>>,
    /// The worker's stdout (its events).
    pub stdout: Option<Box<dyn Read + Send>>,
    /// The worker's stderr (diagnostics, variant prints).
    pub stderr: Option<Box<dyn Read + Send>>,
}

/// Whether this machine can sandbox workers; probed once per process.
pub fn availability() -> &'static Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let command = WorkerCommand {
            readable: Vec::new(),
            env: Vec::new(),
            scratch: scratch.path().to_path_buf(),
            memory_bytes: None,
            sandboxed: true,
        };
        let true_bin = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("no `true` binary to probe with")?;
        let mut child = spawn(&command, Path::new(true_bin), &[]).map_err(|e| format!("{e:#}"))?;
        drop(child.stdin.take());
        match child.wait() {
            Exit::Code(0) => Ok(()),
            Exit::Refused(reason) => Err(reason),
            other => Err(format!("a probe in the sandbox ended with {other:?}")),
        }
    })
}

fn container(command: &WorkerCommand) -> Container {
    let mut c = Container::new();
    c.unshare(Namespace::Network)
        .unshare(Namespace::Ipc)
        .unshare(Namespace::Uts);
    for dir in ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
        let path = Path::new(dir);
        if let Ok(target) = std::fs::read_link(path) {
            c.symlink(&target.to_string_lossy(), dir);
        } else if path.is_dir() {
            c.bindmount_ro(dir, dir);
        }
    }
    for path in [
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/alternatives",
        "/etc/localtime",
        "/sys/devices/system/cpu",
    ] {
        if Path::new(path).exists() {
            c.bindmount_ro(path, path);
        }
    }
    c.devfsmount("/dev").tmpfsmount("/tmp");
    for path in &command.readable {
        let p = path.to_string_lossy();
        c.bindmount_ro(&p, &p);
    }
    let scratch = command.scratch.to_string_lossy();
    c.bindmount_rw(&scratch, &scratch);
    if let Some(bytes) = command.memory_bytes {
        c.setrlimit(Rlimit::As, bytes, bytes);
    }
    c
}

fn allowed_env(command: &WorkerCommand) -> Vec<(String, String)> {
    let scratch = &command.scratch;
    let mut env: Vec<(String, String)> = ENV_ALLOWLIST
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/bin:/bin".into()));
    }
    let scratch = scratch.to_string_lossy().into_owned();
    env.push(("HOME".into(), scratch.clone()));
    env.push(("TMPDIR".into(), scratch));
    env.extend(command.env.iter().cloned());
    env
}

/// Starts `program args` as a worker (sandboxed when `command.sandboxed`),
/// with its standard streams piped.
pub fn spawn(command: &WorkerCommand, program: &Path, args: &[String]) -> Result<WorkerChild> {
    let env = allowed_env(command);
    if command.sandboxed {
        let container = container(command);
        let mut cmd = container.command(&program.to_string_lossy());
        cmd.args(args)
            .envs(env)
            .current_dir(&command.scratch)
            .stdin(hakoniwa::Stdio::piped())
            .stdout(hakoniwa::Stdio::piped())
            .stderr(hakoniwa::Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("starting a sandboxed worker: {e}"))?;
        Ok(WorkerChild {
            stdin: child.stdin.take().map(|s| Box::new(s) as _),
            stdout: child.stdout.take().map(|s| Box::new(s) as _),
            stderr: child.stderr.take().map(|s| Box::new(s) as _),
            process: Process::Sandboxed(Box::new(child)),
        })
    } else {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(env)
            .current_dir(&command.scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let memory = command.memory_bytes;
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (prctl, setsid, setrlimit).
        unsafe {
            cmd.pre_exec(move || {
                // Die with the coordinator: a killed host leaves no orphan.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // A process group of its own, killed whole at the end.
                libc::setsid();
                if let Some(bytes) = memory {
                    let limit = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("starting a worker process")?;
        Ok(WorkerChild {
            stdin: child.stdin.take().map(|s| Box::new(s) as _),
            stdout: child.stdout.take().map(|s| Box::new(s) as _),
            stderr: child.stderr.take().map(|s| Box::new(s) as _),
            process: Process::Plain(child),
        })
    }
}

fn exit_of_sandbox(status: hakoniwa::ExitStatus) -> Exit {
    match (status.exit_code, status.code) {
        (Some(code), _) => Exit::Code(code),
        // hakoniwa reports a signal as 128 + its number, and its own
        // failures as 125.
        (None, code) if code > 128 => Exit::Signal(code - 128),
        (None, _) => Exit::Refused(status.reason),
    }
}

fn exit_of_plain(status: std::process::ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Refused(format!("ended with {status}")),
    }
}

impl WorkerChild {
    /// The process id (in the coordinator's PID namespace) under which the
    /// worker's processes run; their CPU time is read from this tree.
    pub fn pid(&self) -> u32 {
        match &self.process {
            Process::Sandboxed(c) => c.id(),
            Process::Plain(c) => c.id(),
        }
    }

    /// Kills the worker and everything it started: through its PID
    /// namespace in the sandbox, through its process group otherwise (a
    /// child that left the group survives there: see README).
    pub fn kill(&mut self) {
        // An error means it has already ended.
        let _ = match &mut self.process {
            Process::Sandboxed(c) => c.kill().map_err(|e| e.to_string()),
            Process::Plain(c) => {
                // SAFETY: kill takes plain integers; the group is the
                // worker's own (setsid at its start).
                unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
                c.kill().map_err(|e| e.to_string())
            }
        };
    }

    /// How it ended, if it has.
    pub fn try_wait(&mut self) -> Option<Exit> {
        match &mut self.process {
            Process::Sandboxed(c) => match c.try_wait() {
                Ok(status) => status.map(exit_of_sandbox),
                Err(e) => Some(Exit::Refused(e.to_string())),
            },
            Process::Plain(c) => match c.try_wait() {
                Ok(status) => status.map(exit_of_plain),
                Err(e) => Some(Exit::Refused(e.to_string())),
            },
        }
    }

    /// Waits for it to end.
    pub fn wait(&mut self) -> Exit {
        match &mut self.process {
            Process::Sandboxed(c) => match c.wait() {
                Ok(status) => exit_of_sandbox(status),
                Err(e) => Exit::Refused(e.to_string()),
            },
            Process::Plain(c) => match c.wait() {
                Ok(status) => exit_of_plain(status),
                Err(e) => Exit::Refused(e.to_string()),
            },
        }
    }
}
