//! Compressed traversal of level 0 (the GLASS layout): each node's
//! neighbour list and its vector in compact form (a scalar-quantized code,
//! or f16 values) in one cache-line aligned record, searched with a
//! [`Pool`] and the distance kernels of that form.

use std::fmt;
use std::str::FromStr;

use annvil_abi::{Error, Metric, Result, Vectors};
use annvil_core::{Candidate, Links, Slot};
use annvil_distance::{
    CACHE_LINE, KernelF16, decode_f16, encode_f16, kernel_f16, prefetch, prefetch_slice,
};
use annvil_quant::{IntegerQuery, ScalarQuantizer, Scheme};

use crate::pool::{MAX_POOL_ID, Pool};
use crate::prefetch::Prefetch;
use crate::region::Region;
use crate::visited::VisitedSet;

/// Bytes of one neighbour id in a record.
const ID_BYTES: usize = size_of::<u32>();

/// How the level-0 search measures distances: `f32` on the base vectors,
/// or `sq8`/`sq4`/`f16` on compact forms of the vectors packed next to the
/// adjacency (see [`Encoding`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Traversal {
    /// Exact f32 distances on the base vectors (the classic search).
    #[default]
    F32,
    /// 8-bit codes, one byte per dimension.
    Sq8,
    /// 4-bit codes, two dimensions per byte.
    Sq4,
    /// The vectors as IEEE binary16, two bytes per dimension.
    F16,
}

impl Traversal {
    /// Every traversal, in the order of their names in messages.
    pub const ALL: [Traversal; 4] = [
        Traversal::F32,
        Traversal::Sq8,
        Traversal::Sq4,
        Traversal::F16,
    ];

    /// The parameter value naming it: `f32`, `sq8`, `sq4` or `f16`.
    pub const fn name(self) -> &'static str {
        match self {
            Traversal::F32 => "f32",
            Traversal::Sq8 => "sq8",
            Traversal::Sq4 => "sq4",
            Traversal::F16 => "f16",
        }
    }

    /// The quantization scheme of the codes, `None` for f32 and f16.
    pub const fn scheme(self) -> Option<Scheme> {
        match self.encoding() {
            Some(Encoding::Sq(scheme)) => Some(scheme),
            _ => None,
        }
    }

    /// The form of the vectors in a [`PackedLevel`], `None` for f32 (which
    /// reads the base vectors).
    pub const fn encoding(self) -> Option<Encoding> {
        match self {
            Traversal::F32 => None,
            Traversal::Sq8 => Some(Encoding::Sq(Scheme::Sq8)),
            Traversal::Sq4 => Some(Encoding::Sq(Scheme::Sq4)),
            Traversal::F16 => Some(Encoding::F16),
        }
    }
}

/// How a [`PackedLevel`] record holds its node's vector, after the
/// neighbour list (its "code").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// A scalar-quantized code of this scheme, under a uniform quantizer
    /// trained on the base; measured with integer code distances.
    Sq(Scheme),
    /// The vector's values as f16 bit patterns (native endian), rounded to
    /// nearest; measured with the f32-query-to-f16 kernels.
    F16,
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
                let names = Traversal::ALL.map(Traversal::name).join(", ");
                Error::invalid(format!(
                    "parameter `traversal` must be one of {names}, not `{value}`"
                ))
            })
    }
}

/// Level 0 as one record per node, each a whole number of cache lines from
/// a 64-byte aligned start (on transparent huge pages where the kernel
/// allows, so that random visits do not miss the TLB too): the neighbour count and ids (`u32`, native
/// endian), zero padding to a line boundary, then the node's code. A node's
/// visit therefore reads one contiguous region, and its code sits next to
/// the list that will be read when it is expanded. What the code is, and
/// how it is measured, the [`Encoding`] decides.
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
    codec: Codec,
    /// Whether every vector decodes exactly from its code.
    lossless: bool,
    metric: Metric,
    /// How far ahead a search asks for codes.
    prefetch: Prefetch,
}

