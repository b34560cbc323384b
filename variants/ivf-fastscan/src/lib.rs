//! `ivf-fastscan`: an inverted file over 4-bit codes. Construction by
//! annvil-ivf (seeded k-means, contiguous lists), search by
//! annvil-ivf-fastscan (residual codes in FastScan blocks scored in SIMD
//! registers, the best `reorder` measured exactly), and the identity
//! refinement (the reorder's distances are already exact).

use annvil_ivf::Ivf;
use annvil_ivf_fastscan::IvfFastScanSearch;
use annvil_rerank::Identity;

annvil_abi::export_variant! {
    name: "ivf-fastscan",
    construction: Ivf,
    search: IvfFastScanSearch,
    refinement: Identity,
}
