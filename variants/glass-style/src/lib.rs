//! `glass-style`: HNSW searched the GLASS way. Construction by annvil-hnsw;
//! search by annvil-beam with quantized traversal (level 0 repacked into
//! one cache-line aligned record per node, neighbour list then SQ8 code,
//! walked with integer code distances and a sorted candidate pool) and an
//! exact f32 rerank of the best of the pool inside the search, so the
//! identity refinement returns exactly ordered results.

use annvil_beam::BeamSearch;
use annvil_hnsw::Hnsw;
use annvil_rerank::Identity;

/// Beam search over [`Hnsw`]'s level 0, repacked with quantized codes when
/// `traversal` is `sq8` or `sq4`.
pub type GlassBeam = BeamSearch<Hnsw>;

annvil_abi::export_variant! {
    name: "glass-style",
    construction: Hnsw,
    search: GlassBeam,
    refinement: Identity,
}
