//! Reports regenerated from the results database, one module per format:
//!
//! - [`terminal_table`]: the plain-text table the host prints after a run;
//! - [`markdown`], [`json`], [`csv`]: `leaderboard.md`, `.json`, `.csv`;
//! - [`svg_plot`], [`png_plot`]: the QPS–recall plot (`qps-recall.svg`, `.png`);
//! - [`html`]: `index.html`, one self-contained page;
//! - [`lineage_tree`]: the lineage section of the Markdown and HTML reports;
//! - [`benchmark_section`]: a section of `docs/BENCHMARKS.md`.
//!
//! All render a [`ReportData`]; this module writes the set of files of one
//! leaderboard ([`write_reports`], [`write_report_files`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::store::Store;

mod benchmarks;
mod cells;
mod csv;
mod data;
mod html;
mod json;
mod lineage;
mod markdown;
mod plot;
mod terminal;

pub use benchmarks::{PEER_PREFIX, benchmark_section};
pub use csv::{csv, csv_field};
pub use data::{BuildDetail, ReportData, VariantDetail, explanation};
pub use html::html;
pub use json::json;
pub use lineage::{LineageNode, lineage_tree};
pub use markdown::markdown;
pub use plot::{LOGIT_TOP, RecallAxis, png_plot, svg_plot};
pub use terminal::terminal_table;

/// Paths of the files written by [`write_reports`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFiles {
    /// `leaderboard.md`.
    pub markdown: PathBuf,
    /// `leaderboard.json`.
    pub json: PathBuf,
    /// `leaderboard.csv`.
    pub csv: PathBuf,
    /// `qps-recall.svg`.
    pub svg: PathBuf,
    /// `qps-recall.png`.
    pub png: PathBuf,
    /// `index.html`.
    pub html: PathBuf,
}

/// Writes `leaderboard.md`, `leaderboard.json`, `leaderboard.csv`,
/// `qps-recall.svg`, `qps-recall.png` and `index.html` for the most recent
/// leaderboard of `dataset` into `out_dir` (created if missing).
pub fn write_reports(store: &Store, dataset: &str, out_dir: &Path) -> anyhow::Result<ReportFiles> {
    let data = ReportData::collect(store, dataset)?;
    write_report_files(&data, out_dir)
}

