//! `hnsw`: the plain HNSW baseline. Construction by annvil-hnsw (hnswlib's
//! algorithm, multi-threaded), search by annvil-beam on the construction's
//! own fixed-stride level 0, and the identity refinement (the beam search's
//! order is already exact).

use annvil_beam::BeamSearch;
use annvil_hnsw::Hnsw;
use annvil_rerank::Identity;

/// Beam search that borrows [`Hnsw`]'s native level 0 when both slots come
/// from this library, and copies the standard view otherwise.
pub type HnswBeam = BeamSearch<Hnsw>;

annvil_abi::export_variant! {
    name: "hnsw",
    construction: Hnsw,
    search: HnswBeam,
    refinement: Identity,
}
