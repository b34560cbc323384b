//! `vamana-sq8`: each slot from a different module. Construction by
//! annvil-vamana; search by annvil-beam reading only the standard graph
//! view (no native handle), walking SQ8 codes packed next to each node's
//! neighbour list; refinement by annvil-rerank, which recomputes exact f32
//! distances of the search's candidates and keeps the best k.

use annvil_beam::{BeamSearch, StandardGraph};
use annvil_rerank::ExactRerank;
use annvil_vamana::Vamana;

/// Beam search that sees the Vamana graph only through the standard view,
/// as it would a graph from any other library.
pub type ViewBeam = BeamSearch<StandardGraph>;

annvil_abi::export_variant! {
    name: "vamana-sq8",
    construction: Vamana,
    search: ViewBeam,
    refinement: ExactRerank,
}
