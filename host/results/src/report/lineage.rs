//! The lineage tree of a leaderboard: every derived variant under its
//! parent, with the reward before and after. The Markdown and HTML reports
//! render it as nested lists.

use std::collections::{BTreeMap, BTreeSet};

use super::ReportData;
use super::cells::fmt_qps;
use crate::model::Status;

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

/// One line of the lineage tree: the variant, the slot it changed and its
/// reward against its parent's.
pub(super) fn lineage_line(node: &LineageNode) -> String {
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
