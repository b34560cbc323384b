//! Compiles the slot sources in src/ into static archives that the Rust shim
//! (src/lib.rs) links into the cdylib: every `src/*.c` as C11 and every
//! `src/*.cpp` as C++17, at -O3, against the annvil headers (`annvil.h`
//! and the helpers `annvil_support.h` / `annvil_support.hpp`). Replacing or
//! adding a source file needs no change here.

use std::path::{Path, PathBuf};

/// The directory holding `annvil.h` and the support headers, relative to
/// this package (written by `host new`).
const ANNVIL_INCLUDE: &str = "{{include}}";

fn main() {
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let include = package.join(ANNVIL_INCLUDE);
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-changed=src");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(package.join("src"))
        .expect("src/ is readable")
        .map(|entry| entry.expect("src/ entry is readable").path())
        .collect();
    sources.sort();
    let with_extension = |extension: &str| -> Vec<&Path> {
        sources
            .iter()
            .filter(|path| path.extension().is_some_and(|e| e == extension))
            .map(PathBuf::as_path)
            .collect()
    };
    let c = with_extension("c");
    if !c.is_empty() {
        cc::Build::new()
            .files(c)
            .include(&include)
            .std("c11")
            .opt_level(3)
            .warnings(true)
            .extra_warnings(true)
            .compile("variant_c");
    }
    let cpp = with_extension("cpp");
    if !cpp.is_empty() {
        cc::Build::new()
            .cpp(true)
            .files(cpp)
            .include(&include)
            .std("c++17")
            .opt_level(3)
            .warnings(true)
            .extra_warnings(true)
            .compile("variant_cpp");
    }
}
