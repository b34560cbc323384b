//! `host export-rl`: the program database as JSONL training records for
//! reinforcement learning on code generation (GRPO-style).
//!
//! One record per candidate that had a prompt (the code generators):
//! `prompt`, `completion` (the raw answer), `reward` (the candidate's reward
//! relative to its parent's, 1.0 = parent; 0 for a candidate that failed to
//! answer, build, pass the checks or evaluate), and `advantage`: the reward
//! normalised within its group, the candidates answering the very same
//! prompt, `(r − mean) / std` (0 in a group of one or of equal rewards), as
//! GRPO uses. Context fields say where each record came from.

use std::collections::BTreeMap;
use std::io::Write;

use annvil_results::{CandidateRecord, CandidateStatus};
use serde::Serialize;

/// One JSONL line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RlRecord {
    /// The prompt the generator was given.
    pub prompt: String,
    /// Its raw answer.
    pub completion: String,
    /// Reward relative to the parent (1.0 = parent), 0 on failure.
    pub reward: f64,
    /// The reward normalised within the group of the same prompt.
    pub advantage: f64,
    /// Group id: the first 16 hex digits of the prompt's blake3 hash.
    pub group: String,
    /// Candidate (variant) name.
    pub candidate: String,
    /// Parent variant.
    pub parent: String,
    /// Slot changed.
    pub slot: String,
    /// Final status.
    pub status: String,
    /// Absolute reward, when evaluated.
    pub absolute_reward: Option<f64>,
}

/// The records of `candidates` (closed ones with a prompt), grouped by
/// prompt with normalised advantages, in database order.
pub fn records(candidates: &[CandidateRecord]) -> Vec<RlRecord> {
    let mut out: Vec<RlRecord> = candidates
        .iter()
        .filter(|c| c.status != CandidateStatus::Generated)
        .filter_map(|c| {
            let prompt = c.candidate.prompt.clone()?;
            let reward = match &c.score {
                Some(s) => match s.parent_reward {
                    Some(p) if p > 0.0 => s.reward / p,
                    _ => 1.0,
                },
                None => 0.0,
            };
            Some(RlRecord {
                group: blake3::hash(prompt.as_bytes()).to_hex()[..16].to_owned(),
                prompt,
                completion: c.candidate.response.clone().unwrap_or_default(),
                reward,
                advantage: 0.0,
                candidate: c.candidate.name.clone(),
                parent: c.candidate.lineage.parent.clone(),
                slot: c.candidate.lineage.slot.clone(),
                status: c.status.to_string(),
                absolute_reward: c.score.as_ref().map(|s| s.reward),
            })
        })
        .collect();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in out.iter().enumerate() {
        groups.entry(r.group.clone()).or_default().push(i);
    }
    for members in groups.values() {
        let n = members.len() as f64;
        let mean = members.iter().map(|&i| out[i].reward).sum::<f64>() / n;
        let var = members
            .iter()
            .map(|&i| (out[i].reward - mean).powi(2))
            .sum::<f64>()
            / n;
        let std = var.sqrt();
        for &i in members {
            out[i].advantage = if std > 1e-12 {
                (out[i].reward - mean) / std
            } else {
                0.0
            };
        }
    }
    out
}

/// Writes `records` as JSON lines.
pub fn write_jsonl(records: &[RlRecord], mut out: impl Write) -> std::io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use annvil_results::{CandidateId, CandidateScore, Lineage, NewCandidate};

    fn candidate(prompt: &str, reward: Option<f64>) -> CandidateRecord {
        CandidateRecord {
            id: CandidateId(0),
            candidate: NewCandidate {
                session: "s".into(),
                name: format!("c{reward:?}"),
                dir: String::new(),
                content_hash: String::new(),
                lineage: Lineage {
                    parent: "p".into(),
                    slot: "search".into(),
                    change: None,
                },
                generator: "cmd".into(),
                prompt: Some(prompt.into()),
                response: Some("## Code".into()),
                slot_code: None,
                language: Some("rust".into()),
            },
            status: if reward.is_some() {
                CandidateStatus::Ok
            } else {
                CandidateStatus::BuildFailed
            },
            build_log: None,
            failure: None,
            score: reward.map(|reward| CandidateScore {
                reward,
                parent_reward: Some(100.0),
                metrics_json: String::new(),
                dataset_hash: String::new(),
                config_key: String::new(),
            }),
            created_at: String::new(),
        }
    }

    #[test]
    fn advantages_are_normalised_within_each_prompt_group() {
        let records = records(&[
            candidate("a", Some(150.0)),
            candidate("a", Some(50.0)),
            candidate("a", None),
            candidate("b", Some(120.0)),
        ]);
        assert_eq!(records.len(), 4);
        let a: Vec<&RlRecord> = records.iter().filter(|r| r.prompt == "a").collect();
        assert_eq!(
            a.iter().map(|r| r.reward).collect::<Vec<_>>(),
            [1.5, 0.5, 0.0]
        );
        let mean: f64 = a.iter().map(|r| r.advantage).sum::<f64>() / 3.0;
        let var: f64 = a.iter().map(|r| r.advantage.powi(2)).sum::<f64>() / 3.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-9);
        assert!(a[0].advantage > a[1].advantage && a[1].advantage > a[2].advantage);
        let b = records.iter().find(|r| r.prompt == "b").unwrap();
        assert_eq!(b.advantage, 0.0, "a group of one has no advantage");
        let mut buf = Vec::new();
        write_jsonl(&records, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), 4);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        for key in ["prompt", "completion", "reward", "advantage"] {
            assert!(first.get(key).is_some(), "{key}");
        }
    }
}
