//! `lorann`: LoRANN (Jääsaari, Hyvönen and Roos, NeurIPS 2024).
//! Construction and search by annvil-lorann (global PCA, k-means clusters,
//! per-cluster reduced-rank regression scoring the `nprobe` nearest
//! clusters), then an exact f32 rerank of the search's candidates.

use annvil_lorann::{Lorann, LorannSearch};
use annvil_rerank::ExactRerank;

annvil_abi::export_variant! {
    name: "lorann",
    construction: Lorann,
    search: LorannSearch,
    refinement: ExactRerank,
}
