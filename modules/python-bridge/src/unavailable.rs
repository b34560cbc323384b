//! The slots as compiled without the `python` feature: they explain why they
//! cannot serve.

use annvil_abi::{
    Base, Construction, Error, Graph, GraphView, Metric, Neighbors, Params, Result, Search,
};

fn not_compiled_in() -> Error {
    Error::unsupported(
        "this variant was compiled without its `python` feature; the host \
         compiles bridged variants with it (`host evaluate` / `host check`)",
    )
}

/// Stands in for the index built by a Python adapter.
pub struct PythonIndex;

impl Construction for PythonIndex {
    fn build(_: Base, _: Metric, _: &mut Params, _: usize) -> Result<Self> {
        Err(not_compiled_in())
    }

    fn view(&self) -> GraphView<'_> {
        GraphView::default()
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

/// Stands in for the search through a Python adapter.
pub struct PythonSearch;

impl Search for PythonSearch {
    type Context = ();
    const NEEDS_NATIVE_GRAPH: bool = true;

    fn prepare(_: Base, _: &Graph, _: Metric, _: &mut Params) -> Result<Self> {
        Err(not_compiled_in())
    }

    fn configure(&mut self, _: &mut Params) -> Result<()> {
        Err(not_compiled_in())
    }

    fn new_context(&self) -> Result<()> {
        Err(not_compiled_in())
    }

    fn search(&self, _: &mut (), _: &[f32], _: &mut Neighbors<'_>) -> Result<()> {
        Err(not_compiled_in())
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}
