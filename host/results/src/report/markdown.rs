//! `leaderboard.md`.

use std::fmt::Write as _;

use super::ReportData;
use super::cells::{
    DISAGREE_MARK, build_cell, disagree_legend, fmt_opt_qps, fmt_params, fmt_recall,
    implementation_cell, measured_cell, memory_cell, reward_cell, variant_label,
};
use super::lineage::{LineageNode, lineage_line, lineage_tree};

/// Text made safe for a Markdown table cell (pipes and backslashes escaped,
/// line breaks as spaces).
pub(super) fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// `leaderboard.md`: title, explanation, ranked table.
pub fn markdown(data: &ReportData) -> String {
    let scope = &data.scope;
    let mut out = format!("# Leaderboard: {}\n\n", md_cell(&scope.dataset_name));
    let _ = writeln!(out, "{}\n", md_cell(&data.explanation));
    out.push_str("| Rank | Variant | Runs as | Reward | QPS@0.90 | QPS@0.95 | QPS@0.99 | Max recall | Build time | Memory | Measured (UTC) | Status | Build params |\n");
    out.push_str("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n");
    for r in data.rows() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.rank,
            md_cell(&variant_label(r)),
            implementation_cell(r, "—"),
            reward_cell(r),
            fmt_opt_qps(r.qps_at_090, "—"),
            fmt_opt_qps(r.qps_at_095, "—"),
            fmt_opt_qps(r.qps_at_099, "—"),
            fmt_recall(r.max_recall, "—"),
            build_cell(r, "—"),
            memory_cell(r, "—"),
            measured_cell(r, "—"),
            md_cell(&r.status_text),
            md_cell(&fmt_params(&r.build_params)),
        );
    }
    if data.variants.is_empty() {
        out.push_str("\n(no variants)\n");
    }
    // Escaped: a line starting with `* ` would be a list item.
    let legend = disagree_legend(data.rows(), &format!("\\{DISAGREE_MARK}"));
    if !legend.is_empty() {
        let _ = writeln!(out, "\n{legend}");
    }
    let tree = lineage_tree(data);
    if !tree.is_empty() {
        out.push_str(
            "\n## Lineage\n\nEach derived variant under its parent: the slot it changed, and \
                      the reward before (parent) and after, both from this leaderboard.\n\n",
        );
        for node in &tree {
            lineage_markdown(&mut out, node, 0);
        }
    }
    out
}

/// The lineage tree under `node` as a nested Markdown list.
fn lineage_markdown(out: &mut String, node: &LineageNode, depth: usize) {
    let _ = writeln!(
        out,
        "{}- {}",
        "  ".repeat(depth),
        md_cell(&lineage_line(node))
    );
    for child in &node.children {
        lineage_markdown(out, child, depth + 1);
    }
}
