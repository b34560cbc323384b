//! The parameters each slot of a variant declares (ABI 1.1), for tools that
//! show them (the evolution loop's prompt) or tune them inside their ranges
//! (its offline `tune` generator).
//!
//! Declarations are read in a worker process like every other use of
//! variant code: [`describe`] runs a [`Job::Describe`] for a prepared
//! pipeline (see [`crate::prepare::prepare_variants`]) and returns an owned,
//! serialisable [`SlotParams`]. The same reading and checking backs the
//! `declared parameters` row of `host check`.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::coordinator::measurer::{Ending, Limits, run_job};
use crate::protocol::{Job, PipelineSpec};
use crate::variant::SlotKind;
use crate::worker::LoadedSlots;
use crate::worker::loader::LoadError;

/// The values a declared parameter takes, as read back from a library: the
/// owned, host-side form of `annvil_abi::ParamRange` (which a Rust slot
/// declares with), also filled from C declarations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeclaredRange {
    /// A whole number in `min..=max`.
    Int {
        /// Smallest value worth trying.
        min: f64,
        /// Largest value worth trying.
        max: f64,
    },
    /// A floating-point number in `min..=max`.
    Float {
        /// Smallest value worth trying.
        min: f64,
        /// Largest value worth trying.
        max: f64,
    },
    /// One of these strings.
    Choice {
        /// The allowed values.
        choices: Vec<String>,
    },
}

impl DeclaredRange {
    /// Checks that `value`, as written in variant.yaml, parses as this
    /// range's kind and lies in it; the error says why not.
    pub fn check_value(&self, value: &str) -> Result<(), String> {
        let value = value.trim();
        let (number, min, max) = match self {
            DeclaredRange::Int { min, max } => match value.parse::<i128>() {
                Ok(n) => (n as f64, *min, *max),
                Err(_) => return Err(format!("`{value}` is not a whole number")),
            },
            DeclaredRange::Float { min, max } => match value.parse::<f64>() {
                Ok(x) if x.is_finite() => (x, *min, *max),
                _ => return Err(format!("`{value}` is not a finite number")),
            },
            DeclaredRange::Choice { choices } => {
                return if choices.iter().any(|c| c == value) {
                    Ok(())
                } else {
                    Err(format!("`{value}` is not one of {}", choices.join("|")))
                };
            }
        };
        if (min..=max).contains(&number) {
            Ok(())
        } else {
            Err(format!("`{value}` is outside {min}..={max}"))
        }
    }

    /// What is wrong with the range itself, if anything.
    fn problem(&self) -> Option<String> {
        match self {
            DeclaredRange::Int { min, max } | DeclaredRange::Float { min, max }
                if !(min.is_finite() && max.is_finite() && min <= max) =>
            {
                Some(format!("range {min}..={max} is not finite with min <= max"))
            }
            DeclaredRange::Int { min, max } if min.fract() != 0.0 || max.fract() != 0.0 => {
                Some(format!("integer range {min}..={max} has fractional bounds"))
            }
            DeclaredRange::Choice { choices } if choices.is_empty() => Some("no choices".into()),
            DeclaredRange::Choice { choices } if choices.iter().any(String::is_empty) => Some(
                format!("choices `{}` include an empty one", choices.join("|")),
            ),
            DeclaredRange::Choice { choices } => choices
                .iter()
                .enumerate()
                .find(|(i, c)| choices[..*i].contains(c))
                .map(|(_, c)| format!("choice `{c}` is listed twice")),
            _ => None,
        }
    }
}

impl fmt::Display for DeclaredRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclaredRange::Int { min, max } => write!(f, "int {min}..={max}"),
            DeclaredRange::Float { min, max } => write!(f, "float {min}..={max}"),
            DeclaredRange::Choice { choices } => write!(f, "one of {}", choices.join("|")),
        }
    }
}

/// One declared parameter, owned (read from a library's `annvil_param_info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    /// The key, as written in variant.yaml.
    pub name: String,
    /// Its kind and the values worth trying.
    #[serde(flatten)]
    pub range: DeclaredRange,
    /// The value the slot uses when the key is absent.
    pub default: String,
    /// True for a swept knob (search `configure`), false for a fixed
    /// `build`/`prepare` parameter.
    pub knob: bool,
    /// One line saying what it does (may be empty).
    pub doc: String,
}

impl ParamInfo {
    /// What is wrong with this declaration, if anything: an empty name, a
    /// range that is not finite with min <= max (or, for an int, has
    /// fractional bounds), an empty or repeated choice, or a default that
    /// does not parse or lies outside the range.
    pub fn problem(&self) -> Option<String> {
        if self.name.is_empty() {
            return Some("a parameter has an empty name".into());
        }
        let problem = self.range.problem().or_else(|| {
            self.range
                .check_value(&self.default)
                .err()
                .map(|e| format!("default {e}"))
        })?;
        Some(format!("parameter `{}`: {problem}", self.name))
    }
}

