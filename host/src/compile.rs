//! Compiles variant libraries with cargo, behind a cache keyed by content.
//!
//! A library's key is a blake3 hash over every source file of its package
//! and of every workspace package it depends on through path dependencies
//! (modules/, abi/), plus the workspace manifest, `Cargo.lock`, the rustc
//! version, the CPU model and flags (peers are compiled with
//! `-march=native`, so a library built on one CPU may not run on another)
//! and the size and modification time of the system files its
//! variant.yaml `requires` (a peer's headers). A cached copy of the built `.so` lives in
//! `target/annvil/libs/<key>/`; when it exists, cargo is not run at all.
//! C and C++ variants are cargo packages too (a Rust shim whose build.rs runs
//! `cc`), so one mechanism builds everything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::variant::{LibrarySource, VariantSpec};

/// A library ready to load.
#[derive(Clone, Debug)]
pub struct BuiltLibrary {
    /// The cached shared library file.
    pub path: PathBuf,
    /// Content hash of everything it was built from.
    pub hash: String,
}

/// Why a library could not be built.
#[derive(Clone, Debug)]
pub struct BuildFailure {
    /// What failed, in one line.
    pub reason: String,
    /// Compiler output.
    pub log: String,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<MetaPackage>,
    workspace_root: PathBuf,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct MetaPackage {
    name: String,
    id: String,
    manifest_path: PathBuf,
    dependencies: Vec<MetaDependency>,
}

#[derive(Deserialize)]
struct MetaDependency {
    path: Option<PathBuf>,
    /// `None` for a normal dependency, else `"dev"` or `"build"`.
    kind: Option<String>,
}

/// The cargo workspace the variants belong to, and the build cache.
pub struct Workspace {
    meta: Metadata,
    rustc_version: String,
    /// CPU model and flags: libraries compiled with `-march=native` are
    /// only valid on the CPU that built them.
    cpu_identity: String,
    cargo: PathBuf,
    /// Passed to cargo as `--target-dir` (stand-alone packages only).
    target_override: Option<PathBuf>,
}

/// The CPU model and flags, as the results database records them.
fn cpu_identity() -> String {
    let env = annvil_results::Environment::detect("", "", None);
    format!("{}\n{}", env.cpu_model, env.cpu_flags.join(" "))
}

/// The annvil checkout this host was built from, when it still exists:
/// generated variants depend on its crates by path.
pub fn source_root() -> Option<PathBuf> {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .ok()
        .filter(|root| root.join("abi/include/annvil.h").is_file())
}

fn cargo_binary() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

impl Workspace {
    /// Reads the workspace that contains `package_dir`.
    pub fn discover(package_dir: &Path) -> Result<Workspace> {
        let cargo = cargo_binary();
        let output = Command::new(&cargo)
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(package_dir.join("Cargo.toml"))
            .output()
            .with_context(|| {
                format!(
                    "running `{} metadata` (is cargo installed?)",
                    cargo.display()
                )
            })?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed for {}:\n{}",
                package_dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut meta: Metadata =
            serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
        // A stand-alone package (an evolved candidate outside the annvil
        // workspace) builds with annvil's Cargo.lock and in annvil's target
        // directory, so the crates it shares with annvil resolve to the same
        // versions, offline, and compile once for all candidates.
        let mut target_override = None;
        if let Some(home) = source_root()
            && meta.workspace_root != home
        {
            let lock = meta.workspace_root.join("Cargo.lock");
            if !lock.exists() {
                std::fs::copy(home.join("Cargo.lock"), &lock).with_context(|| {
                    format!("copying annvil's Cargo.lock to {}", lock.display())
                })?;
            }
            if std::env::var_os("CARGO_TARGET_DIR").is_none() {
                let shared = home.join("target").join("annvil").join("standalone");
                meta.target_directory = shared.clone();
                target_override = Some(shared);
            }
        }
        let rustc = Command::new("rustc")
            .arg("-vV")
            .output()
            .context("running rustc -vV")?;
        Ok(Workspace {
            meta,
            rustc_version: String::from_utf8_lossy(&rustc.stdout).into_owned(),
            cpu_identity: cpu_identity(),
            cargo,
            target_override,
        })
    }

