//! `host check` end to end: the shipped variants pass; misbehaving fixtures
//! fail with their reason while the host survives and reports the rest.

mod common;

#[test]
fn shipped_variants_and_a_mixed_variant_pass() {
    let out = common::host(&[
        "check",
        "variants/bruteforce",
        "variants/bruteforce-c",
        "variants/hnsw",
        "host/tests/fixtures/variants/mixed",
    ]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("4 variants: 4 passed, 0 failed"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    // hnsw has a numeric build parameter and knob, so both malformed-value
    // checks run on it.
    for row in [
        "PASS  malformed build parameter `M`",
        "PASS  malformed knob `ef`",
    ] {
        assert!(text.contains(row), "`{row}` missing from:\n{text}");
    }
}

#[test]
fn misbehaving_variants_fail_with_their_reason_and_the_run_goes_on() {
    let out = common::host(&[
        "check",
        "host/tests/fixtures/variants/panics",
        "host/tests/fixtures/variants/segfaults",
        "host/tests/fixtures/variants/duplicates",
        "host/tests/fixtures/variants/hangs",
        "variants/bruteforce",
        "--timeout",
        "8",
    ]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for expected in [
        "status 6 (panic): panic: misbehave fixture: deliberate panic in search",
        "crash: SIGSEGV (signal 11)",
        "id 0 returned twice",
        "timeout after 8s",
        "5 variants: 1 passed, 4 failed",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
}

#[test]
fn bad_variant_yaml_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("variant.yaml"),
        "search:\n  sweep: {ef: []}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    let out = common::host(&["check", dir.path().to_str().unwrap()]);
    let text = common::text(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("variant.yaml") && text.contains("search.sweep.ef: give at least one value"),
        "{text}"
    );
}

#[test]
fn an_ok_status_with_fewer_than_k_results_fails() {
    let out = common::host(&["check", "host/tests/fixtures/variants/short"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("returned fewer than min(k, n) = 10 results with an OK status"),
        "{text}"
    );
}

#[test]
fn each_check_has_its_own_timeout() {
    let start = std::time::Instant::now();
    let out = common::host(&[
        "check",
        "host/tests/fixtures/variants/slow",
        "--timeout",
        "3",
    ]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 variants: 1 passed"), "{text}");
    // The suite as a whole took longer than one check's timeout, so only a
    // timeout per check lets it pass.
    assert!(start.elapsed().as_secs() > 3, "{text}");
}