impl fmt::Display for ParamInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let knob = if self.knob { "knob, " } else { "" };
        write!(
            f,
            "{} ({knob}{}, default {})",
            self.name, self.range, self.default
        )?;
        if !self.doc.is_empty() {
            write!(f, ": {}", self.doc)?;
        }
        Ok(())
    }
}

/// The declared parameters of a variant's three slots, in declaration
/// order. A slot declaring nothing (or filled by a library older than ABI
/// 1.1, or absent) has an empty list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotParams {
    /// Build parameters of the construction slot.
    pub construction: Vec<ParamInfo>,
    /// The search slot's fixed parameters and knobs.
    pub search: Vec<ParamInfo>,
    /// The refinement slot's parameters.
    pub refinement: Vec<ParamInfo>,
}

impl SlotParams {
    /// The declarations of one slot.
    pub fn slot(&self, kind: SlotKind) -> &[ParamInfo] {
        match kind {
            SlotKind::Construction => &self.construction,
            SlotKind::Search => &self.search,
            SlotKind::Refinement => &self.refinement,
        }
    }

    /// Reads the declarations of the loaded slots (worker side), without
    /// checking them.
    pub fn read(slots: &LoadedSlots) -> Result<SlotParams, LoadError> {
        Ok(SlotParams {
            construction: slots.construction.declared_params(SlotKind::Construction)?,
            search: slots.search.declared_params(SlotKind::Search)?,
            refinement: match slots.refinement {
                Some(lib) => lib.declared_params(SlotKind::Refinement)?,
                None => Vec::new(),
            },
        })
    }

