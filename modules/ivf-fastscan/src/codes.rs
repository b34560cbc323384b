//! The lists' codes: each vector's residual from its list's centroid,
//! product-quantized and packed into FastScan blocks list by list, with
//! the terms that turn a block's table sums into distance estimates.

use std::ops::Range;

use annvil_abi::{Metric, Result, Vectors};
use annvil_core::{Candidate, Reservoir};
use annvil_distance::dot;
use annvil_ivf::Ivf;
use annvil_pq::{BLOCK, ByteTable, ProductQuantizer, Scanner, block_bytes, pack_block};

/// Seed of the quantizer's training sample and centroids.
const TRAINING_SEED: u64 = 0x1ff5;

/// Every list of an [`Ivf`] as FastScan blocks of residual codes.
///
/// A vector `x` of list `c` is stored as the code of `r = x - c`. With
/// `<q, x> = <q, c> + <q, r>`, one table of `-<q, r̂>` per query serves
/// every list:
///
/// * inner product and angular: `d(q, x) ≈ d(q, c) - <q, r̂>`, where
///   `d(q, c)` is the routing distance the probe already computed;
/// * squared L2: `‖q - x‖² = ‖q - c‖² - ‖c‖² + ‖x‖² - 2<q, r>`, with
///   `‖x‖²` kept exactly per vector and `‖c‖²` per list.
#[derive(Debug)]
pub struct ListCodes {
    pq: ProductQuantizer,
    /// The blocks of every list, list after list; a list's last block is
    /// padded with code 0.
    blocks: Vec<u8>,
    /// The first block of each list, and one past the last list's.
    first_block: Vec<usize>,
    /// Per vector in list order: `‖x‖²` for L2; empty otherwise.
    vector_terms: Vec<f32>,
    /// Per list: `-‖c‖²` for L2, 0 otherwise.
    list_terms: Vec<f32>,
    /// The factor of the table's estimate in the distance: 2 for L2
    /// (`-2<q, r>`), 1 otherwise.
    table_weight: f32,
    block_bytes: usize,
}

impl ListCodes {
    /// Quantizes the residuals of `ivf`'s vectors with `sub_dim`
    /// dimensions per 4-bit code, each code minimising the anisotropic
    /// loss with `parallel_weight` (see
    /// [`ProductQuantizer::encode_all_anisotropic`]; 1 means the nearest
    /// centroids).
    pub fn new(ivf: &Ivf, sub_dim: usize, parallel_weight: f32) -> Result<ListCodes> {
        let dim = ivf.dim();
        let lists = ivf.lists();
        let mut residuals = Vec::with_capacity(ivf.len() * dim);
        for c in 0..lists.len() {
            let centroid = ivf.centroids().row(c);
            for row in ivf.list_vectors(c).chunks_exact(dim) {
                residuals.extend(row.iter().zip(centroid).map(|(x, c)| x - c));
            }
        }
        let residuals = Vectors::new(&residuals, dim).expect("whole rows");
        let pq = ProductQuantizer::train(residuals, sub_dim, TRAINING_SEED)?;
        let ordered = ivf.vectors_in_list_order();
        let codes = pq.encode_all_anisotropic(residuals, ordered, parallel_weight);
        let l2 = ivf.metric() == Metric::L2;
        let block_bytes = block_bytes(pq.padded_subspaces());
        let mut blocks = Vec::new();
        let mut first_block = Vec::with_capacity(lists.len() + 1);
        let mut list_terms = Vec::with_capacity(lists.len());
        let mut block = vec![0u8; block_bytes];
        for c in 0..lists.len() {
            first_block.push(blocks.len() / block_bytes);
            let range = lists.range(c);
            let list_codes = &codes[range.start * pq.subspaces()..range.end * pq.subspaces()];
            for chunk in list_codes.chunks(BLOCK * pq.subspaces()) {
                pack_block(chunk.chunks_exact(pq.subspaces()), &mut block);
                blocks.extend_from_slice(&block);
            }
            let centroid = ivf.centroids().row(c);
            list_terms.push(if l2 { -dot(centroid, centroid) } else { 0.0 });
        }
        first_block.push(blocks.len() / block_bytes);
        let vector_terms = if l2 {
            ordered.rows().map(|x| dot(x, x)).collect()
        } else {
            Vec::new()
        };
        Ok(ListCodes {
            pq,
            blocks,
            first_block,
            vector_terms,
            list_terms,
            table_weight: if l2 { 2.0 } else { 1.0 },
            block_bytes,
        })
    }

    /// Sets `table` to `query`'s table of `-<q, r̂>` entries, quantized
    /// to bytes; `floats` is scratch.
    pub fn query_table(&self, query: &[f32], floats: &mut Vec<f32>, table: &mut ByteTable) {
        floats.resize(self.pq.padded_subspaces() * annvil_pq::CENTROIDS, 0.0);
        self.pq
            .distance_table(query, Metric::InnerProduct, floats.as_mut_slice());
        table.set(floats);
    }

    /// The number of blocks of list `list`.
    fn block_count(&self, list: usize) -> usize {
        self.first_block[list + 1] - self.first_block[list]
    }

    /// Offers the vectors of block `block` of list `list.id` (the list's
    /// routing distance to the query is `list.distance`, and its vectors
    /// are `positions` in list order) to `top` with their estimated
    /// distances; `top` keeps positions in list order as ids.
    fn offer_block(
        &self,
        scanner: &Scanner,
        table: &ByteTable,
        list: Candidate,
        positions: Range<usize>,
        block: usize,
        top: &mut Reservoir,
    ) {
        let c = list.id as usize;
        let (offset, unit) = table.affine();
        let base = list.distance + self.list_terms[c] + self.table_weight * offset;
        let unit = self.table_weight * unit;
        let codes =
            &self.blocks[(self.first_block[c] + block) * self.block_bytes..][..self.block_bytes];
        let mut sums = [0u16; BLOCK];
        scanner.scan(table.bytes(), codes, &mut sums);
        let start = positions.start + block * BLOCK;
        let count = BLOCK.min(positions.end - start);
        // One pass the compiler vectorizes, then the few estimates that
        // reach the bound go to the selection.
        let mut estimates = [0f32; BLOCK];
        for (estimate, &sum) in estimates.iter_mut().zip(&sums) {
            *estimate = base + unit * f32::from(sum);
        }
        if !self.vector_terms.is_empty() {
            let terms = &self.vector_terms[start..start + count];
            for (estimate, &term) in estimates.iter_mut().zip(terms) {
                *estimate += term;
            }
        }
        let mut bound = top.bound();
        for (i, &estimate) in estimates[..count].iter().enumerate() {
            if estimate <= bound {
                top.push((start + i) as u32, estimate);
                bound = top.bound();
            }
        }
    }

    /// Offers every vector of list `list.id` (whose routing distance to
    /// the query is `list.distance`, and whose vectors are `positions` in
    /// list order) to `top` with its estimated distance, block by block;
    /// `top` keeps positions in list order as ids.
    pub fn scan_list(
        &self,
        scanner: &Scanner,
        table: &ByteTable,
        list: Candidate,
        positions: Range<usize>,
        top: &mut Reservoir,
    ) {
        for block in 0..self.block_count(list.id as usize) {
            self.offer_block(scanner, table, list, positions.clone(), block, top);
        }
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        self.pq.memory_bytes()
            + self.blocks.capacity()
            + self.first_block.capacity() * size_of::<usize>()
            + (self.vector_terms.capacity() + self.list_terms.capacity()) * size_of::<f32>()
    }
}
