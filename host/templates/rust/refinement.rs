//! Refinement slot: exact rerank. Every distinct candidate's exact f32
//! distance to the query is computed, and the `k` nearest are kept, sorted
//! by distance, then id. The search's own distances are not used, so any
//! search slot (quantized, approximate) can feed it. No parameters.

use annvil_abi::{Base, Metric, Neighbors, Params, Refine, Result};
use annvil_distance::Kernel;

/// The read-only state shared by all contexts.
pub struct Refiner {
    base: Base,
    kernel: Kernel,
}

/// Per-thread scratch space: the candidates with their exact distances.
pub struct Context {
    scored: Vec<(f32, u32)>,
}

impl Refine for Refiner {
    type Context = Context;

    fn prepare(base: Base, metric: Metric, _params: &mut Params) -> Result<Self> {
        Ok(Refiner {
            base,
            kernel: annvil_distance::kernel(metric),
        })
    }

    fn new_context(&self) -> Result<Context> {
        Ok(Context { scored: Vec::new() })
    }

    fn refine(
        &self,
        context: &mut Context,
        query: &[f32],
        candidates: &[u32],
        _candidate_distances: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let scored = &mut context.scored;
        scored.clear();
        scored.extend(
            candidates
                .iter()
                .map(|&id| (self.kernel.distance(query, self.base.row(id as usize)), id)),
        );
        // Sort by (distance, id): a repeated id has the same distance each
        // time, so its copies end up next to each other and dedup drops them.
        scored.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        scored.dedup_by_key(|&mut (_, id)| id);
        for &(distance, id) in scored.iter() {
            if !out.push(id, distance) {
                break;
            }
        }
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }

    fn context_memory_bytes(context: &Context) -> usize {
        context.scored.capacity() * size_of::<(f32, u32)>()
    }
}
