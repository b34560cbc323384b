//! `bruteforce`: exact search by scanning every base vector. No graph, no
//! knobs; the reference the host checks every other variant against.

use annvil_abi::{Base, Construction, Graph, GraphView, Metric, Neighbors, Params, Result, Search};
use annvil_rerank::{ExactRerank, rank_exact};

/// Builds nothing: exact search needs no index.
pub struct NoGraph;

impl Construction for NoGraph {
    fn build(
        _base: Base,
        _metric: Metric,
        _params: &mut Params,
        _threads: usize,
    ) -> Result<NoGraph> {
        Ok(NoGraph)
    }

    fn view(&self) -> GraphView<'_> {
        GraphView::default()
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

/// Ranks every base vector exactly; ignores any graph.
pub struct ExactScan {
    base: Base,
    metric: Metric,
}

impl Search for ExactScan {
    type Context = ();

    fn prepare(
        base: Base,
        _graph: &Graph,
        metric: Metric,
        _params: &mut Params,
    ) -> Result<ExactScan> {
        Ok(ExactScan { base, metric })
    }

    fn configure(&mut self, _params: &mut Params) -> Result<()> {
        Ok(())
    }

    fn new_context(&self) -> Result<()> {
        Ok(())
    }

    fn search(&self, _context: &mut (), query: &[f32], out: &mut Neighbors<'_>) -> Result<()> {
        rank_exact(
            &self.base,
            self.metric,
            query,
            0..self.base.len() as u32,
            out,
        );
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

annvil_abi::export_variant! {
    name: "bruteforce",
    construction: NoGraph,
    search: ExactScan,
    refinement: ExactRerank,
}