    /// True when `dir` holds one of this workspace's packages.
    pub fn contains(&self, dir: &Path) -> bool {
        self.package_at(dir).is_ok()
    }

    /// The workspace root directory.
    pub fn root(&self) -> &Path {
        &self.meta.workspace_root
    }

    /// cargo's target directory (where annvil keeps its caches too).
    pub fn target_dir(&self) -> &Path {
        &self.meta.target_directory
    }

    /// The rustc version line, for the environment record.
    pub fn rustc_version(&self) -> &str {
        self.rustc_version.lines().next().unwrap_or("")
    }

    fn package_at(&self, dir: &Path) -> Result<&MetaPackage> {
        self.meta
            .packages
            .iter()
            .find(|p| p.manifest_path.parent() == Some(dir))
            .ok_or_else(|| {
                anyhow!(
                    "{} is not a member of the cargo workspace at {}; variant packages must live \
                     under variants/ (or be listed in the root Cargo.toml's members)",
                    dir.display(),
                    self.root().display()
                )
            })
    }

    /// Directories of the package at `package_dir` and of every workspace
    /// package it reaches through path dependencies: what its library is
    /// built from.
    pub fn source_dirs_of(&self, package_dir: &Path) -> Result<BTreeSet<PathBuf>> {
        Ok(self.source_dirs(self.package_at(package_dir)?))
    }

    /// Directories of `package` and of every workspace package it reaches
    /// through path dependencies.
    fn source_dirs(&self, package: &MetaPackage) -> BTreeSet<PathBuf> {
        let mut dirs = BTreeSet::new();
        let mut stack = vec![package];
        while let Some(p) = stack.pop() {
            let Some(dir) = p.manifest_path.parent() else {
                continue;
            };
            if !dirs.insert(dir.to_path_buf()) {
                continue;
            }
            // Dev-dependencies never reach the built library.
            let built_from = p
                .dependencies
                .iter()
                .filter(|d| d.kind.as_deref() != Some("dev"));
            for dep in built_from.filter_map(|d| d.path.as_deref()) {
                if let Ok(dep_pkg) = self.package_at(dep) {
                    stack.push(dep_pkg);
                }
            }
        }
        dirs
    }

    /// The content hash of a package and everything it is built from,
    /// including the identity (size, modification time) of the system files
    /// its variant.yaml `requires`, so upgrading a peer's package rebuilds it.
    pub fn content_hash(&self, package_dir: &Path) -> Result<String> {
        let package = self.package_at(package_dir)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.rustc_version.as_bytes());
        hasher.update(self.cpu_identity.as_bytes());
        for file in ["Cargo.toml", "Cargo.lock"] {
            let path = self.root().join(file);
            hasher.update(&std::fs::read(&path).unwrap_or_default());
        }
        for dir in self.source_dirs(package) {
            hash_tree(&mut hasher, &dir, &dir)?;
        }
        let spec = VariantSpec::load(package_dir).ok();
        if spec.as_ref().is_some_and(|s| s.python.is_some()) {
            // Compiled with the bridge's `python` feature against this
            // interpreter.
            let python = crate::python_env::interpreter()
                .map_err(|e| anyhow!("{}: {e}", package_dir.display()))?;
            hasher.update(b"python feature\n");
            hasher.update(python.executable.as_os_str().as_encoded_bytes());
            hasher.update(python.version.as_bytes());
        }
        let requires = spec.map(|s| s.requires).unwrap_or_default();
        for requirement in requires {
            hasher.update(requirement.path.to_string_lossy().as_bytes());
            if let Ok(meta) = std::fs::metadata(&requirement.path) {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                hasher.update(&meta.len().to_le_bytes());
                hasher.update(&modified.map_or(0, |d| d.as_nanos()).to_le_bytes());
            }
        }
        Ok(hasher.finalize().to_hex()[..16].to_owned())
    }

