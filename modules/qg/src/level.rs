//! Level 0 as one record per node holding what expanding that node reads:
//! its vector, its neighbours' ids (nearest first) and the neighbours'
//! 4-bit codes in FastScan blocks. Expanding a node is then one contiguous
//! read, where a classic graph search reads one vector per neighbour at
//! random.

use std::fmt;
use std::str::FromStr;

use annvil_abi::{Error, Metric, Result, Vectors};
use annvil_beam::{MAX_POOL_ID, Region};
use annvil_core::{Links, Slot};
use annvil_distance::{CACHE_LINE, Kernel, KernelF16, decode_f16, encode_f16, prefetch};
use annvil_quant::{IntegerQuery, ScalarQuantizer, Scheme};

use annvil_pq::ProductQuantizer;
use annvil_pq::{BLOCK, block_bytes, pack_block};

/// Bytes of one neighbour id (and of the count before them).
const ID_BYTES: usize = size_of::<u32>();

/// How a record holds its node's vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VectorForm {
    /// The f32 values: distances of expanded nodes are exact.
    #[default]
    F32,
    /// IEEE binary16 values (half the bytes, about three significant
    /// digits; exact for whole numbers up to 2048, such as pixels).
    F16,
    /// An SQ8 code under one uniform quantizer trained on the base (a
    /// quarter of the bytes; exact for 8-bit data such as pixels), measured
    /// with annvil-quant's integer kernels.
    Sq8,
}

impl VectorForm {
    /// Every form, in the order of their names in messages.
    pub const ALL: [VectorForm; 3] = [VectorForm::F32, VectorForm::F16, VectorForm::Sq8];

    /// The parameter value naming it: `f32` or `f16`.
    pub const fn name(self) -> &'static str {
        match self {
            VectorForm::F32 => "f32",
            VectorForm::F16 => "f16",
            VectorForm::Sq8 => "sq8",
        }
    }
}

impl fmt::Display for VectorForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for VectorForm {
    type Err = Error;

    /// Parses a name of [`VectorForm::name`]; the error names the
    /// `vectors` parameter and the accepted values.
    fn from_str(value: &str) -> Result<VectorForm> {
        VectorForm::ALL
            .into_iter()
            .find(|form| form.name() == value.trim())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "parameter `vectors` must be one of f32, f16, sq8, not `{value}`"
                ))
            })
    }
}

/// The distance kernels of a metric for the vector forms.
#[derive(Clone, Copy, Debug)]
pub struct VectorKernels {
    f32: Kernel,
    f16: KernelF16,
}

impl VectorKernels {
    /// The kernels of `metric` at the widest level this CPU runs.
    pub fn new(metric: Metric) -> VectorKernels {
        VectorKernels {
            f32: annvil_distance::kernel(metric),
            f16: annvil_distance::kernel_f16(metric),
        }
    }

    /// The f32 kernel.
    pub fn f32(&self) -> &Kernel {
        &self.f32
    }
}

/// Level 0 in records of `stride` bytes, each on cache lines:
///
/// | part | bytes |
/// |---|---|
/// | neighbour count, then ids (`u32`, native endian), nearest first | `4 · (1 + room)`, padded to a line |
/// | the node's vector ([`VectorForm`]) | `4 · dim`, `2 · dim` or `dim`, padded to a line |
/// | the neighbours' codes, [`BLOCK`] per block | `room / 32` blocks |
///
/// where `room` is the longest list rounded up to a whole block.
#[derive(Debug)]
pub struct QuantizedLevel {
    bytes: Region,
    stride: usize,
    vector_at: usize,
    blocks_at: usize,
    block_len: usize,
    num_nodes: usize,
    dim: usize,
    room: usize,
    form: VectorForm,
    /// The quantizer of SQ8 vectors.
    quantizer: Option<ScalarQuantizer>,
    /// Whether every vector is held exactly.
    lossless: bool,
}

/// A query in the form the records' vectors are measured against.
#[derive(Clone, Debug)]
pub enum PreparedQuery {
    /// f32 and f16 vectors take the f32 query as it is.
    Float,
    /// The fixed-point query for SQ8 codes.
    Integer(IntegerQuery),
}

