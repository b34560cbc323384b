//! `leaderboard.json`.

use super::ReportData;

/// `leaderboard.json`: the whole [`ReportData`], pretty-printed.
pub fn json(data: &ReportData) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(data)? + "\n")
}
