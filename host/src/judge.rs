//! Build → conformance suite → evaluation of one prepared variant: how
//! `host evolve` judges a candidate and `host watch` a saved version.

use std::path::Path;

use annvil_results::{LeaderboardRow, Status, Store};
use anyhow::{Context, Result};

use crate::check::{CheckOutcome, check_prepared};
use crate::coordinator::evaluate::{EvaluateOptions, Evaluated, evaluate};
use crate::prepare::{Prepared, PreparedState};

/// What judging one variant gave.
pub enum Judgement {
    /// Its libraries did not build.
    BuildFailed {
        /// What failed.
        reason: String,
        /// The whole build log.
        log: String,
    },
    /// The conformance suite did not pass (or could not run).
    CheckFailed {
        /// The suite's table, one line per check, as `host check` prints it.
        table: String,
    },
    /// The evaluation failed.
    EvaluationFailed {
        /// Its status as the leaderboard shows it.
        status: String,
    },
    /// Evaluated: its leaderboard row.
    Measured {
        /// The variant's row on the leaderboard the evaluation wrote to.
        row: Box<LeaderboardRow>,
        /// Where that leaderboard is.
        evaluated: Evaluated,
    },
}

/// How variants are judged.
pub struct JudgeOptions<'a> {
    /// How the evaluation measures.
    pub evaluate: &'a EvaluateOptions,
    /// Threads of the conformance suite's builds.
    pub check_threads: usize,
    /// Where the suite's workers get their scratch directories.
    pub scratch: &'a Path,
}

/// Runs the conformance suite on `variant` and, when it passes, evaluates
/// it; `on_check_line` sees the suite's table as it is written.
pub fn judge(
    variant: &Prepared,
    options: &JudgeOptions<'_>,
    on_check_line: &mut dyn FnMut(&str),
) -> Result<Judgement> {
    if let PreparedState::Broken { reason, log } = &variant.state {
        return Ok(Judgement::BuildFailed {
            reason: reason.clone(),
            log: log.clone(),
        });
    }
    let mut table = String::new();
    let outcome = check_prepared(
        variant,
        options.check_threads,
        &options.evaluate.limits.limits(),
        options.scratch,
        &mut |line| {
            on_check_line(line);
            table.push_str(line);
            table.push('\n');
        },
    )?;
    if outcome != CheckOutcome::Passed {
        return Ok(Judgement::CheckFailed { table });
    }
    let evaluated = evaluate(std::slice::from_ref(&variant.dir), options.evaluate)?;
    let store = Store::open(&evaluated.database)?;
    let row = store
        .leaderboard_for(&evaluated.scope)?
        .rows
        .into_iter()
        .find(|r| r.variant_name == variant.name)
        .with_context(|| format!("{}: evaluated but not on the leaderboard", variant.name))?;
    Ok(if row.status == Status::Ok {
        Judgement::Measured {
            row: Box::new(row),
            evaluated,
        }
    } else {
        Judgement::EvaluationFailed {
            status: row.status_text,
        }
    })
}

/// The compiler's error lines and their context from a cargo log (what a
/// person or the next prompt needs; the whole log is kept elsewhere).
pub fn compiler_errors(log: &str) -> String {
    let mut out = Vec::new();
    let mut keep = 0;
    for line in log.lines() {
        if line.starts_with("error") {
            keep = 12;
        }
        if keep > 0 {
            out.push(line);
            keep -= 1;
        }
        if out.len() >= 80 {
            break;
        }
    }
    if out.is_empty() {
        log.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        out.join("\n")
    }
}
