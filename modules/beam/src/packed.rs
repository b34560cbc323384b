//! Quantized traversal of level 0 (the GLASS layout): each node's
//! neighbour list and its scalar-quantized code in one cache-line aligned
//! record, searched with a [`Pool`] and integer code distances.

use std::fmt;
use std::str::FromStr;

use annvil_abi::{Error, Metric, Result, Vectors};
use annvil_distance::{CACHE_LINE, prefetch, prefetch_slice};
use annvil_quant::{IntegerQuery, ScalarQuantizer, Scheme};

use crate::layer::{Candidate, Links, Slot};
use crate::pool::{MAX_POOL_ID, Pool};
use crate::region::Region;
use crate::visited::VisitedSet;

/// How many neighbours ahead of the one being measured
/// [`PackedSearch::expand`] prefetches the code of (tuned on Fashion-MNIST
/// SQ8 records of 1 KiB).
const PREFETCH_AHEAD: usize = 3;

/// Cache lines of a code [`PackedLevel::prefetch_code`] asks for at most.
const PREFETCH_CODE_LINES: usize = 16;

/// Bytes of one neighbour id in a record.
const ID_BYTES: usize = size_of::<u32>();

/// How the level-0 search measures distances: `f32` on the base vectors,
/// or `sq8`/`sq4` on scalar-quantized codes packed next to the adjacency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Traversal {
    /// Exact f32 distances on the base vectors (the classic search).
    #[default]
    F32,
    /// 8-bit codes, one byte per dimension.
    Sq8,
    /// 4-bit codes, two dimensions per byte.
    Sq4,
}

impl Traversal {
    /// Every traversal, in the order of their names in messages.
    pub const ALL: [Traversal; 3] = [Traversal::F32, Traversal::Sq8, Traversal::Sq4];

    /// The parameter value naming it: `f32`, `sq8` or `sq4`.
    pub const fn name(self) -> &'static str {
        match self {
            Traversal::F32 => "f32",
            Traversal::Sq8 => "sq8",
            Traversal::Sq4 => "sq4",
        }
    }

    /// The quantization scheme of the codes, `None` for f32.
    pub const fn scheme(self) -> Option<Scheme> {
        match self {
            Traversal::F32 => None,
            Traversal::Sq8 => Some(Scheme::Sq8),
            Traversal::Sq4 => Some(Scheme::Sq4),
        }
    }
}

impl fmt::Display for Traversal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Traversal {
    type Err = Error;

    /// Parses a name of [`Traversal::name`]; the error names the
    /// `traversal` parameter and the accepted values.
    fn from_str(value: &str) -> Result<Traversal> {
        Traversal::ALL
            .into_iter()
            .find(|t| t.name() == value.trim())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "parameter `traversal` must be one of f32, sq8, sq4, not `{value}`"
                ))
            })
    }
}

/// Level 0 as one record per node, each a whole number of cache lines from
/// a 64-byte aligned start (on transparent huge pages where the kernel
/// allows, so that random visits do not miss the TLB too): the neighbour count and ids (`u32`, native
/// endian), zero padding to a line boundary, then the node's code. A node's
/// visit therefore reads one contiguous region, and its code sits next to
/// the list that will be read when it is expanded.
#[derive(Debug)]
pub struct PackedLevel {
    /// The records, back to back from a 64-byte aligned start (on huge
    /// pages where the kernel allows).
    bytes: Region,
    /// Bytes from one record to the next.
    stride: usize,
    /// Offset of the code in a record.
    code_at: usize,
    num_nodes: usize,
    max_degree: usize,
    quantizer: ScalarQuantizer,
    /// Whether every vector decodes exactly from its code.
    lossless: bool,
    metric: Metric,
}

