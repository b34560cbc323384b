//! `host watch` end to end: a configuration-only variant in a temporary
//! directory is measured at start, edited, measured again and compared with
//! its previous version; Ctrl-C then stops the loop cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A dataset small enough for a quick round.
const DATASET: &str = "synthetic:n=3000,queries=100,dim=16,clusters=10";

/// The watched host; killed if the test ends early.
struct Watching(Child);

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// variant.yaml of a configuration-only variant on hnsw's library.
fn variant_yaml(m: u32) -> String {
    let hnsw = common::root().join("variants/hnsw");
    let hnsw = hnsw.display();
    format!(
        "description: hnsw with M={m}\n\
         construction:\n  library: {hnsw}\n  params: {{M: {m}, ef_construction: 40}}\n\
         search:\n  library: {hnsw}\n  sweep: {{ef: [10, 20, 40, 80, 160]}}\n\
         refinement:\n  library: {hnsw}\n"
    )
}

/// Reads lines from `lines` until one satisfies `wanted`; everything read
/// is appended to `seen`. Panics after `limit`.
fn wait_for(
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    wanted: impl Fn(&str) -> bool,
    what: &str,
    log: &Path,
) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let hit = wanted(&line);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!(
                "no {what} in time; stdout:\n{}\nstderr:\n{}",
                seen.join("\n"),
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

#[test]
fn each_save_is_rebuilt_measured_and_compared_with_the_previous_version() {
    let work = tempfile::tempdir().unwrap();
    let variant = work.path().join("watched-hnsw");
    std::fs::create_dir(&variant).unwrap();
    std::fs::write(variant.join("variant.yaml"), variant_yaml(8)).unwrap();
    let log = work.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(common::root())
        .arg("watch")
        .arg(&variant)
        .args(["--dataset", DATASET, "--runs", "1", "--debounce-ms", "100"])
        .arg("--results")
        .arg(work.path().join("results"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut watching = Watching(child);
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let limit = Duration::from_secs(300);
    let waiting = |l: &str| l.starts_with("watch: waiting for changes");
    wait_for(&lines, &mut seen, limit, waiting, "first report", &log);
    let first = seen.join("\n");
    assert!(first.contains("watched-hnsw version 1"), "{first}");
    assert!(
        seen.iter().any(|l| l.starts_with("this version")),
        "{first}"
    );
    assert!(
        !first.contains("vs previous"),
        "nothing to compare yet:\n{first}"
    );
    assert!(first.contains("no peer-* variant"), "{first}");

    std::fs::write(variant.join("variant.yaml"), variant_yaml(16)).unwrap();
    seen.clear();
    wait_for(&lines, &mut seen, limit, waiting, "second report", &log);
    let second = seen.join("\n");
    assert!(second.contains("watched-hnsw version 2"), "{second}");
    let previous = seen
        .iter()
        .find(|l| l.starts_with("previous version"))
        .unwrap_or_else(|| panic!("the previous version is shown:\n{second}"));
    let this = seen
        .iter()
        .find(|l| l.starts_with("this version"))
        .unwrap_or_else(|| panic!("{second}"));
    assert_ne!(previous, this, "the edit changed the figures:\n{second}");
    assert!(
        seen.iter().any(|l| l.starts_with("vs previous")),
        "{second}"
    );

    // Ctrl-C while idle: the loop ends and the host exits successfully.
    let pid = libc::pid_t::try_from(watching.0.id()).unwrap();
    // SAFETY: kill(2) on the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    seen.clear();
    wait_for(
        &lines,
        &mut seen,
        Duration::from_secs(30),
        |l| l == "watch: stopped",
        "clean stop",
        &log,
    );
    let status = watching.0.wait().unwrap();
    assert!(status.success(), "{status}");
}
