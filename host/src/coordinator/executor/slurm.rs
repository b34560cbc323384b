//! The Slurm side of the Slurm executor: staging what the compute nodes
//! need on the shared directory, one `sbatch` job array per submission,
//! and watching its tasks with `scontrol` (`sacct` when the cluster keeps
//! accounting). Shelling out to Slurm's own commands is its stable
//! interface; no Rust client of Slurm is maintained enough to depend on.
//!
//! Layout of the shared directory:
//!
//! * `bin/host-<hash>`: this host binary, which every task runs.
//! * `libraries/<hash>/<file>`: the variants' libraries.
//! * `vectors/<dataset hash>.base`: the base vectors.
//! * `jobs/<n>.sh`, `jobs/<job>_<task>.log`: the array scripts and logs.
//! * `tasks/<evaluation>/attempt-<n>/`: one attempt's mailbox
//!   ([`super::mailbox`]), its `task.json` and its `slurm-task` (the
//!   Slurm id answering it).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::mailbox::{TaskSpec, file_hash, write_whole};
use crate::protocol::EvaluateJob;

/// How to reach the cluster (`--executor slurm` and its options).
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// The partition (`--slurm-partition`; None: the cluster's default).
    pub partition: Option<String>,
    /// Further `sbatch` arguments (`--slurm-args`, shell words).
    pub extra_args: Vec<String>,
    /// A directory the coordinator and every node see at the same path.
    pub shared_dir: PathBuf,
    /// Resubmissions of a lost task before the evaluation fails.
    pub retries: u32,
}

/// An error of the Slurm executor that stops the whole run (a failed
/// submission, an unwritable shared directory).
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A file or directory on the shared directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A Slurm command could not run or refused.
    #[error("`{command}` failed: {reason}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr, or why it did not start.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SlurmError + '_ {
    move |source| SlurmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a Slurm command and returns its stdout.
