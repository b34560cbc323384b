//! The quantized-graph search: a best-first search whose frontier is
//! ordered by FastScan estimates, while each node it expands gets its
//! exact distance from the vector in its own record.

use crate::level::{PreparedQuery, QuantizedLevel, VectorKernels};
use annvil_abi::Metric;
use annvil_beam::{Pool, VisitedSet};
use annvil_core::Candidate;
use annvil_pq::{BLOCK, ByteTable, Scanner};
use annvil_pq::{CENTROIDS, ProductQuantizer};

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

/// What orders a search's beam.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Beam {
    /// The code estimates: a node is measured on its vector only when it
    /// is expanded ([`QuantizedGraph::search`]).
    #[default]
    Estimates,
    /// The distances to the records' vectors, as in a classic graph
    /// search; the codes only filter which neighbours get measured
    /// ([`QuantizedGraph::search_filtered`]).
    Filtered,
}

impl Beam {
    /// Every beam, in the order of their names in messages.
    pub const ALL: [Beam; 2] = [Beam::Estimates, Beam::Filtered];

    /// The parameter value naming it: `estimates` or `filtered`.
    pub const fn name(self) -> &'static str {
        match self {
            Beam::Estimates => "estimates",
            Beam::Filtered => "filtered",
        }
    }
}

impl std::str::FromStr for Beam {
    type Err = annvil_abi::Error;

    /// Parses a name of [`Beam::name`]; the error names the `beam`
    /// parameter and the accepted values.
    fn from_str(value: &str) -> annvil_abi::Result<Beam> {
        Beam::ALL
            .into_iter()
            .find(|beam| beam.name() == value.trim())
            .ok_or_else(|| {
                annvil_abi::Error::invalid(format!(
                    "parameter `beam` must be one of estimates, filtered, not `{value}`"
                ))
            })
    }
}

/// The run-time settings of a search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The beam width (a search for `k` results uses `max(ef, k)`).
    pub ef: usize,
    /// Cache lines of the next node's record prefetched while a node is
    /// expanded.
    pub prefetch_lines: usize,
    /// Expanded nodes kept for the exact rerank when the records' vectors
    /// are not exact (at least the `k` asked for).
    pub rerank: usize,
    /// How far past the beam's worst distance, as a fraction of it, a
    /// neighbour's estimate may lie and still get measured (filtered beam
    /// only).
    pub filter: f32,
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
    /// Neighbours whose estimates passed the filter, to be measured.
    survivors: Vec<u32>,
    /// The query in the form the records' vectors are measured against.
    prepared: PreparedQuery,
    /// Whether the last search's distances are exact.
    exact: bool,
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
            survivors: Vec::with_capacity(BLOCK),
            prepared: graph.level.prepared_query(graph.metric),
            exact: true,
        }
    }

    /// Whether the distances of the last search's
    /// [results](Self::results) are exact; if not, the caller reranks
    /// them.
    pub fn results_are_exact(&self) -> bool {
        self.exact
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
            + self.survivors.capacity() * size_of::<u32>()
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
    /// Prepares `scratch` for a search of `query`: its code table, the
    /// query for the records' vectors, an empty visited set, beam and
    /// answer. Returns how many nodes the answer keeps: `k`, or
    /// `settings.rerank` if more when the distances are not exact.
    fn begin(&self, scratch: &mut Scratch, query: &[f32], settings: Settings, k: usize) -> usize {
        self.pq
            .distance_table(query, self.metric, &mut scratch.table);
        scratch.bytes.set(&mut scratch.table);
        self.level.set_query(&mut scratch.prepared, query);
        scratch.exact = self.level.is_exact(&scratch.prepared);
        scratch.visited.clear();
        scratch.pool.reset(settings.ef.max(k).max(1));
        scratch.best.clear();
        if scratch.exact {
            k
        } else {
            k.max(settings.rerank)
        }
    }

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
        let keep = self.begin(scratch, query, settings, k);
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
            let distance = self
                .level
                .distance(&self.kernels, &scratch.prepared, query, node);
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

    /// Searches like [`search`](Self::search), with the beam ordered by
    /// the distances to the records' vectors instead (a classic graph
    /// search): expanding a node scores all its neighbours from their codes
    /// in one block scan, and only the unvisited ones whose estimate lies
    /// within `settings.filter` (a fraction of it) past the beam's worst
    /// distance are measured on their vectors, all their vectors prefetched
    /// first. [`Scratch::results`] then holds the best of the beam.
    pub fn search_filtered(
        &self,
        scratch: &mut Scratch,
        query: &[f32],
        seeds: impl IntoIterator<Item = u32>,
        settings: Settings,
        k: usize,
    ) -> u64 {
        let keep = self.begin(scratch, query, settings, k);
        let mut computed = 0;
        for seed in seeds {
            if scratch.visited.insert(seed) {
                computed += 1;
                let distance = self
                    .level
                    .distance(&self.kernels, &scratch.prepared, query, seed);
                scratch.pool.insert(seed, distance);
            }
        }
        // The code estimates are distances of the metric up to a constant:
        // `1 - <x, q>` for angular data against the table's `-<x, q>`.
        let shift = if self.metric == Metric::Angular {
            1.0
        } else {
            0.0
        };
        while let Some(current) = scratch.pool.pop() {
            let node = current.id;
            if let Some(next) = scratch.pool.peek() {
                self.level.prefetch(next.id, settings.prefetch_lines);
            }
            let degree = self.level.degree(node);
            computed += degree as u64;
            for b in 0..degree.div_ceil(BLOCK) {
                self.scanner.scan(
                    scratch.bytes.bytes(),
                    self.level.block(node, b),
                    &mut scratch.sums,
                );
                let bound = scratch.pool.bound();
                let limit = bound + settings.filter * bound.abs();
                scratch.survivors.clear();
                for (i, &sum) in scratch.sums.iter().enumerate().take(degree - b * BLOCK) {
                    if scratch.bytes.estimate(sum) + shift > limit {
                        continue;
                    }
                    let neighbor = self.level.neighbor(node, b * BLOCK + i);
                    if !scratch.visited.contains(neighbor) {
                        self.level.prefetch_vector(neighbor);
                        scratch.survivors.push(neighbor);
                    }
                }
                for &neighbor in &scratch.survivors {
                    scratch.visited.insert(neighbor);
                    computed += 1;
                    let distance =
                        self.level
                            .distance(&self.kernels, &scratch.prepared, query, neighbor);
                    scratch.pool.insert(neighbor, distance);
                }
            }
        }
        scratch.best.extend(scratch.pool.candidates().take(keep));
        computed
    }

    /// Bytes of memory the records and the quantizer own.
    pub fn memory_bytes(&self) -> usize {
        self.level.memory_bytes() + self.pq.memory_bytes()
    }
}