impl PackedLevel {
    /// Packs the lists of `layer` over the nodes of `base` with the codes of
    /// `base` under a [uniform](ScalarQuantizer::train_uniform) quantizer of
    /// `scheme` trained on `base`. Fails when `base` is empty or has more
    /// than 2^31 vectors.
    pub fn new<L: Links + ?Sized>(
        layer: &L,
        base: Vectors<'_>,
        metric: Metric,
        scheme: Scheme,
    ) -> Result<PackedLevel> {
        let num_nodes = base.len();
        if num_nodes == 0 {
            return Err(Error::invalid("quantized traversal needs base vectors"));
        }
        if num_nodes - 1 > MAX_POOL_ID as usize {
            return Err(Error::unsupported(format!(
                "quantized traversal supports up to 2^31 nodes, not {num_nodes}"
            )));
        }
        let quantizer = ScalarQuantizer::train_uniform(scheme, base.as_slice(), base.dim());
        let max_degree = (0..num_nodes as u32)
            .map(|v| layer.links(v).len())
            .max()
            .unwrap_or(0);
        let code_at = (ID_BYTES * (1 + max_degree)).next_multiple_of(CACHE_LINE);
        let stride = code_at + quantizer.row_stride();
        let mut bytes = Region::zeroed(num_nodes * stride);
        let records = bytes.as_mut_slice().chunks_exact_mut(stride);
        let mut decoded = vec![0.0; base.dim()];
        let mut lossless = true;
        for ((v, record), vector) in records.enumerate().zip(base.rows()) {
            let links = layer.links(v as u32);
            let (header, code) = record.split_at_mut(code_at);
            let values = std::iter::once(links.len() as u32).chain(links.iter().map(Slot::get));
            for (cell, value) in header.chunks_exact_mut(ID_BYTES).zip(values) {
                cell.copy_from_slice(&value.to_ne_bytes());
            }
            quantizer.encode(vector, code);
            if lossless {
                quantizer.decode(code, &mut decoded);
                lossless = decoded == vector;
            }
        }
        Ok(PackedLevel {
            bytes,
            stride,
            code_at,
            num_nodes,
            max_degree,
            quantizer,
            lossless,
            metric,
        })
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// Room for neighbours in each record: the longest list packed.
    pub fn max_degree(&self) -> usize {
        self.max_degree
    }

    /// Bytes of one record (a multiple of 64).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The quantizer of the codes.
    pub fn quantizer(&self) -> &ScalarQuantizer {
        &self.quantizer
    }

    /// Whether every base vector decodes exactly from its code (true for
    /// 8-bit data, such as pixels, under SQ8).
    pub fn is_lossless(&self) -> bool {
        self.lossless
    }

    /// The metric the codes are compared in.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The record of `node`. Panics when `node` is out of range.
    #[inline]
    fn record(&self, node: u32) -> &[u8] {
        let at = node as usize * self.stride;
        &self.bytes.as_slice()[at..at + self.stride]
    }

    /// The neighbour ids of `node` as raw `u32` cells.
    #[inline]
    fn id_bytes(&self, node: u32) -> &[u8] {
        let record = self.record(node);
        let count = cell(record, 0) as usize;
        &record[ID_BYTES..ID_BYTES * (1 + count)]
    }

    /// The neighbours of `node`.
    pub fn links(&self, node: u32) -> impl ExactSizeIterator<Item = u32> + '_ {
        let ids = self.id_bytes(node);
        (0..ids.len() / ID_BYTES).map(|j| cell(ids, j))
    }

    /// The code of `node` ([`ScalarQuantizer::code_len`] bytes and padding).
    #[inline]
    pub fn code(&self, node: u32) -> &[u8] {
        &self.record(node)[self.code_at..]
    }

    /// Asks the CPU to load the count and neighbour ids of `node`.
    #[inline]
    pub fn prefetch_links(&self, node: u32) {
        prefetch_slice(&self.record(node)[..ID_BYTES * (1 + self.max_degree)]);
    }

    /// Asks the CPU to load the code of `node` (its first
    /// `PREFETCH_CODE_LINES` lines).
    #[inline]
    pub fn prefetch_code(&self, node: u32) {
        let code = self.code(node);
        for line in code.chunks(CACHE_LINE).take(PREFETCH_CODE_LINES) {
            prefetch(line.as_ptr());
        }
    }

    /// Bytes of memory the records own.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.memory_bytes()
    }
}

/// The `u32` in cell `i` of `bytes` (4-byte cells, native endian).
#[inline]
fn cell(bytes: &[u8], i: usize) -> u32 {
    let cell = bytes[i * ID_BYTES..(i + 1) * ID_BYTES].try_into();
    u32::from_ne_bytes(cell.expect("4-byte cells"))
}

/// Reusable scratch of the quantized level-0 search: visited set, pool and
/// the prepared integer query, for one [`PackedLevel`].
#[derive(Clone, Debug)]
pub struct PackedSearch {
    visited: VisitedSet,
    pool: Pool,
    query: IntegerQuery,
}

