//! Reports regenerated from the results database: Markdown, JSON and CSV
//! leaderboards, the QPS–recall plot (SVG and PNG) and one self-contained
//! HTML page, plus the plain-text table the host prints at the end of a run.
//!
//! The PNG is drawn with an embedded DejaVu Sans font (see
//! `assets/DejaVuSans-LICENSE.txt`), so no system font or fontconfig is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde::{Deserialize, Serialize};

use crate::reward::{BAND_HIGH, BAND_LOW, RewardSummary};
use crate::store::{
    EvaluationRecord, Leaderboard, LeaderboardRow, RunRecord, Scope, Status, Store, SweepPoint,
    sandbox_note, summarize_points,
};

/// The font embedded for plot text (DejaVu Sans 2.37, Bitstream Vera licence).
static FONT_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Font family name the plots use; the embedded font is registered under it.
const FONT: &str = "sans-serif";
/// Plot size in pixels (SVG and PNG).
const PLOT_SIZE: (u32, u32) = (1000, 640);

/// Distinct colours for the variants' curves (the "tab10" palette).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

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

/// One build-parameter set of a variant, with its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildDetail {
    /// The stored evaluation.
    pub evaluation: EvaluationRecord,
    /// Its sweep points, in stored order.
    pub points: Vec<SweepPoint>,
    /// Reward and frontier of the valid points (no invalid queries).
    pub summary: RewardSummary,
}

/// Everything a report shows about one leaderboard row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantDetail {
    /// The row.
    pub row: LeaderboardRow,
    /// All build sets of the row's variant version, oldest first.
    pub builds: Vec<BuildDetail>,
}

impl VariantDetail {
    /// The build set shown in the leaderboard row.
    pub fn shown_build(&self) -> Option<&BuildDetail> {
        self.builds
            .iter()
            .find(|b| b.evaluation.id == self.row.evaluation_id)
    }
}

/// Everything the reports are rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// Dataset and config.
    pub scope: Scope,
    /// What reward and QPS@x mean, and on what they were measured.
    pub explanation: String,
    /// One entry per leaderboard row, rank order.
    pub variants: Vec<VariantDetail>,
    /// The runs (machines, versions) that produced these results.
    pub runs: Vec<RunRecord>,
}

impl ReportData {
    /// Reads the most recent leaderboard of `dataset` (name or content hash)
    /// and everything behind it from `store`.
    pub fn collect(store: &Store, dataset: &str) -> anyhow::Result<Self> {
        let leaderboard = store.leaderboard(dataset)?.ok_or_else(|| {
            anyhow!(
                "no finished evaluation of dataset {dataset:?} in {}",
                store.path().display()
            )
        })?;
        Self::from_leaderboard(store, leaderboard)
    }

    /// Reads everything behind an already computed leaderboard.
    pub fn from_leaderboard(store: &Store, leaderboard: Leaderboard) -> anyhow::Result<Self> {
        let runs = store.runs_of(&leaderboard)?;
        let mut variants = Vec::with_capacity(leaderboard.rows.len());
        for row in leaderboard.rows {
            let mut builds = Vec::with_capacity(row.evaluation_ids.len());
            for id in &row.evaluation_ids {
                let evaluation = store.evaluation(*id)?;
                let points = store.sweep_points(*id)?;
                let summary = summarize_points(&points);
                builds.push(BuildDetail {
                    evaluation,
                    points,
                    summary,
                });
            }
            variants.push(VariantDetail { row, builds });
        }
        Ok(Self {
            explanation: explanation(&leaderboard.scope),
            scope: leaderboard.scope,
            variants,
            runs,
        })
    }

    /// The leaderboard rows, rank order.
    pub fn rows(&self) -> impl Iterator<Item = &LeaderboardRow> {
        self.variants.iter().map(|v| &v.row)
    }
}

/// The explanation line printed under every leaderboard.
pub fn explanation(scope: &Scope) -> String {
    format!(
        "Reward = mean over recall r in [{BAND_LOW:.2}, {BAND_HIGH:.2}] of Q(r), the highest QPS among \
         sweep points with recall >= r (integrated exactly; 0 where recall {BAND_LOW:.2} is never reached). \
         QPS@x = Q(x); \"—\" means recall x was never reached. QPS is the best of R runs. \
         Max recall is the highest recall of any sweep point. \
         Dataset {} ({}), {}, config {}.",
        scope.dataset_name,
        short_hash(&scope.dataset_hash),
        scope.config.describe(),
        scope.config_key
    )
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

// ---------------------------------------------------------------- formatting

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn fmt_qps(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_opt_qps(v: Option<f64>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), fmt_qps)
}

/// A recall to four decimals, truncated rather than rounded so that 0.99996
/// does not read as a perfect 1.0000 (the tiny offset keeps 0.85, stored
/// as 0.8499999…, from reading as 0.8499).
fn fmt_recall(v: Option<f64>, none: &str) -> String {
    v.map_or_else(
        || none.to_string(),
        |r| format!("{:.4}", ((r * 1e4) + 1e-6).floor() / 1e4),
    )
}

fn fmt_seconds(v: Option<f64>, none: &str) -> String {
    match v {
        None => none.to_string(),
        Some(s) if s < 10.0 => format!("{s:.2} s"),
        Some(s) if s < 100.0 => format!("{s:.1} s"),
        Some(s) => format!("{s:.0} s"),
    }
}

