//! `host evolve`, `host prompt` and `host export-rl` end to end, on a small
//! synthetic set: the offline tune generator, the cmd generator answering
//! valid and broken code, and the llm generator against a local HTTP server
//! speaking the chat-completions protocol.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use annvil_results::{CandidateStatus, Store};
use common::{host, text};

/// A dataset small enough for many evaluations.
const DATASET: &str = "synthetic:n=3000,queries=100,dim=16,clusters=10";

fn evolve_args<'a>(work: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "evolve",
        "--dataset",
        DATASET,
        "--runs",
        "1",
        "--max-points",
        "8",
        "--point-budget",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--out".into(),
        format!("{work}/evolved"),
        "--results".into(),
        format!("{work}/results"),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    host(&refs)
}

fn store(work: &Path) -> Store {
    Store::open(work.join("results/results.sqlite")).expect("results database")
}

#[test]
fn tune_records_candidates_with_lineage_and_resumes_at_the_budget() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap();
    let args = evolve_args(
        w,
        &[
            "--from",
            "variants/hnsw",
            "--slot",
            "construction",
            "--generator",
            "tune",
            "--budget",
            "2",
        ],
    );
    let first = run(&args);
    let out = text(&first);
    assert!(
        first.status.code().is_some_and(|c| c <= 1),
        "evolve failed:\n{out}"
    );
    let candidates = store(work.path()).all_candidates().unwrap();
    assert_eq!(candidates.len(), 2, "{out}");
    for c in &candidates {
        assert_eq!(c.candidate.generator, "tune");
        assert_eq!(c.candidate.lineage.slot, "construction");
        assert_eq!(c.status, CandidateStatus::Ok, "{c:?}\n{out}");
        assert!(c.score.as_ref().unwrap().reward > 0.0);
        assert!(c.candidate.response.as_deref().unwrap().contains('→'));
        assert!(Path::new(&c.candidate.dir).join("variant.yaml").is_file());
    }
    let hashes: std::collections::BTreeSet<_> = candidates
        .iter()
        .map(|c| &c.candidate.content_hash)
        .collect();
    assert_eq!(hashes.len(), 2, "the same content is never evaluated twice");
    assert!(
        out.contains("(from hnsw, construction)"),
        "the leaderboard shows the lineage:\n{out}"
    );
    let lineage_md = std::fs::read_to_string(
        work.path()
            .join("results")
            .join(format!("{}/leaderboard.md", dataset_dir(work.path()))),
    )
    .unwrap();
    assert!(lineage_md.contains("## Lineage"), "{lineage_md}");

    // A second run with the same budget resumes: nothing new is generated.
    let again = run(&args);
    assert!(
        again.status.code().is_some_and(|c| c <= 1),
        "{}",
        text(&again)
    );
    assert_eq!(store(work.path()).all_candidates().unwrap().len(), 2);
}

