//! `lorann`: LoRANN (Jääsaari, Hyvönen and Roos, NeurIPS 2024).
//! Construction and search by annvil-lorann (global PCA, k-means clusters,
//! per-cluster reduced-rank regression scoring the `nprobe` nearest
//! clusters, its best `reorder` estimates measured exactly); the search's
//! answer is already exact, so the refinement keeps it.

use annvil_lorann::{Lorann, LorannSearch};
use annvil_rerank::Identity;

annvil_abi::export_variant! {
    name: "lorann",
    construction: Lorann,
    search: LorannSearch,
    refinement: Identity,
}
