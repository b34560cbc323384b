//! The generators `host evolve` asks for new candidates.
//!
//! Two write code from the contrastive prompt: [`Llm`] (any
//! OpenAI-compatible chat-completions endpoint) and [`Cmd`] (any command,
//! prompt on stdin, answer on stdout). Two are offline and change only
//! configuration: [`tune`] mutates a slot's parameters inside the ranges
//! its library declares, and [`recombine`] takes one slot from another
//! variant.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::describe::{DeclaredRange, ParamInfo};
use crate::variant::{ParamMap, SlotKind, VariantSpec};
use annvil_core::SplitMix64;

/// An OpenAI-compatible chat-completions client. The network is touched
/// only when [`Llm::complete`] is called.
#[derive(Clone, Debug)]
pub struct Llm {
    /// Base URL (`https://host/v1`) or the full `…/chat/completions` URL.
    pub endpoint: String,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer token (from the environment variable named on the command line).
    pub api_key: Option<String>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Time limit of one request.
    pub timeout: Duration,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [ChatMessage<'a>; 2],
    temperature: f64,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<ChatChoice>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatAnswer,
}

#[derive(Deserialize)]
struct ChatAnswer {
    content: Option<String>,
}

/// The system message of every request.
const SYSTEM: &str = "You are an expert in high-performance approximate nearest neighbour \
                      search. Follow the requested answer format exactly.";

impl Llm {
    /// The chat-completions URL.
    pub fn url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        if base.ends_with("/chat/completions") {
            base.to_owned()
        } else {
            format!("{base}/chat/completions")
        }
    }

    /// Sends `prompt` as the user message and returns the answer's text.
    pub fn complete(&self, prompt: &str) -> Result<String> {
        let url = self.url();
        let body = serde_json::to_string(&ChatRequest {
            model: &self.model,
            messages: [
                ChatMessage {
                    role: "system",
                    content: SYSTEM,
                },
                ChatMessage {
                    role: "user",
                    content: prompt,
                },
            ],
            temperature: self.temperature,
        })?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut request = agent.post(&url).header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request
            .send(body.as_bytes())
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            bail!("{url} answered HTTP {status}: {}", excerpt(&text));
        }
        let parsed: ChatResponse = serde_json::from_str(&text)
            .with_context(|| format!("{url}: not a chat-completions answer: {}", excerpt(&text)))?;
        parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| anyhow!("{url}: the answer has no choices[0].message.content"))
    }
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}

/// A command that answers a prompt: `sh -c COMMAND`, prompt on stdin,
/// answer on stdout.
#[derive(Clone, Debug)]
pub struct Cmd {
    /// The shell command.
    pub command: String,
}