fn slurm(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let command = format!("{program} {}", shell_words::join(args));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| SlurmError::Command {
            command: command.clone(),
            reason: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(SlurmError::Command {
            command,
            reason: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// True when Slurm's commands answer here (`sinfo` lists a partition).
pub fn available() -> bool {
    slurm("sinfo", &["-h".into(), "-o".into(), "%P".into()]).is_ok_and(|out| !out.trim().is_empty())
}

/// The shared directory, with this run's files staged on it.
pub struct Cluster {
    options: SlurmOptions,
    host: PathBuf,
}

fn hash_file(path: &Path) -> Result<String, SlurmError> {
    file_hash(path).map_err(io(path))
}

/// Copies `from` to `to` unless it is already there (same name, same
/// content: the names hold hashes), through a temporary file.
fn stage(from: &Path, to: &Path) -> Result<(), SlurmError> {
    if to.exists() {
        return Ok(());
    }
    let dir = to.parent().expect("staged files live in a directory");
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = to.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::copy(from, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, to).map_err(io(to))
}

impl Cluster {
    /// Stages this host binary on the shared directory.
    pub fn new(options: SlurmOptions) -> Result<Cluster, SlurmError> {
        let shared = std::path::absolute(&options.shared_dir).map_err(io(&options.shared_dir))?;
        let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
        let host = shared
            .join("bin")
            .join(format!("host-{}", &hash_file(&exe)?[..16]));
        stage(&exe, &host)?;
        Ok(Cluster {
            options: SlurmOptions {
                shared_dir: shared,
                ..options
            },
            host,
        })
    }

    /// How many times a lost task is resubmitted.
    pub fn retries(&self) -> u32 {
        self.options.retries
    }

    /// Stages the base vectors file; returns its path there and its hash.
    pub fn stage_base(
        &self,
        base: &Path,
        dataset_hash: &str,
    ) -> Result<(PathBuf, String), SlurmError> {
        let staged = self
            .options
            .shared_dir
            .join("vectors")
            .join(format!("{dataset_hash}.base"));
        stage(base, &staged)?;
        let hash = hash_file(&staged)?;
        Ok((staged, hash))
    }

    /// `job` with its libraries staged on the shared directory.
    pub fn stage_job(&self, job: &EvaluateJob) -> Result<EvaluateJob, SlurmError> {
        let mut job = job.clone();
        let pipeline = &mut job.pipeline;
        for library in [
            &mut pipeline.construction,
            &mut pipeline.search,
            &mut pipeline.refinement,
        ] {
            let hash = hash_file(library)?;
            let name = library.file_name().expect("a library is a file");
            let staged = self
                .options
                .shared_dir
                .join("libraries")
                .join(&hash[..16])
                .join(name);
            stage(library, &staged)?;
            *library = staged;
        }
        Ok(job)
    }

    /// The directory of the attempts of the evaluation named `key_hash`.
    pub fn evaluation_dir(&self, key_hash: &str) -> PathBuf {
        self.options.shared_dir.join("tasks").join(key_hash)
    }

    /// A fresh attempt directory under `evaluation`, holding `spec`.
    pub fn new_attempt(&self, evaluation: &Path, spec: &TaskSpec) -> Result<PathBuf, SlurmError> {
        let attempt = attempts(evaluation).len();
        let dir = evaluation.join(format!("attempt-{attempt}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let text = serde_json::to_vec_pretty(spec).expect("task specs serialize");
        write_whole(&dir.join("task.json"), &text).map_err(|reason| SlurmError::Command {
            command: "staging the task".into(),
            reason,
        })?;
        Ok(dir)
    }

    /// Submits one array whose task i serves the mailbox `dirs[i]`; returns
    /// their tasks (also recorded in each directory's `slurm-task`).
    pub fn submit(&self, dirs: &[PathBuf], cpus: usize) -> Result<Vec<Task>, SlurmError> {
        let jobs = self.options.shared_dir.join("jobs");
        std::fs::create_dir_all(&jobs).map_err(io(&jobs))?;
        let script = jobs.join(format!(
            "{}-{}.sh",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let quoted: Vec<String> = dirs
            .iter()
            .map(|d| shell_words::quote(&d.to_string_lossy()).into_owned())
            .collect();
        let text = format!(
            "#!/bin/bash\n# Written by annvil: task i serves the mailbox dirs[i].\n\
             dirs=({})\nexec {} slurm-task \"${{dirs[$SLURM_ARRAY_TASK_ID]}}\"\n",
            quoted.join(" "),
            shell_words::quote(&self.host.to_string_lossy()),
        );
        std::fs::write(&script, text).map_err(io(&script))?;
        let mut args = vec![
            "--parsable".to_owned(),
            format!("--array=0-{}", dirs.len() - 1),
            "--job-name=annvil".to_owned(),
            format!("--cpus-per-task={cpus}"),
            format!("--output={}", jobs.join("%A_%a.log").display()),
        ];
        if let Some(partition) = &self.options.partition {
            args.push(format!("--partition={partition}"));
        }
        args.extend(self.options.extra_args.iter().cloned());
        args.push(script.to_string_lossy().into_owned());
        let out = slurm("sbatch", &args)?;
        // `--parsable` prints `<job id>[;<cluster>]`.
        let job = out.trim().split(';').next().unwrap_or_default().to_owned();
        if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SlurmError::Command {
                command: "sbatch --parsable".into(),
                reason: format!("printed `{}`, not a job id", out.trim()),
            });
        }
        dirs.iter()
            .enumerate()
            .map(|(i, dir)| {
                let task = Task {
                    id: format!("{job}_{i}"),
                };
                let file = dir.join("slurm-task");
                std::fs::write(&file, &task.id).map_err(io(&file))?;
                Ok(task)
            })
            .collect()
    }

    /// The newest attempt under `evaluation` whose task Slurm still runs or
    /// queues: a restarted coordinator adopts it instead of submitting.
    pub fn adoptable(&self, evaluation: &Path) -> Option<(PathBuf, Task)> {
        let dir = attempts(evaluation).pop()?;
        let id = std::fs::read_to_string(dir.join("slurm-task")).ok()?;
        let task = Task {
            id: id.trim().to_owned(),
        };
        task.ended().is_none().then_some((dir, task))
    }
}

/// The attempt directories under `evaluation`, oldest first.
fn attempts(evaluation: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(evaluation)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let n = entry
                .file_name()
                .to_str()?
                .strip_prefix("attempt-")?
                .parse()
                .ok()?;
            Some((n, entry.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, dir)| dir).collect()
}

/// One array task (`<job>_<index>`).
#[derive(Clone, Debug)]
pub struct Task {
    /// Slurm's id of the task.
    pub id: String,
}

/// Job states in which a task may still answer.
const LIVE_STATES: &[&str] = &[
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "RESIZING",
    "SUSPENDED",
    "STAGE_OUT",
    "SIGNALING",
];

impl Task {
    /// None while the task is queued or running; once it ended, its state
    /// and Slurm's reason, e.g. `CANCELLED (reason: None)`.
    pub fn ended(&self) -> Option<String> {
        let (state, reason) = self.state()?;
        (!LIVE_STATES.contains(&state.as_str()))
            .then(|| format!("Slurm task {} ended {state} (reason: {reason})", self.id))
    }

    /// The task's state and reason from `scontrol`, else `sacct`; None
    /// while Slurm cannot be asked (a transient failure is not an ending).
    fn state(&self) -> Option<(String, String)> {
        let shown = slurm(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), self.id.clone()],
        );
        if let Ok(out) = &shown {
            let field = |name: &str| {
                out.split_whitespace()
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_owned)
            };
            // A pending array shows its unsplit record first.
            if let Some(state) = field("JobState=") {
                return Some((state, field("Reason=").unwrap_or_else(|| "None".into())));
            }
        }
        let accounted = slurm(
            "sacct",
            &[
                "-n".into(),
                "-X".into(),
                "-P".into(),
                "-o".into(),
                "State,Reason".into(),
                "-j".into(),
                self.id.clone(),
            ],
        );
        if let Ok(out) = accounted
            && let Some(line) = out.lines().next()
        {
            let (state, reason) = line.split_once('|').unwrap_or((line, "None"));
            // `CANCELLED by 0` names who cancelled.
            let state = state.split_whitespace().next().unwrap_or(state);
            return Some((state.to_owned(), reason.to_owned()));
        }
        // Neither knows the id any more: it ended long enough ago.
        shown
            .err()
            .filter(|e| e.to_string().contains("Invalid job id"))
            .map(|_| ("UNKNOWN".into(), "Slurm no longer knows the job".into()))
    }
}
