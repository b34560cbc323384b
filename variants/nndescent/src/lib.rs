//! `nndescent`: an NN-descent K-NN graph, symmetrised and pruned for
//! search. Construction by annvil-nndescent (multi-threaded NN-descent,
//! then Vamana's RobustPrune with reverse links), search by annvil-beam on
//! the construction's own fixed-stride graph from the medoid, and the
//! identity refinement (the beam search's order is already exact).

use annvil_beam::BeamSearch;
use annvil_nndescent::NnDescent;
use annvil_rerank::Identity;

/// Beam search that borrows [`NnDescent`]'s native graph when both slots
/// come from this library, and copies the standard view otherwise.
pub type NnDescentBeam = BeamSearch<NnDescent>;

annvil_abi::export_variant! {
    name: "nndescent",
    construction: NnDescent,
    search: NnDescentBeam,
    refinement: Identity,
}
