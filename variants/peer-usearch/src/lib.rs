//! `peer-usearch`: USearch's HNSW (the `usearch` crate from crates.io, which
//! compiles USearch's C++ with its own build script) as an annvil peer.
//!
//! * **Construction**: `Index::new` with `connectivity`, `expansion_add`
//!   and `quantization` (f32 unless told otherwise), capacity and thread
//!   slots reserved with `reserve_capacity_and_threads`, then `add(i, row
//!   i)` for every base vector from `threads` threads pulling the next row
//!   off a shared counter. The standard graph view is read back through
//!   USearch's `level_of_key` and `neighbors` (keys are annvil ids).
//! * **Search**: `Index::search(query, n)` after `change_expansion_search`
//!   in `configure`; USearch's `expansion_search` is a setting of the index,
//!   not of a call, which is fine because `configure` never runs
//!   concurrently with searches. The search slot needs this library's own
//!   graph (`NEEDS_NATIVE_GRAPH`).
//! * **Metrics**: `L2sq` is annvil's L2; `IP` returns `1 - <x, q>`, shifted
//!   by -1 to annvil's `-<x, q>`; angular uses `Cos`, `1 - cos(x, q)`, which
//!   on the host's normalised vectors is annvil's `1 - <x, q>`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use annvil_abi::{
    Base, Construction, Error, Graph, GraphView, Level, Metric, Neighbors, Params, Result, Search,
};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Thread slots reserved for concurrent searches. USearch hands each
/// running search one of the slots reserved at build time; a search that
/// finds none fails ("Reserve capacity ahead of searches!"). This many
/// contexts (or the build's thread count, if larger) may search at once.
pub const SEARCH_THREAD_SLOTS: usize = 64;

/// A built USearch index and its exported standard view.
pub struct UsearchGraph {
    index: Index,
    /// Added to USearch's distance to get annvil's.
    shift: f32,
    /// Per level: CSR offsets (n + 1) and neighbour ids. Empty when the view
    /// is not exported.
    levels: Vec<(Vec<u64>, Vec<u32>)>,
    entry_points: Vec<u32>,
    num_nodes: usize,
}

fn usearch_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("usearch {what}: {e}"))
}

fn quantization(name: &str) -> Result<ScalarKind> {
    match name {
        "f32" => Ok(ScalarKind::F32),
        "f16" => Ok(ScalarKind::F16),
        "bf16" => Ok(ScalarKind::BF16),
        "i8" => Ok(ScalarKind::I8),
        other => Err(Error::invalid(format!(
            "parameter `quantization`: `{other}` is not one of f32, f16, bf16, i8"
        ))),
    }
}

/// Adds row `i` under key `i` for every base vector, from `threads`
/// threads taking the next row off a shared counter. The first error stops
/// every thread and is returned.
fn add_all(index: &Index, base: &Base, threads: usize) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= base.len() {
                return;
            }
            if let Err(e) = index.add(i as u64, base.row(i)) {
                failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(usearch_error("add", e));
                next.store(base.len(), Ordering::Relaxed);
                return;
            }
        }
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        });
    }
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl UsearchGraph {
    /// Reads every level's adjacency back from USearch (keys are ids); the
    /// entry points are the nodes on the top level.
    fn export_view(&mut self) -> Result<()> {
        let n = self.num_nodes;
        let node_levels: Vec<usize> = (0..n as u64).map(|k| self.index.level_of_key(k)).collect();
        let Some(&top) = node_levels.iter().max() else {
            return Ok(());
        };
        for level in 0..=top {
            let mut offsets = Vec::with_capacity(n + 1);
            let mut neighbors = Vec::new();
            offsets.push(0u64);
            for (node, &node_level) in node_levels.iter().enumerate() {
                if node_level >= level {
                    for key in self.index.neighbors(node as u64, level) {
                        let id = u32::try_from(key)
                            .ok()
                            .filter(|&id| (id as usize) < n)
                            .ok_or_else(|| {
                                Error::internal(format!("usearch neighbour key {key} out of range"))
                            })?;
                        neighbors.push(id);
                    }
                }
                offsets.push(neighbors.len() as u64);
            }
            neighbors.shrink_to_fit();
            self.levels.push((offsets, neighbors));
        }
        self.entry_points = (0..n as u32)
            .filter(|&node| node_levels[node as usize] == top)
            .collect();
        Ok(())
    }
}

impl Construction for UsearchGraph {
    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Self> {
        // USearch's defaults, except f32 storage (the crate's default is
        // bf16) so every peer indexes the same full-precision vectors.
        let connectivity: usize = params.get_or("connectivity", 16)?;
        let expansion_add: usize = params.get_or("expansion_add", 128)?;
        let scalar = quantization(&params.get_or("quantization", "f32".to_owned())?)?;
        let graph_view: bool = params.get_or("graph_view", true)?;
        params.finish()?; // before the expensive part
        if connectivity < 2 {
            return Err(Error::invalid(format!(
                "parameter `connectivity`: {connectivity} is below 2"
            )));
        }
        if expansion_add < 1 {
            return Err(Error::invalid(
                "parameter `expansion_add`: must be at least 1",
            ));
        }
        if u32::try_from(base.len()).is_err() {
            return Err(Error::unsupported(
                "more base vectors than the ABI's u32 ids",
            ));
        }
        let (kind, shift) = match metric {
            Metric::L2 => (MetricKind::L2sq, 0.0),
            Metric::InnerProduct => (MetricKind::IP, -1.0),
            Metric::Angular => (MetricKind::Cos, 0.0),
        };
        let options = IndexOptions {
            dimensions: base.dim(),
            metric: kind,
            quantization: scalar,
            connectivity,
            expansion_add,
            expansion_search: 64,
            multi: false,
        };
        let index = Index::new(&options).map_err(|e| usearch_error("new", e))?;
        let threads = threads.max(1);
        index
            .reserve_capacity_and_threads(base.len(), threads.max(SEARCH_THREAD_SLOTS))
            .map_err(|e| usearch_error("reserve", e))?;
        add_all(&index, &base, threads)?;
        let mut graph = UsearchGraph {
            index,
            shift,
            levels: Vec::new(),
            entry_points: Vec::new(),
            num_nodes: base.len(),
        };
        if graph_view {
            graph.export_view()?;
        }
        Ok(graph)
    }

