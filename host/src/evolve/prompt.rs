//! CRINN's contrastive prompt for one slot, and reading the answer.
//!
//! The prompt has five parts: the task (the slot's interface and the file
//! to write), K previous implementations of the slot with their scores
//! relative to the parent (1.00 = parent), sampled from the program
//! database with a temperature-scaled softmax, the parent's own code, the
//! generation protocol (`## Performance Analysis`, `## Algorithm Design`,
//! `## Code`), and the critical requirements. When the previous candidate of
//! the lineage failed, its artifact (compiler error, check table, signal)
//! is shown too, so the next answer can fix it.

use std::fmt::Write as _;

use annvil_core::SplitMix64;
use annvil_results::CandidateRecord;

use crate::scaffold::Lang;
use crate::variant::SlotKind;

/// How exemplars are sampled.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    /// How many previous implementations to show.
    pub k: usize,
    /// Softmax temperature τ over relative scores: small τ favours the best.
    pub temperature: f64,
    /// Seed of the draw (the same seed draws the same exemplars).
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            k: 4,
            temperature: 0.25,
            seed: 0,
        }
    }
}

/// A previous implementation shown in the prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// Variant name.
    pub name: String,
    /// Its reward divided by the parent's (1.00 = parent).
    pub relative_score: f64,
    /// The slot's source.
    pub code: String,
}

/// The softmax weights P(i) ∝ exp((s_i − mean(s)) / τ), normalised.
pub fn softmax_weights(scores: &[f64], temperature: f64) -> Vec<f64> {
    if scores.is_empty() {
        return Vec::new();
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let tau = temperature.max(1e-6);
    let logits: Vec<f64> = scores.iter().map(|s| (s - mean) / tau).collect();
    // Subtracting the largest logit keeps exp finite; it cancels out.
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// Draws up to `sampling.k` exemplars without replacement from the
/// evaluated candidates of the slot (those with code and a reward), by the
/// softmax over their rewards relative to `parent_reward`. Returned best
/// score first.
pub fn sample_exemplars(
    candidates: &[CandidateRecord],
    parent_reward: f64,
    sampling: &Sampling,
) -> Vec<Exemplar> {
    let mut pool: Vec<Exemplar> = candidates
        .iter()
        .filter_map(|c| {
            let score = c.score.as_ref()?;
            Some(Exemplar {
                name: c.candidate.name.clone(),
                relative_score: score.reward / parent_reward.max(f64::MIN_POSITIVE),
                code: c.candidate.slot_code.clone()?,
            })
        })
        .collect();
    let mut rng = SplitMix64::new(sampling.seed);
    let mut chosen = Vec::new();
    while chosen.len() < sampling.k && !pool.is_empty() {
        let scores: Vec<f64> = pool.iter().map(|e| e.relative_score).collect();
        let weights = softmax_weights(&scores, sampling.temperature);
        let mut draw = rng.unit();
        let mut pick = pool.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if draw < *w {
                pick = i;
                break;
            }
            draw -= w;
        }
        chosen.push(pool.swap_remove(pick));
    }
    chosen.sort_by(|a, b| b.relative_score.total_cmp(&a.relative_score));
    chosen
}

/// What the prompt says about the parent.
#[derive(Clone, Debug)]
pub struct ParentInfo {
    /// Parent variant name.
    pub name: String,
    /// Its reward; `None` when it has not been evaluated on the dataset.
    pub reward: Option<f64>,
    /// Its highest recall.
    pub max_recall: Option<f64>,
    /// Its slot source, or the reference template when the parent's slot
    /// is not a single source file.
    pub code: String,
    /// True when `code` is the template rather than the parent's own.
    pub code_is_template: bool,
}

/// Everything one prompt is built from.
#[derive(Clone, Debug)]
pub struct PromptInput<'a> {
    /// The slot to rewrite.
    pub slot: SlotKind,
    /// The language of the answer.
    pub lang: Lang,
    /// The parent.
    pub parent: &'a ParentInfo,
    /// Previous implementations with scores.
    pub exemplars: &'a [Exemplar],
    /// The artifact of the lineage's last failed candidate, if any.
    pub last_failure: Option<&'a str>,
    /// Dataset the reward is measured on.
    pub dataset: &'a str,
}