    fn cache_dir(&self, hash: &str) -> PathBuf {
        self.target_dir().join("annvil").join("libs").join(hash)
    }

    /// Builds (or finds in the cache) every library in `sources`. Prebuilt
    /// `.so` files are hashed and used as they are. `progress` is called
    /// with a line of cargo output while cargo runs.
    pub fn build_all(
        &self,
        sources: &[LibrarySource],
        force: bool,
        mut progress: impl FnMut(&str),
    ) -> BTreeMap<LibrarySource, Result<BuiltLibrary, BuildFailure>> {
        let mut results = BTreeMap::new();
        let mut to_build: Vec<(LibrarySource, String, String)> = Vec::new();
        for source in sources {
            match source {
                LibrarySource::File(path) => {
                    results.insert(source.clone(), prebuilt(path));
                }
                LibrarySource::Package(dir) => {
                    let prepared = self
                        .package_at(dir)
                        .and_then(|p| Ok((p.name.clone(), self.content_hash(dir)?)));
                    match prepared {
                        Ok((name, hash)) => {
                            let cached = self.cached_library(&hash);
                            match cached {
                                Some(path) if !force => {
                                    results.insert(source.clone(), Ok(BuiltLibrary { path, hash }));
                                }
                                _ => to_build.push((source.clone(), name, hash)),
                            }
                        }
                        Err(e) => {
                            results.insert(
                                source.clone(),
                                Err(BuildFailure {
                                    reason: format!("{e:#}"),
                                    log: String::new(),
                                }),
                            );
                        }
                    }
                }
            }
        }
        if !to_build.is_empty() {
            let names: Vec<&str> = to_build.iter().map(|(_, n, _)| n.as_str()).collect();
            let bridged: Vec<&str> = to_build
                .iter()
                .filter(|(source, _, _)| {
                    VariantSpec::load(source.path()).is_ok_and(|s| s.python.is_some())
                })
                .map(|(_, n, _)| n.as_str())
                .collect();
            let outcome = self.run_cargo(&names, &bridged, &mut progress);
            for (source, name, hash) in to_build {
                let built = match outcome.artifacts.get(&name) {
                    Some(artifact) => {
                        self.store_in_cache(artifact, &hash)
                            .map_err(|e| BuildFailure {
                                reason: format!("caching the built library: {e:#}"),
                                log: String::new(),
                            })
                    }
                    None => Err(BuildFailure {
                        reason: format!("cargo could not build package `{name}`"),
                        log: outcome.failure_log(&name),
                    }),
                };
                results.insert(source, built);
            }
        }
        results
    }