/// The code part of the records: how a vector becomes a code and back.
#[derive(Debug)]
enum Codec {
    /// Scalar-quantized codes.
    Sq(ScalarQuantizer),
    /// f16 values of vectors of `dim` dimensions.
    F16 { dim: usize },
}

impl Codec {
    /// The codec of `encoding`, trained on `base` where it needs to be.
    fn new(encoding: Encoding, base: Vectors<'_>) -> Codec {
        match encoding {
            Encoding::Sq(scheme) => Codec::Sq(ScalarQuantizer::train_uniform(
                scheme,
                base.as_slice(),
                base.dim(),
            )),
            Encoding::F16 => Codec::F16 { dim: base.dim() },
        }
    }

    /// Bytes a code takes in a record, padding included (a multiple of 64).
    fn code_stride(&self) -> usize {
        match self {
            Codec::Sq(quantizer) => quantizer.row_stride(),
            Codec::F16 { dim } => (dim * size_of::<u16>()).next_multiple_of(CACHE_LINE),
        }
    }

    /// Writes the code of `vector` to `code`; `halves` is scratch of the
    /// vector's dimension.
    fn encode(&self, vector: &[f32], code: &mut [u8], halves: &mut [u16]) {
        match self {
            Codec::Sq(quantizer) => quantizer.encode(vector, code),
            Codec::F16 { .. } => {
                encode_f16(vector, halves);
                for (cell, half) in code.chunks_exact_mut(size_of::<u16>()).zip(&*halves) {
                    cell.copy_from_slice(&half.to_ne_bytes());
                }
            }
        }
    }

    /// Writes the vector `code` stands for to `out`.
    fn decode(&self, code: &[u8], out: &mut [f32]) {
        match self {
            Codec::Sq(quantizer) => quantizer.decode(code, out),
            Codec::F16 { dim } => decode_f16(&as_halves(code)[..*dim], out),
        }
    }
}

/// The 2-byte cells of `bytes` as `u16` (native endian). Panics unless
/// `bytes` starts on a 2-byte boundary; codes start on a cache line.
#[inline]
fn as_halves(bytes: &[u8]) -> &[u16] {
    let ptr = bytes.as_ptr().cast::<u16>();
    assert!(ptr.is_aligned(), "f16 codes start on a 2-byte boundary");
    // SAFETY: `ptr` is aligned for u16 (checked) and points to
    // `bytes.len()` initialised bytes borrowed for the returned lifetime,
    // which cover `bytes.len() / 2` whole u16; every bit pattern is a valid
    // u16, and the shared borrow keeps the bytes from being written.
    unsafe { std::slice::from_raw_parts(ptr, bytes.len() / size_of::<u16>()) }
}

