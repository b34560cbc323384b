//! Compiles the faiss peer (src/peer_faiss_hnsw.cpp) against Debian's
//! libfaiss-dev and links faiss's static library with what it needs:
//! libgomp (OpenMP), BLAS and LAPACK, as faiss's installed CMake config
//! (`faiss-targets.cmake`, INTERFACE_LINK_LIBRARIES) lists them.
//!
//! Without the package (header or static library missing, or
//! `ANNVIL_PEER_FORCE_MISSING=1` or a list naming `peer-faiss-hnsw`), it
//! compiles a stub entry instead: a descriptor with the name and no slots.
//! The crate then still builds as part of the workspace, and the host skips
//! the variant through variant.yaml's `requires:` before loading it.

use std::path::Path;

use annvil_peer_support as support;

const PACKAGE: &str = "libfaiss-dev";
const HEADER: &str = "/usr/include/faiss/IndexHNSW.h";
const ENTRY: &str = "peer_faiss_hnsw_entry";

fn main() {
    println!("cargo:rerun-if-changed=src/peer_faiss_hnsw.cpp");
    let name = env!("CARGO_PKG_NAME");
    let version = env!("CARGO_PKG_VERSION");
    let library = support::find_library("libfaiss.a");
    if !support::system_header(PACKAGE, Path::new(HEADER)) || library.is_none() {
        if library.is_none() {
            println!("cargo:warning={name}: libfaiss.a not found; building the stub");
        }
        support::compile_stub("peer_faiss_hnsw", ENTRY, name, &format!("{version}+stub"));
        return;
    }
    let faiss = support::debian_version(PACKAGE).unwrap_or_else(|| "unknown".into());
    let full = format!("\"{version}+faiss-{faiss}\"");
    support::cxx_build()
        .file("src/peer_faiss_hnsw.cpp")
        .define("PEER_VERSION", full.as_str())
        .compile("peer_faiss_hnsw");
    if let Some(dir) = library.as_deref().and_then(Path::parent) {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    // After the shim's archive, so the linker resolves its faiss references;
    // faiss itself needs OpenMP, BLAS and LAPACK (shared) and libstdc++.
    println!("cargo:rustc-link-lib=static=faiss");
    for lib in ["gomp", "lapack", "blas", "stdc++"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}
