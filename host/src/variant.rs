//! `variant.yaml`: what a variant directory declares, parsed and validated.
//!
//! ```yaml
//! description: HNSW graph, SQ8 traversal, exact rerank
//! requires:                        # optional system packages
//!   - package: libhnswlib-dev      # Debian package name
//!     path: /usr/include/hnswlib/hnswlib.h   # file whose presence proves it
//!     hint: scripts/setup --peers  # optional; how to install it
//! construction:
//!   library: self                  # `self`, another variant directory, or a .so file
//!   params: {M: 16}                # fixed build parameters
//!   grid: {ef_construction: [100, 200]}  # optional: one build per combination
//! search:
//!   library: self
//!   params: {}                     # fixed search parameters (prepare)
//!   sweep: {ef: [10, 20, 40, 80]}  # knobs swept per build; the first is adaptive
//! refinement:
//!   library: self
//!   params: {}
//!   candidates: 40                 # candidates the search returns (>= k; default k)
//! python:                          # optional: slots served by a Python library
//!   requirements: [faiss-cpu==1.15.1, numpy==2.4.6]   # exact pins
//!   adapter: adapter.py            # the module annvil-python-bridge calls
//! ```
//! Every section is optional. A slot without a `library` takes the library
//! of the search slot, else of the construction slot, else of the
//! refinement slot, whichever names one first; when none does, `self`.
//! Without a refinement slot (none declared and none in the library) the
//! host keeps the first k search results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

/// The file every variant directory holds.
pub const VARIANT_FILE: &str = "variant.yaml";

/// Key/value parameters passed to a slot (YAML scalars as strings): the
/// results database's own type.
pub use annvil_results::ParamMap;

/// A problem with a variant directory or its `variant.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The directory or file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The YAML does not match the schema.
    #[error(
        "{path}: {message}\n  (see host/src/variant.rs or README.md for the variant.yaml format)"
    )]
    Invalid {
        /// The variant.yaml path.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// `variant.yaml` as written, each section typed; [`VariantSpec::load`]
/// validates it into the typed model.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    description: String,
    #[serde(default)]
    requires: Vec<Requirement>,
    construction: Option<RawConstruction>,
    search: Option<RawSearch>,
    refinement: Option<RawRefinement>,
    python: Option<RawPython>,
    /// Lineage: the parent variant, the slot changed and (optionally) what
    /// the change is.
    #[serde(default)]
    lineage: Option<Lineage>,
}

/// Fixed parameters as written: YAML scalars, checked by [`scalar`].
type RawParams = BTreeMap<String, Value>;

/// A grid or sweep as written: each key's list of scalars.
type RawAxes = BTreeMap<String, Vec<Value>>;

/// The `construction:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConstruction {
    library: Option<String>,
    #[serde(default)]
    params: RawParams,
    #[serde(default)]
    grid: RawAxes,
}

/// The `search:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    library: Option<String>,
    #[serde(default)]
    params: RawParams,
    #[serde(default)]
    sweep: RawAxes,
}

/// The `refinement:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefinement {
    library: Option<String>,
    #[serde(default)]
    params: RawParams,
    candidates: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPython {
    requirements: Vec<String>,
    adapter: PathBuf,
}

/// The Python side of a bridged variant (its slots are served by
/// annvil-python-bridge): the packages of its environment and its adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonSpec {
    /// Exact pins (`name==version`), installed into the variant's own
    /// virtual environment.
    pub requirements: Vec<String>,
    /// The adapter module (absolute path).
    pub adapter: PathBuf,
}

