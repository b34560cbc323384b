//! Dataset specs: what to load, as given on the command line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use annvil_abi::Metric;

use annvil_dataset::{DataError, Dataset, Result, SyntheticSpec};

use crate::{fashion, hdf5, texmex};

/// Where the Debian package `dataset-fashion-mnist` installs its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// What to load, parsed from a command-line string.
///
/// Grammar (keys and keywords are case-sensitive, file extensions are not):
///
/// ```text
/// spec      = synthetic | fashion | hdf5 | texmex
/// synthetic = "synthetic" [ ":" key "=" value { "," key "=" value } ]
///               key = n | queries | dim | clusters | metric | seed
///               (each optional and at most once; counts >= 1)
/// fashion   = "fashion-mnist" [ ":" DIR ]
///               DIR defaults to /usr/share/datasets/fashion-mnist
/// hdf5      = PATH ending in ".hdf5" or ".h5"
///               (ann-benchmarks layout; the metric comes from the file)
/// texmex    = BASE "," QUERIES [ "," GROUND_TRUTH ] [ ";metric=" METRIC ]
///               BASE and QUERIES end in ".fvecs" or ".bvecs",
///               GROUND_TRUTH in ".ivecs"; METRIC defaults to euclidean
/// METRIC    = euclidean | l2 | angular | cosine | ip | dot | inner_product
/// ```
///
/// Examples: `synthetic` (the default: see [`SyntheticSpec::default`]),
/// `synthetic:n=5000,dim=32,metric=angular`, `fashion-mnist`,
/// `data/glove-25-angular.hdf5`,
/// `sift_base.fvecs,sift_query.fvecs,sift_groundtruth.ivecs`,
/// `a.fvecs,q.fvecs;metric=ip`. File paths cannot contain `,` or `;`.
/// [`Display`](fmt::Display) prints the canonical form, which parses back
/// to the same spec and becomes [`Dataset::source`].
#[derive(Clone, Debug, PartialEq)]
pub enum DatasetSpec {
    /// The built-in deterministic generator.
    Synthetic(SyntheticSpec),
    /// Fashion-MNIST from the IDX files of Debian's `dataset-fashion-mnist`:
    /// 60,000 base and 10,000 query images of 784 pixels, euclidean, exactly
    /// ann-benchmarks' `fashion-mnist-784-euclidean`.
    FashionMnist {
        /// The directory holding `train-images-idx3-ubyte.gz` and
        /// `t10k-images-idx3-ubyte.gz`.
        dir: PathBuf,
    },
    /// An ann-benchmarks HDF5 file.
    Hdf5 {
        /// The file.
        path: PathBuf,
    },
    /// TEXMEX `.fvecs`/`.bvecs` vectors with optional `.ivecs` neighbours.
    Texmex(TexmexSpec),
}

/// The files of a TEXMEX dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct TexmexSpec {
    /// Base vectors, `.fvecs` or `.bvecs`.
    pub base: PathBuf,
    /// Query vectors, `.fvecs` or `.bvecs`.
    pub queries: PathBuf,
    /// True neighbour ids per query, `.ivecs`.
    pub ground_truth: Option<PathBuf>,
    /// The metric (the format does not record one).
    pub metric: Metric,
}

impl Default for DatasetSpec {
    fn default() -> DatasetSpec {
        DatasetSpec::Synthetic(SyntheticSpec::default())
    }
}

impl DatasetSpec {
    /// Loads, validates and prepares the dataset (see [`Dataset::new`]).
    pub fn load(&self) -> Result<Dataset> {
        let source = self.to_string();
        match self {
            DatasetSpec::Synthetic(spec) => spec.generate(),
            DatasetSpec::FashionMnist { dir } => fashion::load(dir, source),
            DatasetSpec::Hdf5 { path } => hdf5::load(path, source),
            DatasetSpec::Texmex(spec) => texmex::load(spec, source),
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Synthetic(spec) => spec.fmt(f),
            DatasetSpec::FashionMnist { dir } if dir == Path::new(FASHION_MNIST_DIR) => {
                f.write_str("fashion-mnist")
            }
            DatasetSpec::FashionMnist { dir } => write!(f, "fashion-mnist:{}", dir.display()),
            DatasetSpec::Hdf5 { path } => write!(f, "{}", path.display()),
            DatasetSpec::Texmex(spec) => {
                write!(f, "{},{}", spec.base.display(), spec.queries.display())?;
                if let Some(path) = &spec.ground_truth {
                    write!(f, ",{}", path.display())?;
                }
                write!(f, ";metric={}", spec.metric)
            }
        }
    }
}

