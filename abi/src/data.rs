//! The plain data a slot sees: metrics, vectors, graph views and the output
//! buffer of a search or refinement.

use std::any::Any;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::export::host_slice;
use crate::ffi;

/// A distance function. Smaller distances are always closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// `1 - <x, q>` on vectors the host has unit-normalised.
    Angular,
    /// `-<x, q>`.
    InnerProduct,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 3] = [Metric::L2, Metric::Angular, Metric::InnerProduct];

    /// The metric for a raw `annvil_metric`, if this ABI version knows it.
    pub fn from_raw(raw: ffi::annvil_metric) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.to_raw() == raw)
    }

    /// The raw `annvil_metric` value.
    pub const fn to_raw(self) -> ffi::annvil_metric {
        match self {
            Metric::L2 => ffi::ANNVIL_METRIC_L2,
            Metric::Angular => ffi::ANNVIL_METRIC_ANGULAR,
            Metric::InnerProduct => ffi::ANNVIL_METRIC_INNER_PRODUCT,
        }
    }

    /// The name ann-benchmarks uses (`euclidean`, `angular`) or `ip`.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::L2 => "euclidean",
            Metric::Angular => "angular",
            Metric::InnerProduct => "ip",
        }
    }

    /// Reference (scalar, f32) distance between two vectors of equal length.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        match self {
            Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
            Metric::Angular => 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
            Metric::InnerProduct => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Metric, String> {
        match s.to_ascii_lowercase().as_str() {
            "euclidean" | "l2" => Ok(Metric::L2),
            "angular" | "cosine" => Ok(Metric::Angular),
            "ip" | "inner_product" | "dot" => Ok(Metric::InnerProduct),
            other => Err(format!(
                "unknown metric `{other}` (expected euclidean, angular or ip)"
            )),
        }
    }
}

/// Row-major f32 vectors of one dimension.
#[derive(Clone, Copy, Debug)]
pub struct Vectors<'a> {
    data: &'a [f32],
    dim: usize,
}

/// The base vectors a prepared handle may keep: the contract keeps them
/// valid and unchanged until that handle is destroyed.
pub type Base = Vectors<'static>;

impl<'a> Vectors<'a> {
    /// Views `data` as vectors of `dim` floats; `data.len()` must be a
    /// multiple of `dim` and `dim` must be positive.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Vectors<'a>> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::invalid(format!(
                "{} floats do not form vectors of dimension {dim}",
                data.len()
            )));
        }
        Ok(Vectors { data, dim })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Vector `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All vectors, row-major.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Iterates over the vectors in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'a, f32> {
        self.data.chunks_exact(self.dim)
    }
}

/// One level of a graph in compressed sparse row form over all nodes.
#[derive(Clone, Copy, Debug)]
pub struct Level<'a> {
    /// `num_nodes + 1` offsets into `neighbors`.
    pub offsets: &'a [u64],
    /// Concatenated neighbour lists.
    pub neighbors: &'a [u32],
}

impl<'a> Level<'a> {
    /// The neighbours of `node` on this level.
    pub fn neighbors_of(&self, node: u32) -> &'a [u32] {
        let node = node as usize;
        &self.neighbors[self.offsets[node] as usize..self.offsets[node + 1] as usize]
    }
}

/// The standard, library-independent view of a built graph.
#[derive(Clone, Debug, Default)]
pub struct GraphView<'a> {
    /// Number of nodes (the number of base vectors).
    pub num_nodes: usize,
    /// `levels[0]` holds every node; higher levels are sparser. Empty when
    /// the construction builds no graph.
    pub levels: Vec<Level<'a>>,
    /// Where a search starts (on the top level).
    pub entry_points: &'a [u32],
}

impl<'a> GraphView<'a> {
    /// Borrows a raw view as filled by a construction slot.
    ///
    /// # Safety
    /// Every array of `view` must hold the number of elements the contract
    /// gives it (`num_levels` levels of `num_nodes + 1` offsets and
    /// `offsets[num_nodes]` neighbours, `num_entry_points` entry points) and
    /// stay valid for `'a`.
    pub unsafe fn from_ffi(view: &ffi::annvil_graph_view) -> Result<GraphView<'a>> {
        // SAFETY: lengths and lifetime as the caller guarantees.
        let levels = unsafe { host_slice(view.levels, view.num_levels as usize, "graph levels") }?
            .iter()
            .map(|level| {
                // SAFETY: as above.
                let offsets =
                    unsafe { host_slice(level.offsets, view.num_nodes + 1, "level offsets") }?;
                let edges = offsets[view.num_nodes] as usize;
                // SAFETY: as above.
                let neighbors = unsafe { host_slice(level.neighbors, edges, "level neighbours") }?;
                Ok(Level { offsets, neighbors })
            })
            .collect::<Result<Vec<_>>>()?;
        // SAFETY: as above.
        let entry_points = unsafe {
            host_slice(
                view.entry_points,
                view.num_entry_points as usize,
                "entry points",
            )
        }?;
        Ok(GraphView {
            num_nodes: view.num_nodes,
            levels,
            entry_points,
        })
    }

    /// Checks that every level is a valid CSR over `num_nodes` nodes (when
    /// there are levels) and that the entry points are in range.
    pub fn validate(&self, num_nodes: usize) -> Result<()> {
        if !self.levels.is_empty() && self.num_nodes != num_nodes {
            return Err(Error::invalid(format!(
                "graph view has {} nodes, the base has {num_nodes}",
                self.num_nodes
            )));
        }
        for (l, level) in self.levels.iter().enumerate() {
            let bad = level.offsets.len() != self.num_nodes + 1
                || level.offsets.windows(2).any(|w| w[0] > w[1])
                || level.offsets.last().map(|&o| o as usize) != Some(level.neighbors.len())
                || level
                    .neighbors
                    .iter()
                    .any(|&v| v as usize >= self.num_nodes);
            if bad {
                return Err(Error::invalid(format!(
                    "graph level {l} is not a valid CSR over {} nodes",
                    self.num_nodes
                )));
            }
        }
        if let Some(&e) = self
            .entry_points
            .iter()
            .find(|&&e| e as usize >= self.num_nodes)
        {
            return Err(Error::invalid(format!("entry point {e} is out of range")));
        }
        Ok(())
    }
}

