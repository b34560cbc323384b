//! Build-time support for the C++ peer variants (today `peer-hnswlib`;
//! the peers installed from PyPI go through annvil-python-bridge instead).
//! Their `build.rs` files use it as a build-dependency, so the shared
//! pieces live in one place:
//!
//! * [`INCLUDE_DIR`] holds `annvil_peer.hpp`, the C++ glue a peer
//!   includes (the standard graph view, the output buffers, generic slot
//!   tables over a peer type), on top of the support header
//!   `abi/include/annvil_support.hpp` (exception guard, error buffer,
//!   parameter parsing) that every C++ variant may use;
//! * [`cxx_build`] applies the one compile-flag policy every peer follows;
//! * [`system_header`] detects the system package a peer wraps and honours
//!   the [`FORCE_MISSING_ENV`] override;
//! * [`compile_stub`] builds the stand-in used when the package is missing:
//!   an entry whose descriptor names the peer and fills no slot. The host
//!   never loads it, because the variant's `requires:` marks it skipped with
//!   the install hint first; the stub only keeps `cargo build` of the whole
//!   workspace working on machines without the package.
//!
//! Being a workspace package (a path dependency of each C++ peer), its files
//! are part of each peer's content hash in the host's build cache.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Directory with `annvil_peer.hpp` and `stub.c`.
pub const INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include");

/// Directory with the ABI header `annvil.h` and the support headers
/// `annvil_support.h` / `annvil_support.hpp`.
pub const ABI_INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../abi/include");

/// Set to `1` (every peer) or to a comma-separated list of peer package
/// names to build those peers as if their system package were missing.
/// Used to test the missing-package path on a machine that has it.
pub const FORCE_MISSING_ENV: &str = "ANNVIL_PEER_FORCE_MISSING";

/// Whether the system header `header` of Debian package `package` is
/// usable for the peer being built. When it is not (absent, or forced
/// absent through [`FORCE_MISSING_ENV`]), emits a `cargo:warning` saying
/// that the stub is built instead. Emits the `rerun-if` lines either way,
/// so installing or removing the package triggers a rebuild.
pub fn system_header(package: &str, header: &Path) -> bool {
    println!("cargo:rerun-if-env-changed={FORCE_MISSING_ENV}");
    println!("cargo:rerun-if-changed={}", header.display());
    let peer = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let forced = std::env::var(FORCE_MISSING_ENV).is_ok_and(|v| {
        let v = v.trim();
        v == "1" || v.split(',').any(|name| name.trim() == peer)
    });
    let present = header.is_file();
    if forced || !present {
        let why = if forced {
            format!("{FORCE_MISSING_ENV} is set")
        } else {
            format!("{} not found", header.display())
        };
        println!(
            "cargo:warning={peer}: {package} is missing ({why}); building a stub with no slots \
             (the host skips this variant; install with scripts/setup or apt-get install {package})"
        );
        return false;
    }
    true
}

/// The installed version of a Debian package, from `dpkg-query`, if any.
pub fn debian_version(package: &str) -> Option<String> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !version.trim().is_empty()).then(|| version.trim().to_owned())
}

/// A C++17 `cc::Build` with the flag policy of every peer:
///
/// * `-O3 -DNDEBUG`, the optimisation a library's own release build uses;
/// * `-march=native`, as ann-benchmarks and hnswlib's own setup.py build
///   them: header libraries choose their SIMD kernels with `#ifdef`s at
///   compile time, so without it hnswlib would run its SSE kernels and be
///   measured below its real speed. The host's library cache key includes
///   the CPU model and flags, so a library is never reused on another CPU.
///   Libraries that dispatch at run time (USearch's kernels, the PyPI
///   builds behind the Python bridge) are used as they come;
/// * strict warnings as errors for our own code (system headers under
///   /usr/include are exempt, as the compiler treats them as system headers).
pub fn cxx_build() -> cc::Build {
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .opt_level(3)
        .flag("-march=native")
        .define("NDEBUG", None)
        .include(ABI_INCLUDE_DIR)
        .include(INCLUDE_DIR)
        .warnings(true)
        .extra_warnings(true)
        .flag("-Wpedantic")
        .flag("-Wshadow")
        .warnings_into_errors(true);
    println!("cargo:rerun-if-changed={INCLUDE_DIR}/annvil_peer.hpp");
    println!("cargo:rerun-if-changed={ABI_INCLUDE_DIR}");
    build
}

/// Compiles the stand-in entry `entry` (a C function returning a
/// descriptor named `name` with version `version` and no slot tables) into
/// the static archive `archive`.
pub fn compile_stub(archive: &str, entry: &str, name: &str, version: &str) {
    let stub: PathBuf = Path::new(INCLUDE_DIR).join("stub.c");
    println!("cargo:rerun-if-changed={}", stub.display());
    cc::Build::new()
        .file(stub)
        .include(ABI_INCLUDE_DIR)
        .std("c11")
        .define("PEER_ENTRY", entry)
        .define("PEER_NAME", format!("\"{name}\"").as_str())
        .define("PEER_VERSION", format!("\"{version}\"").as_str())
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile(archive);
}
