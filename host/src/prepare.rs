//! Turns variant directories into runnable pipelines on the coordinator
//! side: parse variant.yaml, check system requirements, build (or fetch
//! from the cache) every library, and compute the variant's content hash.
//! Nothing here loads variant code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use crate::compile::{BuildFailure, BuiltLibrary, Workspace};
use crate::protocol::{PipelineSpec, PythonRuntime};
use crate::python_env;
use crate::variant::{LibrarySource, PythonSpec, SlotKind, VariantSpec};

/// A variant after preparation.
pub struct Prepared {
    /// The variant's name (directory name).
    pub name: String,
    /// The directory given on the command line.
    pub dir: PathBuf,
    /// Ready to run, skipped, or broken.
    pub state: PreparedState,
}

/// Whether a prepared variant can run.
pub enum PreparedState {
    /// Every library built.
    Ready {
        /// The parsed spec.
        spec: Box<VariantSpec>,
        /// The slots, with built library paths.
        pipeline: PipelineSpec,
        /// Content hash over variant.yaml and every library it uses.
        hash: String,
    },
    /// A system requirement is missing.
    Skipped {
        /// The install hint.
        hint: String,
    },
    /// The spec is invalid or a library failed to build.
    Broken {
        /// One-line reason.
        reason: String,
        /// Compiler output or details.
        log: String,
    },
}

/// Parses, checks and builds `dirs`. `progress` receives a line per cargo
/// artifact while compiling.
pub fn prepare_variants(
    dirs: &[PathBuf],
    force_build: bool,
    mut progress: impl FnMut(&str),
) -> Result<(Vec<Prepared>, Option<Workspace>)> {
    let mut specs: Vec<(PathBuf, Result<VariantSpec, String>)> = Vec::new();
    for dir in dirs {
        let spec = VariantSpec::load(dir).map_err(|e| e.to_string());
        specs.push((dir.clone(), spec));
    }
    let sources: Vec<LibrarySource> = specs
        .iter()
        .filter_map(|(_, s)| s.as_ref().ok())
        .filter(|s| s.missing_requirement().is_none())
        .flat_map(VariantSpec::libraries)
        .collect();
    // Packages may belong to different workspaces (an evolved candidate is
    // a stand-alone package); each workspace builds its own.
    let mut workspaces: Vec<Workspace> = Vec::new();
    for source in &sources {
        if let LibrarySource::Package(dir) = source
            && !workspaces.iter().any(|ws| ws.contains(dir))
        {
            workspaces.push(Workspace::discover(dir)?);
        }
    }
    let pythons: Vec<Option<Result<PythonRuntime, String>>> = specs
        .iter()
        .map(|(_, spec)| {
            let spec = spec.as_ref().ok()?;
            let python = spec.python.as_ref()?;
            spec.missing_requirement()
                .is_none()
                .then(|| python_runtime(spec, python, &workspaces, &mut progress))
        })
        .collect();
    // A variant whose Python cannot be made is skipped: nothing to build.
    let sources: Vec<LibrarySource> = specs
        .iter()
        .zip(&pythons)
        .filter(|(_, python)| !matches!(python, Some(Err(_))))
        .filter_map(|((_, s), _)| s.as_ref().ok())
        .filter(|s| s.missing_requirement().is_none())
        .flat_map(VariantSpec::libraries)
        .collect();
    let mut built: BTreeMap<LibrarySource, Result<BuiltLibrary, BuildFailure>> = sources
        .iter()
        .filter_map(|s| match s {
            LibrarySource::File(path) => Some((s.clone(), crate::compile::prebuilt(path))),
            LibrarySource::Package(_) => None,
        })
        .collect();
    for ws in &workspaces {
        let own: Vec<LibrarySource> = sources
            .iter()
            .filter(|s| matches!(s, LibrarySource::Package(dir) if ws.contains(dir)))
            .cloned()
            .collect();
        built.extend(ws.build_all(&own, force_build, &mut progress));
    }
    let prepared = specs
        .into_iter()
        .zip(pythons)
        .map(|((dir, spec), python)| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string());
            let state = match spec {
                Err(reason) => PreparedState::Broken {
                    reason,
                    log: String::new(),
                },
                Ok(spec) => match python.transpose() {
                    Err(hint) => PreparedState::Skipped { hint },
                    Ok(python) => ready_state(spec, python, &built),
                },
            };
            Prepared { name, dir, state }
        })
        .collect();
    // The annvil workspace itself, when present, is the one reported (its
    // target directory holds the shared caches).
    let home = crate::compile::source_root();
    let main = workspaces
        .iter()
        .position(|ws| Some(ws.root()) == home.as_deref())
        .unwrap_or(0);
    Ok((
        prepared,
        (main < workspaces.len()).then(|| workspaces.swap_remove(main)),
    ))
}