impl QuantizedLevel {
    /// Packs the lists of `layer` over `base`, each sorted nearest first by
    /// `kernel` (the index metric), with the vectors in `form` and the
    /// codes of `pq` for the neighbours. Fails when `base` is empty or has
    /// more than 2^31 vectors.
    pub fn new<L: Links + ?Sized>(
        layer: &L,
        base: Vectors<'_>,
        kernel: &Kernel,
        form: VectorForm,
        pq: &ProductQuantizer,
    ) -> Result<QuantizedLevel> {
        let num_nodes = base.len();
        if num_nodes == 0 {
            return Err(Error::invalid("a quantized graph needs base vectors"));
        }
        if num_nodes - 1 > MAX_POOL_ID as usize {
            return Err(Error::unsupported(format!(
                "a quantized graph supports up to 2^31 nodes, not {num_nodes}"
            )));
        }
        let dim = base.dim();
        let longest = (0..num_nodes as u32)
            .map(|v| layer.links(v).len())
            .max()
            .unwrap_or(0);
        let room = longest.next_multiple_of(BLOCK).max(BLOCK);
        let block_len = block_bytes(pq.padded_subspaces());
        let vector_at = (ID_BYTES * (1 + room)).next_multiple_of(CACHE_LINE);
        let quantizer = (form == VectorForm::Sq8)
            .then(|| ScalarQuantizer::train_uniform(Scheme::Sq8, base.as_slice(), dim));
        let vector_len = match &quantizer {
            Some(quantizer) => quantizer.row_stride(),
            None if form == VectorForm::F32 => dim * size_of::<f32>(),
            None => dim * size_of::<u16>(),
        };
        let blocks_at = vector_at + vector_len.next_multiple_of(CACHE_LINE);
        let stride = blocks_at + room / BLOCK * block_len;
        let codes = pq.encode_all(base);
        let code = |v: u32| &codes[v as usize * pq.subspaces()..][..pq.subspaces()];
        let mut bytes = Region::zeroed(num_nodes * stride);
        let mut sorted = Vec::with_capacity(room);
        let (mut halves, mut decoded) = (vec![0u16; dim], vec![0.0f32; dim]);
        let mut lossless = true;
        for (v, record) in bytes.as_mut_slice().chunks_exact_mut(stride).enumerate() {
            let vector = base.row(v);
            sorted.clear();
            sorted.extend(layer.links(v as u32).iter().map(|slot| {
                let u = slot.get();
                (kernel.distance(vector, base.row(u as usize)), u)
            }));
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let (header, rest) = record.split_at_mut(vector_at);
            let (vector_bytes, blocks) = rest.split_at_mut(blocks_at - vector_at);
            let values = std::iter::once(sorted.len() as u32).chain(sorted.iter().map(|&(_, u)| u));
            for (cell, value) in header.chunks_exact_mut(ID_BYTES).zip(values) {
                cell.copy_from_slice(&value.to_ne_bytes());
            }
            match form {
                VectorForm::F32 => {
                    for (cell, x) in vector_bytes.chunks_exact_mut(size_of::<f32>()).zip(vector) {
                        cell.copy_from_slice(&x.to_ne_bytes());
                    }
                }
                VectorForm::Sq8 => {
                    let quantizer = quantizer.as_ref().expect("SQ8 records have a quantizer");
                    quantizer.encode(vector, vector_bytes);
                    if lossless {
                        quantizer.decode(vector_bytes, &mut decoded);
                        lossless = decoded == vector;
                    }
                }
                VectorForm::F16 => {
                    encode_f16(vector, &mut halves);
                    for (cell, half) in vector_bytes.chunks_exact_mut(size_of::<u16>()).zip(&halves)
                    {
                        cell.copy_from_slice(&half.to_ne_bytes());
                    }
                    if lossless {
                        decode_f16(&halves, &mut decoded);
                        lossless = decoded == vector;
                    }
                }
            }
            for (chunk, block) in sorted.chunks(BLOCK).zip(blocks.chunks_exact_mut(block_len)) {
                pack_block(chunk.iter().map(|&(_, u)| code(u)), block);
            }
        }
        Ok(QuantizedLevel {
            bytes,
            stride,
            vector_at,
            blocks_at,
            block_len,
            num_nodes,
            dim,
            room,
            form,
            quantizer,
            lossless,
        })
    }

    /// The query form for this level's vectors, to be
    /// [set](Self::set_query) for each query.
    pub fn prepared_query(&self, metric: Metric) -> PreparedQuery {
        match &self.quantizer {
            Some(quantizer) => PreparedQuery::Integer(quantizer.integer_query(metric)),
            None => PreparedQuery::Float,
        }
    }

    /// Makes `query` the one `prepared` stands for.
    #[inline]
    pub fn set_query(&self, prepared: &mut PreparedQuery, query: &[f32]) {
        if let PreparedQuery::Integer(integer) = prepared {
            integer.set(query);
        }
    }

    /// Whether the distances to the query `prepared` was last set to are
    /// exact (up to f32 rounding): the vectors are held exactly and, for
    /// SQ8, the fixed-point query is exact.
    pub fn is_exact(&self, prepared: &PreparedQuery) -> bool {
        self.lossless
            && match prepared {
                PreparedQuery::Float => true,
                PreparedQuery::Integer(integer) => integer.is_exact(),
            }
    }

