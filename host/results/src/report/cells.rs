//! Numbers and table cells as every report prints them: QPS, recall,
//! seconds, bytes, parameters, and the columns the tables share.

use crate::leaderboard::LeaderboardRow;
use crate::model::ParamMap;

pub(super) fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

pub(super) fn fmt_qps(v: f64) -> String {
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

pub(super) fn fmt_opt_qps(v: Option<f64>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), fmt_qps)
}

/// A recall to four decimals, truncated rather than rounded so that 0.99996
/// does not read as a perfect 1.0000 (the tiny offset keeps 0.85, stored
/// as 0.8499999…, from reading as 0.8499).
pub(super) fn fmt_recall(v: Option<f64>, none: &str) -> String {
    v.map_or_else(
        || none.to_string(),
        |r| format!("{:.4}", ((r * 1e4) + 1e-6).floor() / 1e4),
    )
}

pub(super) fn fmt_seconds(v: Option<f64>, none: &str) -> String {
    match v {
        None => none.to_string(),
        Some(s) if s < 10.0 => format!("{s:.2} s"),
        Some(s) if s < 100.0 => format!("{s:.1} s"),
        Some(s) => format!("{s:.0} s"),
    }
}

pub(super) fn fmt_bytes(v: Option<u64>, none: &str) -> String {
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

pub(super) fn fmt_params(params: &ParamMap) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A build time with the build's threads when known (`12.3 s (2 thr)`).
pub(super) fn fmt_build(seconds: Option<f64>, threads: Option<u32>, none: &str) -> String {
    let time = fmt_seconds(seconds, none);
    match (seconds, threads) {
        (Some(_), Some(threads)) => format!("{time} ({threads} thr)"),
        _ => time,
    }
}

/// The Build column of a row.
pub(super) fn build_cell(row: &LeaderboardRow, none: &str) -> String {
    fmt_build(row.build_seconds, row.build_threads, none)
}

/// When the row's evaluation finished, to the minute (UTC): `2026-12-05
/// 22:50`.
pub(super) fn measured_cell(row: &LeaderboardRow, none: &str) -> String {
    row.measured_at
        .as_deref()
        .and_then(|at| at.get(..16))
        .map_or_else(|| none.to_string(), |minute| minute.replace('T', " "))
}

/// Marker after the reward of a row whose figures rest on a point whose runs
/// disagreed ([`LeaderboardRow::runs_disagree`]).
pub(super) const DISAGREE_MARK: &str = "*";
/// What [`DISAGREE_MARK`] means; printed under a table that uses it.
pub(super) const DISAGREE_LEGEND: &str = "runs disagreed: recall is the lowest run's";

/// The reward shown in tables, marked when the row's runs disagreed.
pub(super) fn reward_cell(row: &LeaderboardRow) -> String {
    let mark = if row.runs_disagree { DISAGREE_MARK } else { "" };
    format!("{}{mark}", fmt_qps(row.reward))
}

/// The legend of [`DISAGREE_MARK`] (`mark` spells the marker for the
/// format), or nothing when no row carries it.
pub(super) fn disagree_legend<'a>(
    rows: impl IntoIterator<Item = &'a LeaderboardRow>,
    mark: &str,
) -> String {
    if rows.into_iter().any(|r| r.runs_disagree) {
        format!("{mark} {DISAGREE_LEGEND}")
    } else {
        String::new()
    }
}

/// Memory shown in tables: module-reported index memory, else peak RSS.
pub(super) fn memory_cell(row: &LeaderboardRow, none: &str) -> String {
    match (row.index_memory_bytes, row.rss_bytes) {
        (Some(b), _) => fmt_bytes(Some(b), none),
        (None, Some(b)) => format!("{} (RSS)", fmt_bytes(Some(b), none)),
        (None, None) => none.to_string(),
    }
}

/// How the row's variant runs: "native" or "Python bridge" (`missing`
/// when unknown).
pub(super) fn implementation_cell(row: &LeaderboardRow, missing: &'static str) -> &'static str {
    row.implementation.map_or(missing, |i| i.label())
}

/// The leaderboard's name for a row: the variant, and its parent and
/// changed slot when it was derived from another variant.
pub(super) fn variant_label(row: &LeaderboardRow) -> String {
    match &row.lineage {
        Some(l) => format!("{} (from {}, {})", row.variant_name, l.parent, l.slot),
        None => row.variant_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
