//! Compiles the hnswlib peer (src/peer_hnswlib.cpp) against Debian's
//! header-only libhnswlib-dev into a static archive that the Rust shim
//! (src/lib.rs) links into the cdylib.
//!
//! Without the package (or with `ANNVIL_PEER_FORCE_MISSING=1`, or a list
//! naming `peer-hnswlib`), it compiles a stub entry instead: a descriptor
//! with the name and no slots. The crate then still builds as part of the
//! workspace, and the host skips the variant through variant.yaml's
//! `requires:` before it ever loads the library.

use std::path::Path;

use annvil_peer_support as support;

const PACKAGE: &str = "libhnswlib-dev";
const HEADER: &str = "/usr/include/hnswlib/hnswlib.h";
const ENTRY: &str = "peer_hnswlib_entry";

fn main() {
    println!("cargo:rerun-if-changed=src/peer_hnswlib.cpp");
    let name = env!("CARGO_PKG_NAME");
    let version = env!("CARGO_PKG_VERSION");
    if !support::system_header(PACKAGE, Path::new(HEADER)) {
        support::compile_stub("peer_hnswlib", ENTRY, name, &format!("{version}+stub"));
        return;
    }
    // The descriptor's version records the hnswlib it was built against.
    let hnswlib = support::debian_version(PACKAGE).unwrap_or_else(|| "unknown".into());
    let full = format!("\"{version}+hnswlib-{hnswlib}\"");
    support::cxx_build()
        .file("src/peer_hnswlib.cpp")
        .define("PEER_VERSION", full.as_str())
        .compile("peer_hnswlib");
}