    /// The form of the vectors.
    pub fn form(&self) -> VectorForm {
        self.form
    }

    /// Whether every vector is held exactly (always for f32; for f16 when
    /// every value is an f16, such as whole numbers up to 2048).
    pub fn is_lossless(&self) -> bool {
        self.lossless
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// Room for neighbours in each record, a whole number of blocks.
    pub fn room(&self) -> usize {
        self.room
    }

    /// Bytes of one record (a multiple of 64).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The record of `node`. Panics when `node` is out of range.
    #[inline]
    fn record(&self, node: u32) -> &[u8] {
        &self.bytes.as_slice()[node as usize * self.stride..][..self.stride]
    }

    /// The neighbours of `node`, nearest first.
    #[inline]
    pub fn links(&self, node: u32) -> impl ExactSizeIterator<Item = u32> + '_ {
        let record = self.record(node);
        let count = cell(record, 0) as usize;
        (1..count + 1).map(move |j| cell(record, j))
    }

    /// Neighbour `j` of `node` (`j` below its count).
    #[inline]
    pub fn neighbor(&self, node: u32, j: usize) -> u32 {
        cell(self.record(node), 1 + j)
    }

    /// The number of neighbours of `node`.
    #[inline]
    pub fn degree(&self, node: u32) -> usize {
        cell(self.record(node), 0) as usize
    }

    /// The distance from `query` (and its `prepared` form) to `node`'s
    /// vector as the record holds it (exact when
    /// [`is_exact`](Self::is_exact)).
    #[inline]
    pub fn distance(
        &self,
        kernels: &VectorKernels,
        prepared: &PreparedQuery,
        query: &[f32],
        node: u32,
    ) -> f32 {
        let bytes = &self.record(node)[self.vector_at..self.blocks_at];
        match (self.form, prepared) {
            (VectorForm::Sq8, PreparedQuery::Integer(integer)) => integer.distance(bytes),
            (VectorForm::F32, _) => kernels
                .f32
                .distance(query, &cells::<f32>(bytes)[..self.dim]),
            (VectorForm::F16, _) => kernels
                .f16
                .distance(query, &cells::<u16>(bytes)[..self.dim]),
            (VectorForm::Sq8, PreparedQuery::Float) => {
                panic!("SQ8 records are measured with the level's prepared query")
            }
        }
    }

    /// Block `b` of `node`'s neighbour codes (neighbours `32b..32b + 32`).
    #[inline]
    pub fn block(&self, node: u32, b: usize) -> &[u8] {
        &self.record(node)[self.blocks_at + b * self.block_len..][..self.block_len]
    }

    /// Asks the CPU to load the first `lines` cache lines of the record of
    /// `node` (at most all of it).
    #[inline]
    pub fn prefetch(&self, node: u32, lines: usize) {
        for line in self.record(node).chunks(CACHE_LINE).take(lines) {
            prefetch(line.as_ptr());
        }
    }

    /// Asks the CPU to load the vector in the record of `node`.
    #[inline]
    pub fn prefetch_vector(&self, node: u32) {
        let vector = &self.record(node)[self.vector_at..self.blocks_at];
        for line in vector.chunks(CACHE_LINE) {
            prefetch(line.as_ptr());
        }
    }

    /// Bytes of memory the records own.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.memory_bytes()
    }
}

/// `bytes` as values of `T` (native endian), whole cells only. Panics
/// unless `bytes` starts on a `T` boundary; vectors start on a cache line.
#[inline]
fn cells<T: Cell>(bytes: &[u8]) -> &[T] {
    let ptr = bytes.as_ptr().cast::<T>();
    assert!(ptr.is_aligned(), "vectors start on a cache line");
    // SAFETY: `ptr` is aligned for T (checked) and points to `bytes.len()`
    // initialised bytes borrowed for the returned lifetime, which cover
    // `bytes.len() / size_of::<T>()` whole values; every bit pattern is a
    // valid T (the `Cell` types are plain numbers), and the shared borrow
    // keeps the bytes from being written.
    unsafe { std::slice::from_raw_parts(ptr, bytes.len() / size_of::<T>()) }
}

/// The plain number types a record's vector is read as.
trait Cell: Copy {}

impl Cell for f32 {}

impl Cell for u16 {}

/// The `u32` in cell `i` of `bytes` (4-byte cells, native endian).
#[inline]
fn cell(bytes: &[u8], i: usize) -> u32 {
    let cell = bytes[i * ID_BYTES..(i + 1) * ID_BYTES].try_into();
    u32::from_ne_bytes(cell.expect("4-byte cells"))
}

#[cfg(test)]
mod tests {
    use annvil_abi::Level;