    fn cached_library(&self, hash: &str) -> Option<PathBuf> {
        let dir = self.cache_dir(hash);
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "so" || e == "dylib"))
    }

    fn store_in_cache(&self, artifact: &Path, hash: &str) -> Result<BuiltLibrary> {
        let dir = self.cache_dir(hash);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file_name = artifact.file_name().context("artifact has no file name")?;
        // Whole or not at all: a killed host never leaves a truncated
        // library, and hosts sharing a target directory may cache the same
        // library at once.
        let path = dir.join(file_name);
        annvil_data::write_atomically(&path, |out| {
            let mut library = std::fs::File::open(artifact)?;
            out.get_ref()
                .set_permissions(library.metadata()?.permissions())?;
            std::io::copy(&mut library, out).map(drop)
        })
        .with_context(|| format!("copying {} to {}", artifact.display(), path.display()))?;
        Ok(BuiltLibrary {
            path,
            hash: hash.to_owned(),
        })
    }

    /// Builds `packages`; those in `bridged` get their `python` feature
    /// (annvil-python-bridge embedding CPython), compiled against
    /// [`crate::python_env::interpreter`].
    fn run_cargo(
        &self,
        packages: &[&str],
        bridged: &[&str],
        progress: &mut impl FnMut(&str),
    ) -> CargoOutcome {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(self.root())
            .args([
                "build",
                "--release",
                "--keep-going",
                "--message-format=json-render-diagnostics",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.target_override {
            cmd.arg("--target-dir").arg(dir);
        }
        for p in packages {
            cmd.args(["-p", p]);
        }
        for p in bridged {
            cmd.arg("--features").arg(format!("{p}/python"));
        }
        if let (false, Ok(python)) = (bridged.is_empty(), crate::python_env::interpreter()) {
            cmd.env("PYO3_PYTHON", &python.executable);
        }
        let mut outcome = CargoOutcome::default();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                outcome.general_log = format!("cannot run cargo: {e}");
                return outcome;
            }
        };
        let stderr = child.stderr.take().expect("piped");
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let ids: BTreeMap<&str, &str> = self
            .meta
            .packages
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        for line in BufReader::new(child.stdout.take().expect("piped"))
            .lines()
            .map_while(Result::ok)
        {
            let Ok(message) = serde_json::from_str::<CargoMessage>(&line) else {
                continue;
            };
            let Some(name) = message
                .package_id
                .as_deref()
                .and_then(|id| ids.get(id))
                .copied()
            else {
                continue;
            };
            match message.reason.as_str() {
                "compiler-artifact" => {
                    progress(name);
                    let is_cdylib = message
                        .target
                        .as_ref()
                        .is_some_and(|t| t.kind.iter().any(|k| k == "cdylib"));
                    if is_cdylib
                        && packages.contains(&name)
                        && let Some(so) = message
                            .filenames
                            .iter()
                            .find(|f| f.extension().is_some_and(|e| e == "so" || e == "dylib"))
                    {
                        outcome.artifacts.insert(name.to_owned(), so.clone());
                    }
                }
                "compiler-message" => {
                    if let Some(rendered) = message.message.and_then(|m| m.rendered) {
                        outcome
                            .logs
                            .entry(name.to_owned())
                            .or_default()
                            .push_str(&rendered);
                    }
                }
                _ => {}
            }
        }
        let _ = child.wait();
        outcome.general_log = stderr_reader.join().unwrap_or_default();
        outcome
    }
}

#[derive(Default)]
struct CargoOutcome {
    artifacts: BTreeMap<String, PathBuf>,
    logs: BTreeMap<String, String>,
    general_log: String,
}

impl CargoOutcome {
    /// Why `package` did not build: its own diagnostics, else those of the
    /// workspace packages it may depend on, then cargo's own output.
    fn failure_log(&self, package: &str) -> String {
        if let Some(own) = self.logs.get(package) {
            return own.clone();
        }
        let mut log: String = self
            .logs
            .iter()
            .map(|(name, text)| format!("[{name}]\n{text}"))
            .collect();
        log.push_str(&self.general_log);
        log
    }
}

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    package_id: Option<String>,
    target: Option<CargoTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    message: Option<CargoDiagnostic>,
}

#[derive(Deserialize)]
struct CargoTarget {
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct CargoDiagnostic {
    rendered: Option<String>,
}

/// A prebuilt shared library, used as it is and hashed by content.
pub fn prebuilt(path: &Path) -> Result<BuiltLibrary, BuildFailure> {
    std::fs::read(path)
        .map(|bytes| BuiltLibrary {
            path: path.to_path_buf(),
            hash: blake3::hash(&bytes).to_hex()[..16].to_owned(),
        })
        .map_err(|e| BuildFailure {
            reason: format!("cannot read {}: {e}", path.display()),
            log: String::new(),
        })
}

/// Hashes every file under `dir` (sorted, skipping build output and hidden
/// entries) with its path relative to `root`.
fn hash_tree(hasher: &mut blake3::Hasher, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            hash_tree(hasher, root, &path)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update(
                &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    Ok(())
}