impl PackedLevel {
    /// Packs the lists of `layer` over the nodes of `base` with the codes of
    /// `base` in `encoding` (scalar quantization under a
    /// [uniform](ScalarQuantizer::train_uniform) quantizer trained on
    /// `base`, or f16). Fails when `base` is empty or has more than 2^31
    /// vectors.
    pub fn new<L: Links + ?Sized>(
        layer: &L,
        base: Vectors<'_>,
        metric: Metric,
        encoding: Encoding,
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
        let codec = Codec::new(encoding, base);
        let max_degree = (0..num_nodes as u32)
            .map(|v| layer.links(v).len())
            .max()
            .unwrap_or(0);
        let code_at = (ID_BYTES * (1 + max_degree)).next_multiple_of(CACHE_LINE);
        let stride = code_at + codec.code_stride();
        let mut bytes = Region::zeroed(num_nodes * stride);
        let records = bytes.as_mut_slice().chunks_exact_mut(stride);
        let mut decoded = vec![0.0; base.dim()];
        let mut halves = vec![0; base.dim()];
        let mut lossless = true;
        for ((v, record), vector) in records.enumerate().zip(base.rows()) {
            let links = layer.links(v as u32);
            let (header, code) = record.split_at_mut(code_at);
            let values = std::iter::once(links.len() as u32).chain(links.iter().map(Slot::get));
            for (cell, value) in header.chunks_exact_mut(ID_BYTES).zip(values) {
                cell.copy_from_slice(&value.to_ne_bytes());
            }
            codec.encode(vector, code, &mut halves);
            if lossless {
                codec.decode(code, &mut decoded);
                lossless = decoded == vector;
            }
        }
        Ok(PackedLevel {
            bytes,
            stride,
            code_at,
            num_nodes,
            max_degree,
            codec,
            lossless,
            metric,
            prefetch: Prefetch::default(),
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

    /// Cache lines of a code in a record, padding included.
    pub fn code_lines(&self) -> usize {
        (self.stride - self.code_at) / CACHE_LINE
    }

    /// How far ahead searches ask for codes ([`Prefetch::default`] until
    /// [set](Self::set_prefetch)).
    pub fn prefetch(&self) -> Prefetch {
        self.prefetch
    }

    /// Makes searches ask for codes `prefetch.ahead` neighbours ahead,
    /// `prefetch.lines` lines of each (both at least 1; `lines` is capped
    /// at the code's length). Results do not depend on it, only speed.
    pub fn set_prefetch(&mut self, prefetch: Prefetch) {
        self.prefetch = Prefetch {
            ahead: prefetch.ahead.max(1),
            lines: prefetch.lines.clamp(1, self.code_lines().max(1)),
        };
    }

    /// The form of the codes.
    pub fn encoding(&self) -> Encoding {
        match &self.codec {
            Codec::Sq(quantizer) => Encoding::Sq(quantizer.scheme()),
            Codec::F16 { .. } => Encoding::F16,
        }
    }

    /// The quantizer of the codes, `None` for f16.
    pub fn quantizer(&self) -> Option<&ScalarQuantizer> {
        match &self.codec {
            Codec::Sq(quantizer) => Some(quantizer),
            Codec::F16 { .. } => None,
        }
    }

    /// Whether every base vector decodes exactly from its code (true for
    /// 8-bit data, such as pixels, under SQ8, and for values f16 holds
    /// exactly, such as whole numbers up to 2048, under f16).
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

    /// The code of `node` ([`ScalarQuantizer::code_len`] bytes, or two per
    /// dimension for f16, and padding).
    #[inline]
    pub fn code(&self, node: u32) -> &[u8] {
        &self.record(node)[self.code_at..]
    }

    /// The f16 values of `node`, one per dimension, when the codes are
    /// f16, else `None`.
    pub fn halves(&self, node: u32) -> Option<&[u16]> {
        match self.codec {
            Codec::F16 { dim } => Some(self.halves_of(node, dim)),
            Codec::Sq(_) => None,
        }
    }

    /// The first `dim` f16 values of the code of `node`.
    #[inline]
    fn halves_of(&self, node: u32, dim: usize) -> &[u16] {
        &as_halves(self.code(node))[..dim]
    }

    /// Asks the CPU to load the count and neighbour ids of `node`.
    #[inline]
    pub fn prefetch_links(&self, node: u32) {
        prefetch_slice(&self.record(node)[..ID_BYTES * (1 + self.max_degree)]);
    }

    /// Asks the CPU to load the code of `node` (its first
    /// [`prefetch().lines`](Self::prefetch) lines).
    #[inline]
    pub fn prefetch_code(&self, node: u32) {
        let code = self.code(node);
        for line in code.chunks(CACHE_LINE).take(self.prefetch.lines) {
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

/// Reusable scratch of the packed level-0 search: visited set, pool and
/// the prepared query, for one [`PackedLevel`].
#[derive(Clone, Debug)]
pub struct PackedSearch {
    visited: VisitedSet,
    pool: Pool,
    query: PackedQuery,
}

/// The query in the form the codes of a level are measured against.
#[derive(Clone, Debug)]
enum PackedQuery {
    /// The integer form, for scalar-quantized codes.
    Sq(IntegerQuery),
    /// The f32 query and the f16 kernel of the metric.
    F16 { query: Vec<f32>, kernel: KernelF16 },
}

impl PackedQuery {
    /// The distance from the query to the code of `node` in `level`.
    #[inline]
    fn distance(&self, level: &PackedLevel, node: u32) -> f32 {
        match self {
            PackedQuery::Sq(query) => query.distance(level.code(node)),
            PackedQuery::F16 { query, kernel } => {
                kernel.distance(query, level.halves_of(node, query.len()))
            }
        }
    }
}

impl PackedSearch {
    /// Scratch for searching `level`.
    pub fn new(level: &PackedLevel) -> PackedSearch {
        let query = match &level.codec {
            Codec::Sq(quantizer) => PackedQuery::Sq(quantizer.integer_query(level.metric)),
            Codec::F16 { dim } => PackedQuery::F16 {
                query: vec![0.0; *dim],
                kernel: kernel_f16(level.metric),
            },
        };
        PackedSearch {
            visited: VisitedSet::new(level.num_nodes()),
            pool: Pool::new(),
            query,
        }
    }

    /// Makes `query` the point searched for (prepares its integer form for
    /// quantized codes). Panics unless it has the level's dimension.
    pub fn set_query(&mut self, query: &[f32]) {
        match &mut self.query {
            PackedQuery::Sq(integer) => integer.set(query),
            PackedQuery::F16 { query: copy, .. } => copy.copy_from_slice(query),
        }
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
                self.pool.insert(seed, self.query.distance(level, seed));
            }
        }
        computed
    }

    /// Whether the code distances to the query last
    /// [set](Self::set_query) are the exact distances (up to f32 rounding):
    /// the codes of `level` are lossless and, for quantized codes, the
    /// query's fixed-point form is exact. (An f16 distance is the f32
    /// kernel's on the decoded vector, as annvil-distance's tests check, so
    /// lossless f16 codes give the f32 distances up to summation order.)
    pub fn distances_are_exact(&self, level: &PackedLevel) -> bool {
        level.is_lossless()
            && match &self.query {
                PackedQuery::Sq(query) => query.is_exact(),
                PackedQuery::F16 { .. } => true,
            }
    }

    /// The code distance of the query last [set](Self::set_query) to
    /// `node`.
    #[inline]
    pub fn distance(&self, level: &PackedLevel, node: u32) -> f32 {
        self.query.distance(level, node)
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
    /// of the unvisited neighbours [`Prefetch::ahead`] places ahead and the
    /// lists of those that enter the pool. Returns the number of code
    /// distances computed.
    #[inline]
    pub fn expand(&mut self, level: &PackedLevel, node: u32) -> u64 {
        let ids = level.id_bytes(node);
        let count = ids.len() / ID_BYTES;
        let id = |j: usize| cell(ids, j);
        let ahead = level.prefetch.ahead;
        for j in 0..count.min(ahead) {
            if !self.visited.contains(id(j)) {
                level.prefetch_code(id(j));
            }
        }
        let mut computed = 0;
        for j in 0..count {
            if j + ahead < count && !self.visited.contains(id(j + ahead)) {
                level.prefetch_code(id(j + ahead));
            }
            let v = id(j);
            if !self.visited.insert(v) {
                continue;
            }
            computed += 1;
            let distance = self.query.distance(level, v);
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
    use annvil_distance::f32_to_f16;

    use super::*;
    use annvil_core::FixedDegree;

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
            let packed = PackedLevel::new(&level, base, Metric::L2, Encoding::Sq(scheme)).unwrap();
            assert_eq!((packed.num_nodes(), packed.max_degree()), (5, 4));
            assert!(packed.stride().is_multiple_of(CACHE_LINE));
            assert_eq!(packed.encoding(), Encoding::Sq(scheme));
            assert_eq!(packed.halves(0), None);
            let sq = packed.quantizer().expect("a quantizer for SQ codes");
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
    fn f16_records_hold_lists_and_halves_on_cache_lines() {
        let (mut data, offsets, neighbors) = star();
        // Values f16 does not hold exactly in node 4.
        data[4 * 40..].iter_mut().for_each(|x| *x = 4.0 + 1e-4);
        let base = Vectors::new(&data, 40).unwrap();
        let level = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        let packed = PackedLevel::new(&level, base, Metric::L2, Encoding::F16).unwrap();
        assert_eq!((packed.num_nodes(), packed.max_degree()), (5, 4));
        assert_eq!(packed.encoding(), Encoding::F16);
        assert!(packed.quantizer().is_none());
        // One line of links, then 80 bytes of halves padded to two lines.
        assert_eq!(packed.stride(), 3 * CACHE_LINE);
        assert!(!packed.is_lossless(), "4.0001 is no f16");
        for v in 0..5u32 {
            assert_eq!(packed.links(v).collect::<Vec<_>>(), level.neighbors_of(v));
            let code = packed.code(v);
            assert_eq!(code.as_ptr() as usize % CACHE_LINE, 0, "code of {v}");
            let halves = packed.halves(v).unwrap();
            let want: Vec<u16> = base
                .row(v as usize)
                .iter()
                .map(|&x| f32_to_f16(x))
                .collect();
            assert_eq!(halves, want);
            assert_eq!(halves[0], f32_to_f16(v as f32));
            assert!(code[80..].iter().all(|&b| b == 0), "zero padding");
            packed.prefetch_code(v);
        }
        // Whole numbers are exact in f16: lossless, exact distances.
        let (data, ..) = star();
        let base = Vectors::new(&data, 40).unwrap();
        let packed = PackedLevel::new(&level, base, Metric::L2, Encoding::F16).unwrap();
        assert!(packed.is_lossless());
        let mut search = PackedSearch::new(&packed);
        search.set_query(&[2.5; 40]);
        assert!(search.distances_are_exact(&packed));
        assert_eq!(search.distance(&packed, 4), 40.0 * 1.5 * 1.5);
        assert_eq!(search.search(&packed, &[2.6; 40], [1], 3), 5);
        let ids: Vec<u32> = search.results().map(|c| c.id).collect();
        assert_eq!(ids, [3, 2, 4]);
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
        for encoding in [Encoding::Sq(Scheme::Sq8), Encoding::F16] {
            let from_view = PackedLevel::new(&level, base, Metric::L2, encoding).unwrap();
            let from_flat = PackedLevel::new(&flat, base, Metric::L2, encoding).unwrap();
            for v in 0..5 {
                assert!(from_view.links(v).eq(from_flat.links(v)));
                assert_eq!(from_view.code(v), from_flat.code(v));
            }
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
        let packed = PackedLevel::new(&level, base, Metric::L2, Encoding::Sq(Scheme::Sq8)).unwrap();
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
        assert_eq!(Traversal::F16.scheme(), None);
        assert_eq!(Traversal::F16.encoding(), Some(Encoding::F16));
        assert_eq!(Traversal::F32.encoding(), None);
        let error = "sq16".parse::<Traversal>().unwrap_err();
        assert_eq!(error.status, annvil_abi::StatusCode::InvalidArgument);
        assert!(error.message.contains("`traversal`"), "{}", error.message);
        assert!(
            error.message.contains("f32, sq8, sq4, f16"),
            "{}",
            error.message
        );
    }

    #[test]
    fn refuses_an_empty_base() {
        let level = Level {
            offsets: &[0],
            neighbors: &[],
        };
        let base = Vectors::new(&[], 4).unwrap();
        for encoding in [Encoding::Sq(Scheme::Sq8), Encoding::F16] {
            assert!(PackedLevel::new(&level, base, Metric::L2, encoding).is_err());
        }
    }
}