impl PackedSearch {
    /// Scratch for searching `level`.
    pub fn new(level: &PackedLevel) -> PackedSearch {
        PackedSearch {
            visited: VisitedSet::new(level.num_nodes()),
            pool: Pool::new(),
            query: level.quantizer.integer_query(level.metric),
        }
    }

    /// Makes `query` the point searched for (prepares its integer form).
    pub fn set_query(&mut self, query: &[f32]) {
        self.query.set(query);
    }

    /// Starts a search of `level` for the query last
    /// [set](Self::set_query) that keeps the `ef` closest nodes (`ef` at
    /// least 1), from `seeds` (each below the number of nodes). Returns the
    /// number of code distances computed.
    pub fn start(
        &mut self,
        level: &PackedLevel,
        seeds: impl IntoIterator<Item = u32>,
        ef: usize,
    ) -> u64 {
        self.visited.clear();
        self.pool.reset(ef);
        let mut computed = 0;
        for seed in seeds {
            if self.visited.insert(seed) {
                computed += 1;
                self.pool
                    .insert(seed, self.query.distance(level.code(seed)));
            }
        }
        computed
    }

    /// Whether the code distances to the query last
    /// [set](Self::set_query) are the exact distances (up to f32 rounding):
    /// the codes of `level` are lossless and the query's fixed-point form
    /// is exact.
    pub fn distances_are_exact(&self, level: &PackedLevel) -> bool {
        level.is_lossless() && self.query.is_exact()
    }

    /// The code distance of the query last [set](Self::set_query) to
    /// `node`.
    #[inline]
    pub fn distance(&self, level: &PackedLevel, node: u32) -> f32 {
        self.query.distance(level.code(node))
    }

    /// Expands the closest unexpanded node of the pool until every node in
    /// it is expanded: the body of a search after its
    /// [`start`](Self::start). Returns the number of code distances
    /// computed.
    pub fn run(&mut self, level: &PackedLevel) -> u64 {
        let mut computed = 0;
        while let Some(current) = self.pool.pop() {
            computed += self.expand(level, current.id);
        }
        computed
    }

    /// One step of the search: measures the unvisited neighbours of `node`
    /// against the query and offers them to the pool, prefetching the codes
    /// of the neighbours a few places ahead and the lists of those that
    /// enter the pool. Returns the number of code distances computed.
    #[inline]
    pub fn expand(&mut self, level: &PackedLevel, node: u32) -> u64 {
        let ids = level.id_bytes(node);
        let count = ids.len() / ID_BYTES;
        let id = |j: usize| cell(ids, j);
        for j in 0..count.min(PREFETCH_AHEAD) {
            level.prefetch_code(id(j));
        }
        let mut computed = 0;
        for j in 0..count {
            if j + PREFETCH_AHEAD < count {
                level.prefetch_code(id(j + PREFETCH_AHEAD));
            }
            let v = id(j);
            if !self.visited.insert(v) {
                continue;
            }
            computed += 1;
            let distance = self.query.distance(level.code(v));
            if self.pool.insert(v, distance) {
                level.prefetch_links(v);
            }
        }
        computed
    }

    /// Best-first search of `level` for `query` from `seeds`, keeping the
    /// `ef` closest nodes by code distance: [`set_query`](Self::set_query),
    /// [`start`](Self::start) and [`run`](Self::run). Returns the number of
    /// code distances computed; [`results`](Self::results) holds the nodes.
    pub fn search(
        &mut self,
        level: &PackedLevel,
        query: &[f32],
        seeds: impl IntoIterator<Item = u32>,
        ef: usize,
    ) -> u64 {
        self.set_query(query);
        self.start(level, seeds, ef) + self.run(level)
    }

