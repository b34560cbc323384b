//! Refinement slots: [`ExactRerank`] recomputes f32 distances of the
//! candidates and keeps the best k; [`Identity`] keeps the search order.
//! [`rank_exact`] is the shared exact ranking, also used by exact search.

use std::collections::BinaryHeap;

use annvil_abi::{Base, Metric, Neighbors, Params, Refine, Result};
use annvil_core::Candidate;

/// Writes the `out.capacity()` nearest of `ids` to `query` into `out`,
/// nearest first (ties broken by id). `ids` must not repeat.
pub fn rank_exact(
    base: &Base,
    metric: Metric,
    query: &[f32],
    ids: impl IntoIterator<Item = u32>,
    out: &mut Neighbors<'_>,
) {
    let k = out.capacity();
    if k == 0 {
        return;
    }
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for id in ids {
        let scored = Candidate {
            distance: annvil_distance::distance(metric, base.row(id as usize), query),
            id,
        };
        if heap.len() < k {
            heap.push(scored);
        } else if scored < *heap.peek().expect("heap holds k items") {
            heap.pop();
            heap.push(scored);
        }
    }
    for c in heap.into_sorted_vec() {
        out.push(c.id, c.distance);
    }
}

/// Exact f32 rerank of the search candidates.
pub struct ExactRerank {
    base: Base,
    metric: Metric,
}

impl Refine for ExactRerank {
    type Context = ();

    fn prepare(base: Base, metric: Metric, _params: &mut Params) -> Result<ExactRerank> {
        Ok(ExactRerank { base, metric })
    }

    fn new_context(&self) -> Result<()> {
        Ok(())
    }

    fn refine(
        &self,
        _context: &mut (),
        query: &[f32],
        candidates: &[u32],
        _candidate_distances: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let mut unique = candidates.to_vec();
        unique.sort_unstable();
        unique.dedup();
        rank_exact(&self.base, self.metric, query, unique, out);
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

/// Keeps the first k candidates with the search's own distances: the
/// refinement for a search whose order is already final.
pub struct Identity;

impl Refine for Identity {
    type Context = ();

    fn prepare(_base: Base, _metric: Metric, _params: &mut Params) -> Result<Identity> {
        Ok(Identity)
    }

    fn new_context(&self) -> Result<()> {
        Ok(())
    }

    fn refine(
        &self,
        _context: &mut (),
        _query: &[f32],
        candidates: &[u32],
        candidate_distances: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        for (&id, &distance) in candidates.iter().zip(candidate_distances) {
            if !out.push(id, distance) {
                break;
            }
        }
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}