/// What a search slot receives from the construction slot: the standard
/// view, and the construction's native handle when both slots come from the
/// same library.
pub struct Graph {
    /// The standard view; valid until the searcher is destroyed.
    pub view: GraphView<'static>,
    pub(crate) native: Option<(&'static (dyn Any + Send + Sync), &'static str)>,
}

impl Graph {
    /// A graph with only the standard view, as a construction slot from
    /// another library hands it over (no native handle).
    pub fn from_view(view: GraphView<'static>) -> Graph {
        Graph { view, native: None }
    }

    /// The construction's own graph object, if the construction slot is
    /// this library's `C` (by type name) and the host passed it through.
    pub fn native<C: Any>(&self) -> Option<&'static C> {
        let (object, tag) = self.native?;
        if tag != std::any::type_name::<C>() {
            return None;
        }
        object.downcast_ref::<C>()
    }
}

/// The host's output buffers for one search or refinement: room for
/// `capacity()` (id, distance) pairs, to be pushed in increasing distance.
pub struct Neighbors<'a> {
    ids: &'a mut [u32],
    distances: &'a mut [f32],
    len: usize,
}

impl<'a> Neighbors<'a> {
    /// Wraps two output buffers of equal length.
    pub fn new(ids: &'a mut [u32], distances: &'a mut [f32]) -> Neighbors<'a> {
        assert_eq!(
            ids.len(),
            distances.len(),
            "output buffers differ in length"
        );
        Neighbors {
            ids,
            distances,
            len: 0,
        }
    }

    /// Number of results the host asked for.
    pub fn capacity(&self) -> usize {
        self.ids.len()
    }

    /// Number of results written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more results fit.
    pub fn is_full(&self) -> bool {
        self.len == self.ids.len()
    }

    /// Appends a result; returns false (and writes nothing) when full.
    pub fn push(&mut self, id: u32, distance: f32) -> bool {
        if self.is_full() {
            return false;
        }
        self.ids[self.len] = id;
        self.distances[self.len] = distance;
        self.len += 1;
        true
    }

    /// The ids written so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    /// The distances written so far.
    pub fn distances(&self) -> &[f32] {
        &self.distances[..self.len]
    }
}
