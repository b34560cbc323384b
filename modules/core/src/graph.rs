//! The graph layout the modules share: count-prefixed neighbour lists in
//! one flat fixed-stride array ([`FixedDegree`]), its cells plain or atomic
//! ([`Slot`]), the compressed rows of the standard view ([`Csr`]), and
//! [`Links`], one level as searches and builders read it.

use std::sync::atomic::{self, AtomicU32};

use annvil_abi::Level;
use annvil_distance::prefetch;

/// A cell of an adjacency array: a plain `u32`, or an [`AtomicU32`] while a
/// graph is built concurrently.
pub trait Slot: Sync {
    /// The value. Atomic cells load with `Acquire`, pairing with a
    /// `Release` store of a list's count after its entries are written.
    fn get(&self) -> u32;
}

impl Slot for u32 {
    #[inline]
    fn get(&self) -> u32 {
        *self
    }
}

impl Slot for AtomicU32 {
    #[inline]
    fn get(&self) -> u32 {
        self.load(atomic::Ordering::Acquire)
    }
}

/// The neighbours in a count-prefixed block: `block[0]` is the count (read
/// once and clamped to the block's room), then come the neighbour ids.
#[inline]
pub fn counted<S: Slot>(block: &[S]) -> &[S] {
    let count = (block[0].get() as usize).min(block.len() - 1);
    &block[1..1 + count]
}

/// One level of a graph, as the searches read it.
pub trait Links {
    /// The cell type of the neighbour lists.
    type Slot: Slot;

    /// The neighbours of `node` on this level.
    fn links(&self, node: u32) -> &[Self::Slot];

    /// Asks the CPU to load the neighbour list of `node`.
    fn prefetch(&self, node: u32);
}

impl Links for Level<'_> {
    type Slot = u32;

    #[inline]
    fn links(&self, node: u32) -> &[u32] {
        self.neighbors_of(node)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        if let Some(offset) = self.offsets.get(node as usize) {
            prefetch(offset);
        }
    }
}

/// Slots per cache line.
const LINE_SLOTS: usize = 64 / size_of::<u32>();

/// A graph level with at most `max_degree` neighbours per node, stored flat:
/// node `v` owns the block `slots[v * stride..(v + 1) * stride]` with
/// `stride = 1 + max_degree`, holding its neighbour count and then its
/// neighbour ids. One contiguous array, no offsets to chase: a node's list
/// is one address computation away and spans `stride * 4` bytes.
#[derive(Clone, Debug)]
pub struct FixedDegree<S = u32> {
    stride: usize,
    slots: Vec<S>,
}

impl<S: Slot> FixedDegree<S> {
    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.slots.len() / self.stride
    }

    /// Room for neighbours in each node's block.
    pub fn max_degree(&self) -> usize {
        self.stride - 1
    }

    /// The whole block of `node`: count, then `max_degree` cells.
    #[inline]
    pub fn block(&self, node: u32) -> &[S] {
        let start = node as usize * self.stride;
        &self.slots[start..start + self.stride]
    }

    /// Bytes of memory the array owns.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<S>()
    }
}

impl<S: Slot> Links for FixedDegree<S> {
    type Slot = S;

    #[inline]
    fn links(&self, node: u32) -> &[S] {
        counted(self.block(node))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.stride;
        if let Some(block) = self.slots.get(start..start + self.stride) {
            for line in block.chunks(LINE_SLOTS) {
                prefetch(&line[0]);
            }
        }
    }
}

impl FixedDegree<u32> {
    /// The fixed-stride copy of a CSR level over `num_nodes` nodes. The
    /// stride fits the longest list, so a graph with a few very long lists
    /// pays for the longest in every block.
    pub fn from_level(level: &Level<'_>, num_nodes: usize) -> FixedDegree<u32> {
        let max_degree = (0..num_nodes as u32)
            .map(|v| level.neighbors_of(v).len())
            .max()
            .unwrap_or(0);
        let stride = 1 + max_degree;
        let mut slots = vec![0u32; num_nodes * stride];
        for (v, block) in slots.chunks_exact_mut(stride).enumerate() {
            let list = level.neighbors_of(v as u32);
            block[0] = list.len() as u32;
            block[1..1 + list.len()].copy_from_slice(list);
        }
        FixedDegree { stride, slots }
    }
}

