//! `peer-hnswlib`: hnswlib's HNSW (Debian's header-only `libhnswlib-dev`)
//! as an annvil peer. The index is built and searched by hnswlib itself in
//! C++ (`src/peer_hnswlib.cpp`, on the shared peer glue
//! `modules/peer-support/include/annvil_peer.hpp`); this crate is only the
//! cdylib shim that exports `annvil_entry_v1`, forwarding to the C++ descriptor.
//!
//! Built without the package, the C++ is replaced by a stub descriptor with
//! no slots (see `build.rs`); variant.yaml's `requires:` makes the host skip
//! the variant in that case.

annvil_abi::export_variant! { c_entry: peer_hnswlib_entry }
