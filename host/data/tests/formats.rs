//! Dataset specs, the synthetic generator and every file format, including
//! each kind of malformed input.

use std::io::Write;
use std::path::{Path, PathBuf};

use annvil_data::{
    DataError, Dataset, DatasetSpec, FASHION_MNIST_DIR, Metric, SyntheticSpec, exact_distance,
    exact_ground_truth, verify_ground_truth,
};
use flate2::Compression;
use flate2::write::GzEncoder;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(spec: &str) -> Result<Dataset, DataError> {
    spec.parse::<DatasetSpec>()?.load()
}

fn load_fixture(name: &str) -> Result<Dataset, DataError> {
    load(fixture(name).to_str().unwrap())
}

/// Loads a spec that must fail; checks the message names `needle`.
fn load_error(spec: &str, needle: &str) -> DataError {
    let error = load(spec).expect_err("loading should fail");
    let message = error.to_string();
    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
    error
}

/// A TEXMEX file: per row, `header` (normally the row length) then values.
fn vecs_bytes<T: Copy>(rows: &[Vec<T>], encode: fn(T) -> Vec<u8>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for row in rows {
        bytes.extend_from_slice(&(row.len() as i32).to_le_bytes());
        for &value in row {
            bytes.extend(encode(value));
        }
    }
    bytes
}

fn fvecs(rows: &[Vec<f32>]) -> Vec<u8> {
    vecs_bytes(rows, |x| x.to_le_bytes().to_vec())
}