/// Writes every report file of `data` into `out_dir` (created if missing).
pub fn write_report_files(data: &ReportData, out_dir: &Path) -> anyhow::Result<ReportFiles> {
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let files = ReportFiles {
        markdown: out_dir.join("leaderboard.md"),
        json: out_dir.join("leaderboard.json"),
        csv: out_dir.join("leaderboard.csv"),
        svg: out_dir.join("qps-recall.svg"),
        png: out_dir.join("qps-recall.png"),
        html: out_dir.join("index.html"),
    };
    let write = |path: &Path, text: &str| {
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(&files.markdown, &markdown(data))?;
    write(&files.json, &json(data)?)?;
    write(&files.csv, &csv(data))?;
    let svg = svg_plot(data, RecallAxis::default())?;
    write(&files.svg, &svg)?;
    png_plot(data, &files.png, RecallAxis::default())?;
    write(&files.html, &html(data, &svg))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{env, key, outcome, point, populated};
    use crate::model::{EvaluationOutcome, Failure, Implementation, SweepPoint};
    use crate::report::html::esc;
    use crate::report::plot::{PALETTE, PLOT_SIZE};

    /// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF records).
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\r') => {
                    assert_eq!(chars.next(), Some('\n'), "bare CR");
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(
            field.is_empty() && record.is_empty(),
            "last record must end with CRLF"
        );
        records
    }

    #[test]
    fn reports_mark_unsandboxed_rows_build_threads_bridged_rows_and_disagreeing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("results.sqlite")).unwrap();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store
            .start_evaluation(&key("flaky", "h", &[]), run)
            .unwrap();
        let unsandboxed = EvaluationOutcome {
            sandboxed: false,
            build_threads: 4,
            implementation: Implementation::PythonBridge,
            ..outcome()
        };
        let disagreeing = SweepPoint {
            recall_max: 0.97,
            runs_disagree: true,
            ..point(10, 0.96, 1000.0)
        };
        store
            .finish_evaluation(id, &unsandboxed, &[disagreeing])
            .unwrap();
        let id = store
            .start_evaluation(&key("steady", "h", &[]), run)
            .unwrap();
        store
            .finish_evaluation(id, &outcome(), &[point(10, 0.96, 500.0)])
            .unwrap();
        let legend = "runs disagreed: recall is the lowest run's";

        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        let table = terminal_table(&lb);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[3].contains(" 1000* ") && lines[3].contains("1.25 s (4 thr)"),
            "{table}"
        );
        assert!(lines[3].ends_with("ok (unsandboxed)"), "{table}");
        assert!(
            lines[4].contains(" 500 ") && lines[4].ends_with("  ok"),
            "{table}"
        );
        assert_eq!(lines[5], format!("* {legend}"), "{table}");
        assert!(table.is_ascii());

        let files = write_reports(&store, "synthetic", &dir.path().join("out")).unwrap();
        let md = fs::read_to_string(&files.markdown).unwrap();
        let flaky = md.lines().find(|l| l.starts_with("| 1 | flaky |")).unwrap();
        let (before, after) = flaky
            .split_once(" | 10.0 MiB | ")
            .unwrap_or_else(|| panic!("{md}"));
        assert_eq!(
            before,
            "| 1 | flaky | Python bridge | 1000* | 1000 | 1000 | — | 0.9600 | 1.25 s (4 thr)"
        );
        // The Measured cell: when the shown evaluation finished, to the minute.
        let (measured, rest) = after.split_once(" | ").unwrap();
        assert!(
            measured.len() == 16 && measured.as_bytes()[10] == b' ' && measured.starts_with("20"),
            "{flaky}"
        );
        assert!(rest.starts_with("ok (unsandboxed) |"), "{flaky}");
        assert!(md.contains("| 2 | steady | native | 500 |"), "{md}");
        assert!(md.contains(&format!("\n\\* {legend}\n")), "{md}");

        let html = fs::read_to_string(&files.html).unwrap();
        assert!(html.contains("<td class=\"n\">1000*</td>"), "{html}");
        assert!(html.contains("<td>ok (unsandboxed)</td>"), "{html}");
        assert!(html.contains("<th>Runs as</th>"), "{html}");
        assert!(html.contains("<th>Measured (UTC)</th>"), "{html}");
        assert!(html.contains("<td>Python bridge</td>"), "{html}");
        assert!(html.contains("1.25 s (4 thr)"), "{html}");
        assert!(html.contains("Status: ok (unsandboxed);"), "{html}");
        assert!(
            html.contains(&format!("<p class=\"note\">* {}</p>", esc(legend))),
            "{html}"
        );

        let records = parse_csv(&fs::read_to_string(&files.csv).unwrap());
        let column = |name: &str| records[0].iter().position(|c| c == name).unwrap();
        let (sandboxed, threads, disagree, implementation) = (
            column("sandboxed"),
            column("build_threads"),
            column("runs_disagree"),
            column("implementation"),
        );
        assert_eq!(
            [
                &records[1][sandboxed],
                &records[1][threads],
                &records[1][disagree],
                &records[1][implementation]
            ],
            ["false", "4", "true", "python-bridge"]
        );
        assert_eq!(
            [
                &records[2][sandboxed],
                &records[2][threads],
                &records[2][disagree],
                &records[2][implementation]
            ],
            ["true", "2", "false", "native"]
        );

        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&files.json).unwrap()).unwrap();
        let flaky = &json["variants"][0];
        assert_eq!(flaky["row"]["sandboxed"], false);
        assert_eq!(flaky["row"]["build_threads"], 4);
        assert_eq!(flaky["row"]["runs_disagree"], true);
        assert_eq!(flaky["row"]["implementation"], "python-bridge");
        assert_eq!(flaky["builds"][0]["evaluation"]["sandboxed"], false);
        assert_eq!(flaky["builds"][0]["points"][0]["runs_disagree"], true);
        assert_eq!(json["variants"][1]["row"]["sandboxed"], true);

        // A board without disagreeing runs carries no legend.
        let quiet_dir = dir.path().join("quiet");
        fs::create_dir(&quiet_dir).unwrap();
        let quiet = populated(&quiet_dir);
        let md = markdown(&ReportData::collect(&quiet, "synthetic").unwrap());
        assert!(!md.contains(legend), "{md}");
    }

    #[test]
    fn all_reports_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = populated(dir.path());
        let out = dir.path().join("out/nested");
        let files = write_reports(&store, "synthetic", &out).unwrap();
        for path in [
            &files.markdown,
            &files.json,
            &files.csv,
            &files.svg,
            &files.png,
            &files.html,
        ] {
            let len = fs::metadata(path).unwrap().len();
            assert!(len > 200, "{} has {len} bytes", path.display());
        }

        // PNG: signature, IHDR with the plot size, and a non-trivial image.
        let png = fs::read(&files.png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            PLOT_SIZE.0
        );
        assert_eq!(
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
            PLOT_SIZE.1
        );
        assert!(png.len() > 10_000, "{} bytes", png.len());

        let svg = fs::read_to_string(&files.svg).unwrap();
        assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("QPS vs recall: synthetic (k=10"), "title");
        // Rows in rank order: ivf (2 frontier points), hnsw (4), too-fast (2), crashy (failed).
        let stroke = |i: usize| {
            let c = PALETTE[i];
            format!(
                "stroke=\"#{:02X}{:02X}{:02X}\" stroke-width=\"2\" points=",
                c.0, c.1, c.2
            )
        };
        let polylines = |i: usize| svg.matches(&stroke(i)).count();
        // One frontier line and one legend line per plotted variant.
        assert_eq!(polylines(0), 2);
        assert_eq!(polylines(2), 2, "a variant below 0.85 is still plotted");
        assert_eq!(polylines(3), 0, "a failed variant has nothing to plot");
        assert_eq!(
            svg.matches("<circle").count(),
            2 + 4 + 2 + 3,
            "markers + legend markers"
        );
        assert!(svg.contains("too-fast") && svg.contains("reward 0\n"));
        assert!(
            svg.contains("crashy") && svg.contains("failed"),
            "failed variants are listed"
        );
        assert!(svg.contains("reward band"));

        let md = fs::read_to_string(&files.markdown).unwrap();
        assert!(
            md.contains("| 1 | ivf\\|flat <b> | native | 7600 |"),
            "{md}"
        );
        assert!(
            md.contains("| 2 | hnsw, \"quoted\" | native | 4500 | 6000 | 3000 | 1200 |"),
            "{md}"
        );
        assert!(md.contains("ivf\\|flat <b>"), "{md}");
        assert!(md.contains("failed: crash: SIGSEGV"));
        assert!(md.contains("Reward = mean over recall r in [0.85, 0.95]"));
        assert!(md.contains("k=10, R=3, single thread, 1000 queries"));

        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&files.json).unwrap()).unwrap();
        assert_eq!(json["variants"].as_array().unwrap().len(), 4);
        assert_eq!(json["variants"][3]["row"]["status"], "failed");
        assert_eq!(json["scope"]["dataset_name"], "synthetic");

        let csv_text = fs::read_to_string(&files.csv).unwrap();
        let records = parse_csv(&csv_text);
        assert_eq!(records.len(), 5);
        assert!(records.iter().all(|r| r.len() == records[0].len()));
        assert_eq!(records[0][0], "rank");
        let hnsw = records
            .iter()
            .find(|r| r[1] == "hnsw, \"quoted\"")
            .expect("name survives quoting");
        assert_eq!(hnsw[13], r#"{"M":"16"}"#);
        let crashy = records.iter().find(|r| r[1] == "crashy").unwrap();
        assert_eq!(crashy[0], "4");
        assert_eq!(crashy[5], "0");
        assert_eq!(crashy[6], "");

        let html = fs::read_to_string(&files.html).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg") && html.contains("<style>") && html.contains("<details>"));
        assert!(html.contains("ivf|flat &lt;b&gt;"));
        assert!(html.contains("building &lt;graph&gt; &amp; stuff"));
        assert!(html.contains("Test CPU @ 3.0GHz") && html.contains("avx2"));
        assert!(!html.contains("<?xml"));
        for external in [
            "<script", "<link", "<img", "src=", "url(", "@import", "href=",
        ] {
            assert!(
                !html.contains(external),
                "external resource marker {external}"
            );
        }
    }

    #[test]
    fn empty_and_failed_only_boards_render() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("r.sqlite")).unwrap();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store
            .start_evaluation(&key("broken", "h", &[]), run)
            .unwrap();
        store
            .fail_evaluation(id, &Failure::new("timeout after 600s", ""))
            .unwrap();
        let files = write_reports(&store, "synthetic", &dir.path().join("out")).unwrap();
        assert!(fs::read(&files.png).unwrap().starts_with(b"\x89PNG"));
        assert!(
            fs::read_to_string(&files.markdown)
                .unwrap()
                .contains("failed: timeout after 600s")
        );
        let err = write_reports(&store, "unknown", &dir.path().join("out2")).unwrap_err();
        assert!(err.to_string().contains("no finished evaluation"), "{err}");
    }
}
