//! The plain-text ranked table the host prints at the end of a run.

use super::cells::{
    DISAGREE_MARK, build_cell, disagree_legend, fmt_opt_qps, fmt_recall, memory_cell, reward_cell,
    variant_label,
};
use super::explanation;
use crate::leaderboard::{Leaderboard, LeaderboardRow};

/// Width the terminal table aims to fit: its Status column wraps so that a
/// long failure or install hint does not stretch the table and its rule.
const TERMINAL_WIDTH: usize = 100;
/// The Status column wraps at no less than this width, however wide the
/// other columns are.
const MIN_STATUS_WIDTH: usize = 40;

/// Column titles.
const HEADER: [&str; COLUMNS] = [
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
/// Number of columns.
const COLUMNS: usize = 10;
/// The Status column: the last, left-aligned, unpadded, wrapped.
const STATUS: usize = COLUMNS - 1;
/// Which columns are right-aligned (the numbers).
const RIGHT_ALIGNED: [bool; COLUMNS] =
    [true, false, true, true, true, true, true, true, true, false];

/// The plain-text ranked table the host prints at the end of a run: a title
/// line, a header, a rule as wide as the table, one aligned line per variant
/// (numbers right-aligned; a long status wraps within its column) and the
/// explanation.
pub fn terminal_table(leaderboard: &Leaderboard) -> String {
    let mut rows: Vec<[String; COLUMNS]> = leaderboard.rows.iter().map(row_cells).collect();
    let layout = Layout::fit(&mut rows);
    let scope = &leaderboard.scope;
    let mut out = format!(
        "Leaderboard: {} ({}{})\n",
        scope.dataset_name,
        scope.config.describe(),
        scope
            .machine_type
            .as_ref()
            .map_or(String::new(), |machine| format!(", on {machine}"))
    );
    out.push_str(&layout.line(&HEADER.map(str::to_string)));
    out.push_str(&"-".repeat(layout.indent + layout.widths[STATUS]));
    out.push('\n');
    for row in &rows {
        out.push_str(&layout.line(row));
    }
    if rows.is_empty() {
        out.push_str("(no variants)\n");
    }
    let legend = disagree_legend(&leaderboard.rows, DISAGREE_MARK);
    if !legend.is_empty() {
        out.push_str(&legend);
        out.push('\n');
    }
    out.push_str(&wrap(
        &explanation(leaderboard).replace('—', "-"),
        TERMINAL_WIDTH,
    ));
    out
}

/// The cells of one row, its status not yet wrapped.
fn row_cells(r: &LeaderboardRow) -> [String; COLUMNS] {
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
}

/// The column widths of a table.
struct Layout {
    /// Width of every column, in characters (the Status column's longest line).
    widths: [usize; COLUMNS],
    /// Where the Status column starts.
    indent: usize,
}

impl Layout {
    /// Measures the header and `rows`, and wraps the Status cells of `rows`
    /// so that the table aims at [`TERMINAL_WIDTH`].
    fn fit(rows: &mut [[String; COLUMNS]]) -> Layout {
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in rows.iter() {
            for (w, cell) in widths.iter_mut().zip(&row[..STATUS]) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let indent: usize = widths[..STATUS].iter().map(|w| w + 2).sum();
        let status_wrap = TERMINAL_WIDTH.saturating_sub(indent).max(MIN_STATUS_WIDTH);
        for row in rows.iter_mut() {
            row[STATUS] = wrap(&row[STATUS], status_wrap).trim_end().to_string();
            let longest = row[STATUS].lines().map(|l| l.chars().count()).max();
            widths[STATUS] = widths[STATUS].max(longest.unwrap_or(0));
        }
        Layout { widths, indent }
    }

    /// One line of the table (several when the status wraps).
    fn line(&self, cells: &[String]) -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i + 1 == cells.len() {
                // The last column is left-aligned and unpadded; its
                // continuation lines start under it.
                s.push_str(&cell.replace('\n', &format!("\n{}", " ".repeat(self.indent))));
                continue;
            }
            let pad = " ".repeat(self.widths[i] - cell.chars().count());
            if RIGHT_ALIGNED[i] {
                s.push_str(&pad);
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&pad);
            }
        }
        s.push('\n');
        s
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::populated;

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
}
