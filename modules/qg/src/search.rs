//! The quantized-graph search: a best-first search whose frontier is
//! ordered by FastScan estimates, while each node it expands gets its
//! exact distance from the vector in its own record.

use crate::fastscan::{BLOCK, ByteTable, Scanner};
use crate::level::{QuantizedLevel, VectorKernels};
use crate::pq::{CENTROIDS, ProductQuantizer};
use annvil_abi::Metric;
use annvil_beam::{Pool, VisitedSet};
use annvil_core::Candidate;

/// Level 0 with its quantizer and kernels: everything a search reads.
#[derive(Debug)]
pub struct QuantizedGraph {
    /// The records.
    pub level: QuantizedLevel,
    /// The quantizer of the neighbour codes.
    pub pq: ProductQuantizer,
    /// The block-scoring kernel.
    pub scanner: Scanner,
    /// The distances of the metric to the records' vectors.
    pub kernels: VectorKernels,
    /// The index metric.
    pub metric: Metric,
}

/// The run-time settings of a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The beam width (a search for `k` results uses `max(ef, k)`).
    pub ef: usize,
    /// Cache lines of the next node's record prefetched while a node is
    /// expanded.
    pub prefetch_lines: usize,
    /// Expanded nodes kept for the exact rerank when the records' vectors
    /// are not exact (at least the `k` asked for).
    pub rerank: usize,
}

/// Reusable scratch of [`QuantizedGraph::search`] for one thread.
#[derive(Clone, Debug)]
pub struct Scratch {
    visited: VisitedSet,
    /// The frontier and beam, by estimate.
    pool: Pool,
    table: Vec<f32>,
    bytes: ByteTable,
    sums: [u16; BLOCK],
    /// The best expanded nodes by exact distance, closest first.
    best: Vec<Candidate>,
}

impl Scratch {
    /// Scratch for searching `graph`.
    pub fn new(graph: &QuantizedGraph) -> Scratch {
        Scratch {
            visited: VisitedSet::new(graph.level.num_nodes()),
            pool: Pool::new(),
            table: vec![0.0; graph.pq.padded_subspaces() * CENTROIDS],
            bytes: ByteTable::default(),
            sums: [0; BLOCK],
            best: Vec::new(),
        }
    }

    /// The nodes the last search kept, closest first by the distance to
    /// the records' vectors.
    pub fn results(&self) -> &[Candidate] {
        &self.best
    }

    /// Bytes of memory the scratch owns.
    pub fn memory_bytes(&self) -> usize {
        self.visited.memory_bytes()
            + self.pool.memory_bytes()
            + self.table.capacity() * size_of::<f32>()
            + self.bytes.bytes().len()
            + self.best.capacity() * size_of::<Candidate>()
    }

    /// Offers an expanded node to the `k` best.
    #[inline]
    fn keep(&mut self, k: usize, found: Candidate) {
        if self.best.len() >= k && self.best.last().is_some_and(|last| *last <= found) {
            return;
        }
        let at = self.best.partition_point(|c| *c < found);
        self.best.insert(at, found);
        self.best.truncate(k);
    }
}

impl QuantizedGraph {
    /// Searches for the `k` nearest nodes to `query` from `seeds`, with a
    /// beam of `settings.ef` (at least `k`) ordered by estimate: the closest
    /// unexpanded node of the beam is expanded, which measures it on the
    /// vector in its record and scores all its neighbours from
    /// their codes in one block scan; an unvisited neighbour whose estimate
    /// beats the beam's worst joins the beam. Ends when the whole beam is
    /// expanded; [`Scratch::results`] then holds the `k` closest expanded
    /// nodes (or the best `settings.rerank`, if more, when the records'
    /// vectors are not exact, for the caller to rerank). Returns the number
    /// of vector distances and code estimates computed.
    pub fn search(
        &self,
        scratch: &mut Scratch,
        query: &[f32],
        seeds: impl IntoIterator<Item = u32>,
        settings: Settings,
        k: usize,
    ) -> u64 {
        self.pq
            .distance_table(query, self.metric, &mut scratch.table);
        scratch.bytes.set(&mut scratch.table);
        scratch.visited.clear();
        scratch.pool.reset(settings.ef.max(k).max(1));
        scratch.best.clear();
        let keep = if self.level.is_lossless() {
            k
        } else {
            k.max(settings.rerank)
        };
        for seed in seeds {
            if scratch.visited.insert(seed) {
                // Seeds have no code of their own here; they go first.
                scratch.pool.insert(seed, 0.0);
            }
        }
        let mut computed = 0;
        while let Some(current) = scratch.pool.pop() {
            let node = current.id;
            if let Some(next) = scratch.pool.peek() {
                self.level.prefetch(next.id, settings.prefetch_lines);
            }
            let distance = self.level.distance(&self.kernels, query, node);
            scratch.keep(keep, Candidate { distance, id: node });
            let degree = self.level.degree(node);
            computed += 1 + degree as u64;
            for b in 0..degree.div_ceil(BLOCK) {
                self.scanner.scan(
                    scratch.bytes.bytes(),
                    self.level.block(node, b),
                    &mut scratch.sums,
                );
                let mut bound = scratch.pool.bound();
                for (i, &sum) in scratch.sums.iter().enumerate().take(degree - b * BLOCK) {
                    let estimate = f32::from(sum);
                    if estimate >= bound {
                        continue;
                    }
                    let neighbor = self.level.neighbor(node, b * BLOCK + i);
                    if scratch.visited.insert(neighbor) && scratch.pool.insert(neighbor, estimate) {
                        bound = scratch.pool.bound();
                    }
                }
            }
        }
        computed
    }

    /// Bytes of memory the records and the quantizer own.
    pub fn memory_bytes(&self) -> usize {
        self.level.memory_bytes() + self.pq.memory_bytes()
    }
}
