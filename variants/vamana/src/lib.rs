//! `vamana`: the Vamana (DiskANN) graph. Construction by annvil-vamana
//! (two passes of search-and-RobustPrune, multi-threaded), search by
//! annvil-beam on the construction's own fixed-stride graph from the
//! medoid, and the identity refinement (the beam search's order is
//! already exact).

use annvil_beam::BeamSearch;
use annvil_rerank::Identity;
use annvil_vamana::Vamana;

/// Beam search that borrows [`Vamana`]'s native graph when both slots come
/// from this library, and copies the standard view otherwise.
pub type VamanaBeam = BeamSearch<Vamana>;

annvil_abi::export_variant! {
    name: "vamana",
    construction: Vamana,
    search: VamanaBeam,
    refinement: Identity,
}