fn fmt_bytes(v: Option<u64>, none: &str) -> String {
    let Some(b) = v else {
        return none.to_string();
    };
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut value = b as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn fmt_params(params: &crate::store::Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A build time with the build's threads when known (`12.3 s (2 thr)`).
fn fmt_build(seconds: Option<f64>, threads: Option<u32>, none: &str) -> String {
    let time = fmt_seconds(seconds, none);
    match (seconds, threads) {
        (Some(_), Some(threads)) => format!("{time} ({threads} thr)"),
        _ => time,
    }
}

/// The Build column of a row.
fn build_cell(row: &LeaderboardRow, none: &str) -> String {
    fmt_build(row.build_seconds, row.build_threads, none)
}

/// Marker after the reward of a row whose figures rest on a point whose runs
/// disagreed ([`LeaderboardRow::runs_disagree`]).
const DISAGREE_MARK: &str = "*";
/// What [`DISAGREE_MARK`] means; printed under a table that uses it.
const DISAGREE_LEGEND: &str = "runs disagreed: recall is the lowest run's";

/// The reward shown in tables, marked when the row's runs disagreed.
fn reward_cell(row: &LeaderboardRow) -> String {
    let mark = if row.runs_disagree { DISAGREE_MARK } else { "" };
    format!("{}{mark}", fmt_qps(row.reward))
}

/// The legend of [`DISAGREE_MARK`] (`mark` spells the marker for the
/// format), or nothing when no row carries it.
fn disagree_legend<'a>(rows: impl IntoIterator<Item = &'a LeaderboardRow>, mark: &str) -> String {
    if rows.into_iter().any(|r| r.runs_disagree) {
        format!("{mark} {DISAGREE_LEGEND}")
    } else {
        String::new()
    }
}

/// Memory shown in tables: module-reported index memory, else peak RSS.
fn memory_cell(row: &LeaderboardRow, none: &str) -> String {
    match (row.index_memory_bytes, row.rss_bytes) {
        (Some(b), _) => fmt_bytes(Some(b), none),
        (None, Some(b)) => format!("{} (RSS)", fmt_bytes(Some(b), none)),
        (None, None) => none.to_string(),
    }
}

// ---------------------------------------------------------------- text tables

/// Width the terminal table aims to fit: its Status column wraps so that a
/// long failure or install hint does not stretch the table and its rule.
const TERMINAL_WIDTH: usize = 100;
/// The Status column wraps at no less than this width, however wide the
/// other columns are.
const MIN_STATUS_WIDTH: usize = 40;

/// The plain-text ranked table the host prints at the end of a run: a title
/// line, a header, a rule as wide as the table, one aligned line per variant
/// (numbers right-aligned; a long status wraps within its column) and the
/// explanation.
pub fn terminal_table(leaderboard: &Leaderboard) -> String {
    let header = [
        "Rank",
        "Variant",
        "Reward",
        "QPS@0.90",
        "QPS@0.95",
        "QPS@0.99",
        "Max recall",
        "Build",
        "Memory",
        "Status",
    ];
    let right = [true, false, true, true, true, true, true, true, true, false];
    let mut rows: Vec<[String; 10]> = leaderboard
        .rows
        .iter()
        .map(|r| {
            [
                r.rank.to_string(),
                variant_label(r),
                reward_cell(r),
                fmt_opt_qps(r.qps_at_090, "-"),
                fmt_opt_qps(r.qps_at_095, "-"),
                fmt_opt_qps(r.qps_at_099, "-"),
                fmt_recall(r.max_recall, "-"),
                build_cell(r, "-"),
                memory_cell(r, "-"),
                r.status_text.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(&row[..9]) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Where the Status column starts; it wraps to fit the table's width.
    let indent: usize = widths[..9].iter().map(|w| w + 2).sum();
    let status_wrap = TERMINAL_WIDTH.saturating_sub(indent).max(MIN_STATUS_WIDTH);
    for row in &mut rows {
        row[9] = wrap(&row[9], status_wrap).trim_end().to_string();
        let longest = row[9].lines().map(|l| l.chars().count()).max();
        widths[9] = widths[9].max(longest.unwrap_or(0));
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i + 1 == cells.len() {
                // The last column is left-aligned and unpadded; its
                // continuation lines start under it.
                s.push_str(&cell.replace('\n', &format!("\n{}", " ".repeat(indent))));
                continue;
            }
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if right[i] {
                s.push_str(&pad);
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&pad);
            }
        }
        s.push('\n');
        s
    };
    let scope = &leaderboard.scope;
    let mut out = format!(
        "Leaderboard: {} ({})\n",
        scope.dataset_name,
        scope.config.describe()
    );
    out.push_str(&line(&header.map(str::to_string)));
    out.push_str(&"-".repeat(indent + widths[9]));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
    }
    if rows.is_empty() {
        out.push_str("(no variants)\n");
    }
    let legend = disagree_legend(&leaderboard.rows, DISAGREE_MARK);
    if !legend.is_empty() {
        out.push_str(&legend);
        out.push('\n');
    }
    out.push_str(&wrap(&explanation(scope).replace('—', "-"), TERMINAL_WIDTH));
    out
}

/// Greedy word wrap to lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out.push('\n');
    out
}

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// `leaderboard.md`: title, explanation, ranked table.
pub fn markdown(data: &ReportData) -> String {
    let scope = &data.scope;
    let mut out = format!("# Leaderboard: {}\n\n", md_cell(&scope.dataset_name));
    let _ = writeln!(out, "{}\n", md_cell(&data.explanation));
    out.push_str("| Rank | Variant | Reward | QPS@0.90 | QPS@0.95 | QPS@0.99 | Max recall | Build time | Memory | Status | Build params |\n");
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for r in data.rows() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.rank,
            md_cell(&variant_label(r)),
            reward_cell(r),
            fmt_opt_qps(r.qps_at_090, "—"),
            fmt_opt_qps(r.qps_at_095, "—"),
            fmt_opt_qps(r.qps_at_099, "—"),
            fmt_recall(r.max_recall, "—"),
            build_cell(r, "—"),
            memory_cell(r, "—"),
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

/// The leaderboard's name for a row: the variant, and its parent and
/// changed slot when it was derived from another variant.
fn variant_label(row: &LeaderboardRow) -> String {
    match &row.lineage {
        Some(l) => format!("{} (from {}, {})", row.variant_name, l.parent, l.slot),
        None => row.variant_name.clone(),
    }
}

/// A variant in the lineage tree, with its children.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageNode {
    /// Variant name.
    pub name: String,
    /// The slot changed relative to the parent (None for a root).
    pub slot: Option<String>,
    /// Reward in this leaderboard (None when not in it).
    pub reward: Option<f64>,
    /// The parent's reward in this leaderboard.
    pub parent_reward: Option<f64>,
    /// Derived variants, best reward first.
    pub children: Vec<LineageNode>,
}

