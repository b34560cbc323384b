//! `index.html`: one self-contained page (inline CSS, the SVG plot inlined).

use std::fmt::Write as _;

use super::cells::{
    DISAGREE_LEGEND, DISAGREE_MARK, build_cell, disagree_legend, fmt_build, fmt_bytes, fmt_opt_qps,
    fmt_params, fmt_qps, fmt_recall, implementation_cell, measured_cell, memory_cell, reward_cell,
    variant_label,
};
use super::lineage::{LineageNode, lineage_line, lineage_tree};
use super::{BuildDetail, ReportData, VariantDetail};
use crate::leaderboard::sandbox_note;
use crate::model::{RunRecord, Status};

/// Text escaped for HTML (`&`, `<`, `>`, `"`, `'`).
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's inline style sheet.
const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;\
padding:0 1em;color:#222;line-height:1.4}h1,h2,h3{font-weight:600}h3{font-size:1.05em}table{border-collapse:collapse;margin:.6em 0 1.2em;\
font-size:.92em}th,td{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}th{background:#f4f4f4}\
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.failed td{color:#a33}tr.skipped td{color:#888}\
.note{color:#555;font-size:.92em}details{margin:.4em 0;border:1px solid #e4e4e4;border-radius:4px;padding:.3em .7em}\
summary{cursor:pointer;font-weight:600}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em;\
max-height:30em}svg{max-width:100%;height:auto}code{font-size:.9em}";

/// The CSS class of a leaderboard row of this status.
fn row_class(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed | Status::Running => "failed",
        Status::Skipped => "skipped",
    }
}

/// `index.html`: one self-contained page (inline CSS, the SVG plot inlined,
/// no external resources) with the leaderboard, the per-variant build sets
/// and sweep points in collapsible sections, and the environment.
pub fn html(data: &ReportData, svg: &str) -> String {
    let scope = &data.scope;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>annvil leaderboard: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>Leaderboard: {}</h1>\n<p class=\"note\">{}</p>\n",
        esc(&scope.dataset_name),
        esc(&scope.dataset_name),
        esc(&data.explanation)
    );

    leaderboard_html(&mut h, data);
    lineage_section_html(&mut h, data);

    h.push_str("<h2>QPS vs recall</h2>\n<p class=\"note\">Each line is the Pareto frontier of the build set shown \
                in the leaderboard; the shaded band is the recall range the reward averages over.</p>\n");
    h.push_str(svg.trim_start_matches(|c: char| c != '<').trim());
    h.push('\n');

    h.push_str("<h2>Variants</h2>\n");
    for v in &data.variants {
        variant_html(&mut h, v);
    }

    h.push_str("<h2>Environment</h2>\n");
    for run in &data.runs {
        run_html(&mut h, run);
    }
    let _ = write!(
        h,
        "<p class=\"note\">Dataset hash <code>{}</code>, config key <code>{}</code>, config <code>{}</code>.</p>\n\
         </body>\n</html>\n",
        esc(&scope.dataset_hash),
        esc(&scope.config_key),
        esc(&scope.config.canonical_json())
    );
    h
}

/// The ranked table, with the legend of its marks.
fn leaderboard_html(h: &mut String, data: &ReportData) {
    h.push_str(
        "<table>\n<tr><th>Rank</th><th>Variant</th><th>Runs as</th><th>Reward</th><th>QPS@0.90</th><th>QPS@0.95</th>\
         <th>QPS@0.99</th><th>Max recall</th><th>Build time</th><th>Memory</th><th>Measured (UTC)</th><th>Status</th><th>Build params</th></tr>\n",
    );
    for r in data.rows() {
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            row_class(r.status),
            r.rank,
            esc(&variant_label(r)),
            implementation_cell(r, "—"),
            esc(&reward_cell(r)),
            fmt_opt_qps(r.qps_at_090, "—"),
            fmt_opt_qps(r.qps_at_095, "—"),
            fmt_opt_qps(r.qps_at_099, "—"),
            fmt_recall(r.max_recall, "—"),
            esc(&build_cell(r, "—")),
            esc(&memory_cell(r, "—")),
            esc(&measured_cell(r, "—")),
            esc(&r.status_text),
            esc(&fmt_params(&r.build_params)),
        );
    }
    h.push_str("</table>\n");
    let legend = disagree_legend(data.rows(), DISAGREE_MARK);
    if !legend.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&legend));
    }
}

/// The lineage tree of the leaderboard, when a variant was derived.
fn lineage_section_html(h: &mut String, data: &ReportData) {
    let tree = lineage_tree(data);
    if !tree.is_empty() {
        h.push_str("<h2>Lineage</h2>\n<p class=\"note\">Each derived variant under its parent: the slot it \
                    changed and the reward before and after, both from this leaderboard.</p>\n<ul>\n");
        for node in &tree {
            lineage_html(h, node);
        }
        h.push_str("</ul>\n");
    }
}

