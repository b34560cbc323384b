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
use std::time::{Duration, Instant};

use annvil_results::SlurmAttempt;

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
    /// Run an array's tasks one at a time (`--array=…%1`), on this node
    /// when given (`--nodelist`): figures that are compared side by side.
    pub side_by_side: Option<SideBySide>,
}

/// Tasks measured one after another on one node.
#[derive(Clone, Debug, Default)]
pub struct SideBySide {
    /// The node (None: wherever Slurm starts the first task; with one
    /// task at a time a homogeneous partition still compares alike).
    pub node: Option<String>,
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
    /// Slurm's commands do not answer on this machine.
    #[error(
        "--executor slurm: Slurm does not answer here ({0}); run `host evaluate` on a machine \
         of the cluster (a login node) or use --executor local"
    )]
    Unavailable(String),
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

/// Runs a Slurm command and returns its stdout. Times come as Unix
/// seconds (`SLURM_TIME_FORMAT=%s`).
fn slurm(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let command = format!("{program} {}", shell_words::join(args));
    let output = Command::new(program)
        .args(args)
        .env("SLURM_TIME_FORMAT", "%s")
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

/// The shared directory, with this run's files staged on it.
pub struct Cluster {
    options: SlurmOptions,
    host: PathBuf,
}

fn hash_file(path: &Path) -> Result<String, SlurmError> {
    file_hash(path).map_err(io(path))
}

/// Copies `from` to `to` unless it is already there (same name, same
/// content: the names hold hashes), through a temporary file; `fs::copy`
/// keeps the permissions (the host binary stays executable), which
/// `annvil_data::write_atomically` would not.
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
    /// Checks that Slurm answers here and stages this host binary on the
    /// shared directory.
    pub fn new(options: SlurmOptions) -> Result<Cluster, SlurmError> {
        let partitions = slurm("sinfo", &["-h".into(), "-o".into(), "%P".into()])
            .map_err(|e| SlurmError::Unavailable(e.to_string()))?;
        if partitions.trim().is_empty() {
            return Err(SlurmError::Unavailable("`sinfo` lists no partition".into()));
        }
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
        let number = attempt_dirs(evaluation).last().map_or(0, |(n, _)| n + 1);
        let dir = evaluation.join(format!("attempt-{number}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let text = serde_json::to_vec_pretty(spec).expect("task specs serialize");
        write_whole(&dir.join("task.json"), &text).map_err(|reason| SlurmError::Command {
            command: "staging the task".into(),
            reason,
        })?;
        Ok(dir)
    }

    /// Submits one array whose task i serves the mailbox `dirs[i]`; returns
    /// their tasks (also written to each directory's `slurm-task`).
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
        // A task Slurm requeued would start over on a mailbox half answered,
        // its worker gone: lost tasks are resubmitted by the coordinator.
        let mut args = vec![
            "--parsable".to_owned(),
            format!(
                "--array=0-{}{}",
                dirs.len() - 1,
                if self.options.side_by_side.is_some() {
                    "%1"
                } else {
                    ""
                }
            ),
            "--job-name=annvil".to_owned(),
            format!("--cpus-per-task={cpus}"),
            "--no-requeue".to_owned(),
            format!("--output={}", jobs.join("%A_%a.log").display()),
        ];
        if let Some(partition) = &self.options.partition {
            args.push(format!("--partition={partition}"));
        }
        if let Some(node) = self
            .options
            .side_by_side
            .as_ref()
            .and_then(|s| s.node.as_ref())
        {
            args.push(format!("--nodelist={node}"));
        }
        args.extend(self.options.extra_args.iter().cloned());
        args.push(script.to_string_lossy().into_owned());
        let out = slurm("sbatch", &args)?;
        // `--parsable` prints `<job id>[;<cluster>]`.
        let printed = out.trim().split(';').next().unwrap_or_default();
        let job: u64 = printed.parse().map_err(|_| SlurmError::Command {
            command: "sbatch --parsable".into(),
            reason: format!("printed `{}`, not a job id", out.trim()),
        })?;
        dirs.iter()
            .zip(0..)
            .map(|(dir, index)| {
                let task = Task { job, index };
                let file = dir.join("slurm-task");
                std::fs::write(&file, task.to_string()).map_err(io(&file))?;
                Ok(task)
            })
            .collect()
    }
}

/// The attempt directories under `evaluation` and their numbers, oldest
/// first.
fn attempt_dirs(evaluation: &Path) -> Vec<(u32, PathBuf)> {
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
    found
}

/// One submitted attempt at an evaluation.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Its mailbox directory.
    pub dir: PathBuf,
    /// 0 for the evaluation's first submission, n for its n-th
    /// resubmission (counted in the results database, so across a killed
    /// coordinator and the one resuming it).
    pub number: u32,
    /// The array task serving it.
    pub task: Task,
    /// When it was submitted, Unix seconds.
    pub submitted: i64,
}

