//! `bruteforce-c`: exact search written in C (src/bruteforce.c), the same
//! semantics as the Rust `bruteforce` variant. This crate is only the cdylib
//! shim: build.rs compiles the C code and the macro below exports
//! `annvil_entry_v1`, forwarding to the C descriptor.

annvil_abi::export_variant! { c_entry: bruteforce_c_entry }
