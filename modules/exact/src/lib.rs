//! Exact search: [`NoGraph`] builds nothing and [`ExactScan`] ranks every
//! base vector for every query. The reference every variant is checked
//! against.

use annvil_abi::{Base, Construction, Graph, GraphView, Metric, Neighbors, Params, Result, Search};
use annvil_rerank::rank_exact;

/// A construction slot that builds nothing (exact search needs no index).
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

/// Ranks every base vector exactly; ignores any graph. No knobs.
pub struct ExactScan {
    base: Base,
    metric: Metric,
}

impl ExactScan {
    /// Writes the exact nearest `out.capacity()` base vectors of `query`.
    pub fn scan(&self, query: &[f32], out: &mut Neighbors<'_>) {
        rank_exact(
            &self.base,
            self.metric,
            query,
            0..self.base.len() as u32,
            out,
        );
    }
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
        self.scan(query, out);
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}