fn ivecs(rows: &[Vec<i32>]) -> Vec<u8> {
    vecs_bytes(rows, |x| x.to_le_bytes().to_vec())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// Small distinct rows of dimension `dim`.
fn rows(count: usize, dim: usize, offset: f32) -> Vec<Vec<f32>> {
    (0..count)
        .map(|i| {
            (0..dim)
                .map(|j| offset + (i * dim + j) as f32 * 0.25)
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------- specs

#[test]
fn specs_parse_and_print_canonically() {
    let cases = [
        (
            "synthetic",
            "synthetic:n=20000,queries=1000,dim=64,clusters=64,metric=euclidean,seed=42",
        ),
        (
            " synthetic:dim=8, metric=angular,n=100 ",
            "synthetic:n=100,queries=1000,dim=8,clusters=64,metric=angular,seed=42",
        ),
        ("fashion-mnist", "fashion-mnist"),
        ("fashion-mnist:/data/fm", "fashion-mnist:/data/fm"),
        ("data/glove-25-angular.hdf5", "data/glove-25-angular.hdf5"),
        ("x/Y.H5", "x/Y.H5"),
        ("b.fvecs,q.fvecs", "b.fvecs,q.fvecs;metric=euclidean"),
        (
            "b.bvecs,q.fvecs,gt.ivecs;metric=cosine",
            "b.bvecs,q.fvecs,gt.ivecs;metric=angular",
        ),
        ("b.fvecs,q.fvecs;metric=dot", "b.fvecs,q.fvecs;metric=ip"),
    ];
    for (text, canonical) in cases {
        let spec: DatasetSpec = text.parse().unwrap();
        assert_eq!(spec.to_string(), canonical);
        assert_eq!(canonical.parse::<DatasetSpec>().unwrap(), spec);
    }
    assert_eq!(DatasetSpec::default(), "synthetic".parse().unwrap());
    assert_eq!(
        "fashion-mnist".parse::<DatasetSpec>().unwrap(),
        DatasetSpec::FashionMnist {
            dir: FASHION_MNIST_DIR.into()
        }
    );
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let cases = [
        ("synthetic:n=10,n=20", "given twice"),
        ("synthetic:size=10", "unknown key `size`"),
        ("synthetic:n=ten", "expected a whole number"),
        ("synthetic:n", "not key=value"),
        ("synthetic:dim=0", "`dim` must be at least 1"),
        ("synthetic:metric=hamming", "unknown metric `hamming`"),
        ("fashion-mnist:", "needs a directory"),
        (
            "a.fvecs,b.fvecs,c.ivecs,d.ivecs",
            "2 or 3 comma-separated files",
        ),
        ("a.fvecs,b.txt", "should end in .fvecs or .bvecs"),
        ("a.fvecs,b.fvecs,c.fvecs", "should end in .ivecs"),
        ("a.fvecs,b.fvecs;k=3", "unknown option `k=3`"),
        ("a.hdf5;metric=angular", "only follow TEXMEX"),
        ("data.csv", "unrecognised dataset"),
    ];
    for (text, needle) in cases {
        let error = text.parse::<DatasetSpec>().expect_err(text);
        assert!(matches!(error, DataError::Spec { .. }), "{text}: {error:?}");
        let message = error.to_string();
        assert!(
            message.contains(needle),
            "{text}: `{message}` lacks `{needle}`"
        );
        assert!(
            message.contains(text),
            "{text}: `{message}` does not quote the spec"
        );
    }
}

// ------------------------------------------------------------ synthetic

fn small_synthetic(metric: Metric) -> SyntheticSpec {
    SyntheticSpec {
        n: 500,
        queries: 20,
        dim: 16,
        clusters: 8,
        metric,
        seed: 7,
    }
}

#[test]
fn synthetic_data_is_bit_identical_everywhere() {
    let spec = small_synthetic(Metric::L2);
    let data = spec.generate().unwrap();
    assert_eq!(
        data.content_hash(),
        "bdcbb3abf8eba04d7df1f8833f1166daed0a4d9cd40290cbacb4b2a6960d62ae",
        "the generator or the hash changed: every cached ground truth and recorded result \
         for synthetic data is invalidated"
    );
    assert_eq!(data.content_hash(), spec.generate().unwrap().content_hash());
    assert_eq!(data.name, "synthetic-500x16-euclidean-q20-c8-s7");
    assert_eq!(data.source, spec.to_string());
    assert_eq!(
        (data.train.len(), data.test.len(), data.train.dim()),
        (500, 20, 16)
    );
    let reseeded = SyntheticSpec { seed: 8, ..spec }.generate().unwrap();
    assert_ne!(reseeded.content_hash(), data.content_hash());
    assert_eq!(
        SyntheticSpec::default().generate().unwrap().name,
        "synthetic-20000x64-euclidean"
    );
}

#[test]
fn synthetic_angular_is_unit_normalised() {
    let data = small_synthetic(Metric::Angular).generate().unwrap();
    assert_eq!(data.metric, Metric::Angular);
    for row in data.train.rows().chain(data.test.rows()) {
        let norm: f64 = row.iter().map(|&x| f64::from(x).powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-6, "norm² {norm}");
    }
    let euclidean = small_synthetic(Metric::L2).generate().unwrap();
    assert_ne!(data.content_hash(), euclidean.content_hash());
}

#[test]
fn synthetic_spec_string_loads() {
    let data = load("synthetic:n=50,queries=5,dim=3,clusters=2,metric=ip,seed=1").unwrap();
    assert_eq!(data.metric, Metric::InnerProduct);
    assert_eq!(
        (data.train.len(), data.test.len(), data.train.dim()),
        (50, 5, 3)
    );
    assert!(data.ground_truth.is_none());
}

// ------------------------------------------------------------------ HDF5

#[test]
fn hdf5_matches_its_texmex_copy() {
    let hdf5 = load_fixture("euclidean.hdf5").unwrap();
    let texmex = load(&format!(
        "{},{},{}",
        fixture("euclidean_base.fvecs").display(),
        fixture("euclidean_query.fvecs").display(),
        fixture("euclidean_groundtruth.ivecs").display()
    ))
    .unwrap();
    assert_eq!(hdf5.name, "euclidean");
    assert_eq!(texmex.name, "euclidean-12-euclidean");
    assert_eq!(hdf5.metric, Metric::L2);
    assert_eq!(
        (hdf5.train.len(), hdf5.test.len(), hdf5.train.dim()),
        (300, 20, 12)
    );
    assert_eq!(hdf5.train, texmex.train);
    assert_eq!(hdf5.test, texmex.test);
    assert_eq!(hdf5.ground_truth, texmex.ground_truth);
    assert_eq!(hdf5.content_hash(), texmex.content_hash());
}

#[test]
fn hdf5_neighbours_get_exact_squared_distances() {
    let data = load_fixture("euclidean.hdf5").unwrap();
    let shipped = data.ground_truth.as_ref().unwrap();
    assert_eq!((shipped.k, shipped.queries()), (10, 20));
    for q in 0..shipped.queries() {
        let row = shipped.row(q);
        for (&id, &distance) in row.ids.iter().zip(row.distances) {
            let exact = exact_distance(Metric::L2, data.train.row(id as usize), data.test.row(q));
            assert_eq!(distance, exact);
        }
    }
    let exact = exact_ground_truth(&data.train, &data.test, data.metric, 10).unwrap();
    assert_eq!(&exact, shipped);
    let check = verify_ground_truth(shipped, &exact, 10).unwrap();
    assert_eq!((check.disagreeing, check.wrong()), (0, 0));
}

#[test]
fn hdf5_angular_latest_format_is_normalised() {
    // Superblock v3, object header v2, link messages.
    let data = load_fixture("angular-latest.hdf5").unwrap();
    assert_eq!(data.metric, Metric::Angular);
    assert_eq!(
        (data.train.len(), data.test.len(), data.train.dim()),
        (200, 10, 8)
    );
    for row in data.train.rows().chain(data.test.rows()) {
        let norm: f64 = row.iter().map(|&x| f64::from(x).powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-6);
    }
    let shipped = data.ground_truth.as_ref().unwrap();
    let exact = exact_ground_truth(&data.train, &data.test, data.metric, 10).unwrap();
    assert_eq!(verify_ground_truth(shipped, &exact, 10).unwrap().wrong(), 0);
}

#[test]
fn hdf5_dot_with_f64_vectors() {
    let data = load_fixture("dot-f64.hdf5").unwrap();
    let euclidean = load_fixture("euclidean.hdf5").unwrap();
    assert_eq!(data.metric, Metric::InnerProduct);
    assert_eq!(
        data.train.as_slice(),
        &euclidean.train.as_slice()[..50 * 12]
    );
    assert_eq!(data.test, euclidean.test);
    assert!(data.ground_truth.is_none());
}

#[test]
fn hdf5_chunked_and_gzip_storage() {
    let chunked = load_fixture("chunked-gzip.hdf5").unwrap();
    let plain = load_fixture("euclidean.hdf5").unwrap();
    assert_eq!(chunked.train, plain.train);
    assert_eq!(chunked.test, plain.test);
    assert_eq!(chunked.ground_truth, plain.ground_truth);
}

#[test]
fn hdf5_fixed_length_distance_string() {
    let data = load_fixture("fixed-string.hdf5").unwrap();
    assert_eq!(data.metric, Metric::L2);
    assert_eq!((data.train.len(), data.test.len()), (40, 5));
}

fn fixture_error(name: &str, needle: &str) -> DataError {
    let path = fixture(name);
    let error = load_error(path.to_str().unwrap(), needle);
    assert!(
        error.to_string().contains(name),
        "{error} does not name {name}"
    );
    error
}

#[test]
fn hdf5_without_distance_attribute() {
    let error = fixture_error("no-distance.hdf5", "attribute `distance` is missing");
    assert!(matches!(error, DataError::MissingDistance { .. }));
}

#[test]
fn hdf5_unsupported_distance() {
    let error = fixture_error("hamming.hdf5", "unsupported distance \"hamming\"");
    assert!(matches!(error, DataError::UnsupportedDistance { .. }));
}

#[test]
fn hdf5_numeric_distance_attribute() {
    let error = fixture_error("numeric-distance.hdf5", "is not a string");
    assert!(matches!(error, DataError::BadDistance { .. }));
}

#[test]
fn hdf5_missing_test_dataset() {
    let error = fixture_error("missing-test.hdf5", "missing dataset `test`");
    assert!(matches!(
        error,
        DataError::MissingDataset { name: "test", .. }
    ));
    assert!(error.to_string().contains("found: train"));
}

#[test]
fn hdf5_nan_names_the_row() {
    let error = fixture_error(
        "nan.hdf5",
        "train row 7 holds a non-finite value (NaN) at column 3",
    );
    assert!(matches!(
        error,
        DataError::NonFinite {
            row: 7,
            column: 3,
            ..
        }
    ));
}

#[test]
fn hdf5_dimension_mismatch() {
    let error = fixture_error(
        "dim-mismatch.hdf5",
        "dimension 12 but the queries have dimension 10",
    );
    assert!(matches!(error, DataError::DimensionMismatch { .. }));
}

#[test]
fn hdf5_distances_contradicting_the_metric() {
    let error = fixture_error("wrong-distance.hdf5", "does the `distance` attribute");
    assert!(matches!(error, DataError::BadGroundTruth { .. }));
}

#[test]
fn hdf5_neighbour_out_of_range() {
    let error = fixture_error(
        "bad-neighbors.hdf5",
        "query 3, neighbour 4: id 40 is out of range",
    );
    assert!(matches!(error, DataError::BadGroundTruth { .. }));
}

#[test]
fn hdf5_empty_missing_and_garbage_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.hdf5", b"");
    assert!(matches!(
        load_error(&empty, "is empty"),
        DataError::EmptyFile { .. }
    ));
    let garbage = write(dir.path(), "garbage.h5", &[7u8; 4096]);
    assert!(matches!(
        load_error(&garbage, "cannot read it as HDF5"),
        DataError::Hdf5 { .. }
    ));
    let missing = dir.path().join("missing.hdf5");
    let error = load_error(missing.to_str().unwrap(), "missing.hdf5");
    assert!(matches!(error, DataError::Io { .. }));
}

// ---------------------------------------------------------------- TEXMEX

#[test]
fn texmex_bvecs_and_metric_option() {
    let dir = tempfile::tempdir().unwrap();
    let base: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i, 2 * i + 1, 255 - i]).collect();
    let base = write(
        dir.path(),
        "tiny_base.bvecs",
        &vecs_bytes(&base, |x: u8| vec![x]),
    );
    let query = write(dir.path(), "q.fvecs", &fvecs(&[vec![1.0, 0.0, 2.0]]));
    let data = load(&format!("{base},{query}")).unwrap();
    assert_eq!(data.name, "tiny-3-euclidean");
    assert_eq!(data.train.row(5), &[5.0, 11.0, 250.0]);
    let angular = load(&format!("{base},{query};metric=angular")).unwrap();
    assert_eq!(angular.metric, Metric::Angular);
    let norm: f32 = angular.train.row(5).iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-6);
}

