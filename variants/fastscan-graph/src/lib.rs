//! `fastscan-graph`: a quantized graph. Construction by annvil-hnsw
//! (M = 16, so level 0 holds up to 32 neighbours: one FastScan block);
//! search by annvil-qg, whose records put each node's vector next to its
//! neighbours' 4-bit codes, so an expansion is one contiguous read scored
//! by one SIMD block scan, and the expanded nodes' exact distances are the
//! answer; the identity refinement returns them as they are.

use annvil_hnsw::Hnsw;
use annvil_qg::QuantizedGraphSearch;
use annvil_rerank::Identity;

annvil_abi::export_variant! {
    name: "fastscan-graph",
    construction: Hnsw,
    search: QuantizedGraphSearch,
    refinement: Identity,
}