impl Attempt {
    /// Attempt `number`, served by `task` in `dir`, submitted just now.
    pub fn submitted_now(dir: PathBuf, number: u32, task: Task) -> Attempt {
        let submitted = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Attempt {
            dir,
            number,
            task,
            submitted,
        }
    }

    /// The attempt a results database row describes.
    pub fn recorded(row: &SlurmAttempt) -> Attempt {
        Attempt {
            dir: PathBuf::from(&row.directory),
            number: row.attempt,
            task: Task {
                job: row.job_id,
                index: row.array_index,
            },
            submitted: row.submitted_at,
        }
    }

    /// The database record of this attempt as just submitted: pending.
    pub fn submitted_record(&self) -> SlurmAttempt {
        let pending = TaskInfo {
            state: "PENDING".into(),
            ..TaskInfo::default()
        };
        self.record(Some(&pending), None)
    }

    /// The database record of this attempt as Slurm last described it
    /// (`None`: Slurm did not answer), and why it was given up.
    pub fn record(&self, info: Option<&TaskInfo>, lost: Option<String>) -> SlurmAttempt {
        let unanswered = TaskInfo {
            state: "UNKNOWN".into(),
            reason: Some("Slurm did not answer".into()),
            ..TaskInfo::default()
        };
        let info = info.unwrap_or(&unanswered);
        SlurmAttempt {
            attempt: self.number,
            directory: self.dir.to_string_lossy().into_owned(),
            job_id: self.task.job,
            array_index: self.task.index,
            state: info.state.clone(),
            reason: info.reason.clone(),
            exit_code: info.exit_code.clone(),
            node: info.node.clone(),
            lost,
            submitted_at: info.submitted.unwrap_or(self.submitted),
            started_at: info.started,
            ended_at: info.ended,
        }
    }
}

/// One array task, `<job>_<index>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// The array job's id.
    pub job: u64,
    /// The task's index in the array.
    pub index: u32,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.job, self.index)
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Task, String> {
        let parsed = s
            .split_once('_')
            .and_then(|(job, index)| Some((job.parse().ok()?, index.parse().ok()?)));
        match parsed {
            Some((job, index)) => Ok(Task { job, index }),
            None => Err(format!(
                "`{s}` is not a Slurm array task id (<job>_<index>)"
            )),
        }
    }
}

/// What Slurm says about a task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskInfo {
    /// Its job state, e.g. `RUNNING`, `CANCELLED`.
    pub state: String,
    /// Slurm's reason; None when it gives none.
    pub reason: Option<String>,
    /// `status:signal`, once it ended.
    pub exit_code: Option<String>,
    /// The node it runs or ran on.
    pub node: Option<String>,
    /// When it was submitted, Unix seconds.
    pub submitted: Option<i64>,
    /// When it started on its node.
    pub started: Option<i64>,
    /// When it ended.
    pub ended: Option<i64>,
}

/// Job states in which a task may still answer.
const LIVE_STATES: &[&str] = &[
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SUSPENDED",
    "STAGE_OUT",
    "SIGNALING",
];

impl TaskInfo {
    /// True while the task is queued or running.
    pub fn live(&self) -> bool {
        LIVE_STATES.contains(&self.state.as_str())
    }

    /// A task's end as said to the user: `Slurm task 12_0 ended CANCELLED
    /// (reason: None)`.
    pub fn ending(&self, task: Task) -> String {
        format!(
            "Slurm task {task} ended {} (reason: {})",
            self.state,
            self.reason.as_deref().unwrap_or("None")
        )
    }