#[test]
fn texmex_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(d, "good.fvecs", &fvecs(&rows(4, 3, 0.0)));
    let query = write(d, "query.fvecs", &fvecs(&rows(2, 3, 0.5)));

    let empty = write(d, "empty.fvecs", b"");
    assert!(matches!(
        load_error(&format!("{empty},{query}"), "empty.fvecs is empty"),
        DataError::EmptyFile { .. }
    ));

    let mut bytes = fvecs(&rows(4, 3, 0.0));
    bytes.truncate(bytes.len() - 2);
    let cut = write(d, "cut.fvecs", &bytes);
    let error = load_error(
        &format!("{cut},{query}"),
        "cut.fvecs is truncated: vector 3 has 10 of its 12 data bytes",
    );
    assert!(matches!(error, DataError::Truncated { .. }));

    let mut bytes = fvecs(&rows(2, 3, 0.0));
    bytes.extend_from_slice(&[3, 0]);
    let cut_header = write(d, "cut-header.fvecs", &bytes);
    load_error(
        &format!("{cut_header},{query}"),
        "vector 2 has 2 of the 4 bytes of its dimension header",
    );

    let mut ragged = rows(3, 3, 0.0);
    ragged[2].push(9.0);
    let ragged = write(d, "ragged.fvecs", &fvecs(&ragged));
    let error = load_error(
        &format!("{ragged},{query}"),
        "ragged.fvecs: vector 2 has dimension 4, but vector 0 has dimension 3",
    );
    assert!(matches!(
        error,
        DataError::InconsistentDimension {
            index: 2,
            expected: 3,
            found: 4,
            ..
        }
    ));

    let mut bytes = (-5i32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 16]);
    let negative = write(d, "negative.fvecs", &bytes);
    load_error(
        &format!("{negative},{query}"),
        "vector 0 declares dimension -5",
    );

    let huge = write(d, "huge.fvecs", &1_000_000i32.to_le_bytes());
    load_error(
        &format!("{huge},{query}"),
        "vector 0 declares dimension 1000000 (4000004 bytes) but the file has only 4 bytes",
    );

    let wide = write(d, "wide.fvecs", &fvecs(&rows(2, 5, 0.0)));
    let error = load_error(
        &format!("{good},{wide}"),
        "dimension 3 but the queries have dimension 5",
    );
    assert!(matches!(error, DataError::DimensionMismatch { .. }));

    let mut with_nan = rows(4, 3, 0.0);
    with_nan[1][2] = f32::INFINITY;
    let with_nan = write(d, "inf.fvecs", &fvecs(&with_nan));
    let error = load_error(
        &format!("{good},{with_nan}"),
        "test row 1 holds a non-finite value (inf) at column 2",
    );
    assert!(matches!(
        error,
        DataError::NonFinite {
            matrix: "test",
            row: 1,
            column: 2,
            ..
        }
    ));

    let zero = write(
        d,
        "zero.fvecs",
        &fvecs(&[vec![1.0, 2.0, 3.0], vec![0.0; 3]]),
    );
    let error = load_error(
        &format!("{zero},{query};metric=angular"),
        "train row 1 is a zero vector",
    );
    assert!(matches!(error, DataError::ZeroVector { row: 1, .. }));

    let missing = d.join("missing.fvecs");
    let error = load_error(&format!("{},{query}", missing.display()), "missing.fvecs");
    assert!(matches!(error, DataError::Io { .. }));
}