impl PythonSpec {
    fn from_raw(dir: &Path, raw: RawPython) -> Result<PythonSpec, String> {
        if raw.requirements.is_empty() {
            return Err("python.requirements: list the packages the adapter imports, each pinned as name==version".into());
        }
        for (i, requirement) in raw.requirements.iter().enumerate() {
            let pinned = requirement.split_once("==").is_some_and(|(name, version)| {
                !name.is_empty()
                    && !version.is_empty()
                    && !requirement.contains(char::is_whitespace)
                    && !version.contains(['=', '<', '>', '!', '~', ',', '*', ';'])
            });
            if !pinned {
                return Err(format!(
                    "python.requirements[{i}]: `{requirement}` is not an exact pin; write \
                     name==version (`pip index versions <name>` lists the versions)"
                ));
            }
        }
        let adapter = dir.join(&raw.adapter);
        if !adapter.is_file() {
            return Err(format!(
                "python.adapter: `{}` is not a file (a path relative to the variant directory)",
                raw.adapter.display()
            ));
        }
        Ok(PythonSpec {
            requirements: raw.requirements,
            adapter,
        })
    }
}

/// The keys only one section takes, and that section.
const SECTION_ONLY_KEYS: [(&str, SlotKind); 3] = [
    ("grid", SlotKind::Construction),
    ("sweep", SlotKind::Search),
    ("candidates", SlotKind::Refinement),
];

/// The first key written in a section it does not belong in, as the
/// message naming its section. Checked on the untyped YAML before the
/// typed sections are read, which would only call the key unknown.
fn misplaced_key(yaml: &Value) -> Option<String> {
    SlotKind::ALL.into_iter().find_map(|section| {
        let keys = yaml.get(section.name())?.as_mapping()?;
        SECTION_ONLY_KEYS
            .iter()
            .find(|&&(key, home)| home != section && keys.contains_key(key))
            .map(|&(key, home)| {
                format!(
                    "{}.{key}: `{key}` belongs in the {} section",
                    section.name(),
                    home.name()
                )
            })
    })
}

/// A system package a variant needs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Package name (Debian).
    pub package: String,
    /// A file whose presence proves the package is installed.
    pub path: PathBuf,
    /// How to install it.
    #[serde(default)]
    pub hint: Option<String>,
}

impl Requirement {
    /// True when the proving file exists.
    pub fn is_met(&self) -> bool {
        self.path.exists()
    }

    /// The install hint shown when the requirement is missing.
    pub fn install_hint(&self) -> String {
        match &self.hint {
            Some(h) => format!(
                "{} missing ({} not found); install with: {h}",
                self.package,
                self.path.display()
            ),
            None => format!(
                "{} missing ({} not found); install with: scripts/setup (or apt-get install {})",
                self.package,
                self.path.display(),
                self.package
            ),
        }
    }
}

/// Where a generated variant came from (`lineage:` in variant.yaml).
pub use annvil_results::Lineage;

/// Where a slot's code lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LibrarySource {
    /// A cargo package directory (a variant with a Cargo.toml) to build.
    Package(PathBuf),
    /// A prebuilt shared library.
    File(PathBuf),
}

impl LibrarySource {
    /// The directory or file, for messages.
    pub fn path(&self) -> &Path {
        match self {
            LibrarySource::Package(p) | LibrarySource::File(p) => p,
        }
    }
}

/// The three slot kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotKind {
    /// Graph construction.
    Construction,
    /// Search.
    Search,
    /// Refinement.
    Refinement,
}

impl SlotKind {
    /// All slots, in pipeline order.
    pub const ALL: [SlotKind; 3] = [
        SlotKind::Construction,
        SlotKind::Search,
        SlotKind::Refinement,
    ];

    /// Lowercase name as in variant.yaml.
    pub const fn name(self) -> &'static str {
        match self {
            SlotKind::Construction => "construction",
            SlotKind::Search => "search",
            SlotKind::Refinement => "refinement",
        }
    }
}

/// One slot as declared: its library and fixed parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSpec {
    /// Where the slot's code lives.
    pub library: LibrarySource,
    /// Fixed parameters.
    pub params: ParamMap,
    /// True when variant.yaml names this slot explicitly.
    pub declared: bool,
}

