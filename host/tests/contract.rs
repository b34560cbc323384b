//! The contract seen from the host: the loader's refusals, panics turned
//! into error statuses, slots from different libraries composed through
//! the standard graph view, and parameter declarations (ABI 1.1) read from
//! Rust and C libraries, old and new.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use annvil_abi::{Metric, StatusCode};
use annvil_data::Matrix;
use annvil_host::describe::{self, DeclaredRange, ParamInfo};
use annvil_host::protocol::PipelineSpec;
use annvil_host::variant::SlotKind;
use annvil_host::worker::loader;
use annvil_host::worker::pipeline::{BaseVectors, Graph, QueryRunner, Refiner, Searcher};

/// Compiles `host/tests/fixtures/descriptors/bad_descriptor.c` with one
/// `-D` flag into a shared library.
fn bad_library(define: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("lib{}.so", define.to_lowercase()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-std=c11", "-o"])
        .arg(&out)
        .arg(format!("-D{define}"))
        .arg("-I")
        .arg(common::root().join("abi/include"))
        .arg(common::root().join("host/tests/fixtures/descriptors/bad_descriptor.c"))
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success(), "compiling the {define} fixture failed");
    out
}

#[test]
fn loader_refuses_wrong_magic_major_and_size_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "BAD_MAGIC",
            "magic",
            "expected 0x414e4e56",
            "found 0xdeadbeef",
        ),
        ("BAD_MAJOR", "ABI major version", "expected 1", "found 2"),
        (
            "ONLY_V2",
            "entry symbol",
            "annvil_entry_v1",
            "speaks ABI major 2",
        ),
        (
            "SMALL_SIZE",
            "descriptor struct_size",
            "at least",
            "found 16 bytes",
        ),
    ];
    for (define, check, expected, found) in cases {
        let path = bad_library(define, dir.path());
        let err = loader::open(&path).expect_err(define);
        assert_eq!(err.check, check, "{define}");
        let message = err.to_string();
        for part in [path.display().to_string().as_str(), check, expected, found] {
            assert!(
                message.contains(part),
                "{define}: `{part}` missing from: {message}"
            );
        }
    }
    let err = loader::open(Path::new("/nonexistent/libnothing.so")).unwrap_err();
    assert_eq!(err.check, "load (RTLD_NOW)");
}

/// Small clustered data.
fn data() -> (Matrix, Matrix) {
    let d = "synthetic:n=800,queries=30,dim=16,clusters=8,seed=3"
        .parse::<annvil_data::DatasetSpec>()
        .unwrap()
        .load()
        .unwrap();
    (d.train, d.test)
}

/// Answers every query with the pipeline; ids and distances per query.
fn answers(spec: &PipelineSpec, k: usize) -> Vec<(Vec<u32>, Vec<f32>)> {
    let slots = spec.load().expect("libraries load");
    let (train, test) = data();
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let graph = Graph::build(
        slots.construction,
        &base,
        Metric::L2,
        &Default::default(),
        2,
    )
    .unwrap();
    let searcher =
        Searcher::prepare(slots.search, &base, &graph, Metric::L2, &spec.search_params).unwrap();
    let refiner = slots
        .refinement
        .map(|l| Refiner::prepare(l, &base, Metric::L2, &spec.refine_params).unwrap());
    let mut runner = QueryRunner::new(
        &searcher,
        refiner.as_ref(),
        spec.candidates_for(k, refiner.is_some()),
    )
    .unwrap();
    (0..test.len())
        .map(|q| {
            let (mut ids, mut d) = (vec![0; k], vec![0.0; k]);
            let n = runner.run(test.row(q), &mut ids, &mut d).unwrap();
            (ids[..n].to_vec(), d[..n].to_vec())
        })
        .collect()
}