    /// From one record of `scontrol show job -o`.
    fn from_record(record: &[(&str, &str)]) -> TaskInfo {
        let field = |name: &str| {
            record
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| *value)
        };
        let state = field("JobState").unwrap_or("UNKNOWN").to_owned();
        let node = field("BatchHost")
            .or_else(|| field("NodeList"))
            .filter(|n| !matches!(*n, "" | "(null)" | "None"))
            .map(str::to_owned);
        let mut info = TaskInfo {
            state,
            reason: field("Reason").and_then(reason),
            node,
            submitted: field("SubmitTime").and_then(time),
            ..TaskInfo::default()
        };
        info.set_times(
            field("StartTime").and_then(time),
            field("EndTime").and_then(time),
            field("ExitCode"),
        );
        info
    }

    /// Keeps a start only once the task ran (a pending task's is Slurm's
    /// estimate) and an end and exit code only once it ended.
    fn set_times(&mut self, started: Option<i64>, ended: Option<i64>, exit_code: Option<&str>) {
        let ran = self.node.is_some() && self.state != "PENDING";
        self.started = started.filter(|_| ran);
        if !self.live() {
            self.ended = ended;
            self.exit_code = exit_code.map(str::to_owned);
        }
    }
}

/// Slurm's reason, None for its `None`.
fn reason(text: &str) -> Option<String> {
    (!text.is_empty() && text != "None").then(|| text.to_owned())
}

/// A time printed under `SLURM_TIME_FORMAT=%s`; None for `Unknown`, `None`
/// and 0.
fn time(text: &str) -> Option<i64> {
    text.parse().ok().filter(|&t| t > 0)
}

/// Whether `index` is in an `ArrayTaskId` of `scontrol`: `3`, or the
/// pending rest of an array such as `0,2-5`, `0-9:2` or `1-9%4`.
fn index_in(ids: &str, index: u32) -> bool {
    let ids = ids.split('%').next().unwrap_or_default();
    ids.split(',').any(|part| {
        let (range, step) = part.split_once(':').unwrap_or((part, "1"));
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        match (
            first.parse::<u32>(),
            last.parse::<u32>(),
            step.parse::<u32>(),
        ) {
            (Ok(first), Ok(last), Ok(step)) if step > 0 => {
                (first..=last).contains(&index) && (index - first).is_multiple_of(step)
            }
            _ => false,
        }
    })
}

impl Task {
    /// What Slurm says about the task: `scontrol` (every record of its
    /// array), else accounting (`sacct`, when the cluster keeps it); None
    /// while Slurm cannot be asked (a transient failure is not an ending).
    pub fn query(&self) -> Option<TaskInfo> {
        let shown = slurm(
            "scontrol",
            &[
                "show".into(),
                "job".into(),
                "-o".into(),
                self.job.to_string(),
            ],
        );
        match shown {
            Ok(out) => {
                let records: Vec<Vec<(&str, &str)>> = out
                    .lines()
                    .map(|line| {
                        line.split_whitespace()
                            .filter_map(|f| f.split_once('='))
                            .collect()
                    })
                    .filter(|record: &Vec<_>| !record.is_empty())
                    .collect();
                if records.is_empty() {
                    return None;
                }
                // The task's own record once it started; before, the
                // array's record of its pending tasks.
                let mine = records.iter().find(|record| {
                    record
                        .iter()
                        .any(|(key, ids)| *key == "ArrayTaskId" && index_in(ids, self.index))
                });
                if let Some(record) = mine {
                    return Some(TaskInfo::from_record(record));
                }
                // The array is known, the task is not in it: it left the
                // queue before it started, which only `scancel` does, and
                // Slurm keeps no record of it outside accounting.
                Some(self.accounted().unwrap_or_else(|| {
                    TaskInfo {
                        state: "CANCELLED".into(),
                        reason: Some(
                            "cancelled before it started (inferred: Slurm keeps no record of a \
                         pending array task removed from the queue)"
                                .into(),
                        ),
                        ..TaskInfo::default()
                    }
                }))
            }
            Err(e) if e.to_string().contains("Invalid job id") => {
                Some(self.accounted().unwrap_or_else(|| TaskInfo {
                    state: "UNKNOWN".into(),
                    reason: Some("Slurm no longer knows the job".into()),
                    ..TaskInfo::default()
                }))
            }
            Err(_) => None,
        }
    }