/// The report directory of the only dataset in the results.
fn dataset_dir(work: &Path) -> String {
    std::fs::read_dir(work.join("results"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("leaderboard.md").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a report directory")
}

/// A cmd generator script: reads the prompt, answers with `code` inside
/// the protocol (with a counter comment so every answer is new content).
fn answer_script(dir: &Path, name: &str, code: &str) -> String {
    let code_file = dir.join(format!("{name}.code"));
    std::fs::write(&code_file, code).unwrap();
    let counter = dir.join(format!("{name}.count"));
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > {prompt}\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n\
             printf '## Performance Analysis\\nFine.\\n## Algorithm Design\\nSame.\\n## Code\\n```rust\\n'\n\
             echo \"// answer $n\"\ncat {code}\nprintf '```\\n'\n",
            prompt = dir.join(format!("{name}.prompt")).display(),
            counter = counter.display(),
            code = code_file.display()
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

#[test]
fn cmd_answers_build_and_rank_or_are_recorded_with_their_compiler_error() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap();
    let template =
        std::fs::read_to_string(common::root().join("host/templates/rust/refinement.rs")).unwrap();

    let broken = answer_script(work.path(), "broken", "pub struct Refiner { fn broken( }\n");
    let args = evolve_args(
        w,
        &[
            "--from",
            "variants/hnsw",
            "--slot",
            "refinement",
            "--generator",
            "cmd",
            "--command",
            &broken,
            "--budget",
            "2",
        ],
    );
    let failed = run(&args);
    let out = text(&failed);
    let candidates = store(work.path()).all_candidates().unwrap();
    assert_eq!(
        candidates.len(),
        2,
        "the loop goes on after a broken answer:\n{out}"
    );
    for c in &candidates {
        assert_eq!(c.status, CandidateStatus::BuildFailed, "{c:?}");
        assert!(c.failure.as_deref().unwrap().contains("error"), "{c:?}");
        assert!(c.candidate.prompt.as_deref().unwrap().contains("## Code"));
    }
    // The second prompt of the lineage shows the first one's compiler error.
    let prompt = std::fs::read_to_string(work.path().join("broken.prompt")).unwrap();
    assert!(prompt.contains("The previous attempt failed"), "{prompt}");

    let valid = answer_script(work.path(), "valid", &template);
    let args = evolve_args(
        w,
        &[
            "--from",
            "variants/hnsw",
            "--slot",
            "refinement",
            "--generator",
            "cmd",
            "--command",
            &valid,
            // The same session: the two broken answers already count.
            "--budget",
            "3",
        ],
    );
    let ranked = run(&args);
    let out = text(&ranked);
    let ok: Vec<_> = store(work.path())
        .all_candidates()
        .unwrap()
        .into_iter()
        .filter(|c| c.status == CandidateStatus::Ok)
        .collect();
    assert_eq!(ok.len(), 1, "{out}");
    assert!(ok[0].score.as_ref().unwrap().reward > 0.0);
    assert!(
        ok[0]
            .candidate
            .slot_code
            .as_deref()
            .unwrap()
            .contains("answer 1")
    );
    assert!(
        out.contains(&ok[0].candidate.name),
        "ranked on the leaderboard:\n{out}"
    );

    // The prompt command shows the evaluated implementation as an exemplar.
    let prompt = host(&[
        "prompt",
        "--slot",
        "refinement",
        "--from",
        "variants/hnsw",
        "--results",
        &format!("{w}/results"),
    ]);
    let shown = text(&prompt);
    assert!(prompt.status.success(), "{shown}");
    assert!(
        shown.contains(&ok[0].candidate.name) && shown.contains("## Algorithm Design"),
        "{shown}"
    );

    // export-rl writes one record per prompted candidate.
    let rl = host(&["export-rl", "--results", &format!("{w}/results")]);
    assert!(rl.status.success(), "{}", text(&rl));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&rl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l["prompt"].is_string() && l["advantage"].is_number())
    );
    assert!(lines.iter().any(|l| l["reward"].as_f64().unwrap() > 0.0));
}

/// Serves chat-completions requests on a local port, answering each with
/// `answer`, until `stop` is set; returns the requests (head and body).
fn chat_server(
    answer: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                Err(e) => panic!("accept: {e}"),
            };
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            bodies.push(format!("{head}\n{}", String::from_utf8_lossy(&body)));
            let reply = serde_json::json!({
                "id": "x", "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]
            })
            .to_string();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
        }
        bodies
    });
    (url, handle)
}