    /// The nodes of the last search, closest first by code distance, at
    /// most `ef` of them, ids unique.
    pub fn results(&self) -> impl ExactSizeIterator<Item = Candidate> + '_ {
        self.pool.candidates()
    }

    /// Bytes of memory the scratch owns.
    pub fn memory_bytes(&self) -> usize {
        self.visited.memory_bytes() + self.pool.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use annvil_abi::{Level, Metric, Vectors};

    use super::*;
    use crate::layer::FixedDegree;

    /// Five points of dimension 40 (two kernel blocks for SQ8) with value
    /// `v` everywhere in point `v`, and a star level around node 0.
    fn star() -> (Vec<f32>, Vec<u64>, Vec<u32>) {
        let data: Vec<f32> = (0..5).flat_map(|v| [v as f32; 40]).collect();
        let offsets = vec![0u64, 4, 5, 6, 7, 8];
        let neighbors = vec![1u32, 2, 3, 4, 0, 0, 0, 0];
        (data, offsets, neighbors)
    }

    #[test]
    fn records_hold_lists_and_codes_on_cache_lines() {
        let (data, offsets, neighbors) = star();
        let base = Vectors::new(&data, 40).unwrap();
        let level = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        for scheme in [Scheme::Sq8, Scheme::Sq4] {
            let packed = PackedLevel::new(&level, base, Metric::L2, scheme).unwrap();
            assert_eq!((packed.num_nodes(), packed.max_degree()), (5, 4));
            assert!(packed.stride().is_multiple_of(CACHE_LINE));
            let sq = packed.quantizer();
            let mut expected = vec![0u8; sq.code_len()];
            for v in 0..5u32 {
                assert_eq!(packed.links(v).collect::<Vec<_>>(), level.neighbors_of(v));
                let code = packed.code(v);
                assert_eq!(code.as_ptr() as usize % CACHE_LINE, 0, "code of {v}");
                sq.encode(base.row(v as usize), &mut expected);
                assert_eq!(&code[..sq.code_len()], expected);
                packed.prefetch_links(v);
                packed.prefetch_code(v);
            }
        }
    }

    #[test]
    fn packs_a_native_level_like_its_view() {
        let (data, offsets, neighbors) = star();
        let base = Vectors::new(&data, 40).unwrap();
        let level = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        let flat = FixedDegree::from_level(&level, 5);
        let from_view = PackedLevel::new(&level, base, Metric::L2, Scheme::Sq8).unwrap();
        let from_flat = PackedLevel::new(&flat, base, Metric::L2, Scheme::Sq8).unwrap();
        for v in 0..5 {
            assert!(from_view.links(v).eq(from_flat.links(v)));
            assert_eq!(from_view.code(v), from_flat.code(v));
        }
    }

    #[test]
    fn one_expansion_measures_every_neighbour_once() {
        let (data, offsets, neighbors) = star();
        let base = Vectors::new(&data, 40).unwrap();
        let level = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        let packed = PackedLevel::new(&level, base, Metric::L2, Scheme::Sq8).unwrap();
        let mut search = PackedSearch::new(&packed);
        search.set_query(&[2.6; 40]);
        assert_eq!(search.start(&packed, [0, 0], 3), 1, "a seed counts once");
        assert_eq!(search.expand(&packed, 0), 4);
        assert_eq!(search.expand(&packed, 0), 0, "all visited");
        let ids: Vec<u32> = search.results().map(|c| c.id).collect();
        assert_eq!(ids, [3, 2, 4]);

        assert_eq!(search.search(&packed, &[2.6; 40], [1], 3), 5);
        let ids: Vec<u32> = search.results().map(|c| c.id).collect();
        assert_eq!(ids, [3, 2, 4]);
    }

    #[test]
    fn traversal_names_round_trip_and_errors_name_the_parameter() {
        for traversal in Traversal::ALL {
            assert_eq!(traversal.name().parse::<Traversal>().unwrap(), traversal);
            assert_eq!(traversal.to_string(), traversal.name());
        }
        assert_eq!(Traversal::default(), Traversal::F32);
        assert_eq!(Traversal::Sq4.scheme(), Some(Scheme::Sq4));
        let error = "sq16".parse::<Traversal>().unwrap_err();
        assert_eq!(error.status, annvil_abi::Status::InvalidArgument);
        assert!(error.message.contains("`traversal`"), "{}", error.message);
        assert!(error.message.contains("f32, sq8, sq4"), "{}", error.message);
    }

    #[test]
    fn refuses_an_empty_base() {
        let level = Level {
            offsets: &[0],
            neighbors: &[],
        };
        let base = Vectors::new(&[], 4).unwrap();
        assert!(PackedLevel::new(&level, base, Metric::L2, Scheme::Sq8).is_err());
    }
}