/// A parsed, validated variant directory.
#[derive(Clone, Debug)]
pub struct VariantSpec {
    /// The directory name.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// Free text from variant.yaml.
    pub description: String,
    /// System packages needed.
    pub requires: Vec<Requirement>,
    /// Construction slot.
    pub construction: SlotSpec,
    /// Build-parameter grid: one build per combination.
    pub grid: Axes,
    /// Search slot (fixed params are passed to prepare).
    pub search: SlotSpec,
    /// Swept search knobs, in declaration order; the first is adaptive.
    pub sweep: Axes,
    /// Refinement slot.
    pub refinement: SlotSpec,
    /// Candidates the search returns for refinement (None: k).
    pub candidates: Option<usize>,
    /// The Python library serving the slots, for a bridged variant.
    pub python: Option<PythonSpec>,
    /// Parent and changed slot, for generated variants.
    pub lineage: Option<Lineage>,
}

fn scalar(value: &Value, field: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{field}: expected a number, string or boolean")),
    }
}

/// Validates the raw sections of one variant.yaml into the typed model,
/// one section at a time.
struct SectionReader<'a> {
    /// The variant directory, which libraries are relative to.
    dir: &'a Path,
    /// The variant.yaml, named in every error.
    path: &'a Path,
    /// The library a slot without one takes, and the section naming it.
    default_library: Option<(String, &'static str)>,
}

