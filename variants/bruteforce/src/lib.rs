//! `bruteforce`: exact search by scanning every base vector, then an exact
//! rerank. No graph, no knobs; the reference the host checks every other
//! variant against.

use annvil_exact::{ExactScan, NoGraph};
use annvil_rerank::ExactRerank;

annvil_abi::export_variant! {
    name: "bruteforce",
    construction: NoGraph,
    search: ExactScan,
    refinement: ExactRerank,
}
