//! The Python side of bridged variants, on the coordinator: finding an
//! interpreter the bridge can embed, and making each variant's virtual
//! environment (its exact pins, under `target/annvil/python/`) on first
//! use. Nothing here runs variant code: pip installs the pinned packages,
//! and the adapter is first imported inside the sandboxed worker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::variant::PythonSpec;

/// How to get a usable Python, shown when there is none.
pub const INSTALL_HINT: &str = "scripts/setup (Debian: apt-get install python3-dev python3-venv)";

/// An interpreter the bridge can embed: CPython built as a shared library,
/// with `venv`.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// The interpreter's executable, symlinks resolved.
    pub executable: PathBuf,
    /// `major.minor.micro`.
    pub version: String,
    /// `sys.base_prefix`: where its standard library lives.
    pub prefix: PathBuf,
}

/// The interpreter for bridged variants, probed once: `$ANNVIL_PYTHON`
/// when set (and then only it), else `/usr/bin/python3`, else `python3` on
/// the PATH; the first that has a shared libpython and `venv`. The error
/// says what was missing and how to install it.
pub fn interpreter() -> Result<&'static Interpreter, String> {
    static FOUND: OnceLock<Result<Interpreter, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let candidates: Vec<PathBuf> = match std::env::var_os("ANNVIL_PYTHON") {
                Some(chosen) => vec![PathBuf::from(chosen)],
                None => vec![PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")],
            };
            let mut reasons = Vec::new();
            for candidate in candidates {
                match probe(&candidate) {
                    Ok(found) => return Ok(found),
                    Err(reason) => reasons.push(format!("{}: {reason}", candidate.display())),
                }
            }
            Err(format!(
                "no Python to embed ({}); install with: {INSTALL_HINT}",
                reasons.join("; ")
            ))
        })
        .as_ref()
        .map_err(Clone::clone)
}

const PROBE: &str = "\
import os, sys, sysconfig, venv, ensurepip
shared = sysconfig.get_config_var('Py_ENABLE_SHARED')
library = os.path.join(sysconfig.get_config_var('LIBDIR') or '', sysconfig.get_config_var('LDLIBRARY') or '')
print(sys.version.split()[0]); print(os.path.realpath(sys.executable)); print(sys.base_prefix)
print('shared' if shared and os.path.exists(library) else 'static')
";

fn probe(candidate: &Path) -> Result<Interpreter, String> {
    let output = Command::new(candidate)
        .args(["-I", "-c", PROBE])
        .output()
        .map_err(|e| format!("cannot run it ({e})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        return Err(format!("lacks venv/ensurepip ({last})"));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let [version, executable, prefix, linkage] = lines[..] else {
        return Err(format!("unexpected probe output {stdout:?}"));
    };
    if linkage != "shared" {
        return Err("built without a shared libpython (python3-dev provides it)".into());
    }
    Ok(Interpreter {
        executable: PathBuf::from(executable),
        version: version.to_owned(),
        prefix: PathBuf::from(prefix),
    })
}

/// The variant's environment under `root`, made on first use: a venv of
/// [`interpreter`] with exactly `spec.requirements` installed by pip.
/// `progress` hears one line before a (slow) install. The error is the
/// install hint a skipped variant shows.
pub fn environment(
    spec: &PythonSpec,
    root: &Path,
    progress: &mut impl FnMut(&str),
) -> Result<PathBuf, String> {
    let python = interpreter()?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(python.executable.as_os_str().as_encoded_bytes());
    hasher.update(python.version.as_bytes());
    for requirement in &spec.requirements {
        hasher.update(requirement.as_bytes());
        hasher.update(b"\n");
    }
    let dir = root.join(&hasher.finalize().to_hex()[..16]);
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    progress(&format!(
        "creating a Python environment ({})",
        spec.requirements.join(", ")
    ));
    let partial = root.join(format!(
        "{}.partial-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let made = create(python, &partial, &spec.requirements).and_then(|()| {
        std::fs::write(partial.join(COMPLETE), spec.requirements.join("\n"))
            .and_then(|()| match std::fs::rename(&partial, &dir) {
                // Another host made it meanwhile: theirs is as good.
                Err(_) if dir.join(COMPLETE).is_file() => Ok(()),
                other => other,
            })
            .map_err(|e| format!("storing {}: {e}", dir.display()))
    });
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    made.map(|()| dir)
}

/// Marks a finished environment (pip succeeded).
const COMPLETE: &str = "annvil-complete";

fn create(python: &Interpreter, dir: &Path, requirements: &[String]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    run(
        Command::new(&python.executable)
            .args(["-I", "-m", "venv"])
            .arg(dir),
        "python -m venv",
    )?;
    run(
        Command::new(dir.join("bin").join("python"))
            .args(["-I", "-m", "pip", "install", "--no-input", "--quiet"])
            .args(["--disable-pip-version-check", "--only-binary=:all:"])
            .args(requirements),
        "pip install",
    )
    .map_err(|e| format!("{e}; check access to PyPI, then run again"))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{what} could not start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    Err(format!("{what} failed: {last}"))
}

/// The no-op adapter (see `modules/python-bridge/noop_adapter.py`), written
/// next to the environments under `environment`'s parent, for measuring the
/// bridge's own cost per query.
pub fn noop_adapter(environment: &Path) -> Result<PathBuf, String> {
    const SOURCE: &str = include_str!("../../modules/python-bridge/noop_adapter.py");
    let root = environment
        .parent()
        .ok_or_else(|| format!("{} has no parent", environment.display()))?;
    let path = root.join("annvil-noop-adapter.py");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(SOURCE) {
        std::fs::write(&path, SOURCE).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(path)
}