impl SectionReader<'_> {
    fn invalid(&self, message: String) -> SpecError {
        SpecError::Invalid {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// The `construction:` section: its slot and its build grid.
    fn construction(&self, raw: Option<&RawConstruction>) -> Result<(SlotSpec, Axes), SpecError> {
        let empty = RawConstruction::default();
        let section = raw.unwrap_or(&empty);
        let grid = axes("construction.grid", &section.grid).map_err(|m| self.invalid(m))?;
        let slot = self.slot(
            SlotKind::Construction,
            raw.is_some(),
            &section.library,
            &section.params,
        )?;
        self.no_overlap("construction.grid", &grid, "construction.params", &slot)?;
        Ok((slot, grid))
    }

    /// The `search:` section: its slot and its swept knobs.
    fn search(&self, raw: Option<&RawSearch>) -> Result<(SlotSpec, Axes), SpecError> {
        let empty = RawSearch::default();
        let section = raw.unwrap_or(&empty);
        let sweep = axes("search.sweep", &section.sweep).map_err(|m| self.invalid(m))?;
        let slot = self.slot(
            SlotKind::Search,
            raw.is_some(),
            &section.library,
            &section.params,
        )?;
        self.no_overlap("search.sweep", &sweep, "search.params", &slot)?;
        Ok((slot, sweep))
    }

    /// The `refinement:` section: its slot and the candidates the search
    /// returns for it.
    fn refinement(
        &self,
        raw: Option<&RawRefinement>,
    ) -> Result<(SlotSpec, Option<usize>), SpecError> {
        let empty = RawRefinement::default();
        let section = raw.unwrap_or(&empty);
        if section.candidates == Some(0) {
            return Err(self.invalid("refinement.candidates: must be at least 1".into()));
        }
        let slot = self.slot(
            SlotKind::Refinement,
            raw.is_some(),
            &section.library,
            &section.params,
        )?;
        Ok((slot, section.candidates))
    }

    /// A slot's library (its own, else the default) and fixed parameters.
    fn slot(
        &self,
        kind: SlotKind,
        declared: bool,
        library: &Option<String>,
        params: &RawParams,
    ) -> Result<SlotSpec, SpecError> {
        let section = kind.name();
        // Name the field where the library was written, even when this
        // slot inherits it.
        let (library, origin) = match (library, &self.default_library) {
            (Some(l), _) => (l.as_str(), section),
            (None, Some((l, origin))) => (l.as_str(), *origin),
            (None, None) => ("self", section),
        };
        let library = resolve_library(self.dir, library)
            .map_err(|m| self.invalid(format!("{origin}.library: {m}")))?;
        let params = params
            .iter()
            .map(|(k, v)| Ok((k.clone(), scalar(v, &format!("{section}.params.{k}"))?)))
            .collect::<Result<ParamMap, String>>()
            .map_err(|m| self.invalid(m))?;
        Ok(SlotSpec {
            library,
            params,
            declared,
        })
    }

    /// Refuses a key both varied in `axes` and fixed in the slot's params.
    fn no_overlap(
        &self,
        axes_field: &str,
        axes: &Axes,
        params_field: &str,
        slot: &SlotSpec,
    ) -> Result<(), SpecError> {
        match axes.iter().find(|(k, _)| slot.params.contains_key(k)) {
            Some((key, _)) => Err(self.invalid(format!(
                "{axes_field}.{key}: also fixed in {params_field}; keep one"
            ))),
            None => Ok(()),
        }
    }
}

/// Varied parameters (a grid or a sweep): each key with its values, in
/// key order.
pub type Axes = Vec<(String, Vec<String>)>;

/// A grid or sweep as strings; each key needs at least one value.
fn axes(field: &str, raw: &RawAxes) -> Result<Axes, String> {
    raw.iter()
        .map(|(k, values)| {
            if values.is_empty() {
                return Err(format!("{field}.{k}: give at least one value"));
            }
            let values = values
                .iter()
                .map(|v| scalar(v, &format!("{field}.{k}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((k.clone(), values))
        })
        .collect()
}

impl RawSpec {
    /// Parses `path`; an empty file is an empty spec.
    fn read(path: &Path) -> Result<RawSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message| SpecError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let untyped = serde_yaml_ng::from_str::<Value>(&text).unwrap_or(Value::Null);
        if let Some(message) = misplaced_key(&untyped) {
            return Err(invalid(message));
        }
        Ok(serde_yaml_ng::from_str::<Option<RawSpec>>(&text)
            .map_err(|e| invalid(e.to_string()))?
            .unwrap_or_default())
    }

    /// The library of the search section, else of the construction
    /// section, else of the refinement section, with the section naming it.
    fn default_library(&self) -> Option<(String, &'static str)> {
        let search = self.search.as_ref().and_then(|s| s.library.as_ref());
        let construction = self.construction.as_ref().and_then(|s| s.library.as_ref());
        let refinement = self.refinement.as_ref().and_then(|s| s.library.as_ref());
        [
            (search, "search"),
            (construction, "construction"),
            (refinement, "refinement"),
        ]
        .into_iter()
        .find_map(|(library, section)| Some((library?.clone(), section)))
    }
}

impl VariantSpec {
    /// Reads and validates `dir/variant.yaml`.
    pub fn load(dir: &Path) -> Result<VariantSpec, SpecError> {
        let dir = dir.canonicalize().map_err(|source| SpecError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(VARIANT_FILE);
        let raw = RawSpec::read(&path)?;
        let reader = SectionReader {
            dir: &dir,
            path: &path,
            default_library: raw.default_library(),
        };
        let (construction, grid) = reader.construction(raw.construction.as_ref())?;
        let (search, sweep) = reader.search(raw.search.as_ref())?;
        let (refinement, candidates) = reader.refinement(raw.refinement.as_ref())?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let python = raw
            .python
            .map(|python| PythonSpec::from_raw(&dir, python))
            .transpose()
            .map_err(|message| SpecError::Invalid {
                path: path.clone(),
                message,
            })?;
        Ok(VariantSpec {
            name,
            python,
            description: raw.description,
            requires: raw.requires,
            construction,
            grid,
            search,
            sweep,
            refinement,
            candidates,
            lineage: raw.lineage,
            dir,
        })
    }

    /// The slot spec of `kind`.
    pub fn slot(&self, kind: SlotKind) -> &SlotSpec {
        match kind {
            SlotKind::Construction => &self.construction,
            SlotKind::Search => &self.search,
            SlotKind::Refinement => &self.refinement,
        }
    }

    /// Every build-parameter set: the fixed params merged with each
    /// combination of the grid.
    pub fn build_sets(&self) -> Vec<ParamMap> {
        cartesian(&self.construction.params, &self.grid)
    }

    /// Every combination of the swept knobs (fixed search params are not
    /// included: they go to prepare).
    pub fn sweep_points(&self) -> Vec<ParamMap> {
        cartesian(&ParamMap::new(), &self.sweep)
    }

    /// Distinct libraries this variant needs, in slot order.
    pub fn libraries(&self) -> Vec<LibrarySource> {
        let mut out: Vec<LibrarySource> = Vec::new();
        for kind in SlotKind::ALL {
            let lib = &self.slot(kind).library;
            if !out.contains(lib) {
                out.push(lib.clone());
            }
        }
        out
    }

    /// The first missing requirement, if any.
    pub fn missing_requirement(&self) -> Option<&Requirement> {
        self.requires.iter().find(|r| !r.is_met())
    }

    /// One-line summary of the declared slots for messages.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for kind in SlotKind::ALL {
            let _ = write!(
                s,
                "{}={} ",
                kind.name(),
                self.slot(kind).library.path().display()
            );
        }
        s.trim_end().to_owned()
    }
}

fn cartesian(fixed: &ParamMap, axes: &[(String, Vec<String>)]) -> Vec<ParamMap> {
    let mut sets = vec![fixed.clone()];
    for (key, values) in axes {
        sets = sets
            .into_iter()
            .flat_map(|set| {
                values.iter().map(move |v| {
                    let mut set = set.clone();
                    set.insert(key.clone(), v.clone());
                    set
                })
            })
            .collect();
    }
    sets
}

/// variant.yaml as written by [`VariantSpec::to_yaml`]: every slot explicit.
#[derive(Serialize)]
struct YamlOut<'a> {
    description: &'a str,
    #[serde(skip_serializing_if = "<[Requirement]>::is_empty")]
    requires: &'a [Requirement],
    construction: YamlSlot,
    search: YamlSlot,
    #[serde(skip_serializing_if = "Option::is_none")]
    refinement: Option<YamlSlot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<YamlPython<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lineage: Option<&'a Lineage>,
}

#[derive(Serialize)]
struct YamlPython<'a> {
    requirements: &'a [String],
    adapter: PathBuf,
}

