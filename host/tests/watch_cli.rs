//! `host watch` end to end: a variant with its own Rust refinement slot (as
//! `host new` writes it) in a temporary directory is measured at start and
//! compared with a peer; each save of its source is rebuilt, checked and
//! measured again: a compile error prints the compiler's message, a slot
//! that fails the conformance suite prints the failing checks, and a
//! working edit is measured with a new library and compared with the
//! previous version and the peer. Ctrl-C then stops the loop cleanly.

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

/// The variant hashes of the evaluations of `name` in the results database.
fn evaluated_hashes(results: &Path, name: &str) -> Vec<String> {
    common::select(
        &results.join("results.sqlite"),
        "SELECT variant_hash FROM evaluations \
         WHERE variant_name = ?1 AND status = 'ok' ORDER BY id",
        [name],
        |r| r.get(0),
    )
}

/// `source` with `from` (which it must hold) replaced by `to`.
fn edited(source: &str, from: &str, to: &str) -> String {
    assert!(source.contains(from), "the template holds `{from}`");
    source.replacen(from, to, 1)
}

#[test]
fn each_save_is_rebuilt_checked_measured_and_compared_with_the_previous_version_and_the_peer() {
    let work = tempfile::tempdir().unwrap();
    let made = common::host(&[
        "new",
        "watched",
        "--from",
        "variants/hnsw",
        "--slot",
        "refinement",
        "--out",
        work.path().to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", common::text(&made));
    let variant = work.path().join("watched");
    let slot = variant.join("src/refinement.rs");
    let original = std::fs::read_to_string(&slot).unwrap();
    // A stand-in peer (only its peer-* name matters to the comparison):
    // hnsw's own slots, with smaller graphs.
    let peer = work.path().join("peer-small-hnsw");
    std::fs::create_dir(&peer).unwrap();
    let hnsw = common::root().join("variants/hnsw");
    let hnsw = hnsw.display();
    std::fs::write(
        peer.join("variant.yaml"),
        format!(
            "description: hnsw with M=4\n\
             construction:\n  library: {hnsw}\n  params: {{M: 4, ef_construction: 40}}\n\
             search:\n  library: {hnsw}\n  sweep: {{ef: [10, 20, 40, 80, 160]}}\n\
             refinement:\n  library: {hnsw}\n"
        ),
    )
    .unwrap();

    let results = work.path().join("results");
    let log = work.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(common::root())
        .arg("watch")
        .arg(&variant)
        .arg("--peer")
        .arg(&peer)
        .args(["--dataset", DATASET, "--runs", "1", "--debounce-ms", "100"])
        .arg("--results")
        .arg(&results)
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
    let limit = Duration::from_secs(600);
    let waiting = |l: &str| l.starts_with("watch: waiting for changes");
    let starts = |seen: &[String], prefix: &str| seen.iter().any(|l| l.starts_with(prefix));

    // At start: version 1 measured and compared with the peer only.
    wait_for(&lines, &mut seen, limit, waiting, "first report", &log);
    let report = seen.join("\n");
    assert!(report.contains("watch: watched version 1"), "{report}");
    assert!(starts(&seen, "this version"), "{report}");
    assert!(
        starts(&seen, "peer-small-hnsw "),
        "the peer's row:\n{report}"
    );
    assert!(starts(&seen, "vs best peer"), "{report}");
    assert!(!starts(&seen, "vs previous"), "nothing before:\n{report}");
    let first_hashes = evaluated_hashes(&results, "watched");
    assert_eq!(first_hashes.len(), 1, "{report}");

    // A compile error: the compiler's message, nothing measured.
    std::fs::write(
        &slot,
        edited(&original, "scored.clear();", "scored.clear() oops;"),
    )
    .unwrap();
    seen.clear();
    wait_for(&lines, &mut seen, limit, waiting, "build report", &log);
    let report = seen.join("\n");
    assert!(report.contains("watch: watched version 2"), "{report}");
    assert!(report.contains("watch: watched: build failed"), "{report}");
    assert!(report.contains("src/refinement.rs"), "{report}");
    assert!(report.contains("oops"), "the compiler's message:\n{report}");
    assert!(!starts(&seen, "this version"), "{report}");

    // It builds but returns no neighbours: the conformance suite fails.
    std::fs::write(
        &slot,
        edited(
            &original,
            "if !out.push(id, distance) {",
            "if distance.is_nan() && id == 0 {",
        ),
    )
    .unwrap();
    seen.clear();
    wait_for(&lines, &mut seen, limit, waiting, "check report", &log);
    let report = seen.join("\n");
    assert!(report.contains("watch: watched version 3"), "{report}");
    assert!(
        report.contains("watch: watched: the conformance suite failed"),
        "{report}"
    );
    assert!(!starts(&seen, "this version"), "{report}");

    // A working edit (the same answers, slower): measured with the new
    // library, compared with the last measured version and the peer.
    std::fs::write(
        &slot,
        edited(
            &original,
            "scored.clear();",
            "scored.clear();\n        \
             for _ in 0..4 {\n            \
             std::hint::black_box(candidates.iter().map(|&id| \
             self.kernel.distance(query, self.base.row(id as usize))).sum::<f32>());\n        }",
        ),
    )
    .unwrap();
    seen.clear();
    wait_for(
        &lines,
        &mut seen,
        limit,
        waiting,
        "second measurement",
        &log,
    );
    let report = seen.join("\n");
    assert!(report.contains("watch: watched version 4"), "{report}");
    for row in [
        "this version",
        "previous version",
        "peer-small-hnsw ",
        "vs previous",
        "vs best peer",
    ] {
        assert!(starts(&seen, row), "a `{row}` row:\n{report}");
    }
    // The edit was measured as a new build (a second variant hash; the
    // leaderboard shows a name's latest version).
    let hashes = evaluated_hashes(&results, "watched");
    assert_eq!(hashes.len(), 2, "{hashes:?}\n{report}");
    assert_eq!(hashes[0], first_hashes[0]);
    assert_ne!(hashes[1], hashes[0], "{report}");

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
