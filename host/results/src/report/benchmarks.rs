//! Sections of `docs/BENCHMARKS.md`: a leaderboard with its plot, the
//! comparison of the best own variant with the best peer, the table of
//! one-change ratios ("what made the difference"), the commands that
//! produced it and the machines they ran on.

use std::fmt::Write as _;

use super::cells::{fmt_bytes, fmt_params, fmt_qps, fmt_seconds, short_hash};
use super::markdown::{markdown, md_cell};
use super::{BuildDetail, ReportData, VariantDetail};
use crate::leaderboard::LeaderboardRow;
use crate::model::{RunRecord, Status};
use crate::reward::RewardSummary;

/// Name prefix of the peer variants (the libraries users already run).
pub const PEER_PREFIX: &str = "peer-";

/// The peers the best own variant's build time is compared with, first
/// present first: GLASS (the graph library annvil's best variants descend
/// from), else hnswlib.
const BUILD_TIME_REFERENCES: [&str; 2] = ["peer-glass", "peer-hnswlib"];

/// One figure of a build set's summary, when it has it.
type BuildFigure = fn(&RewardSummary) -> Option<f64>;

/// How the best own variant compares with the best peer in one leaderboard
/// (issue 4's bar): ratios of reward, QPS@0.95 and QPS@0.99, each taken at
/// the best build set of either side for that figure (a peer is compared at
/// its best parameters), and of build time of the best own variant against
/// the first of [`BUILD_TIME_REFERENCES`] measured, both at the build set the
/// leaderboard shows (the same build threads for both).
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
    let reference = BUILD_TIME_REFERENCES.iter().find_map(|name| {
        ok.iter()
            .find(|r| r.variant_name == *name)
            .and_then(|r| Some((*name, r.build_seconds?)))
    });
    let best_own = ok
        .iter()
        .filter(|r| !r.variant_name.starts_with(PEER_PREFIX))
        .max_by(|a, b| a.reward.total_cmp(&b.reward));
    if let (Some(own), Some((peer, peer_build))) = (best_own, reference)
        && let Some(own_build) = own.build_seconds
    {
        lines.push(format!(
            "- build time: `{}` {} vs `{peer}` {} = {:.2}×",
            own.variant_name,
            fmt_seconds(Some(own_build), "—"),
            fmt_seconds(Some(peer_build), "—"),
            own_build / peer_build
        ));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The "what made the difference" table: every variant of the leaderboard
/// whose parent (its `lineage:`) is in the same leaderboard, with its
/// reward, QPS@0.95 and QPS@0.99 as ratios to the parent's, so each
/// technique is measured alone against the variant it changes. `None` when
/// no such pair is present.
fn one_change_table(data: &ReportData) -> Option<String> {
    let ok: Vec<&LeaderboardRow> = data.rows().filter(|r| r.status == Status::Ok).collect();
    let mut pairs: Vec<(&LeaderboardRow, &LeaderboardRow)> = ok
        .iter()
        .filter_map(|child| {
            let parent_name = &child.lineage.as_ref()?.parent;
            let parent = ok.iter().find(|r| &r.variant_name == parent_name)?;
            Some((*child, *parent))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    pairs.sort_by(|a, b| {
        (&a.1.variant_name, &a.0.variant_name).cmp(&(&b.1.variant_name, &b.0.variant_name))
    });
    let ratio = |child: Option<f64>, parent: Option<f64>| match (child, parent) {
        (Some(c), Some(p)) if p > 0.0 => {
            format!("{} / {} = **{:.2}×**", fmt_qps(c), fmt_qps(p), c / p)
        }
        _ => "—".to_owned(),
    };
    let mut out = String::from(
        "Each variant below changes one choice of its parent (`lineage:` in its variant.yaml); \
         both were measured in this leaderboard. Each figure is the variant's over its parent's: \
         above 1× the change pays. \"—\" where either never reached that recall.\n\n\
         | Change | Variant | Parent | Slot | Reward | QPS@0.95 | QPS@0.99 |\n\
         |---|---|---|---|---:|---:|---:|\n",
    );
    for (child, parent) in pairs {
        let lineage = child.lineage.as_ref().expect("paired rows have a lineage");
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {} | {} | {} | {} |",
            md_cell(lineage.change.as_deref().unwrap_or("—")),
            md_cell(&child.variant_name),
            md_cell(&parent.variant_name),
            md_cell(&lineage.slot),
            ratio(Some(child.reward), Some(parent.reward)),
            ratio(child.qps_at_095, parent.qps_at_095),
            ratio(child.qps_at_099, parent.qps_at_099),
        );
    }
    Some(out.trim_end().to_owned())
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
    // Its lineage tree gives way to the table of one-change ratios below.
    let board_only = body
        .split_once("\n## Lineage")
        .map_or(body, |(board, _)| board);
    out.push_str(board_only.trim_end());
    out.push('\n');
    if let Some(comparison) = peer_comparison(data) {
        let _ = writeln!(
            out,
            "\nBest own variant against the best peer:\n\n{comparison}"
        );
    }
    if let Some(table) = one_change_table(data) {
        let _ = writeln!(out, "\n### What made the difference\n\n{table}");
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
    let machines = machines(&data.runs);
    out.push_str("Machine:\n\n");
    for m in machines {
        let _ = writeln!(out, "- {}", md_cell(&m));
    }
    out.push('\n');
    out
}

/// One line per distinct machine and software the `runs` ran on, sorted.
fn machines(runs: &[RunRecord]) -> Vec<String> {
    let mut machines: Vec<String> = runs
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
    machines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{env, key, outcome, point};
    use crate::report::lineage::{lineage_line, lineage_tree};
    use crate::store::Store;

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
                &crate::model::Lineage {
                    parent: "hnsw".into(),
                    slot: "search".into(),
                    change: Some("tuned search".into()),
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
        // The one-change table replaces the lineage tree: reward 1125 / 675,
        // QPS@0.95 750 / 450, QPS@0.99 375 / 225, all 1.67×.
        assert!(!section.contains("### Lineage"), "{section}");
        assert!(
            section.contains("### What made the difference"),
            "{section}"
        );
        assert!(
            section.contains(
                "| tuned search | `hnsw-search-tune-001` | `hnsw` | search | 1125 / 675 = **1.67×** \
                 | 750 / 450 = **1.67×** | 375 / 225 = **1.67×** |"
            ),
            "{section}"
        );
        assert_eq!(section.matches("= **1.67×**").count(), 3, "{section}");
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
}