#[derive(Serialize)]
struct YamlSlot {
    library: String,
    #[serde(skip_serializing_if = "ParamMap::is_empty")]
    params: ParamMap,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    grid: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sweep: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates: Option<usize>,
}

/// `to` as a path relative to the directory `from` (both absolute).
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    out
}

impl VariantSpec {
    /// This spec as the variant.yaml of a variant living in `dir` (an
    /// absolute path): every slot written out explicitly, libraries as
    /// paths relative to `dir` (`self` when a library is `dir` itself).
    /// Loading the result gives the same slots, grid, sweep and
    /// candidates.
    pub fn to_yaml(&self, dir: &Path) -> String {
        let library = |kind: SlotKind| {
            let path = self.slot(kind).library.path();
            if path == dir {
                "self".to_owned()
            } else {
                relative_path(dir, path).display().to_string()
            }
        };
        let slot = |kind: SlotKind| YamlSlot {
            library: library(kind),
            params: self.slot(kind).params.clone(),
            grid: match kind {
                SlotKind::Construction => self.grid.iter().cloned().collect(),
                _ => BTreeMap::new(),
            },
            sweep: match kind {
                SlotKind::Search => self.sweep.iter().cloned().collect(),
                _ => BTreeMap::new(),
            },
            candidates: match kind {
                SlotKind::Refinement => self.candidates,
                _ => None,
            },
        };
        let out = YamlOut {
            description: &self.description,
            requires: &self.requires,
            construction: slot(SlotKind::Construction),
            search: slot(SlotKind::Search),
            // An undeclared refinement stays undeclared: the host then keeps
            // the search's first k results when the library has no refiner.
            refinement: self.refinement.declared.then(|| slot(SlotKind::Refinement)),
            python: self.python.as_ref().map(|p| YamlPython {
                requirements: &p.requirements,
                adapter: relative_path(dir, &p.adapter),
            }),
            lineage: self.lineage.as_ref(),
        };
        serde_yaml_ng::to_string(&out).expect("a variant spec serialises")
    }
}