    use super::*;
    use annvil_pq::CENTROIDS;
    use annvil_pq::{ByteTable, Scanner};

    #[test]
    fn records_hold_sorted_lists_vectors_and_the_neighbours_codes() {
        let mut rng = fastrand::Rng::with_seed(2);
        let (n, dim) = (40, 12);
        let data: Vec<f32> = (0..n * dim).map(|_| rng.f32()).collect();
        let base = Vectors::new(&data, dim).unwrap();
        // Node v links to the 35 nodes after it: two blocks of room.
        let mut offsets = vec![0u64];
        let mut neighbors = Vec::new();
        for v in 0..n as u32 {
            neighbors.extend((1..=35).map(|s| (v + s) % n as u32));
            offsets.push(neighbors.len() as u64);
        }
        let layer = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        let pq = ProductQuantizer::train(base, 4, 1).unwrap();
        let kernels = VectorKernels::new(Metric::L2);
        let kernel = *kernels.f32();
        let level = QuantizedLevel::new(&layer, base, &kernel, VectorForm::F32, &pq).unwrap();
        assert!(level.is_lossless());
        let halves = QuantizedLevel::new(&layer, base, &kernel, VectorForm::F16, &pq).unwrap();
        assert_eq!(halves.form(), VectorForm::F16);
        assert!(!halves.is_lossless(), "random floats are no f16");
        let codes8 = QuantizedLevel::new(&layer, base, &kernel, VectorForm::Sq8, &pq).unwrap();
        assert!(!codes8.is_lossless(), "random floats are off the SQ8 grid");
        let float = level.prepared_query(Metric::L2);
        let mut integer = codes8.prepared_query(Metric::L2);
        assert_eq!((level.num_nodes(), level.room()), (n, 64));
        assert!(level.stride().is_multiple_of(CACHE_LINE));
        let codes = pq.encode_all(base);
        let query: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
        let mut table = vec![0.0; pq.padded_subspaces() * CENTROIDS];
        pq.distance_table(&query, Metric::L2, &mut table);
        let mut bytes = ByteTable::default();
        bytes.set(&mut table);
        let scanner = Scanner::best();
        codes8.set_query(&mut integer, &query);
        assert!(!codes8.is_exact(&integer));
        for v in 0..n as u32 {
            let exact = kernel.distance(&query, base.row(v as usize));
            assert_eq!(level.distance(&kernels, &float, &query, v), exact);
            for approximate in [
                halves.distance(&kernels, &float, &query, v),
                codes8.distance(&kernels, &integer, &query, v),
            ] {
                let error = (approximate - exact).abs();
                assert!(error < 2e-2 * exact.max(1.0), "{approximate} {exact}");
            }
            assert!(halves.links(v).eq(level.links(v)));
            let links: Vec<u32> = level.links(v).collect();
            let mut want = layer.neighbors_of(v).to_vec();
            want.sort_by(|&a, &b| {
                let d = |u: u32| kernel.distance(base.row(v as usize), base.row(u as usize));
                d(a).total_cmp(&d(b)).then(a.cmp(&b))
            });
            assert_eq!(links, want, "nearest first");
            assert_eq!(level.degree(v), 35);
            for b in 0..2 {
                let mut sums = [0; BLOCK];
                scanner.scan(bytes.bytes(), level.block(v, b), &mut sums);
                for (i, sum) in sums.iter().enumerate().take(35 - 32 * b) {
                    let u = level.neighbor(v, 32 * b + i);
                    let code = &codes[u as usize * pq.subspaces()..][..pq.subspaces()];
                    let want: u16 = code
                        .iter()
                        .enumerate()
                        .map(|(m, &c)| bytes.bytes()[m * 16 + c as usize] as u16)
                        .sum();
                    assert_eq!(*sum, want, "node {v}, neighbour {u}");
                }
            }
            level.prefetch(v, 4);
        }
    }

    #[test]
    fn refuses_an_empty_base() {
        let layer = Level {
            offsets: &[0],
            neighbors: &[],
        };
        let data = vec![0.0; 4];
        let pq = ProductQuantizer::train(Vectors::new(&data, 4).unwrap(), 4, 1).unwrap();
        let empty = Vectors::new(&[], 4).unwrap();
        let kernel = annvil_distance::kernel(Metric::L2);
        assert!(QuantizedLevel::new(&layer, empty, &kernel, VectorForm::F16, &pq).is_err());
        assert_eq!("f16".parse::<VectorForm>().unwrap(), VectorForm::F16);
        assert_eq!("sq8".parse::<VectorForm>().unwrap(), VectorForm::Sq8);
        let error = "f64".parse::<VectorForm>().unwrap_err();
        assert!(error.message.contains("`vectors`"), "{}", error.message);
    }
}
