//! `ivf-flat`: the inverted-file baseline. Construction by annvil-ivf
//! (seeded k-means, vectors copied into contiguous lists), search by
//! scanning the `nprobe` nearest lists with the f32 SIMD kernel, and the
//! identity refinement (the scan's distances are already exact).

use annvil_ivf::{Ivf, IvfFlatSearch};
use annvil_rerank::Identity;

annvil_abi::export_variant! {
    name: "ivf-flat",
    construction: Ivf,
    search: IvfFlatSearch,
    refinement: Identity,
}
