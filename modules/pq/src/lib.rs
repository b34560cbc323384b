//! 4-bit product quantization and FastScan, shared by the searches that
//! score compressed codes: the quantized graph (annvil-qg) and the
//! inverted file over codes (annvil-ivf-fastscan).
//!
//! * [`ProductQuantizer`] cuts a vector into subspaces of `sub_dim`
//!   dimensions and names each piece by the nearest of 16 centroids
//!   learnt for its subspace; a query gets one table of 16 partial
//!   distances per subspace.
//! * [`pack_block`] lays out the codes of [`BLOCK`] = 32 vectors so that
//!   one SIMD shuffle looks up many table entries at once; [`ByteTable`]
//!   quantizes a query's table to bytes so that it fits in registers; a
//!   [`Scanner`] scores a whole block with the widest kernel the CPU runs
//!   (AVX-512, AVX2 or portable Rust), each tested against the portable
//!   one.

mod fastscan;
mod quantizer;

pub use fastscan::{BLOCK, ByteTable, Scanner, block_bytes, pack_block};
pub use quantizer::{CENTROIDS, MAX_SUB_DIM, ProductQuantizer, SUBSPACE_GROUP};