#[test]
fn mixed_variant_gives_the_same_results_as_the_single_library_one() {
    let specs = common::pipelines(&[
        "variants/bruteforce",
        "host/tests/fixtures/variants/mixed",
        "variants/bruteforce-c",
    ]);
    let mixed = &specs[1];
    let libraries = [&mixed.construction, &mixed.search, &mixed.refinement];
    assert!(
        libraries[0] != libraries[1]
            && libraries[1] != libraries[2]
            && libraries[0] != libraries[2],
        "three distinct libraries"
    );
    let reference = answers(&specs[0], 10);
    for other in [mixed, &specs[2]] {
        let got = answers(other, 10);
        for (q, ((ids, d), (ref_ids, ref_d))) in got.iter().zip(&reference).enumerate() {
            assert_eq!(ids, ref_ids, "query {q}: the same ids in the same order");
            // Rust and C kernels sum in different orders: equal up to rounding.
            for (a, b) in d.iter().zip(ref_d) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "query {q}: distance {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn a_panic_inside_search_is_an_error_status_and_the_host_goes_on() {
    let spec = &common::pipelines(&["host/tests/fixtures/variants/panics"])[0];
    let slots = spec.load().unwrap();
    let (train, test) = data();
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let graph = Graph::build(
        slots.construction,
        &base,
        Metric::L2,
        &Default::default(),
        1,
    )
    .unwrap();
    let searcher =
        Searcher::prepare(slots.search, &base, &graph, Metric::L2, &spec.search_params).unwrap();
    let mut context = searcher.context().unwrap();
    for _ in 0..2 {
        let (mut ids, mut d) = (vec![0; 10], vec![0.0; 10]);
        let err = context.search(test.row(0), &mut ids, &mut d).unwrap_err();
        assert_eq!(err.known_status(), Some(StatusCode::Panic));
        assert!(err.message.contains("deliberate panic in search"), "{err}");
    }
    // The same library still serves a well-behaved searcher afterwards.
    let ok = [("mode".to_owned(), "ok".to_owned())].into();
    let searcher = Searcher::prepare(slots.search, &base, &graph, Metric::L2, &ok).unwrap();
    let (mut ids, mut d) = (vec![0; 10], vec![0.0; 10]);
    assert_eq!(
        searcher
            .context()
            .unwrap()
            .search(test.row(0), &mut ids, &mut d)
            .unwrap(),
        10
    );
}

fn param(name: &str, range: DeclaredRange, default: &str, knob: bool, doc: &str) -> ParamInfo {
    ParamInfo {
        name: name.into(),
        range,
        default: default.into(),
        knob,
        doc: doc.into(),
    }
}

fn int(min: f64, max: f64) -> DeclaredRange {
    DeclaredRange::Int { min, max }
}

#[test]
fn rust_declarations_round_trip_through_the_abi() {
    let specs = common::pipelines(&["host/tests/fixtures/variants/panics", "variants/hnsw"]);
    let misbehave = specs[0].load().expect("misbehave loads");
    let mode = DeclaredRange::Choice {
        choices: [
            "ok",
            "panic",
            "segfault",
            "hang",
            "duplicates",
            "oom",
            "short",
            "slow",
        ]
        .map(String::from)
        .into(),
    };
    assert_eq!(
        misbehave.search.declared_params(SlotKind::Search).unwrap(),
        [
            param("mode", mode, "ok", false, "how the search misbehaves"),
            param("ef", int(1.0, 1000.0), "10", true, "read and ignored"),
        ]
    );
    // NoGraph declares nothing: its table's `params` is NULL.
    assert!(
        misbehave
            .construction
            .construction
            .unwrap()
            .params
            .is_none()
    );
    assert!(
        misbehave
            .construction
            .declared_params(SlotKind::Construction)
            .unwrap()
            .is_empty()
    );

    let hnsw = describe::run_in_worker(&specs[1]).expect("hnsw's declarations are consistent");
    let names: Vec<(&str, &DeclaredRange, &str, bool)> = hnsw
        .construction
        .iter()
        .map(|p| (p.name.as_str(), &p.range, p.default.as_str(), p.knob))
        .collect();
    assert_eq!(
        names,
        [
            ("M", &int(4.0, 64.0), "16", false),
            ("ef_construction", &int(16.0, 1000.0), "200", false),
            (
                "alpha",
                &DeclaredRange::Float { min: 1.0, max: 1.5 },
                "1",
                false
            ),
            ("seed", &int(0.0, f64::from(u32::MAX)), "0", false),
        ]
    );
    assert!(hnsw.construction.iter().all(|p| !p.doc.is_empty()));
    // The declared defaults are values the slot accepts.
    let slots = specs[1].load().unwrap();
    let (train, _) = data();
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let defaults = hnsw
        .construction
        .iter()
        .map(|p| (p.name.clone(), p.default.clone()))
        .collect();
    Graph::build(slots.construction, &base, Metric::L2, &defaults, 1)
        .expect("hnsw builds with its declared defaults");
}

#[test]
fn c_declarations_are_read_and_an_abi_1_0_table_declares_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let new = loader::open(&bad_library("DECLARES", dir.path())).expect("a 1.1 library loads");
    let declared = new.declared_params(SlotKind::Construction).unwrap();
    let codes = DeclaredRange::Choice {
        choices: vec!["f32".into(), "sq8".into()],
    };
    assert_eq!(
        declared,
        [
            param("degree", int(8.0, 128.0), "32", false, "out-degree"),
            param(
                "alpha",
                DeclaredRange::Float { min: 1.0, max: 1.5 },
                "1.2",
                false,
                ""
            ),
            // `future` has a kind this host does not know: skipped.
            param("codes", codes, "f32", false, "storage"),
        ]
    );
    assert!(new.declared_params(SlotKind::Search).unwrap().is_empty());

    // The same table with the 1.0 struct_size: `params` is set in the
    // library's memory but lies beyond the size, so it is never read.
    let old = loader::open(&bad_library("OLD_TABLE", dir.path())).expect("a 1.0 library loads");
    assert_eq!(old.abi_minor, 0);
    // Read and validated: its required entries (e.g. `build`) are plain
    // function pointers, and `params` beyond the size is absent.
    let table = old.construction.expect("the construction table is read");
    assert!(table.params.is_none());
    assert!(
        old.declared_params(SlotKind::Construction)
            .unwrap()
            .is_empty()
    );
}
