//! `host new` end to end: the generated variants build and pass `host
//! check` in every language, alone and as children of `variants/hnsw`; bad
//! names and existing directories are refused with clear messages.
//!
//! The variants are generated into a temporary directory outside the
//! repository: there each is a stand-alone cargo package, which the host
//! builds with annvil's Cargo.lock in a shared target directory. (Inside the
//! repository, cargo refuses a package that is neither a workspace member
//! nor excluded.)

mod common;

use std::path::Path;

/// Runs `host new` with `args`, failing the test when it fails.
fn new(args: &[&str]) {
    let out = common::host(&[&["new"][..], args].concat());
    assert!(out.status.success(), "{}", common::text(&out));
}

/// Runs `host check` on `dirs` and asserts every variant passes.
fn check_passes(dirs: &[&Path]) {
    let dirs: Vec<&str> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
    let out = common::host(&[&["check"][..], &dirs].concat());
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    let summary = format!("{n} variants: {n} passed, 0 failed", n = dirs.len());
    assert!(text.contains(&summary), "`{summary}` missing from:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn every_language_passes_check_with_all_slots_generated() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    for lang in ["rust", "c", "cpp"] {
        new(&[&format!("all-{lang}"), "--lang", lang, "--out", out_dir]);
    }
    check_passes(&[
        &out.path().join("all-rust"),
        &out.path().join("all-c"),
        &out.path().join("all-cpp"),
    ]);
}

#[test]
fn children_of_hnsw_pass_check_in_every_language() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let children = [
        ("rust", "search"),
        ("c", "search"),
        ("cpp", "search"),
        // The generated construction feeds hnsw's search through the
        // standard view; hnsw's search feeds the generated rerank.
        ("rust", "construction"),
        ("cpp", "refinement"),
    ];
    for (lang, slot) in children {
        let name = format!("{slot}-{lang}");
        new(&[
            &name,
            "--lang",
            lang,
            "--from",
            "variants/hnsw",
            "--slot",
            slot,
            "--out",
            out_dir,
        ]);
        let yaml = std::fs::read_to_string(out.path().join(&name).join("variant.yaml")).unwrap();
        assert!(
            yaml.contains(&format!("  parent: hnsw\n  slot: {slot}\n")),
            "{yaml}"
        );
    }
    let dirs: Vec<_> = children
        .iter()
        .map(|(lang, slot)| out.path().join(format!("{slot}-{lang}")))
        .collect();
    check_passes(&dirs.iter().map(|d| d.as_path()).collect::<Vec<_>>());
}

#[test]
fn bad_names_and_existing_directories_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let refused = |args: &[&str], expected: &str| {
        let run = common::host(&[&["new"][..], args].concat());
        let text = common::text(&run);
        assert_eq!(run.status.code(), Some(2), "{text}");
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    };
    refused(
        &["My_Variant", "--out", out_dir],
        "invalid variant name `My_Variant`: it must start with a lowercase letter",
    );
    refused(
        &["fast_one", "--out", out_dir],
        "invalid variant name `fast_one`: `_` is not allowed",
    );
    refused(
        &["half", "--slot", "search", "--out", out_dir],
        "--slot search generates one slot and inherits the others, which needs --from",
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    new(&["taken", "--out", out_dir]);
    let lib = out.path().join("taken/src/lib.rs");
    std::fs::write(&lib, "// edited\n").unwrap();
    refused(
        &["taken", "--lang", "c", "--out", out_dir],
        "taken: already exists; choose another name or remove it first",
    );
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), "// edited\n");
}