#[test]
fn texmex_ground_truth_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = write(d, "base.fvecs", &fvecs(&rows(5, 2, 0.0)));
    let query = write(d, "query.fvecs", &fvecs(&rows(2, 2, 0.1)));
    let spec = |gt: &str| format!("{base},{query},{gt}");

    let good = write(d, "good.ivecs", &ivecs(&[vec![4, 0], vec![0, 1]]));
    let data = load(&spec(&good)).unwrap();
    let truth = data.ground_truth.unwrap();
    // Query 0 is nearest to id 0; the shipped row is re-sorted by exact distance.
    assert_eq!(truth.row(0).ids, &[0, 4]);
    assert!(truth.row(0).distances[0] < truth.row(0).distances[1]);

    let short = write(d, "short.ivecs", &ivecs(&[vec![0, 1]]));
    load_error(
        &spec(&short),
        "short.ivecs: holds neighbours for 1 queries but",
    );
    let negative = write(d, "negative.ivecs", &ivecs(&[vec![0, 1], vec![-1, 2]]));
    load_error(&spec(&negative), "query 1, neighbour 0: negative id -1");
    let range = write(d, "range.ivecs", &ivecs(&[vec![0, 5], vec![0, 1]]));
    load_error(
        &spec(&range),
        "query 0, neighbour 1: id 5 is out of range (there are 5 base vectors)",
    );
    let twice = write(d, "twice.ivecs", &ivecs(&[vec![0, 1], vec![2, 2]]));
    load_error(&spec(&twice), "query 1 lists neighbour id 2 twice");
}