    fn view(&self) -> GraphView<'_> {
        GraphView {
            num_nodes: self.num_nodes,
            levels: self
                .levels
                .iter()
                .map(|(offsets, neighbors)| Level { offsets, neighbors })
                .collect(),
            entry_points: &self.entry_points,
        }
    }

    fn memory_bytes(&self) -> usize {
        let view: usize = self
            .levels
            .iter()
            .map(|(o, n)| o.capacity() * 8 + n.capacity() * 4)
            .sum();
        self.index.memory_usage() + view + self.entry_points.capacity() * 4
    }
}

/// USearch's own search over its own index.
pub struct UsearchSearch {
    graph: &'static UsearchGraph,
}

impl Search for UsearchSearch {
    /// USearch keeps per-thread scratch in its reserved thread slots.
    type Context = ();

    const NEEDS_NATIVE_GRAPH: bool = true;

    fn prepare(_base: Base, graph: &Graph, _metric: Metric, _params: &mut Params) -> Result<Self> {
        let graph = graph.native::<UsearchGraph>().ok_or_else(|| {
            Error::unsupported(
                "peer-usearch search needs the native graph of its own construction slot",
            )
        })?;
        Ok(UsearchSearch { graph })
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        let index = &self.graph.index;
        let expansion: usize = params.get_or("expansion_search", index.expansion_search())?;
        params.finish()?; // apply nothing from a call that fails
        if expansion < 1 {
            return Err(Error::invalid(
                "parameter `expansion_search`: must be at least 1",
            ));
        }
        index.change_expansion_search(expansion);
        Ok(())
    }

    fn new_context(&self) -> Result<()> {
        Ok(())
    }

    fn search(&self, _context: &mut (), query: &[f32], out: &mut Neighbors<'_>) -> Result<()> {
        if out.capacity() == 0 {
            return Ok(());
        }
        let found = self
            .graph
            .index
            .search(query, out.capacity())
            .map_err(|e| usearch_error("search", e))?;
        // Sorted by increasing distance already.
        for (&key, &distance) in found.keys.iter().zip(&found.distances) {
            if !out.push(key as u32, distance + self.graph.shift) {
                break;
            }
        }
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

annvil_abi::export_variant! {
    name: "peer-usearch",
    // The usearch version is pinned in Cargo.toml.
    version: concat!(env!("CARGO_PKG_VERSION"), "+usearch-2.26.6"),
    construction: UsearchGraph,
    search: UsearchSearch,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 deterministic pseudo-random vectors of dimension 12, normalised
    /// when `unit` (the host's angular convention).
    fn data(unit: bool) -> Base {
        let dim = 12;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut v: Vec<f32> = (0..300 * dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        if unit {
            for row in v.chunks_exact_mut(dim) {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        Base::new(Box::leak(v.into_boxed_slice()), dim).unwrap()
    }

    #[test]
    fn distances_follow_annvil_conventions_and_view_is_valid() {
        for metric in Metric::ALL {
            let base = data(metric == Metric::Angular);
            let mut params = Params::new([("connectivity", "8"), ("expansion_add", "64")]);
            let graph = UsearchGraph::build(base, metric, &mut params, 2).unwrap();
            graph.view().validate(base.len()).unwrap();
            assert!(!graph.view().levels.is_empty() && !graph.entry_points.is_empty());
            graph.index.change_expansion_search(300);
            for q in [0usize, 17, 299] {
                let query = base.row(q);
                let found = graph.index.search(query, 5).unwrap();
                for (&key, &d) in found.keys.iter().zip(&found.distances) {
                    let exact = metric.distance(base.row(key as usize), query);
                    let got = d + graph.shift;
                    assert!((got - exact).abs() < 1e-4, "{metric}: {got} vs {exact}");
                }
            }
        }
    }

    #[test]
    fn rejects_bad_parameters_before_building() {
        let base = data(false);
        let mut unknown = Params::new([("bogus", "1")]);
        let err = UsearchGraph::build(base, Metric::L2, &mut unknown, 1)
            .err()
            .unwrap();
        assert_eq!(err.status, annvil_abi::StatusCode::UnknownParameter);
        let mut bad = Params::new([("quantization", "f8")]);
        let err = UsearchGraph::build(base, Metric::L2, &mut bad, 1)
            .err()
            .unwrap();
        assert_eq!(err.status, annvil_abi::StatusCode::InvalidArgument);
    }
}