/// The trees of derived variants in a report: every row with a lineage
/// hangs under its parent; roots are the ancestors with no lineage of
/// their own. Rows unrelated to any derivation are left out.
pub fn lineage_tree(data: &ReportData) -> Vec<LineageNode> {
    let reward: BTreeMap<&str, f64> = data
        .rows()
        .filter(|r| r.status == Status::Ok)
        .map(|r| (r.variant_name.as_str(), r.reward))
        .collect();
    let mut children: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    let mut derived: BTreeSet<&str> = BTreeSet::new();
    for r in data.rows() {
        if let Some(l) = &r.lineage {
            children
                .entry(l.parent.as_str())
                .or_default()
                .push((r.variant_name.as_str(), l.slot.as_str()));
            derived.insert(r.variant_name.as_str());
        }
    }
    fn build(
        name: &str,
        slot: Option<&str>,
        parent: Option<&str>,
        reward: &BTreeMap<&str, f64>,
        children: &BTreeMap<&str, Vec<(&str, &str)>>,
        depth: usize,
    ) -> LineageNode {
        let mut kids: Vec<LineageNode> = match children.get(name) {
            // Depth bound: a lineage cycle in hand-written yaml cannot loop.
            Some(list) if depth < 64 => list
                .iter()
                .map(|(child, slot)| {
                    build(child, Some(slot), Some(name), reward, children, depth + 1)
                })
                .collect(),
            _ => Vec::new(),
        };
        kids.sort_by(|a, b| {
            b.reward
                .unwrap_or(-1.0)
                .total_cmp(&a.reward.unwrap_or(-1.0))
                .then_with(|| a.name.cmp(&b.name))
        });
        LineageNode {
            name: name.to_owned(),
            slot: slot.map(str::to_owned),
            reward: reward.get(name).copied(),
            parent_reward: parent.and_then(|p| reward.get(p).copied()),
            children: kids,
        }
    }
    children
        .keys()
        .filter(|parent| !derived.contains(*parent))
        .map(|root| build(root, None, None, &reward, &children, 0))
        .collect()
}

fn lineage_line(node: &LineageNode) -> String {
    let reward = node.reward.map_or("not ranked here".to_string(), fmt_qps);
    match (&node.slot, node.parent_reward, node.reward) {
        (Some(slot), Some(before), Some(after)) if before > 0.0 => format!(
            "{}: {slot} changed, reward {} → {} ({:.2}× the parent)",
            node.name,
            fmt_qps(before),
            fmt_qps(after),
            after / before
        ),
        (Some(slot), _, _) => format!("{}: {slot} changed, reward {reward}", node.name),
        (None, _, _) => format!("{}: reward {reward}", node.name),
    }
}

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

/// Name prefix of the peer variants (the libraries users already run).
pub const PEER_PREFIX: &str = "peer-";

/// One figure of a build set's summary, when it has it.
type BuildFigure = fn(&RewardSummary) -> Option<f64>;