/// The Python a bridged variant runs in, its environment made on first use
/// under the target directory of the workspace that builds it; the error is
/// the install hint.
fn python_runtime(
    spec: &VariantSpec,
    python: &PythonSpec,
    workspaces: &[Workspace],
    progress: &mut impl FnMut(&str),
) -> Result<PythonRuntime, String> {
    let interpreter = python_env::interpreter()?;
    let target = spec
        .libraries()
        .iter()
        .find_map(|source| match source {
            LibrarySource::Package(dir) => workspaces.iter().find(|ws| ws.contains(dir)),
            LibrarySource::File(_) => None,
        })
        .map(|ws| ws.target_dir().to_path_buf())
        .ok_or_else(|| {
            format!(
                "{}: a bridged variant is a cargo package (its library is itself)",
                spec.name
            )
        })?;
    let mut progress = |line: &str| progress(&format!("{}: {line}", spec.name));
    let environment =
        python_env::environment(python, &target.join("annvil").join("python"), &mut progress)?;
    Ok(PythonRuntime {
        environment,
        adapter: python.adapter.clone(),
        prefix: interpreter.prefix.clone(),
    })
}

fn ready_state(
    spec: VariantSpec,
    python: Option<PythonRuntime>,
    built: &BTreeMap<LibrarySource, Result<BuiltLibrary, BuildFailure>>,
) -> PreparedState {
    if let Some(req) = spec.missing_requirement() {
        return PreparedState::Skipped {
            hint: req.install_hint(),
        };
    }
    // Err holds (reason, log) of a slot whose library is unusable.
    let library = |kind: SlotKind| -> Result<&BuiltLibrary, (String, String)> {
        let source = &spec.slot(kind).library;
        match built.get(source) {
            Some(Ok(lib)) => Ok(lib),
            Some(Err(failure)) => Err((
                format!("{} slot: {}", kind.name(), failure.reason),
                failure.log.clone(),
            )),
            None => Err((
                format!(
                    "{} slot: {} was not built",
                    kind.name(),
                    source.path().display()
                ),
                String::new(),
            )),
        }
    };
    let libs = match (
        library(SlotKind::Construction),
        library(SlotKind::Search),
        library(SlotKind::Refinement),
    ) {
        (Ok(c), Ok(s), Ok(r)) => [c, s, r],
        (Err((reason, log)), _, _) | (_, Err((reason, log)), _) | (_, _, Err((reason, log))) => {
            return PreparedState::Broken { reason, log };
        }
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::fs::read(spec.dir.join(crate::variant::VARIANT_FILE)).unwrap_or_default());
    for lib in libs {
        hasher.update(lib.hash.as_bytes());
    }
    let pipeline = PipelineSpec {
        construction: libs[0].path.clone(),
        search: libs[1].path.clone(),
        refinement: libs[2].path.clone(),
        refinement_declared: spec.refinement.declared,
        search_params: spec.search.params.clone(),
        refine_params: spec.refinement.params.clone(),
        candidates: spec.candidates,
        python,
    };
    PreparedState::Ready {
        hash: hasher.finalize().to_hex()[..16].to_owned(),
        pipeline,
        spec: Box::new(spec),
    }
}

/// Expands `variants/*`-style arguments that name a directory holding
/// variant directories into those directories, and checks each exists.
pub fn variant_dirs(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for arg in args {
        if arg.join(crate::variant::VARIANT_FILE).is_file() {
            dirs.push(arg.clone());
        } else if arg.is_dir() {
            return Err(anyhow!(
                "{}: no {} here; pass variant directories (e.g. `{}/*`)",
                arg.display(),
                crate::variant::VARIANT_FILE,
                arg.display()
            ));
        } else {
            return Err(anyhow!("{}: not a directory", arg.display()));
        }
    }
    Ok(dirs)
}