impl Cmd {
    /// Runs the command with `prompt` on stdin; its stdout is the answer.
    /// A non-zero exit is an error carrying the end of its stderr.
    pub fn complete(&self, prompt: &str) -> Result<String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{}`", self.command))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let prompt = prompt.to_owned();
        // Write from another thread: a command that answers before reading
        // all of a long prompt must not deadlock us.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(prompt.as_bytes());
        });
        let mut answer = String::new();
        child
            .stdout
            .take()
            .expect("stdout is piped")
            .read_to_string(&mut answer)
            .with_context(|| format!("reading the answer of `{}`", self.command))?;
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .expect("stderr is piped")
            .read_to_string(&mut stderr);
        let status = child.wait()?;
        let _ = writer.join();
        if !status.success() {
            bail!(
                "`{}` exited with {status}: {}",
                self.command,
                excerpt(&stderr)
            );
        }
        Ok(answer)
    }
}

/// A configuration change proposed by an offline generator.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// The slot's new parameters.
    pub params: ParamMap,
    /// What changed, e.g. `traversal: f32 → sq8`.
    pub description: String,
}

/// The smallest change [`mutate_value`] makes to a float: the resolution
/// it writes floats at (three decimals).
const FLOAT_STEP: f64 = 0.001;

/// The next value of one declared parameter, different from `current`
/// when the range allows: another choice; for numbers, a step of up to a
/// factor of two either way (integers of a narrow range: any other value),
/// clamped into the range.
fn mutate_value(param: &ParamInfo, current: &str, rng: &mut SplitMix64) -> String {
    match &param.range {
        DeclaredRange::Choice { choices } => {
            let others: Vec<&String> = choices.iter().filter(|c| *c != current).collect();
            match others.len() {
                0 => current.to_owned(),
                n => others[rng.below(n)].clone(),
            }
        }
        DeclaredRange::Int { min, max } => {
            let (lo, hi) = (*min as i64, *max as i64);
            let now: i64 = current.trim().parse().unwrap_or(lo).clamp(lo, hi);
            if hi - lo <= 16 {
                let others: Vec<i64> = (lo..=hi).filter(|v| *v != now).collect();
                return match others.len() {
                    0 => now.to_string(),
                    n => others[rng.below(n)].to_string(),
                };
            }
            let factor = 2f64.powf(rng.unit() * 2.0 - 1.0);
            let mut next = ((now.max(1) as f64) * factor).round() as i64;
            if next == now {
                next = if rng.unit() < 0.5 { now - 1 } else { now + 1 };
            }
            // A step past a bound goes the other way instead of stopping
            // on the bound the value may already sit on.
            if !(lo..=hi).contains(&next) {
                next = 2 * now - next;
            }
            next.clamp(lo, hi).to_string()
        }
        DeclaredRange::Float { min, max } => {
            let now: f64 = current.trim().parse().unwrap_or(*min).clamp(*min, *max);
            let factor = 2f64.powf(rng.unit() - 0.5);
            let base = if now == 0.0 { (max - min) / 10.0 } else { now };
            // A step past a bound goes the other way (see the integers),
            // and one too small to show in three decimals becomes one
            // thousandth, so the written value differs from `now`.
            let stepped = base * factor;
            let mut next = if (*min..=*max).contains(&stepped) {
                stepped
            } else {
                base / factor
            }
            .clamp(*min, *max);
            if (next - now).abs() < FLOAT_STEP {
                next = if now + FLOAT_STEP <= *max {
                    now + FLOAT_STEP
                } else {
                    (now - FLOAT_STEP).max(*min)
                };
            }
            format!("{:.3}", next)
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        }
    }
}

/// `tune`: mutates one or two of the slot's declared (non-knob) parameters,
/// starting from the values in `current` (the declared default where
/// absent). Fails when the slot declares nothing to tune.
pub fn tune(
    slot: SlotKind,
    declared: &[ParamInfo],
    current: &ParamMap,
    rng: &mut SplitMix64,
) -> Result<Mutation> {
    let tunable: Vec<&ParamInfo> = declared.iter().filter(|p| !p.knob).collect();
    if tunable.is_empty() {
        bail!(
            "the {} slot declares no tunable parameters (see `host check`, row `declared \
             parameters`); the tune generator has nothing to mutate — try another slot or \
             generator",
            slot.name()
        );
    }
    let changes = if tunable.len() > 1 && rng.unit() < 0.3 {
        2
    } else {
        1
    };
    let mut params = current.clone();
    let mut pool = tunable;
    let mut described = Vec::new();
    for _ in 0..changes {
        let param = pool.swap_remove(rng.below(pool.len()));
        let now = current
            .get(&param.name)
            .cloned()
            .unwrap_or_else(|| param.default.clone());
        let next = mutate_value(param, &now, rng);
        if next != now {
            described.push(format!("{}: {now} → {next}", param.name));
            params.insert(param.name.clone(), next);
        }
    }
    Ok(Mutation {
        params,
        description: if described.is_empty() {
            "no change".into()
        } else {
            described.join(", ")
        },
    })
}

/// `recombine`: the parent with `slot` taken from `donor` (its library,
/// parameters and, for search, its sweep; for construction its grid; for
/// refinement its candidate count).
pub fn recombine(parent: &VariantSpec, donor: &VariantSpec, slot: SlotKind) -> VariantSpec {
    let mut child = parent.clone();
    match slot {
        SlotKind::Construction => {
            child.construction = donor.construction.clone();
            child.grid = donor.grid.clone();
        }
        SlotKind::Search => {
            child.search = donor.search.clone();
            child.sweep = donor.sweep.clone();
        }
        SlotKind::Refinement => {
            child.refinement = donor.refinement.clone();
            child.candidates = donor.candidates;
        }
    }
    child
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(name: &str, min: f64, max: f64, default: &str) -> ParamInfo {
        ParamInfo {
            name: name.into(),
            range: DeclaredRange::Int { min, max },
            default: default.into(),
            knob: false,
            doc: String::new(),
        }
    }

    #[test]
    fn tune_stays_inside_declared_ranges_and_changes_something() {
        let declared = vec![
            int("M", 4.0, 64.0, "16"),
            ParamInfo {
                name: "traversal".into(),
                range: DeclaredRange::Choice {
                    choices: vec!["f32".into(), "sq8".into(), "sq4".into()],
                },
                default: "f32".into(),
                knob: false,
                doc: String::new(),
            },
            ParamInfo {
                knob: true,
                ..int("ef", 1.0, 4000.0, "10")
            },
        ];
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            let m = tune(SlotKind::Search, &declared, &ParamMap::new(), &mut rng).unwrap();
            assert!(!m.params.contains_key("ef"), "knobs are swept, not tuned");
            if let Some(v) = m.params.get("M") {
                let v: i64 = v.parse().unwrap();
                assert!((4..=64).contains(&v));
            }
            if let Some(v) = m.params.get("traversal") {
                assert!(["sq8", "sq4"].contains(&v.as_str()), "{v}");
            }
            assert!(!m.params.is_empty() && m.description.contains('→'), "{m:?}");
        }
        let err = tune(SlotKind::Refinement, &[], &ParamMap::new(), &mut rng).unwrap_err();
        assert!(err.to_string().contains("declares no tunable parameters"));
    }

    #[test]
    fn a_value_on_a_bound_steps_away_from_it() {
        let alpha = ParamInfo {
            name: "alpha".into(),
            range: DeclaredRange::Float { min: 1.0, max: 1.5 },
            default: "1".into(),
            knob: false,
            doc: String::new(),
        };
        let m = int("M", 4.0, 64.0, "4");
        let mut rng = SplitMix64::new(7);
        for _ in 0..200 {
            let next: f64 = mutate_value(&alpha, "1", &mut rng).parse().unwrap();
            assert!(next > 1.0 && next <= 1.5, "alpha 1 -> {next}");
            let next: i64 = mutate_value(&m, "4", &mut rng).parse().unwrap();
            assert!(next > 4 && next <= 64, "M 4 -> {next}");
        }
    }

    #[test]
    fn cmd_answers_through_stdin_and_stdout_and_reports_failures() {
        let echo = Cmd {
            command: "tr a-z A-Z".into(),
        };
        assert_eq!(echo.complete("prompt").unwrap(), "PROMPT");
        let failing = Cmd {
            command: "echo broken >&2; exit 3".into(),
        };
        let err = failing.complete("x").unwrap_err().to_string();
        assert!(err.contains("broken") && err.contains('3'), "{err}");
    }

    #[test]
    fn llm_url_accepts_a_base_or_the_full_path() {
        let llm = |endpoint: &str| Llm {
            endpoint: endpoint.into(),
            model: "m".into(),
            api_key: None,
            temperature: 0.7,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            llm("http://h:1/v1/").url(),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            llm("http://h:1/v1/chat/completions").url(),
            "http://h:1/v1/chat/completions"
        );
    }
}