    /// The task as Slurm's accounting recorded it, when the cluster keeps
    /// accounting and it knows the task.
    fn accounted(&self) -> Option<TaskInfo> {
        let out = slurm(
            "sacct",
            &[
                "-n".into(),
                "-X".into(),
                "-P".into(),
                "-o".into(),
                "State,Reason,NodeList,Submit,Start,End,ExitCode".into(),
                "-j".into(),
                self.to_string(),
            ],
        )
        .ok()?;
        let fields: Vec<&str> = out.lines().next()?.split('|').collect();
        let [state, why, node, submitted, started, ended, exit_code] = fields[..] else {
            return None;
        };
        // `CANCELLED by 0` names who cancelled.
        let state = state.split_whitespace().next()?.to_owned();
        let mut info = TaskInfo {
            state,
            reason: reason(why),
            node: Some(node.to_owned()).filter(|n| !matches!(n.as_str(), "" | "None assigned")),
            submitted: time(submitted),
            ..TaskInfo::default()
        };
        info.set_times(time(started), time(ended), Some(exit_code));
        Some(info)
    }

    /// Polls Slurm until the task ended, for at most `within`; returns
    /// the last answer (None: Slurm never answered).
    pub fn settle(&self, within: Duration) -> Option<TaskInfo> {
        let until = Instant::now() + within;
        let mut last = None;
        loop {
            if let Some(info) = self.query() {
                let ended = !info.live();
                last = Some(info);
                if ended {
                    return last;
                }
            }
            if Instant::now() >= until {
                return last;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Asks Slurm to end the task (`scancel`).
    pub fn cancel(&self) -> Result<(), SlurmError> {
        slurm("scancel", &[self.to_string()]).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_task_ids_of_scontrol_are_read() {
        assert!(index_in("3", 3));
        assert!(!index_in("3", 2));
        assert!(index_in("0,2-5", 4));
        assert!(!index_in("0,2-5", 1));
        assert!(index_in("0-9:2", 6));
        assert!(!index_in("0-9:2", 7));
        assert!(index_in("1-9%4", 9));
        assert!(!index_in("4294967294", 0));
        assert!(!index_in("", 0));
    }

    #[test]
    fn records_give_a_start_only_once_the_task_ran_and_an_end_once_it_ended() {
        let pending = [
            ("JobState", "PENDING"),
            ("Reason", "Priority"),
            ("SubmitTime", "1796474679"),
            ("StartTime", "1796474700"),
            ("EndTime", "1796478300"),
            ("ExitCode", "0:0"),
            ("NodeList", "(null)"),
        ];
        let info = TaskInfo::from_record(&pending);
        assert!(info.live());
        assert_eq!(info.reason.as_deref(), Some("Priority"));
        assert_eq!(info.submitted, Some(1_796_474_679));
        assert_eq!((info.started, info.ended, info.node), (None, None, None));
        assert_eq!(info.exit_code, None);

        let cancelled = [
            ("JobState", "CANCELLED"),
            ("Reason", "None"),
            ("StartTime", "1796474679"),
            ("EndTime", "1796474682"),
            ("ExitCode", "0:15"),
            ("NodeList", "vm"),
            ("BatchHost", "vm"),
        ];
        let info = TaskInfo::from_record(&cancelled);
        assert!(!info.live());
        assert_eq!(info.reason, None);
        assert_eq!(info.node.as_deref(), Some("vm"));
        assert_eq!(
            (info.started, info.ended),
            (Some(1_796_474_679), Some(1_796_474_682))
        );
        assert_eq!(info.exit_code.as_deref(), Some("0:15"));
        let task = Task { job: 13, index: 0 };
        assert_eq!(
            info.ending(task),
            "Slurm task 13_0 ended CANCELLED (reason: None)"
        );
    }

    #[test]
    fn task_ids_round_trip_and_bad_ones_are_named() {
        let task: Task = "12_3".parse().unwrap();
        assert_eq!(task, Task { job: 12, index: 3 });
        assert_eq!(task.to_string(), "12_3");
        let err = "12".parse::<Task>().unwrap_err();
        assert!(err.contains("`12`"), "{err}");
    }
}