// ----------------------------------------------------------- Fashion-MNIST

/// A gzipped IDX image file.
fn idx_gz(magic: u32, dims: [u32; 3], pixels: &[u8]) -> Vec<u8> {
    let mut raw = magic.to_be_bytes().to_vec();
    for dim in dims {
        raw.extend_from_slice(&dim.to_be_bytes());
    }
    raw.extend_from_slice(pixels);
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(&raw).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn fashion_mnist_layout_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pixels: Vec<u8> = (0..3 * 4).map(|i| (i * 20) as u8).collect();
    write(
        d,
        "train-images-idx3-ubyte.gz",
        &idx_gz(0x803, [3, 2, 2], &pixels),
    );
    write(
        d,
        "t10k-images-idx3-ubyte.gz",
        &idx_gz(0x803, [1, 2, 2], &pixels[..4]),
    );
    let spec = format!("fashion-mnist:{}", d.display());
    let data = load(&spec).unwrap();
    assert_eq!(data.name, "fashion-mnist-784-euclidean");
    assert_eq!(data.metric, Metric::L2);
    assert_eq!(data.source, spec);
    assert_eq!(
        (data.train.len(), data.test.len(), data.train.dim()),
        (3, 1, 4)
    );
    assert_eq!(data.train.row(2), &[160.0, 180.0, 200.0, 220.0]);

    let test_path = d.join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&test_path, idx_gz(0x801, [1, 2, 2], &pixels[..4])).unwrap();
    load_error(&spec, "IDX magic number is 0x00000801, expected 0x00000803");
    std::fs::write(&test_path, idx_gz(0x803, [2, 2, 2], &pixels[..4])).unwrap();
    let error = load_error(
        &spec,
        "declares 2 images of 2×2 pixels (8 bytes) but 4 bytes follow",
    );
    assert!(matches!(error, DataError::Truncated { .. }));
    let gz = idx_gz(0x803, [1, 2, 2], &pixels[..4]);
    std::fs::write(&test_path, &gz[..gz.len() - 12]).unwrap();
    load_error(&spec, "the gzip stream ends early");
    std::fs::write(&test_path, b"plain text, not gzip").unwrap();
    load_error(&spec, "not a gzip file");
    std::fs::write(&test_path, b"").unwrap();
    load_error(&spec, "is empty");
    std::fs::remove_file(&test_path).unwrap();
    let error = load_error(&spec, "install it with `scripts/setup`");
    assert!(matches!(error, DataError::FashionMnistMissing { .. }));
    assert!(error.to_string().contains("t10k-images-idx3-ubyte.gz"));
}

#[test]
fn fashion_mnist_from_debian_package() {
    let train_file = Path::new(FASHION_MNIST_DIR).join("train-images-idx3-ubyte.gz");
    if !train_file.is_file() {
        eprintln!(
            "skipping: {} is absent (install with `apt-get install dataset-fashion-mnist`)",
            train_file.display()
        );
        return;
    }
    let data = load("fashion-mnist").unwrap();
    assert_eq!(data.name, "fashion-mnist-784-euclidean");
    assert_eq!(
        (data.train.len(), data.test.len(), data.train.dim()),
        (60_000, 10_000, 784)
    );
    assert!(
        data.train
            .as_slice()
            .iter()
            .all(|&p| (0.0..=255.0).contains(&p) && p.fract() == 0.0)
    );
    assert!(data.train.row(0).iter().any(|&p| p > 0.0));
    assert!(data.ground_truth.is_none());
    // The package's content is fixed; this pins the IDX decoding.
    assert_eq!(
        data.content_hash(),
        "cc42bc2a0919f190d359fd2ba9e776d866c2d7b43c5138921b51a2f80582335c"
    );
}