fn resolve_library(dir: &Path, library: &str) -> Result<LibrarySource, String> {
    let path = if library == "self" {
        dir.to_path_buf()
    } else {
        dir.join(library)
    };
    let path = path
        .canonicalize()
        .map_err(|e| format!("`{library}` ({}): {e}", path.display()))?;
    if path.is_file() {
        return Ok(LibrarySource::File(path));
    }
    if path.join("Cargo.toml").is_file() {
        return Ok(LibrarySource::Package(path));
    }
    Err(format!(
        "`{library}` ({}) is neither a shared library nor a directory with a Cargo.toml",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_yaml_round_trips_from_another_directory() {
        let parent = write_variant(
            "construction:\n  params: {M: 16}\n  grid: {efc: [100, 200]}\n\
             search:\n  params: {traversal: sq8}\n  sweep: {ef: [10, 20]}\n\
             refinement:\n  candidates: 40\n",
        );
        let spec = VariantSpec::load(parent.path()).unwrap();
        let child = tempfile::tempdir().unwrap();
        let mut derived = spec.clone();
        derived.lineage = Some(Lineage {
            parent: spec.name.clone(),
            slot: "search".into(),
            change: None,
        });
        let child_dir = child.path().canonicalize().unwrap();
        std::fs::write(child_dir.join(VARIANT_FILE), derived.to_yaml(&child_dir)).unwrap();
        let again = VariantSpec::load(&child_dir).unwrap();
        assert_eq!(again.construction, spec.construction);
        assert_eq!(again.search, spec.search);
        assert_eq!(
            (again.grid, again.sweep, again.candidates),
            (spec.grid, spec.sweep, spec.candidates)
        );
        assert_eq!(again.lineage, derived.lineage);
        assert_eq!(
            relative_path(Path::new("/a/b/c"), Path::new("/a/d")),
            PathBuf::from("../../d")
        );
    }

    fn write_variant(yaml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::write(dir.path().join(VARIANT_FILE), yaml).unwrap();
        dir
    }

    #[test]
    fn parses_grid_sweep_and_defaults() {
        let dir = write_variant(
            "construction:\n  params: {M: 16}\n  grid: {efc: [100, 200]}\n\
             search:\n  sweep: {ef: [10, 20]}\nrefinement:\n  candidates: 40\n",
        );
        let spec = VariantSpec::load(dir.path()).unwrap();
        assert_eq!(spec.build_sets().len(), 2);
        assert_eq!(spec.build_sets()[1]["efc"], "200");
        assert_eq!(spec.build_sets()[1]["M"], "16");
        assert_eq!(spec.sweep_points().len(), 2);
        assert_eq!(spec.candidates, Some(40));
        assert_eq!(spec.libraries().len(), 1);
        assert!(!spec.refinement.params.contains_key("candidates"));
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let dir = write_variant("search:\n  sweeps: {ef: [1]}\n");
        let err = VariantSpec::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("variant.yaml"), "{err}");
        assert!(err.contains("sweeps"), "{err}");

        let dir = write_variant("search:\n  params: {ef: [1, 2]}\n");
        let err = VariantSpec::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("search.params.ef"), "{err}");

        let dir = write_variant("construction:\n  sweep: {ef: [1]}\n");
        let err = VariantSpec::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("construction.sweep") && err.contains("search section"),
            "{err}"
        );

        let dir = write_variant("search:\n  library: ../does-not-exist\n");
        let err = VariantSpec::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("search.library"), "{err}");
    }
}