/// How the best own variant compares with the best peer in one leaderboard
/// (issue 4's bar): ratios of reward, QPS@0.95 and QPS@0.99, each taken at
/// the best build set of either side for that figure (a peer is compared at
/// its best parameters), and of build time of the best own variant against
/// `peer-hnswlib`, both at the build set the leaderboard shows.
fn peer_comparison(data: &ReportData) -> Option<String> {
    // Every successful build set: (variant, its label, the set).
    let sets: Vec<(&VariantDetail, String, &BuildDetail)> = data
        .variants
        .iter()
        .flat_map(|v| {
            v.builds
                .iter()
                .filter(|b| b.evaluation.status == Status::Ok)
                .map(move |b| {
                    let name = &v.row.variant_name;
                    let params = fmt_params(&b.evaluation.key.build_params);
                    let label = if v.builds.len() > 1 && !params.is_empty() {
                        format!("`{name}` ({params})")
                    } else {
                        format!("`{name}`")
                    };
                    (v, label, b)
                })
        })
        .collect();
    let best = |own: bool, figure: BuildFigure| {
        sets.iter()
            .filter(|(v, ..)| v.row.variant_name.starts_with(PEER_PREFIX) != own)
            .filter_map(|(_, label, b)| Some((figure(&b.summary)?, label.as_str())))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let mut lines = Vec::new();
    let figures: [(&str, BuildFigure); 3] = [
        ("reward", |s| Some(s.reward)),
        ("QPS@0.95", |s| s.qps_at_095),
        ("QPS@0.99", |s| s.qps_at_099),
    ];
    for (label, figure) in figures {
        if let (Some((own, own_name)), Some((peer, peer_name))) =
            (best(true, figure), best(false, figure))
            && peer > 0.0
        {
            lines.push(format!(
                "- {label}: best own {own_name} {} vs best peer {peer_name} {} = **{:.2}×**",
                fmt_qps(own),
                fmt_qps(peer),
                own / peer
            ));
        }
    }
    let ok: Vec<&LeaderboardRow> = data.rows().filter(|r| r.status == Status::Ok).collect();
    let hnswlib = ok
        .iter()
        .find(|r| r.variant_name == "peer-hnswlib")
        .and_then(|r| r.build_seconds);
    let best_own = ok
        .iter()
        .filter(|r| !r.variant_name.starts_with(PEER_PREFIX))
        .max_by(|a, b| a.reward.total_cmp(&b.reward));
    if let (Some(own), Some(peer_build)) = (best_own, hnswlib)
        && let Some(own_build) = own.build_seconds
    {
        lines.push(format!(
            "- build time: `{}` {} vs `peer-hnswlib` {} = {:.2}×",
            own.variant_name,
            fmt_seconds(Some(own_build), "—"),
            fmt_seconds(Some(peer_build), "—"),
            own_build / peer_build
        ));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// One section of `docs/BENCHMARKS.md`: a leaderboard with the figures
/// behind it, its plot (`plot`: a path relative to the document), the
/// comparison with the peers, the commands that produced it and the
/// machines they ran on.
pub fn benchmark_section(data: &ReportData, plot: &str) -> String {
    let scope = &data.scope;
    let mut out = format!(
        "## {} — {}\n\n",
        md_cell(&scope.dataset_name),
        scope.config.describe()
    );
    // The leaderboard without its own title.
    let board = markdown(data);
    let body = board
        .split_once("\n\n")
        .map_or(board.as_str(), |(_, rest)| rest);
    out.push_str(&body.replace("\n## Lineage", "\n### Lineage"));
    if let Some(comparison) = peer_comparison(data) {
        let _ = writeln!(
            out,
            "\nBest own variant against the best peer:\n\n{comparison}"
        );
    }
    let _ = writeln!(
        out,
        "\n![QPS vs recall, {}]({plot})\n",
        md_cell(&scope.dataset_name)
    );
    let mut commands: Vec<&str> = data.runs.iter().map(|r| r.command.as_str()).collect();
    commands.dedup();
    out.push_str("Produced by:\n\n```sh\n");
    for command in commands {
        let _ = writeln!(out, "{command}");
    }
    out.push_str("```\n\n");
    let mut machines: Vec<String> = data
        .runs
        .iter()
        .map(|r| {
            let e = &r.environment;
            format!(
                "{} ({} logical cores, {}), {}, {}, host {}{}",
                e.cpu_model,
                e.logical_cores,
                fmt_bytes(Some(e.memory_bytes), "?"),
                e.os,
                e.rustc_version,
                e.host_version,
                e.git_commit
                    .as_deref()
                    .map(|c| format!(", commit {}", short_hash(c)))
                    .unwrap_or_default()
            )
        })
        .collect();
    machines.sort();
    machines.dedup();
    out.push_str("Machine:\n\n");
    for m in machines {
        let _ = writeln!(out, "- {}", md_cell(&m));
    }
    out.push('\n');
    out
}

/// `leaderboard.json`: the whole [`ReportData`], pretty-printed.
pub fn json(data: &ReportData) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(data)? + "\n")
}

/// One CSV field, quoted per RFC 4180 when it contains a comma, a double
/// quote, CR or LF (inner quotes doubled).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `leaderboard.csv`: RFC 4180 (CRLF line ends, header row); numbers in full
/// precision, empty fields for missing values, build params as a JSON object,
/// booleans as `true`/`false` (`sandboxed` empty when unknown).
pub fn csv(data: &ReportData) -> String {
    let mut out = String::from(
        "rank,variant,variant_hash,status,status_text,reward,qps_at_0.90,qps_at_0.95,qps_at_0.99,\
         max_recall,build_seconds,index_memory_bytes,rss_bytes,build_params,evaluation_id,\
         sandboxed,build_threads,runs_disagree\r\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let opt_u = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in data.rows() {
        let fields = [
            r.rank.to_string(),
            r.variant_name.clone(),
            r.variant_hash.clone(),
            r.status.to_string(),
            r.status_text.clone(),
            r.reward.to_string(),
            opt(r.qps_at_090),
            opt(r.qps_at_095),
            opt(r.qps_at_099),
            opt(r.max_recall),
            opt(r.build_seconds),
            opt_u(r.index_memory_bytes),
            opt_u(r.rss_bytes),
            serde_json::to_string(&r.build_params).unwrap_or_default(),
            r.evaluation_id.0.to_string(),
            r.sandboxed.map(|b| b.to_string()).unwrap_or_default(),
            r.build_threads.map(|t| t.to_string()).unwrap_or_default(),
            r.runs_disagree.to_string(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

// ---------------------------------------------------------------- plots

/// Registers the embedded font with plotters (once per process).
fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_TTF).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded DejaVu Sans font could not be parsed"))
    }
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the QPS-recall plot: {e}")
}

/// What the plot shows of one leaderboard row.
struct Curve {
    name: String,
    note: String,
    frontier: Vec<(f64, f64)>,
}

fn curves(data: &ReportData) -> Vec<Curve> {
    data.variants
        .iter()
        .map(|v| {
            let frontier: Vec<(f64, f64)> = v
                .shown_build()
                .map(|b| {
                    b.summary
                        .frontier
                        .iter()
                        .map(|p| (p.recall, p.qps))
                        .collect()
                })
                .unwrap_or_default();
            let note = if v.row.status != Status::Ok {
                v.row.status.to_string()
            } else if frontier.is_empty() {
                "no valid points".to_string()
            } else {
                format!("reward {}", fmt_qps(v.row.reward))
            };
            Curve {
                name: v.row.variant_name.clone(),
                note,
                frontier,
            }
        })
        .collect()
}

/// How the plot's recall axis is scaled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecallAxis {
    /// logit(r) = ln(r / (1 − r)), as ann-benchmarks draws recall: 0.9,
    /// 0.99 and 0.999 are about evenly spaced, so the high-recall regime where
    /// variants differ most gets a readable share of the width. The axis
    /// ends at [`LOGIT_TOP`]; recall 1 is drawn at that edge.
    #[default]
    Logit,
    /// Linear, from a multiple of 0.05 at or below the lowest recall to 1.
    Linear,
}

/// The highest recall the logit axis shows apart; higher recalls (1 among
/// them) are drawn at its right edge.
pub const LOGIT_TOP: f64 = 0.9999;
/// Labelled ticks of the logit axis (those inside its range).
const LOGIT_TICKS: [f64; 7] = [0.01, 0.1, 0.5, 0.9, 0.99, 0.999, LOGIT_TOP];
/// Unlabelled grid lines of the logit axis.
const LOGIT_MINOR: [f64; 14] = [
    0.02, 0.05, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.95, 0.98, 0.995, 0.998, 0.9995, 0.9998,
];

/// The recall axis as a plotters coordinate: values stay recalls (so the
/// band, the curves and the markers are given in recall), the mapping to
/// pixels applies the scale.
#[derive(Debug, Clone)]
struct RecallCoord {
    axis: RecallAxis,
    /// Recalls are clamped into `low..=high` before mapping.
    low: f64,
    high: f64,
    /// The scaled values at the left and right ends of the axis (a little
    /// beyond `low` and `high`, so edge markers are not cut).
    left: f64,
    right: f64,
}

impl RecallCoord {
    /// The axis for frontier points whose lowest recall is `min_recall`.
    fn new(axis: RecallAxis, min_recall: f64) -> RecallCoord {
        let (low, high) = match axis {
            // The lowest labelled tick at or below the data (0.5 at most).
            RecallAxis::Logit => (
                LOGIT_TICKS[..3]
                    .iter()
                    .rev()
                    .copied()
                    .find(|&t| t <= min_recall)
                    .unwrap_or(LOGIT_TICKS[0]),
                LOGIT_TOP,
            ),
            RecallAxis::Linear => (((min_recall * 20.0).floor() / 20.0).clamp(0.0, 0.8), 1.0),
        };
        let mut coord = RecallCoord {
            axis,
            low,
            high,
            left: 0.0,
            right: 0.0,
        };
        let (a, b) = (coord.scaled(low), coord.scaled(high));
        let pad = (b - a) * 0.02;
        (coord.left, coord.right) = (a - pad, b + pad);
        coord
    }

    /// `recall` clamped to the axis and scaled.
    fn scaled(&self, recall: f64) -> f64 {
        let r = recall.clamp(self.low, self.high);
        match self.axis {
            RecallAxis::Logit => (r / (1.0 - r)).ln(),
            RecallAxis::Linear => r,
        }
    }

    /// The tick label of `recall`: as few decimals as the tick needs.
    fn label(&self, recall: f64) -> String {
        match self.axis {
            RecallAxis::Logit => format!("{recall}"),
            RecallAxis::Linear => format!("{recall:.2}"),
        }
    }

    /// What the axis title adds to "Recall@k".
    fn description(&self) -> &'static str {
        match self.axis {
            RecallAxis::Logit => " (logit scale; recall 1 is drawn at the right edge)",
            RecallAxis::Linear => "",
        }
    }

    /// The `ticks` inside the axis.
    fn within(&self, ticks: impl IntoIterator<Item = f64>) -> Vec<f64> {
        ticks
            .into_iter()
            .filter(|t| (self.low..=self.high).contains(t))
            .collect()
    }
}