    /// Every inconsistency, each naming its slot and parameter: those of
    /// [`ParamInfo::problem`], a name declared twice in one slot, and a knob
    /// outside the search slot (only `configure` takes knobs).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for kind in SlotKind::ALL {
            let declared = self.slot(kind);
            let slot = kind.name();
            for (i, param) in declared.iter().enumerate() {
                if let Some(p) = param.problem() {
                    problems.push(format!("{slot}: {p}"));
                }
                if declared[..i].iter().any(|other| other.name == param.name) {
                    problems.push(format!("{slot}: parameter `{}` declared twice", param.name));
                }
                if param.knob && kind != SlotKind::Search {
                    problems.push(format!(
                        "{slot}: parameter `{}` is flagged as a knob, but only the search slot has knobs",
                        param.name
                    ));
                }
            }
        }
        problems
    }

    /// [`SlotParams::read`] followed by [`SlotParams::problems`], as one
    /// message on failure.
    pub fn read_checked(slots: &LoadedSlots) -> Result<SlotParams, String> {
        let declared = SlotParams::read(slots).map_err(|e| e.to_string())?;
        let problems = declared.problems();
        if problems.is_empty() {
            Ok(declared)
        } else {
            Err(problems.join("; "))
        }
    }

    /// A one-line count per slot, e.g. `construction 3, search 1 (1 knob),
    /// refinement 0`, or `none declared`.
    pub fn summary(&self) -> String {
        if SlotKind::ALL.iter().all(|&k| self.slot(k).is_empty()) {
            return "none declared".into();
        }
        SlotKind::ALL
            .iter()
            .map(|&kind| {
                let declared = self.slot(kind);
                let knobs = declared.iter().filter(|p| p.knob).count();
                match knobs {
                    0 => format!("{} {}", kind.name(), declared.len()),
                    1 => format!("{} {} (1 knob)", kind.name(), declared.len()),
                    n => format!("{} {} ({n} knobs)", kind.name(), declared.len()),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One block per slot, one line per parameter (the form the evolution
/// loop's prompt shows).
impl fmt::Display for SlotParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in SlotKind::ALL {
            writeln!(f, "{}:", kind.name())?;
            let declared = self.slot(kind);
            if declared.is_empty() {
                writeln!(f, "  (none declared)")?;
            }
            for param in declared {
                writeln!(f, "  {param}")?;
            }
        }
        Ok(())
    }
}

/// The worker's half of [`Job::Describe`]: loads the pipeline's libraries
/// and reads and checks their declarations.
pub fn run_in_worker(pipeline: &PipelineSpec) -> Result<SlotParams, String> {
    let slots = pipeline.load().map_err(|e| format!("load: {e}"))?;
    SlotParams::read_checked(&slots)
}

/// The declared parameters of a prepared pipeline's slots, read in a worker
/// process under `limits` (its scratch directory is `scratch`). Fails when a library
/// does not load, a declaration is malformed or inconsistent (see
/// [`SlotParams::problems`]), or the worker dies.
pub fn describe(pipeline: &PipelineSpec, limits: &Limits, scratch: &Path) -> Result<SlotParams> {
    let run = run_job(
        &Job::Describe(pipeline.clone()),
        pipeline.libraries(),
        limits,
        scratch,
        |_: &SlotParams| {},
    )?;
    if let Ending::Failed(reason) = run.ending {
        let tail = run.stderr_tail.trim();
        return Err(if tail.is_empty() {
            anyhow!("{reason}")
        } else {
            anyhow!("{reason}\n{tail}")
        })
        .context("reading the declared parameters");
    }
    run.items
        .into_iter()
        .next()
        .context("the describe worker finished without a result")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, range: DeclaredRange, default: &str, knob: bool) -> ParamInfo {
        ParamInfo {
            name: name.into(),
            range,
            default: default.into(),
            knob,
            doc: String::new(),
        }
    }

    fn int(min: f64, max: f64) -> DeclaredRange {
        DeclaredRange::Int { min, max }
    }

    #[test]
    fn check_value_parses_the_kind_and_bounds_it_inclusively() {
        let ef = int(10.0, 100.0);
        assert!(ef.check_value("10").is_ok() && ef.check_value(" 100 ").is_ok());
        assert!(
            ef.check_value("101")
                .unwrap_err()
                .contains("outside 10..=100")
        );
        assert!(
            ef.check_value("12.5")
                .unwrap_err()
                .contains("not a whole number")
        );
        let alpha = DeclaredRange::Float { min: 1.0, max: 1.5 };
        assert!(alpha.check_value("1.25").is_ok());
        assert!(
            alpha
                .check_value("NaN")
                .unwrap_err()
                .contains("not a finite")
        );
        assert!(alpha.check_value("0.9").is_err());
        let codes = DeclaredRange::Choice {
            choices: vec!["f32".into(), "sq8".into()],
        };
        assert!(codes.check_value("sq8").is_ok());
        assert!(
            codes
                .check_value("sq4")
                .unwrap_err()
                .contains("not one of f32|sq8")
        );
    }

    #[test]
    fn problems_name_the_slot_and_the_parameter() {
        let declared = SlotParams {
            construction: vec![
                param("M", int(4.0, 64.0), "16", false),
                param("M", int(4.0, 64.0), "16", false),
                param("ef", int(1.0, 10.0), "5", true),
                param("step", int(0.5, 10.0), "1", false),
            ],
            search: vec![
                param("ef", int(10.0, 100.0), "500", true),
                param(
                    "alpha",
                    DeclaredRange::Float { min: 2.0, max: 1.0 },
                    "1.5",
                    false,
                ),
                param("", int(0.0, 1.0), "0", false),
            ],
            refinement: vec![
                param(
                    "codes",
                    DeclaredRange::Choice { choices: vec![] },
                    "f32",
                    false,
                ),
                param(
                    "kind",
                    DeclaredRange::Choice {
                        choices: vec!["a".into(), "a".into()],
                    },
                    "a",
                    false,
                ),
            ],
        };
        let problems = declared.problems();
        let expected = [
            "construction: parameter `M` declared twice",
            "construction: parameter `ef` is flagged as a knob, but only the search slot has knobs",
            "construction: parameter `step`: integer range 0.5..=10 has fractional bounds",
            "search: parameter `ef`: default `500` is outside 10..=100",
            "search: parameter `alpha`: range 2..=1 is not finite with min <= max",
            "search: a parameter has an empty name",
            "refinement: parameter `codes`: no choices",
            "refinement: parameter `kind`: choice `a` is listed twice",
        ];
        for e in expected {
            assert!(
                problems.iter().any(|p| p == e),
                "`{e}` missing from {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn nothing_declared_passes_and_summarises_as_such() {
        let none = SlotParams::default();
        assert!(none.problems().is_empty());
        assert_eq!(none.summary(), "none declared");
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let declared = SlotParams {
            construction: vec![param("seed", int(0.0, f64::from(u32::MAX)), "0", false)],
            search: vec![ParamInfo {
                doc: "beam width".into(),
                ..param("ef", int(10.0, 2000.0), "64", true)
            }],
            refinement: vec![param(
                "codes",
                DeclaredRange::Choice {
                    choices: vec!["f32".into(), "sq8".into()],
                },
                "f32",
                false,
            )],
        };
        let json = serde_json::to_string(&declared).unwrap();
        assert!(
            json.contains(r#"{"name":"ef","kind":"int","min":10.0,"max":2000.0,"default":"64","knob":true,"doc":"beam width"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<SlotParams>(&json).unwrap(), declared);
        assert_eq!(
            declared.summary(),
            "construction 1, search 1 (1 knob), refinement 1"
        );
        assert_eq!(
            declared.to_string(),
            "construction:\n  seed (int 0..=4294967295, default 0)\n\
             search:\n  ef (knob, int 10..=2000, default 64): beam width\n\
             refinement:\n  codes (one of f32|sq8, default f32)\n"
        );
    }
}