/// The lineage tree under `node` as nested list items.
fn lineage_html(h: &mut String, node: &LineageNode) {
    let _ = write!(h, "<li>{}", esc(&lineage_line(node)));
    if !node.children.is_empty() {
        h.push_str("<ul>");
        for child in &node.children {
            lineage_html(h, child);
        }
        h.push_str("</ul>");
    }
    h.push_str("</li>\n");
}

/// One variant's collapsible section: its build sets with their points
/// and logs.
fn variant_html(h: &mut String, v: &VariantDetail) {
    let r = &v.row;
    let _ = writeln!(
        h,
        "<details><summary>{}. {} — reward {} ({})</summary>\n<p class=\"note\">Variant hash <code>{}</code>; \
         {} build set(s).</p>",
        r.rank,
        esc(&r.variant_name),
        esc(&reward_cell(r)),
        esc(&r.status_text),
        esc(&r.variant_hash),
        v.builds.len()
    );
    for b in &v.builds {
        let e = &b.evaluation;
        let shown = if e.id == r.evaluation_id {
            " (shown in the leaderboard)"
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<h3>Build <code>{}</code>{shown}</h3>\n<p>Status: {}{}{}; reward {}; build {}; index memory {}; \
             RSS {}; evaluation {} started {}.</p>",
            esc(&fmt_params(&e.key.build_params)),
            e.status,
            sandbox_note(e.sandboxed),
            e.failure_reason
                .as_deref()
                .map(|reason| format!(
                    " — {}{}",
                    esc(reason),
                    e.failure_detail
                        .as_deref()
                        .filter(|d| !d.is_empty())
                        .map(|d| format!(": {}", esc(d)))
                        .unwrap_or_default()
                ))
                .unwrap_or_default(),
            fmt_qps(b.summary.reward),
            esc(&fmt_build(e.build_seconds, e.build_threads, "—")),
            fmt_bytes(e.index_memory_bytes, "—"),
            fmt_bytes(e.rss_bytes, "—"),
            e.id,
            esc(&e.started_at),
        );
        if !b.points.is_empty() {
            points_html(h, b);
        }
        if let Some(log) = e.log.as_deref().filter(|l| !l.is_empty()) {
            let _ = writeln!(
                h,
                "<details><summary>Log</summary><pre>{}</pre></details>",
                esc(log)
            );
        }
    }
    h.push_str("</details>\n");
}

/// The sweep points of one build set.
fn points_html(h: &mut String, b: &BuildDetail) {
    h.push_str(
        "<table>\n<tr><th>Search params</th><th>Recall</th><th>Recall min–max</th><th>QPS</th><th>p50 µs</th>\
         <th>p95 µs</th><th>p99 µs</th><th>Dist. comps/query</th><th>Runs</th><th>Mode</th><th>Notes</th></tr>\n",
    );
    for p in &b.points {
        let mut notes = Vec::new();
        if p.on_frontier(&b.summary) {
            notes.push("frontier".to_string());
        }
        if p.runs_disagree {
            notes.push(DISAGREE_LEGEND.to_string());
        }
        if p.invalid_queries > 0 {
            notes.push(format!("{} invalid queries (excluded)", p.invalid_queries));
        }
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"n\">{:.4}</td><td class=\"n\">{:.4}–{:.4}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&fmt_params(&p.search_params)),
            p.recall,
            p.recall_min,
            p.recall_max,
            fmt_qps(p.qps),
            p.latency_p50_us,
            p.latency_p95_us,
            p.latency_p99_us,
            p.distance_computations
                .map_or_else(|| "—".to_string(), |d| format!("{d:.0}")),
            p.runs,
            esc(&p.mode.label()),
            esc(&notes.join(", ")),
        );
    }
    h.push_str("</table>\n");
}

/// The machine and software of one run.
fn run_html(h: &mut String, run: &RunRecord) {
    let env = &run.environment;
    let _ = writeln!(
        h,
        "<table>\n<tr><th>Run</th><td>{} started {}{}</td></tr>\n<tr><th>Command</th><td><code>{}</code></td></tr>\n\
         <tr><th>CPU</th><td>{} ({} logical cores)</td></tr>\n<tr><th>Memory</th><td>{}</td></tr>\n\
         <tr><th>OS</th><td>{}</td></tr>\n<tr><th>rustc</th><td>{}</td></tr>\n<tr><th>Host</th><td>{}</td></tr>\n\
         <tr><th>Git commit</th><td><code>{}</code></td></tr>",
        run.id,
        esc(&run.started_at),
        run.finished_at.as_deref().map_or_else(
            || ", not finished".to_string(),
            |f| format!(", finished {}", esc(f))
        ),
        esc(&run.command),
        esc(&env.cpu_model),
        env.logical_cores,
        fmt_bytes(Some(env.memory_bytes), "—"),
        esc(&env.os),
        esc(&env.rustc_version),
        esc(&env.host_version),
        esc(env.git_commit.as_deref().unwrap_or("unknown")),
    );
    for (k, v) in &env.extra {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    let _ = writeln!(
        h,
        "<tr><th>CPU flags</th><td><details><summary>{} flags</summary><code>{}</code></details></td></tr>\n</table>",
        env.cpu_flags.len(),
        esc(&env.cpu_flags.join(" "))
    );
}