impl Ranged for RecallCoord {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let at = (self.scaled(*value) - self.left) / (self.right - self.left);
        limit.0 + (at * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let light = hint.weight().allow_light_points();
        match self.axis {
            RecallAxis::Logit if light => self.within(LOGIT_MINOR),
            RecallAxis::Logit => self.within(LOGIT_TICKS),
            RecallAxis::Linear => {
                let steps = if light { 100 } else { 20 };
                self.within((0..=steps).map(|i| f64::from(i) / f64::from(steps)))
            }
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.low..self.high
    }
}

/// Width of the legend panel right of the chart, pixels.
const LEGEND_WIDTH: u32 = 250;

fn truncate_label(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Draws marker number `shape` (circle, triangle, cross) at `at`.
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    shape: usize,
    at: CT::From,
    color: RGBColor,
) -> anyhow::Result<()> {
    match shape {
        0 => area.draw(&Circle::new(at, 4, color.filled())),
        1 => area.draw(&TriangleMarker::new(at, 5, color.filled())),
        _ => area.draw(&Cross::new(at, 4, color.stroke_width(2))),
    }
    .map_err(plot_err)
}

fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ReportData,
    axis: RecallAxis,
) -> anyhow::Result<()> {
    ensure_font()?;
    root.fill(&WHITE).map_err(plot_err)?;
    let curves = curves(data);
    let all = curves.iter().flat_map(|c| c.frontier.iter().copied());
    let (mut min_recall, mut min_qps, mut max_qps) = (1.0_f64, f64::INFINITY, 0.0_f64);
    for (r, q) in all {
        min_recall = min_recall.min(r);
        min_qps = min_qps.min(q);
        max_qps = max_qps.max(q);
    }
    // Whole decades, so the log axis always carries labelled ticks.
    let (y_low, y_high) = if max_qps > 0.0 {
        (
            10f64.powf((min_qps / 1.2).log10().floor()),
            10f64.powf((max_qps * 1.2).log10().ceil()),
        )
    } else {
        (1.0, 1000.0)
    };
    let x = RecallCoord::new(axis, min_recall);

    let scope = &data.scope;
    let title = format!(
        "QPS vs recall: {} (k={}, {})",
        scope.dataset_name,
        scope.config.k,
        scope.config.mode.label()
    );
    let root = root
        .margin(10, 4, 4, 10)
        .titled(&title, (FONT, 22))
        .map_err(plot_err)?;
    let (width, _) = root.dim_in_pixel();
    let (plot_area, legend_area) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x.clone(), (y_low..y_high).log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("Recall@{}{}", scope.config.k, x.description()))
        .y_desc("Queries per second (log scale)")
        .x_label_formatter(&|r| x.label(*r))
        .y_label_formatter(&|y| fmt_qps(*y))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(plot_err)?;

    let band = RGBColor(255, 190, 60);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(BAND_LOW, y_low), (BAND_HIGH, y_high)],
            band.mix(0.15).filled(),
        )))
        .map_err(plot_err)?;
    let plotting = chart.plotting_area();
    for (i, curve) in curves
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.frontier.is_empty())
    {
        let color = PALETTE[i % PALETTE.len()];
        let shape = (i / PALETTE.len()) % 3;
        plotting
            .draw(&PathElement::new(
                curve.frontier.clone(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?;
        for &p in &curve.frontier {
            draw_marker(plotting, shape, p, color)?;
        }
    }

    // Legend panel: the band, then one entry per leaderboard row in rank order.
    let text = (FONT, 14).into_font();
    let small = (FONT, 12).into_font().color(&RGBColor(90, 90, 90));
    let mut y = 28;
    legend_area
        .draw(&Rectangle::new(
            [(10, y - 7), (34, y + 7)],
            band.mix(0.4).filled(),
        ))
        .map_err(plot_err)?;
    legend_area
        .draw(&Text::new(
            format!("reward band {BAND_LOW:.2}-{BAND_HIGH:.2}"),
            (42, y - 8),
            text.clone(),
        ))
        .map_err(plot_err)?;
    y += 34;
    for (i, curve) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if curve.frontier.is_empty() {
            legend_area
                .draw(&Text::new(
                    "—",
                    (14, y - 8),
                    text.clone().color(&RGBColor(150, 150, 150)),
                ))
                .map_err(plot_err)?;
        } else {
            legend_area
                .draw(&PathElement::new(
                    vec![(10, y), (34, y)],
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?;
            draw_marker(&legend_area, (i / PALETTE.len()) % 3, (22, y), color)?;
        }
        legend_area
            .draw(&Text::new(
                truncate_label(&curve.name, 26),
                (42, y - 9),
                text.clone(),
            ))
            .map_err(plot_err)?;
        legend_area
            .draw(&Text::new(
                truncate_label(&curve.note, 30),
                (42, y + 8),
                small.clone(),
            ))
            .map_err(plot_err)?;
        y += 40;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// The QPS–recall plot as an SVG document: each variant's Pareto frontier
/// (of the build set shown in the leaderboard) as a line with markers, QPS on
/// a log scale, recall on `axis`, the reward band shaded, a title with
/// dataset and k, and a legend panel listing every leaderboard row in rank
/// order (variants without valid points, e.g. failed ones, are listed with
/// their status, not drawn).
pub fn svg_plot(data: &ReportData, axis: RecallAxis) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        draw_chart(&root, data, axis)?;
    }
    Ok(svg)
}

/// The same plot as [`svg_plot`], written as a PNG file to `path`.
pub fn png_plot(data: &ReportData, path: &Path, axis: RecallAxis) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    draw_chart(&root, data, axis).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------- HTML

fn esc(s: &str) -> String {
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

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;\
padding:0 1em;color:#222;line-height:1.4}h1,h2,h3{font-weight:600}h3{font-size:1.05em}table{border-collapse:collapse;margin:.6em 0 1.2em;\
font-size:.92em}th,td{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}th{background:#f4f4f4}\
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.failed td{color:#a33}tr.skipped td{color:#888}\
.note{color:#555;font-size:.92em}details{margin:.4em 0;border:1px solid #e4e4e4;border-radius:4px;padding:.3em .7em}\
summary{cursor:pointer;font-weight:600}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em;\
max-height:30em}svg{max-width:100%;height:auto}code{font-size:.9em}";

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

    h.push_str(
        "<table>\n<tr><th>Rank</th><th>Variant</th><th>Reward</th><th>QPS@0.90</th><th>QPS@0.95</th>\
         <th>QPS@0.99</th><th>Max recall</th><th>Build time</th><th>Memory</th><th>Status</th><th>Build params</th></tr>\n",
    );
    for r in data.rows() {
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
            row_class(r.status),
            r.rank,
            esc(&variant_label(r)),
            esc(&reward_cell(r)),
            fmt_opt_qps(r.qps_at_090, "—"),
            fmt_opt_qps(r.qps_at_095, "—"),
            fmt_opt_qps(r.qps_at_099, "—"),
            fmt_recall(r.max_recall, "—"),
            esc(&build_cell(r, "—")),
            esc(&memory_cell(r, "—")),
            esc(&r.status_text),
            esc(&fmt_params(&r.build_params)),
        );
    }
    h.push_str("</table>\n");
    let legend = disagree_legend(data.rows(), DISAGREE_MARK);
    if !legend.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&legend));
    }
    let tree = lineage_tree(data);
    if !tree.is_empty() {
        h.push_str("<h2>Lineage</h2>\n<p class=\"note\">Each derived variant under its parent: the slot it \
                    changed and the reward before and after, both from this leaderboard.</p>\n<ul>\n");
        for node in &tree {
            lineage_html(&mut h, node);
        }
        h.push_str("</ul>\n");
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{env, key, outcome, point};
    use crate::store::{EvaluationOutcome, Failure, RunId};

    fn populated(dir: &Path) -> Store {
        let mut store = Store::open(dir.join("results.sqlite")).unwrap();
        let run: RunId = store
            .begin_run(&env(), "host run --dataset synthetic")
            .unwrap();
        let mut add = |name: &str, build: &[(&str, &str)], points: &[SweepPoint]| {
            let id = store.start_evaluation(&key(name, "h", build), run).unwrap();
            store.finish_evaluation(id, &outcome(), points).unwrap();
        };
        add(
            "hnsw, \"quoted\"",
            &[("M", "16")],
            &[
                point(10, 0.80, 9000.0),
                point(20, 0.90, 6000.0),
                point(40, 0.97, 3000.0),
                point(80, 0.995, 1200.0),
            ],
        );
        add(
            "ivf|flat <b>",
            &[("nlist", "64")],
            &[point(1, 0.86, 20000.0), point(4, 0.93, 8000.0)],
        );
        add(
            "too-fast",
            &[],
            &[point(1, 0.4, 90000.0), point(2, 0.6, 50000.0)],
        );
        let id = store
            .start_evaluation(&key("crashy", "h", &[]), run)
            .unwrap();
        store
            .fail_evaluation(
                id,
                &Failure {
                    reason: "crash: SIGSEGV".to_string(),
                    detail: "worker died, line1\nline2".to_string(),
                    log: Some("building <graph> & stuff".to_string()),
                    sandboxed: Some(false),
                },
            )
            .unwrap();
        store.end_run(run).unwrap();
        store
    }

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
    fn benchmark_section_compares_own_variants_with_peers_and_shows_lineage() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("results.sqlite")).unwrap();
        let run = store.begin_run(&env(), "host evaluate variants/*").unwrap();
        let mut add = |name: &str, qps: f64| {
            let id = store.start_evaluation(&key(name, "h", &[]), run).unwrap();
            let points = [
                point(10, 0.90, qps),
                point(20, 0.96, qps / 2.0),
                point(40, 0.995, qps / 4.0),
            ];
            store.finish_evaluation(id, &outcome(), &points).unwrap();
        };
        add("peer-hnswlib", 1000.0);
        add("hnsw", 900.0);
        add("hnsw-search-tune-001", 1500.0);
        // A second build set of the peer: lower reward, higher QPS@0.99.
        let id = store
            .start_evaluation(&key("peer-hnswlib", "h", &[("M", "32")]), run)
            .unwrap();
        let points = [point(10, 0.90, 400.0), point(40, 0.995, 700.0)];
        store.finish_evaluation(id, &outcome(), &points).unwrap();
        store.end_run(run).unwrap();
        store
            .record_lineage(
                "hnsw-search-tune-001",
                &crate::program::Lineage {
                    parent: "hnsw".into(),
                    slot: "search".into(),
                },
            )
            .unwrap();
        let data = ReportData::collect(&store, "synthetic").unwrap();
        let section = benchmark_section(&data, "benchmarks/synthetic.svg");
        assert!(section.contains("host evaluate variants/*"), "{section}");
        assert!(section.contains("![QPS vs recall"), "{section}");
        assert!(
            section.contains(
                "reward: best own `hnsw-search-tune-001` 1125 vs best peer `peer-hnswlib` 750 = **1.50×**"
            ),
            "{section}"
        );
        // Each figure at the peer's best build set for it.
        assert!(
            section.contains(
                "QPS@0.99: best own `hnsw-search-tune-001` 375 vs best peer `peer-hnswlib` (M=32) 700 = **0.54×**"
            ),
            "{section}"
        );
        assert!(section.contains("(from hnsw, search)"), "{section}");
        let tree = lineage_tree(&data);
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].name, "hnsw");
        assert_eq!(tree[0].children[0].name, "hnsw-search-tune-001");
        let line = lineage_line(&tree[0].children[0]);
        assert!(
            line.contains("search changed") && line.contains("1.67× the parent"),
            "{line}"
        );
    }

    #[test]
    fn reports_mark_unsandboxed_rows_build_threads_and_disagreeing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("results.sqlite")).unwrap();
        let run = store.begin_run(&env(), "host run").unwrap();
        let id = store
            .start_evaluation(&key("flaky", "h", &[]), run)
            .unwrap();
        let unsandboxed = EvaluationOutcome {
            sandboxed: false,
            build_threads: 4,
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
        assert!(
            md.contains("| 1 | flaky | 1000* | 1000 | 1000 | — | 0.9600 | 1.25 s (4 thr) | 10.0 MiB | ok (unsandboxed) |"),
            "{md}"
        );
        assert!(md.contains("| 2 | steady | 500 |"), "{md}");
        assert!(md.contains(&format!("\n\\* {legend}\n")), "{md}");

        let html = fs::read_to_string(&files.html).unwrap();
        assert!(html.contains("<td class=\"n\">1000*</td>"), "{html}");
        assert!(html.contains("<td>ok (unsandboxed)</td>"), "{html}");
        assert!(html.contains("1.25 s (4 thr)"), "{html}");
        assert!(html.contains("Status: ok (unsandboxed);"), "{html}");
        assert!(
            html.contains(&format!("<p class=\"note\">* {}</p>", esc(legend))),
            "{html}"
        );

        let records = parse_csv(&fs::read_to_string(&files.csv).unwrap());
        let column = |name: &str| records[0].iter().position(|c| c == name).unwrap();
        let (sandboxed, threads, disagree) = (
            column("sandboxed"),
            column("build_threads"),
            column("runs_disagree"),
        );
        assert_eq!(
            [
                &records[1][sandboxed],
                &records[1][threads],
                &records[1][disagree]
            ],
            ["false", "4", "true"]
        );
        assert_eq!(
            [
                &records[2][sandboxed],
                &records[2][threads],
                &records[2][disagree]
            ],
            ["true", "2", "false"]
        );

        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&files.json).unwrap()).unwrap();
        let flaky = &json["variants"][0];
        assert_eq!(flaky["row"]["sandboxed"], false);
        assert_eq!(flaky["row"]["build_threads"], 4);
        assert_eq!(flaky["row"]["runs_disagree"], true);
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
    fn csv_fields_are_quoted_per_rfc4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_field(""), "");
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
        assert!(md.contains("| 1 | ivf\\|flat <b> | 7600 |"), "{md}");
        assert!(
            md.contains("| 2 | hnsw, \"quoted\" | 4500 | 6000 | 3000 | 1200 |"),
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
    fn terminal_table_is_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let store = populated(dir.path());
        let lb = store.leaderboard("synthetic").unwrap().unwrap();
        let table = terminal_table(&lb);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("Leaderboard: synthetic (k=10"));
        let header = lines[1];
        let status_col = header.find("Status").unwrap();
        let reward_end = header.find("Reward").unwrap() + "Reward".len();
        assert!(lines[2].chars().all(|c| c == '-'));
        let rows = &lines[3..3 + lb.rows.len()];
        for (row, expected) in rows.iter().zip(&lb.rows) {
            let chars: Vec<char> = row.chars().collect();
            let status: String = chars[status_col..].iter().collect();
            assert_eq!(status, expected.status_text, "{row}");
            assert_eq!(chars[status_col - 1], ' ');
            assert_ne!(chars[reward_end - 1], ' ', "reward right-aligned: {row}");
            assert_eq!(chars[reward_end], ' ');
        }
        assert!(rows[3].contains("crashy") && rows[3].contains("failed: crash: SIGSEGV"));
        assert!(
            rows[0].trim_start().starts_with("1  ivf|flat <b>"),
            "{table}"
        );
        assert!(table.contains("Reward = mean"));
        assert!(
            lines.iter().skip(3 + lb.rows.len()).all(|l| l.len() <= 100),
            "{table}"
        );
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc\n");
        assert_eq!(wrap("toolongword x", 4), "toolongword\nx\n");
        assert!(table.is_ascii(), "plain text only: {table}");
    }

    #[test]
    fn a_long_status_wraps_under_its_column_and_the_rule_spans_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = populated(dir.path());
        let mut lb = store.leaderboard("synthetic").unwrap().unwrap();
        let hint = "skipped: libfaiss-dev missing (/usr/include/faiss/IndexHNSW.h not found); \
                    install with: scripts/setup";
        lb.rows[3].status_text = hint.to_string();
        let table = terminal_table(&lb);
        let lines: Vec<&str> = table.lines().collect();
        let status_col = lines[1].find("Status").unwrap();
        let rule = lines[2];
        assert!(rule.chars().all(|c| c == '-'));
        let body: Vec<&str> = lines[3..]
            .iter()
            .take_while(|l| !l.starts_with("Reward = "))
            .copied()
            .collect();
        let widest = body.iter().chain(&lines[1..2]).map(|l| l.len()).max();
        assert_eq!(Some(rule.len()), widest, "{table}");
        assert!(rule.len() <= status_col + MIN_STATUS_WIDTH, "{table}");
        // The hint continues under the Status column and reads back whole.
        let at = body.iter().position(|l| l.contains("crashy")).unwrap();
        let continued: Vec<&str> = body[at..]
            .iter()
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l[..status_col].trim().is_empty())
            .map(|(_, l)| l[status_col..].trim_end())
            .collect();
        assert!(continued.len() > 1, "{table}");
        assert_eq!(continued.join(" "), hint, "{table}");
    }

    #[test]
    fn the_logit_axis_gives_the_high_recall_regime_a_readable_share() {
        let logit = RecallCoord::new(RecallAxis::Logit, 0.6);
        let linear = RecallCoord::new(RecallAxis::Linear, 0.6);
        let share = |x: &RecallCoord, from: f64, to: f64| {
            f64::from(x.map(&to, (0, 1000)) - x.map(&from, (0, 1000))) / 1000.0
        };
        assert!(share(&linear, 0.95, 0.999) < 0.15);
        assert!(share(&logit, 0.95, 0.999) > 0.35);
        // 0.9, 0.99, 0.999 and 0.9999 are about evenly spaced, and labelled so.
        let steps: Vec<i32> = [0.9, 0.99, 0.999, LOGIT_TOP]
            .windows(2)
            .map(|w| logit.map(&w[1], (0, 1000)) - logit.map(&w[0], (0, 1000)))
            .collect();
        assert!(
            steps.iter().all(|s| (s - steps[0]).abs() * 20 <= steps[0]),
            "{steps:?}"
        );
        let ticks: Vec<String> = logit
            .key_points(plotters::coord::ranged1d::BoldPoints(10))
            .iter()
            .map(|t| logit.label(*t))
            .collect();
        assert_eq!(ticks, ["0.5", "0.9", "0.99", "0.999", "0.9999"]);
        // Recall 1 is drawn at the right edge, inside the axis.
        let edge = logit.map(&1.0, (0, 1000));
        assert_eq!(edge, logit.map(&LOGIT_TOP, (0, 1000)));
        assert!(edge > 950 && edge < 1000);
        // Lower recalls widen the axis down to the next labelled tick.
        assert_eq!(RecallCoord::new(RecallAxis::Logit, 0.3).low, 0.1);
        assert_eq!(RecallCoord::new(RecallAxis::Logit, 0.0).low, 0.01);
        assert!(logit.map(&0.0, (0, 1000)) > 0, "clamped into the axis");
    }

    #[test]
    fn the_plot_draws_either_recall_axis_with_the_band_shaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = populated(dir.path());
        let data = ReportData::collect(&store, "synthetic").unwrap();
        let band = |svg: &str| {
            let c = RGBColor(255, 190, 60);
            svg.matches(&format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2))
                .count()
        };
        // The texts of an SVG document.
        let texts = |svg: &str| -> Vec<String> {
            svg.split("<text")
                .skip(1)
                .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
                .map(str::to_owned)
                .collect()
        };
        let logit = svg_plot(&data, RecallAxis::Logit).unwrap();
        let labels = texts(&logit);
        for label in ["0.9", "0.99", "0.999"] {
            assert!(labels.iter().any(|t| t == label), "{label} in {labels:?}");
        }
        assert!(
            labels.iter().any(|t| t.contains("logit scale")),
            "{labels:?}"
        );
        assert!(band(&logit) >= 2, "the band and its legend swatch");
        let linear = svg_plot(&data, RecallAxis::Linear).unwrap();
        let labels = texts(&linear);
        assert!(labels.iter().any(|t| t == "0.90"), "{labels:?}");
        assert!(!labels.iter().any(|t| t.contains("logit")), "{labels:?}");
        assert!(band(&linear) >= 2);
        assert_eq!(
            write_reports(&store, "synthetic", &dir.path().join("out"))
                .map(|files| fs::read_to_string(files.svg).unwrap())
                .unwrap(),
            logit,
            "the reports draw the logit axis"
        );
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

    #[test]
    fn number_formats() {
        assert_eq!(fmt_qps(12345.6), "12346");
        assert_eq!(fmt_qps(12.34), "12.3");
        assert_eq!(fmt_qps(1.234), "1.23");
        assert_eq!(fmt_bytes(Some(512), "-"), "512 B");
        assert_eq!(fmt_bytes(Some(3 << 29), "-"), "1.5 GiB");
        assert_eq!(fmt_bytes(None, "-"), "-");
        assert_eq!(fmt_seconds(Some(1.234), "-"), "1.23 s");
        assert_eq!(fmt_seconds(Some(123.4), "-"), "123 s");
        assert_eq!(fmt_recall(Some(0.99996), "-"), "0.9999");
        assert_eq!(fmt_recall(Some(1.0), "-"), "1.0000");
        assert_eq!(fmt_recall(Some(0.85), "-"), "0.8500");
        assert_eq!(fmt_recall(None, "-"), "-");
    }
}