/// The slot's interface as the answer's language declares it.
fn interface(slot: SlotKind, lang: Lang) -> String {
    match lang {
        Lang::Rust => extract_block(
            include_str!("../../../abi/src/slots.rs"),
            &format!(
                "pub trait {}",
                match slot {
                    SlotKind::Construction => "Construction",
                    SlotKind::Search => "Search",
                    SlotKind::Refinement => "Refine",
                }
            ),
            "\n}\n",
        ),
        Lang::C | Lang::Cpp => extract_block(
            include_str!("../../../abi/include/annvil.h"),
            &format!("typedef struct annvil_{}_v1 {{", slot.name()),
            &format!("}} annvil_{}_v1;", slot.name()),
        ),
    }
}

/// The "Contents" list in the opening comment of a support header: one
/// line per helper, without the comment's ` * ` margin.
fn header_contents(header: &str) -> String {
    header
        .lines()
        .skip_while(|line| !line.starts_with(" * Contents"))
        .skip(1)
        .take_while(|line| line.starts_with(" *   "))
        .map(|line| line.strip_prefix(" * ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The support header(s) a C or C++ answer may include, with their
/// helpers; `None` for Rust (the SDK is the interface itself).
fn support_headers(lang: Lang) -> Option<String> {
    let c = header_contents(include_str!("../../../abi/include/annvil_support.h"));
    match lang {
        Lang::Rust => None,
        Lang::C => Some(format!(
            "`#include <annvil_support.h>` (next to `annvil.h`, on the include path) gives \
             static inline helpers; use them rather than writing your own:\n\n```text\n{c}\n```\n"
        )),
        Lang::Cpp => Some(format!(
            "`#include <annvil_support.hpp>` (next to `annvil.h`, on the include path) gives \
             these helpers, and the C ones of `annvil_support.h` it includes; use them rather \
             than writing your own:\n\n```text\n{}\n{c}\n```\n",
            header_contents(include_str!("../../../abi/include/annvil_support.hpp"))
        )),
    }
}

/// The text from the doc comment before `start` through the first `end`
/// after it (the whole header when `start` is missing).
fn extract_block(text: &str, start: &str, end: &str) -> String {
    let Some(at) = text.find(start) else {
        return text.to_owned();
    };
    let before = &text[..at];
    let mut from = at;
    for line in before.lines().rev() {
        let t = line.trim_start();
        if t.starts_with("///") || t.starts_with("/**") || t.starts_with('*') || t.starts_with("*/")
        {
            from -= line.len() + 1;
        } else {
            break;
        }
    }
    let stop = text[at..]
        .find(end)
        .map_or(text.len(), |e| at + e + end.len());
    text[from..stop].trim().to_owned()
}

/// What the slot file must define, in words.
fn what_to_define(lang: Lang, slot: SlotKind) -> String {
    let symbol = lang.slot_symbol(slot);
    match lang {
        Lang::Rust => format!(
            "it must define `pub struct {symbol}` implementing `annvil_abi::{}`",
            match slot {
                SlotKind::Construction => "Construction",
                SlotKind::Search => "Search",
                SlotKind::Refinement => "Refine",
            }
        ),
        Lang::C | Lang::Cpp => format!(
            "it must define the slot table `const annvil_{}_v1 {symbol}` with every function it \
             points at{}",
            slot.name(),
            if lang == Lang::Cpp {
                " declared `extern \"C\"`, catching every C++ exception"
            } else {
                ""
            }
        ),
    }
}

/// The Markdown fence tag of `lang`.
fn fence(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::C => "c",
        Lang::Cpp => "cpp",
    }
}

/// CRINN's contrastive prompt.
pub fn build_prompt(input: &PromptInput<'_>) -> String {
    let slot = input.slot.name();
    let lang = input.lang;
    let file = lang.slot_file(input.slot);
    let mut p = String::new();
    let _ = writeln!(
        p,
        "# Task\n\nYou are optimising the **{slot}** slot of an approximate-nearest-neighbour \
         index in annvil. An index is cut into three slots (construction, search, refinement) \
         behind a stable C ABI; you rewrite only the {slot} slot, the other two stay as they are \
         in the parent variant `{}`. The goal is a higher reward: the mean of the best \
         single-thread queries per second over recall@10 in [0.85, 0.95], measured on `{}` \
         by the annvil host. Answer with the complete contents of `{file}` ({}).\n",
        input.parent.name,
        input.dataset,
        what_to_define(lang, input.slot),
    );
    let _ = writeln!(
        p,
        "## The {slot} interface\n\n```{}\n{}\n```\n",
        fence(lang),
        interface(input.slot, lang)
    );
    if let Some(helpers) = support_headers(lang) {
        let _ = writeln!(p, "## Support header\n\n{helpers}");
    }
    if input.parent.reward.is_none() {
        p.push_str(
            "## Previous implementations\n\nNone is shown: their scores are relative to the \
             parent's, which is not known yet.\n\n",
        );
    } else if input.exemplars.is_empty() {
        p.push_str("## Previous implementations\n\nNone has been evaluated yet.\n\n");
    } else {
        let _ = writeln!(
            p,
            "## Previous implementations\n\n{} earlier versions of this slot with their scores \
             (reward relative to the parent: 1.00 = parent, higher is better). Contrast what the \
             better ones do differently.\n",
            input.exemplars.len()
        );
        for (i, e) in input.exemplars.iter().enumerate() {
            let _ = writeln!(
                p,
                "### Implementation {} — `{}`, score {:.2}\n\n```{}\n{}\n```\n",
                i + 1,
                e.name,
                e.relative_score,
                fence(lang),
                e.code.trim_end()
            );
        }
    }
    let score = match input.parent.reward {
        Some(reward) => format!(
            "score 1.00 (reward {reward:.0}{})",
            input
                .parent
                .max_recall
                .map(|r| format!(", highest recall {r:.4}"))
                .unwrap_or_default()
        ),
        None => format!("score unknown (not yet evaluated on `{}`)", input.dataset),
    };
    let _ = writeln!(
        p,
        "## The parent's {slot} slot{} — {score}\n\n```{}\n{}\n```\n",
        if input.parent.code_is_template {
            " (the parent's slot comes from a module; this is the reference implementation \
             with the same interface)"
        } else {
            ""
        },
        fence(lang),
        input.parent.code.trim_end()
    );
    if let Some(failure) = input.last_failure {
        let _ = writeln!(
            p,
            "## The previous attempt failed\n\nThe last candidate of this lineage did not make it; \
             fix this first:\n\n```text\n{}\n```\n",
            failure.trim_end()
        );
    }
    let _ = writeln!(
        p,
        "## Generation protocol\n\nAnswer with exactly these three sections, in this order:\n\n\
         ## Performance Analysis\nWhat limits the speed of the parent and of the better \
         implementations above (memory access, distance computations, branches, data layout).\n\n\
         ## Algorithm Design\nThe changes you make and why they raise QPS at equal recall.\n\n\
         ## Code\nOne fenced code block holding the complete `{file}`, nothing else after it.\n"
    );
    let _ = writeln!(
        p,
        "## Critical requirements\n\n\
         - Same interface: {}. Keep the type name and the trait or table exactly; \
           parameters you do not read are rejected as unknown.\n\
         - Recall may not fall below the parent's: keep the results exact-distance ordered and \
           the sweep knob monotone (a larger knob must not lower recall).\n\
         - Deterministic results: the same query gives the same ids every time, from any thread \
           (no randomness without a fixed seed, no data races).\n\
         - Self-contained: use only the standard library{} and the inputs the interface gives; \
           no files, no network, no global mutable state.\n\
         - Never crash: report bad input through the error channel.",
        what_to_define(lang, input.slot),
        match lang {
            Lang::Rust => ", `annvil_abi` and `annvil_distance` (SIMD distance kernels)",
            Lang::C => ", `annvil.h` and `annvil_support.h`",
            Lang::Cpp => ", `annvil.h` and `annvil_support.hpp`",
        }
    );
    p
}

/// Extracts the code of the `## Code` section: the first fenced block after
/// the heading. Errors say what is missing.
pub fn extract_code(response: &str) -> Result<String, String> {
    let mut lines = response.lines();
    let found = lines.by_ref().any(|l| {
        let t = l.trim_start_matches('#').trim();
        l.trim_start().starts_with('#') && t.eq_ignore_ascii_case("code")
    });
    if !found {
        return Err(
            "the response has no `## Code` section (the protocol asks for `## Performance \
             Analysis`, `## Algorithm Design`, `## Code`)"
                .into(),
        );
    }
    let mut code = String::new();
    let mut fence: Option<String> = None;
    for line in lines {
        let trimmed = line.trim_start();
        match &fence {
            None if trimmed.starts_with("```") || trimmed.starts_with("~~~") => {
                let marker: String = trimmed
                    .chars()
                    .take_while(|c| *c == '`' || *c == '~')
                    .collect();
                fence = Some(marker);
            }
            None => {}
            Some(marker) if trimmed.starts_with(marker.as_str()) && trimmed.trim() == marker => {
                return if code.trim().is_empty() {
                    Err("the `## Code` block is empty".into())
                } else {
                    Ok(code)
                };
            }
            Some(_) => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    Err(match fence {
        None => "the `## Code` section holds no fenced code block".into(),
        Some(_) => "the `## Code` block is not closed (the answer may have been cut off)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use annvil_results::{CandidateId, CandidateScore, CandidateStatus, Lineage, NewCandidate};

    fn record(name: &str, reward: f64) -> CandidateRecord {
        CandidateRecord {
            id: CandidateId(0),
            candidate: NewCandidate {
                session: "s".into(),
                name: name.into(),
                dir: String::new(),
                content_hash: name.into(),
                lineage: Lineage {
                    parent: "p".into(),
                    slot: "search".into(),
                    change: None,
                },
                generator: "cmd".into(),
                prompt: None,
                response: None,
                slot_code: Some(format!("// {name}")),
                language: Some("rust".into()),
            },
            status: CandidateStatus::Ok,
            build_log: None,
            failure: None,
            score: Some(CandidateScore {
                reward,
                parent_reward: None,
                metrics_json: String::new(),
                dataset_hash: String::new(),
                config_key: String::new(),
            }),
            created_at: String::new(),
        }
    }

    #[test]
    fn softmax_favours_higher_scores_and_sharpens_with_lower_temperature() {
        let w = softmax_weights(&[1.0, 1.2, 0.8], 0.25);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(w[1] > w[0] && w[0] > w[2]);
        let sharp = softmax_weights(&[1.0, 1.2, 0.8], 0.05);
        assert!(sharp[1] > w[1]);
        let flat = softmax_weights(&[1.0, 1.2, 0.8], 100.0);
        assert!(flat.iter().all(|p| (p - 1.0 / 3.0).abs() < 0.01));
    }

    #[test]
    fn sampling_is_seeded_without_replacement_and_relative_to_the_parent() {
        let pool: Vec<_> = (0..10)
            .map(|i| record(&format!("c{i}"), 100.0 + i as f64 * 10.0))
            .collect();
        let sampling = Sampling {
            k: 4,
            temperature: 0.25,
            seed: 7,
        };
        let a = sample_exemplars(&pool, 100.0, &sampling);
        assert_eq!(a, sample_exemplars(&pool, 100.0, &sampling));
        assert_eq!(a.len(), 4);
        let mut names: Vec<_> = a.iter().map(|e| e.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 4);
        assert!(
            a.windows(2)
                .all(|w| w[0].relative_score >= w[1].relative_score)
        );
        assert!(a.iter().any(|e| (e.relative_score - 1.0).abs() < 1.0));
        // With a sharp temperature the best candidates dominate the draw.
        let sharp = Sampling {
            temperature: 0.01,
            k: 2,
            seed: 1,
        };
        let best = sample_exemplars(&pool, 100.0, &sharp);
        assert_eq!(best[0].name, "c9");
        assert!((best[0].relative_score - 1.9).abs() < 1e-12);
    }

    #[test]
    fn code_section_is_extracted_and_problems_are_named() {
        let ok = "## Performance Analysis\nslow\n## Algorithm Design\nfast\n## Code\n```rust\nfn a() {}\n```\n";
        assert_eq!(extract_code(ok).unwrap(), "fn a() {}\n");
        assert!(
            extract_code("just text")
                .unwrap_err()
                .contains("no `## Code` section")
        );
        assert!(
            extract_code("## Code\nno fence")
                .unwrap_err()
                .contains("no fenced")
        );
        assert!(
            extract_code("## Code\n```c\nint x;\n")
                .unwrap_err()
                .contains("not closed")
        );
    }

    #[test]
    fn prompt_holds_every_part_of_the_protocol() {
        let parent = ParentInfo {
            name: "hnsw".into(),
            reward: Some(1000.0),
            max_recall: Some(0.999),
            code: "pub struct Searcher;".into(),
            code_is_template: true,
        };
        let exemplars = [Exemplar {
            name: "hnsw-search-cmd-001".into(),
            relative_score: 1.25,
            code: "// faster".into(),
        }];
        let prompt = build_prompt(&PromptInput {
            slot: SlotKind::Search,
            lang: Lang::Rust,
            parent: &parent,
            exemplars: &exemplars,
            last_failure: Some("error[E0425]: cannot find value `x`"),
            dataset: "fashion-mnist",
        });
        for part in [
            "pub trait Search",
            "score 1.25",
            "score 1.00",
            "## Performance Analysis",
            "## Algorithm Design",
            "## Code",
            "Critical requirements",
            "Recall may not fall below the parent's",
            "Deterministic",
            "error[E0425]",
            "src/search.rs",
        ] {
            assert!(prompt.contains(part), "prompt lacks {part:?}:\n{prompt}");
        }
        assert!(
            !prompt.contains("## Support header"),
            "Rust has the SDK instead"
        );
        // Before the parent is evaluated: its score is unknown, and no
        // exemplar can be scored against it.
        let unknown = ParentInfo {
            reward: None,
            ..parent
        };
        let prompt = build_prompt(&PromptInput {
            slot: SlotKind::Search,
            lang: Lang::Rust,
            parent: &unknown,
            exemplars: &[],
            last_failure: None,
            dataset: "fashion-mnist-784-euclidean",
        });
        assert!(
            prompt.contains("score unknown (not yet evaluated on `fashion-mnist-784-euclidean`)")
                && prompt.contains("None is shown")
                && !prompt.contains("score 1.00"),
            "{prompt}"
        );
        for (lang, include, helper) in [
            (
                Lang::C,
                "#include <annvil_support.h>",
                "annvil_params_check",
            ),
            (Lang::Cpp, "#include <annvil_support.hpp>", "annvil::guard"),
        ] {
            let prompt = build_prompt(&PromptInput {
                slot: SlotKind::Search,
                lang,
                parent: &unknown,
                exemplars: &[],
                last_failure: None,
                dataset: "fashion-mnist-784-euclidean",
            });
            for part in ["## Support header", include, helper, "annvil_distance"] {
                assert!(
                    prompt.contains(part),
                    "{lang:?} prompt lacks {part:?}:\n{prompt}"
                );
            }
        }
        let c = interface(SlotKind::Refinement, Lang::C);
        assert!(
            c.starts_with("/**") && c.ends_with("annvil_refinement_v1;"),
            "{c}"
        );
    }
}
