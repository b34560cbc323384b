//! Compiles the C implementation (src/bruteforce.c) into a static archive
//! that the Rust shim (src/lib.rs) links into the cdylib.

fn main() {
    println!("cargo:rerun-if-changed=src/bruteforce.c");
    // annvil.h and the support header annvil_support.h.
    println!("cargo:rerun-if-changed=../../abi/include");
    let version = format!("\"{}\"", env!("CARGO_PKG_VERSION"));
    cc::Build::new()
        .file("src/bruteforce.c")
        .define("BRUTEFORCE_C_VERSION", version.as_str())
        .include("../../abi/include")
        .std("c11")
        .opt_level(3)
        // Keep a*b+c as two roundings, like the Rust kernels.
        .flag("-ffp-contract=off")
        .warnings(true)
        .extra_warnings(true)
        .flag("-Wpedantic")
        .flag("-Wshadow")
        .flag("-Wstrict-prototypes")
        .flag("-Wmissing-prototypes")
        .warnings_into_errors(true)
        .compile("bruteforce_c");
}