/// What the grammar allows, for error messages.
const GRAMMAR: &str = "expected `synthetic[:key=value,...]` (keys n, queries, dim, clusters, \
     metric, seed), `fashion-mnist[:DIR]`, `FILE.hdf5`, or \
     `BASE.fvecs,QUERIES.fvecs[,GT.ivecs][;metric=METRIC]`";

impl FromStr for DatasetSpec {
    type Err = DataError;

    fn from_str(text: &str) -> Result<DatasetSpec> {
        let fail = |problem: String| DataError::Spec {
            spec: text.to_string(),
            problem,
        };
        let text = text.trim();
        if text == "synthetic" {
            return Ok(DatasetSpec::default());
        }
        if let Some(keys) = text.strip_prefix("synthetic:") {
            return SyntheticSpec::parse_keys(keys)
                .map(DatasetSpec::Synthetic)
                .map_err(fail);
        }
        if text == "fashion-mnist" {
            return Ok(DatasetSpec::FashionMnist {
                dir: PathBuf::from(FASHION_MNIST_DIR),
            });
        }
        if let Some(dir) = text.strip_prefix("fashion-mnist:") {
            if dir.is_empty() {
                return Err(fail(
                    "`fashion-mnist:` needs a directory after the colon".into(),
                ));
            }
            return Ok(DatasetSpec::FashionMnist { dir: dir.into() });
        }
        let (files, options) = match text.split_once(';') {
            Some((files, options)) => (files, Some(options)),
            None => (text, None),
        };
        let files: Vec<&str> = files.split(',').map(str::trim).collect();
        if files.len() > 1 || has_extension(files[0], &["fvecs", "bvecs"]) {
            return parse_texmex(&files, options)
                .map(DatasetSpec::Texmex)
                .map_err(fail);
        }
        if options.is_some() {
            return Err(fail(format!(
                "`;` options only follow TEXMEX files; {GRAMMAR}"
            )));
        }
        if has_extension(text, &["hdf5", "h5"]) {
            return Ok(DatasetSpec::Hdf5 { path: text.into() });
        }
        Err(fail(format!("unrecognised dataset; {GRAMMAR}")))
    }
}

/// True when `path` ends in `.EXT` for one of `extensions`, in any case.
fn has_extension(path: &str, extensions: &[&str]) -> bool {
    Path::new(path)
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| extensions.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// Parses the files and options of a TEXMEX spec.
fn parse_texmex(files: &[&str], options: Option<&str>) -> std::result::Result<TexmexSpec, String> {
    let (base, queries, ground_truth) = match files {
        [base, queries] => (base, queries, None),
        [base, queries, truth] => (base, queries, Some(truth)),
        _ => {
            return Err(format!(
                "TEXMEX datasets take 2 or 3 comma-separated files, not {}; {GRAMMAR}",
                files.len()
            ));
        }
    };
    for path in [base, queries] {
        if !has_extension(path, &["fvecs", "bvecs"]) {
            return Err(format!(
                "`{path}` should end in .fvecs or .bvecs; {GRAMMAR}"
            ));
        }
    }
    if let Some(path) = ground_truth
        && !has_extension(path, &["ivecs"])
    {
        return Err(format!("`{path}` should end in .ivecs; {GRAMMAR}"));
    }
    let mut metric = Metric::L2;
    if let Some(options) = options {
        for option in options.split(';').map(str::trim) {
            match option.split_once('=') {
                Some(("metric", value)) => metric = value.trim().parse()?,
                _ => {
                    return Err(format!(
                        "unknown option `{option}` (expected metric=METRIC)"
                    ));
                }
            }
        }
    }
    Ok(TexmexSpec {
        base: base.into(),
        queries: queries.into(),
        ground_truth: ground_truth.map(PathBuf::from),
        metric,
    })
}