#[test]
fn llm_generator_speaks_chat_completions() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (url, server) = chat_server("## Performance Analysis\nI forgot the code.", stop.clone());
    let mut args = evolve_args(
        w,
        &[
            "--from",
            "variants/hnsw",
            "--slot",
            "search",
            "--generator",
            "llm",
            "--model",
            "local-test",
            "--budget",
            "1",
            "--api-key-env",
            "ANNVIL_TEST_KEY",
        ],
    );
    args.extend(["--endpoint".to_string(), url]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .current_dir(common::root())
        .env("ANNVIL_TEST_KEY", "sekret")
        .args(&refs)
        .output()
        .unwrap();
    let out = text(&output);
    stop.store(true, std::sync::atomic::Ordering::Release);
    let bodies = server.join().unwrap();
    assert_eq!(bodies.len(), 1, "{out}");
    let request = &bodies[0];
    assert!(
        request.starts_with("POST /v1/chat/completions"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer sekret"),
        "{request}"
    );
    let json: serde_json::Value =
        serde_json::from_str(request.split_once("\n\n").unwrap().1).unwrap();
    assert_eq!(json["model"], "local-test");
    assert_eq!(json["messages"][1]["role"], "user");
    assert!(
        json["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("## Critical requirements")
    );
    let candidates = store(work.path()).all_candidates().unwrap();
    assert_eq!(candidates.len(), 1, "{out}");
    assert_eq!(candidates[0].status, CandidateStatus::InvalidResponse);
    assert!(
        candidates[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("no `## Code` section")
    );
    assert_eq!(
        candidates[0].candidate.response.as_deref(),
        Some("## Performance Analysis\nI forgot the code.")
    );
}

/// `host evolve --generator tune` on hnsw's construction slot, with
/// `extra` arguments.
fn tune_args(work: &Path, extra: &[&str]) -> Vec<String> {
    let mut tail = vec![
        "--from",
        "variants/hnsw",
        "--slot",
        "construction",
        "--generator",
        "tune",
    ];
    tail.extend_from_slice(extra);
    evolve_args(work.to_str().unwrap(), &tail)
}

/// `(started_at, finished_at)` of every finished evaluation in the results
/// database under `work`, in start order.
fn evaluation_intervals(work: &Path) -> Vec<(String, String)> {
    common::select(
        &work.join("results/results.sqlite"),
        "SELECT started_at, finished_at FROM evaluations \
         WHERE finished_at IS NOT NULL ORDER BY started_at",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Fails when two of `intervals` (sorted by start) overlap.
fn assert_disjoint(intervals: &[(String, String)], context: &str) {
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "measurements overlap: {:?} and {:?}\n{context}",
            pair[0],
            pair[1]
        );
    }
}

/// `name -> finished_at` of every closed candidate.
fn finished_candidates(work: &Path) -> std::collections::BTreeMap<String, String> {
    common::select(
        &work.join("results/results.sqlite"),
        "SELECT name, finished_at FROM candidates WHERE finished_at IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .into_iter()
    .collect()
}

/// Names of the variants whose evaluation the results database under
/// `work` holds finished.
fn finished_evaluations(work: &Path) -> std::collections::BTreeSet<String> {
    common::select(
        &work.join("results/results.sqlite"),
        "SELECT variant_name FROM evaluations WHERE finished_at IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .into_iter()
    .collect()
}

/// How often one single-stage `host evolve` run measured `name` to the end
/// during its stage, from its stderr: evaluate prints one `NAME: built in …`
/// (or `NAME: FAILED: …`; `NAME {params}: …` with build parameters) per
/// finished measurement. The side-by-side runs that close the stage (its
/// finalists, then the chain) each print `evolve: re-measuring …` and one
/// `dataset …` line; the lines from the first of them on are left out.
fn stage_measurements(output: &std::process::Output, name: &str) -> usize {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let closing_runs = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("evolve: re-measuring"))
        .count();
    let datasets: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("dataset "))
        .map(|(i, _)| i)
        .collect();
    assert!(datasets.len() >= closing_runs, "a dataset line per run");
    let end = datasets
        .len()
        .checked_sub(closing_runs)
        .filter(|_| closing_runs > 0)
        .map_or(lines.len(), |first| datasets[first]);
    lines[..end]
        .iter()
        .filter(|line| {
            line.strip_prefix(name).is_some_and(|rest| {
                (rest.starts_with(':') || rest.starts_with(' '))
                    && (rest.contains(": built in ") || rest.contains(": FAILED: "))
            })
        })
        .count()
}

/// Whether a candidate with `status` went through an evaluation.
fn was_evaluated(status: CandidateStatus) -> bool {
    matches!(
        status,
        CandidateStatus::Ok | CandidateStatus::EvaluationFailed
    )
}

/// Lines of `out` that report a verdict on candidate `name`.
fn verdicts(out: &str, name: &str) -> usize {
    let prefix = format!("evolve: {name}: ");
    out.lines()
        .filter(|l| l.starts_with(&prefix) && !l.contains("same content as"))
        .count()
}

#[test]
fn parallel_tune_reaches_the_budget_judging_each_candidate_once_and_measuring_one_at_a_time() {
    let work = tempfile::tempdir().unwrap();
    let args = tune_args(work.path(), &["--budget", "4", "--parallel", "3"]);
    let output = run(&args);
    let out = text(&output);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "evolve failed:\n{out}"
    );
    let candidates = store(work.path()).all_candidates().unwrap();
    assert_eq!(candidates.len(), 4, "exactly the budget:\n{out}");
    let hashes: std::collections::BTreeSet<_> = candidates
        .iter()
        .map(|c| &c.candidate.content_hash)
        .collect();
    assert_eq!(hashes.len(), 4, "the candidates are distinct");
    for c in &candidates {
        assert_ne!(c.status, CandidateStatus::Generated, "{c:?}\n{out}");
        assert_eq!(
            verdicts(&out, &c.candidate.name),
            1,
            "{} is judged exactly once:\n{out}",
            c.candidate.name
        );
    }
    // The start variant, the candidates that passed their checks and the
    // final side-by-side run were measured, never two at once.
    for c in &candidates {
        assert_eq!(
            stage_measurements(&output, &c.candidate.name),
            usize::from(was_evaluated(c.status)),
            "{} ({:?}) is measured once if its checks pass:\n{out}",
            c.candidate.name,
            c.status
        );
    }
    // The stage's best is decided by re-measuring its best contenders
    // with the start variant in one run.
    if candidates.iter().any(|c| c.status == CandidateStatus::Ok) {
        assert!(
            out.contains("re-measuring the construction stage's finalists")
                && out.contains("in the finalists' run"),
            "{out}"
        );
    }
    let intervals = evaluation_intervals(work.path());
    assert!(intervals.len() >= 2, "{intervals:?}");
    assert_disjoint(&intervals, &out);
}

#[test]
fn a_killed_parallel_evolve_resumes_without_judging_anything_twice() {
    let work = tempfile::tempdir().unwrap();
    let args = tune_args(work.path(), &["--budget", "5", "--parallel", "2"]);
    let db = work.path().join("results/results.sqlite");
    let mut child = common::spawn_host(&args);
    // Wait until one candidate is judged while another is in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        assert!(std::time::Instant::now() < deadline, "no candidate in time");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("evolve ended ({status}) before it could be killed mid-stage");
        }
        if db.is_file() {
            let candidates = store(work.path()).all_candidates().unwrap();
            let open = candidates
                .iter()
                .filter(|c| c.status == CandidateStatus::Generated)
                .count();
            if open >= 1 && open < candidates.len() {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What the kill left: closed candidates, candidates in flight, and the
    // evaluations finished so far.
    let before = store(work.path()).all_candidates().unwrap();
    let judged_before = finished_candidates(work.path());
    let measured_before = finished_evaluations(work.path());
    assert!(!judged_before.is_empty());
    assert!(
        before
            .iter()
            .any(|c| c.status == CandidateStatus::Generated),
        "a candidate in flight at the kill: {before:?}"
    );

    let rerun = run(&args);
    let out = text(&rerun);
    assert!(
        rerun.status.code().is_some_and(|c| c <= 1),
        "the rerun failed:\n{out}"
    );
    let after = store(work.path()).all_candidates().unwrap();
    assert_eq!(after.len(), 5, "exactly the budget:\n{out}");
    for c in &before {
        assert!(
            after
                .iter()
                .any(|a| a.id == c.id && a.candidate.name == c.candidate.name),
            "{} was lost:\n{out}",
            c.candidate.name
        );
    }
    let hashes: std::collections::BTreeSet<_> =
        after.iter().map(|c| &c.candidate.content_hash).collect();
    assert_eq!(hashes.len(), 5, "no content twice");
    let judged_after = finished_candidates(work.path());
    for c in &after {
        assert_ne!(c.status, CandidateStatus::Generated, "{c:?}\n{out}");
        let name = &c.candidate.name;
        match judged_before.get(name) {
            Some(finished) => {
                assert_eq!(
                    judged_after.get(name),
                    Some(finished),
                    "{name} was judged again"
                );
                assert_eq!(verdicts(&out, name), 0, "{name} judged again:\n{out}");
            }
            None => assert_eq!(verdicts(&out, name), 1, "{name}:\n{out}"),
        }
    }
    let resumed = before
        .iter()
        .filter(|c| c.status == CandidateStatus::Generated)
        .collect::<Vec<_>>();
    for c in resumed {
        assert!(
            out.contains(&format!("evolve: resuming {}", c.candidate.name)),
            "{} in flight at the kill is judged first:\n{out}",
            c.candidate.name
        );
    }
    // Measured to the end exactly once over both runs: the rerun measures
    // only what the killed run had not finished measuring (a measurement
    // cut by the kill left no finished evaluation).
    for c in &after {
        let name = &c.candidate.name;
        let expected = was_evaluated(c.status) && !measured_before.contains(name);
        assert_eq!(
            stage_measurements(&rerun, name),
            usize::from(expected),
            "{name} ({:?}, finished evaluation before the kill: {}):\n{out}",
            c.status,
            measured_before.contains(name)
        );
        if measured_before.contains(name) {
            assert!(was_evaluated(c.status), "{name}: {:?}", c.status);
        }
    }
    assert_disjoint(&evaluation_intervals(work.path()), &out);
}

#[test]
fn two_evaluations_started_at_once_take_turns_measuring() {
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("results");
    let spawn = |variant: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .current_dir(common::root())
            .args(["evaluate", variant, "--dataset", DATASET, "--runs", "1"])
            .args(["--max-points", "8", "--point-budget", "2", "--results"])
            .arg(&results)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn("variants/hnsw");
    let second = spawn("variants/vamana");
    let outputs = [first, second].map(|c| c.wait_with_output().unwrap());
    let out: String = outputs.iter().map(text).collect();
    for output in &outputs {
        assert!(output.status.success(), "{out}");
    }
    let intervals = evaluation_intervals(work.path());
    assert!(intervals.len() >= 2, "{out}");
    assert_disjoint(&intervals, &out);
}