impl FixedDegree<AtomicU32> {
    /// `num_nodes` empty lists with room for `max_degree` neighbours each,
    /// to be filled concurrently through [`FixedDegree::block`].
    pub fn empty(num_nodes: usize, max_degree: usize) -> FixedDegree<AtomicU32> {
        let stride = 1 + max_degree;
        FixedDegree {
            stride,
            slots: (0..num_nodes * stride).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The plain array once construction is over (no copy: the atomics are
    /// unwrapped in place).
    pub fn into_plain(self) -> FixedDegree<u32> {
        FixedDegree {
            stride: self.stride,
            slots: self.slots.into_iter().map(AtomicU32::into_inner).collect(),
        }
    }
}

/// One level as compressed sparse rows over all nodes: the form of a
/// level in the standard [`GraphView`](annvil_abi::GraphView).
#[derive(Clone, Debug, Default)]
pub struct Csr {
    offsets: Vec<u64>,
    neighbors: Vec<u32>,
}

impl Csr {
    /// The lists `list(0..num_nodes)` in CSR form.
    pub fn collect<'s, S: Slot + 's>(num_nodes: usize, list: impl Fn(u32) -> &'s [S]) -> Csr {
        let mut offsets = Vec::with_capacity(num_nodes + 1);
        let mut neighbors = Vec::new();
        offsets.push(0);
        for node in 0..num_nodes as u32 {
            neighbors.extend(list(node).iter().map(Slot::get));
            offsets.push(neighbors.len() as u64);
        }
        Csr { offsets, neighbors }
    }

    /// The level as the standard view holds it, borrowing the rows.
    pub fn level(&self) -> Level<'_> {
        Level {
            offsets: &self.offsets,
            neighbors: &self.neighbors,
        }
    }

    /// Bytes of memory the rows own.
    pub fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<u64>() + self.neighbors.capacity() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_degree_copies_a_csr_level() {
        // A path 0-1-2-3.
        let offsets = [0u64, 1, 3, 5, 6];
        let neighbors = [1u32, 0, 2, 1, 3, 2];
        let level = Level {
            offsets: &offsets,
            neighbors: &neighbors,
        };
        let flat = FixedDegree::from_level(&level, 4);
        assert_eq!((flat.num_nodes(), flat.max_degree()), (4, 2));
        for v in 0..4 {
            assert_eq!(flat.links(v), level.neighbors_of(v));
        }
    }

    #[test]
    fn atomic_lists_unwrap_to_the_same_layout() {
        let lists = FixedDegree::empty(3, 2);
        let block = lists.block(1);
        block[1].store(2, atomic::Ordering::Relaxed);
        block[0].store(1, atomic::Ordering::Release);
        assert_eq!(lists.links(1).len(), 1);
        let plain = lists.into_plain();
        assert_eq!(plain.links(1), &[2]);
        assert!(plain.links(0).is_empty());
    }

    #[test]
    fn csr_collects_fixed_degree_lists() {
        let lists = FixedDegree::empty(3, 2);
        let block = lists.block(2);
        block[1].store(0, atomic::Ordering::Relaxed);
        block[2].store(1, atomic::Ordering::Relaxed);
        block[0].store(2, atomic::Ordering::Release);
        let csr = Csr::collect(3, |node| lists.links(node));
        let level = csr.level();
        assert_eq!(level.offsets, [0, 0, 0, 2]);
        assert_eq!(level.neighbors_of(2), [0, 1]);
        assert!(level.neighbors_of(0).is_empty());
        assert!(csr.memory_bytes() > 0);
    }
}
