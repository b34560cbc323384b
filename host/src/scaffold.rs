//! `host new`: generates a variant directory from the slot templates in
//! `host/templates/`, optionally inheriting slots from a parent variant.
//!
//! # Layout of a generated variant (an interface)
//!
//! Other code relies on this layout: the evolution loop replaces exactly one
//! slot file, [`Lang::slot_file`], with generated code.
//!
//! - `Cargo.toml` (package `NAME`, a cdylib), `variant.yaml`, `README.md`.
//! - Rust: `src/lib.rs` declares one module per generated slot and exports
//!   them with `annvil_abi::export_variant!`; `src/construction.rs` defines
//!   `pub struct Index` (`annvil_abi::Construction`), `src/search.rs`
//!   `pub struct Searcher` (`annvil_abi::Search`), `src/refinement.rs`
//!   `pub struct Refiner` (`annvil_abi::Refine`).
//! - C and C++: `src/lib.rs` is the shim exporting `annvil_entry_v1`,
//!   `build.rs` compiles every `src/*.c` and `src/*.cpp`, `src/variant.c`
//!   holds the descriptor, and each slot file (`src/construction.c`, ... or
//!   `.cpp`) defines its slot table under the fixed name
//!   [`Lang::slot_symbol`], e.g. `annvil_variant_search_table`.
//!
//! Only the slot files come from the templates, verbatim; everything else
//! is generated here. Path dependencies (`annvil-abi`, `annvil-distance`,
//! the header directory) are relative to the new directory, so it can be
//! created anywhere; see the generated README for where cargo builds it.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::variant::{
    LibrarySource, Lineage, SlotKind, SlotSpec, SpecError, VariantSpec, relative_path,
};

/// Build parameters of the construction template, as written to
/// variant.yaml.
const CONSTRUCTION_DEFAULTS: &[(&str, &str)] = &[("M", "16"), ("ef_construction", "100")];

/// The `ef` values a generated search slot is swept over.
const EF_SWEEP: &[&str] = &["10", "20", "40", "80", "120", "200", "400", "800"];

/// The language of the generated slot sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust on the annvil SDK.
    Rust,
    /// C11 behind a Rust shim.
    C,
    /// C++17 behind a Rust shim.
    Cpp,
}

impl Lang {
    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Cpp => "cpp",
        }
    }

    /// The file holding `slot`, relative to the variant directory.
    pub const fn slot_file(self, slot: SlotKind) -> &'static str {
        match (self, slot) {
            (Lang::Rust, SlotKind::Construction) => "src/construction.rs",
            (Lang::Rust, SlotKind::Search) => "src/search.rs",
            (Lang::Rust, SlotKind::Refinement) => "src/refinement.rs",
            (Lang::C, SlotKind::Construction) => "src/construction.c",
            (Lang::C, SlotKind::Search) => "src/search.c",
            (Lang::C, SlotKind::Refinement) => "src/refinement.c",
            (Lang::Cpp, SlotKind::Construction) => "src/construction.cpp",
            (Lang::Cpp, SlotKind::Search) => "src/search.cpp",
            (Lang::Cpp, SlotKind::Refinement) => "src/refinement.cpp",
        }
    }

    /// What the slot file must define: the Rust type implementing the slot
    /// trait, or the C symbol of the slot table.
    pub const fn slot_symbol(self, slot: SlotKind) -> &'static str {
        match (self, slot) {
            (Lang::Rust, SlotKind::Construction) => "Index",
            (Lang::Rust, SlotKind::Search) => "Searcher",
            (Lang::Rust, SlotKind::Refinement) => "Refiner",
            (Lang::C | Lang::Cpp, SlotKind::Construction) => "annvil_variant_construction_table",
            (Lang::C | Lang::Cpp, SlotKind::Search) => "annvil_variant_search_table",
            (Lang::C | Lang::Cpp, SlotKind::Refinement) => "annvil_variant_refinement_table",
        }
    }

    /// The template source of `slot`.
    pub const fn template(self, slot: SlotKind) -> &'static str {
        match (self, slot) {
            (Lang::Rust, SlotKind::Construction) => {
                include_str!("../templates/rust/construction.rs")
            }
            (Lang::Rust, SlotKind::Search) => include_str!("../templates/rust/search.rs"),
            (Lang::Rust, SlotKind::Refinement) => include_str!("../templates/rust/refinement.rs"),
            (Lang::C, SlotKind::Construction) => include_str!("../templates/c/construction.c"),
            (Lang::C, SlotKind::Search) => include_str!("../templates/c/search.c"),
            (Lang::C, SlotKind::Refinement) => include_str!("../templates/c/refinement.c"),
            (Lang::Cpp, SlotKind::Construction) => {
                include_str!("../templates/cpp/construction.cpp")
            }
            (Lang::Cpp, SlotKind::Search) => include_str!("../templates/cpp/search.cpp"),
            (Lang::Cpp, SlotKind::Refinement) => include_str!("../templates/cpp/refinement.cpp"),
        }
    }
}

/// Which slots `host new` generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SlotChoice {
    /// All three (the only choice without `--from`).
    All,
    /// The construction slot.
    Construction,
    /// The search slot.
    Search,
    /// The refinement slot.
    Refinement,
}

impl SlotChoice {
    /// The slots generated, in pipeline order.
    pub fn slots(self) -> Vec<SlotKind> {
        match self {
            SlotChoice::All => SlotKind::ALL.to_vec(),
            SlotChoice::Construction => vec![SlotKind::Construction],
            SlotChoice::Search => vec![SlotKind::Search],
            SlotChoice::Refinement => vec![SlotKind::Refinement],
        }
    }

    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            SlotChoice::All => "all",
            SlotChoice::Construction => "construction",
            SlotChoice::Search => "search",
            SlotChoice::Refinement => "refinement",
        }
    }
}

/// What to generate: the arguments of `host new`.
#[derive(Args, Clone, Debug)]
pub struct NewVariant {
    /// Name of the variant: its directory and cargo package (lowercase
    /// letters, digits and `-`, starting with a letter).
    pub name: String,
    /// A variant directory to start from: the slots not generated keep its
    /// libraries and parameters.
    #[arg(long, value_name = "VARIANT_DIR")]
    pub from: Option<PathBuf>,
    /// Language of the generated slot sources.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// The slot to generate; without --from only `all`.
    #[arg(long, value_enum, default_value_t = SlotChoice::All)]
    pub slot: SlotChoice,
    /// Create the variant in DIR/NAME (default: variants/NAME under the
    /// current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Why a variant could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a valid variant (and package) name.
    #[error("invalid variant name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target directory exists; nothing was written.
    #[error("{}: already exists; choose another name or remove it first", .0.display())]
    Exists(PathBuf),
    /// The arguments do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The parent variant cannot be read.
    #[error("--from: {0}")]
    Parent(#[from] SpecError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The generated variant.yaml does not say what was intended (a bug).
    #[error("generated {}: {message}", path.display())]
    Inconsistent {
        /// The generated file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
}

/// A generated variant.
#[derive(Clone, Debug)]
pub struct Created {
    /// The new directory (the output directory as given, joined with the
    /// name).
    pub dir: PathBuf,
    /// The language of its slot sources.
    pub lang: Lang,
    /// The slots generated from templates, in pipeline order.
    pub generated: Vec<SlotKind>,
    /// Every file written, relative to `dir`, in writing order.
    pub files: Vec<PathBuf>,
}

/// Checks a variant name: lowercase ASCII letters, digits and `-`, starting
/// with a letter, and not a name cargo refuses for a package.
pub fn validate_name(name: &str) -> Result<(), String> {
    // Rust keywords, built-in crates and cargo's own directory names: cargo
    // refuses them as package names.
    const RESERVED: &str = "abstract as async await become box break const continue crate \
        do dyn else enum extern false final fn for gen if impl in let loop macro match mod \
        move mut override priv pub ref return self static struct super trait true try type \
        typeof unsafe unsized use virtual where while yield \
        alloc core proc-macro std test build deps examples incremental";
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("the name is empty".into()),
        Some(first) if !first.is_ascii_lowercase() => {
            return Err("it must start with a lowercase letter (a-z)".into());
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(format!(
            "`{bad}` is not allowed; use lowercase letters, digits and `-`"
        ));
    }
    if RESERVED.split_whitespace().any(|reserved| reserved == name) {
        return Err("cargo reserves it; choose another".into());
    }
    Ok(())
}

/// Generates the variant directory `request` describes and returns what
/// was written. Nothing is left behind on error.
pub fn create(request: &NewVariant) -> Result<Created, ScaffoldError> {
    let name = request.name.as_str();
    validate_name(name).map_err(|reason| ScaffoldError::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    match (&request.from, request.slot) {
        (None, SlotChoice::All)
        | (Some(_), SlotChoice::Construction)
        | (Some(_), SlotChoice::Search)
        | (Some(_), SlotChoice::Refinement) => {}
        (None, slot) => {
            return Err(ScaffoldError::Usage(format!(
                "--slot {} generates one slot and inherits the others, which needs \
                 --from VARIANT_DIR; without --from only --slot all is possible",
                slot.name()
            )));
        }
        (Some(_), SlotChoice::All) => {
            return Err(ScaffoldError::Usage(
                "--from inherits the slots that are not generated: choose the one to \
                 generate with --slot construction, search or refinement"
                    .into(),
            ));
        }
    }
    let parent = request.from.as_deref().map(VariantSpec::load).transpose()?;
    let root = crate::compile::source_root().ok_or_else(|| {
        ScaffoldError::Usage(
            "the annvil sources this host was built from are gone; generated variants \
             depend on their crates and header"
                .into(),
        )
    })?;
    let out = match &request.out {
        Some(out) => {
            fs::create_dir_all(out).map_err(|source| io_error(out, source))?;
            out.clone()
        }
        None => {
            let out = PathBuf::from("variants");
            if !out.is_dir() {
                return Err(ScaffoldError::Usage(
                    "no variants/ directory here: run from the annvil repository root, or \
                     choose the parent directory with --out DIR"
                        .into(),
                ));
            }
            out
        }
    };
    let shown = out.join(name);
    let dir = out
        .canonicalize()
        .map_err(|source| io_error(&out, source))?
        .join(name);
    if fs::symlink_metadata(&dir).is_ok() {
        return Err(ScaffoldError::Exists(shown));
    }
    let plan = Plan {
        name,
        lang: request.lang,
        generated: request.slot.slots(),
        dir: &dir,
        shown: &shown,
        root: &root,
        parent: parent.as_ref(),
    };
    let files = plan.files()?;

    fs::create_dir(&dir).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => ScaffoldError::Exists(shown.clone()),
        _ => io_error(&dir, source),
    })?;
    // Cargo.toml first: a directory under a members glob is never without
    // one. On any failure the directory goes again.
    let written = write_all(&dir, &files).and_then(|()| plan.verify());
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    let generated = plan.generated;
    Ok(Created {
        dir: shown,
        lang: request.lang,
        generated,
        files: files.into_iter().map(|(path, _)| path).collect(),
    })
}

/// `host new`: generates the variant and prints what it holds and how to
/// check it.
pub fn run(request: &NewVariant) -> anyhow::Result<bool> {
    let created = create(request)?;
    println!(
        "created {} ({} templates)",
        created.dir.display(),
        created.lang.name()
    );
    for &slot in &created.generated {
        println!(
            "  {:<12} {:<22} defines {}",
            slot.name(),
            created.lang.slot_file(slot),
            created.lang.slot_symbol(slot)
        );
    }
    if let Some(parent) = &request.from {
        let inherited: Vec<&str> = SlotKind::ALL
            .into_iter()
            .filter(|s| !created.generated.contains(s))
            .map(SlotKind::name)
            .collect();
        println!("  {} from {}", inherited.join(" and "), parent.display());
    }
    println!("next: host check {}", created.dir.display());
    Ok(true)
}

fn io_error(path: &Path, source: io::Error) -> ScaffoldError {
    ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_all(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), ScaffoldError> {
    for (relative, content) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| io_error(parent, source))?;
        }
        fs::write(&path, content).map_err(|source| io_error(&path, source))?;
    }
    Ok(())
}

/// Everything `create` decided, from which the files follow.
struct Plan<'a> {
    name: &'a str,
    lang: Lang,
    generated: Vec<SlotKind>,
    /// The new directory, canonical (it does not exist yet).
    dir: &'a Path,
    /// The new directory as the user named it, for messages.
    shown: &'a Path,
    /// The annvil checkout, canonical.
    root: &'a Path,
    parent: Option<&'a VariantSpec>,
}

impl Plan<'_> {
    /// `path` relative to the new directory, as UTF-8 with `/` separators.
    fn relative(&self, path: &Path) -> Result<String, ScaffoldError> {
        let relative = relative_path(self.dir, path);
        relative
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| ScaffoldError::Usage(format!("{} is not UTF-8", path.display())))
    }

    /// Every file of the variant, relative path and content, Cargo.toml
    /// first.
    fn files(&self) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
        let root = self.relative(self.root)?;
        let mut files = vec![
            (PathBuf::from("Cargo.toml"), self.cargo_toml(&root)),
            (PathBuf::from("variant.yaml"), self.variant_yaml()),
            (PathBuf::from("README.md"), self.readme()?),
            (PathBuf::from("src/lib.rs"), self.lib_rs()),
        ];
        if self.lang != Lang::Rust {
            files.push((
                PathBuf::from("build.rs"),
                include_str!("../templates/shim/build.rs")
                    .replace("{{include}}", &format!("{root}/abi/include")),
            ));
            files.push((PathBuf::from("src/variant.c"), self.variant_c()));
        }
        for &slot in &self.generated {
            files.push((
                PathBuf::from(self.lang.slot_file(slot)),
                self.lang.template(slot).to_owned(),
            ));
        }
        Ok(files)
    }

    fn description(&self) -> String {
        let generated: Vec<&str> = self.generated.iter().map(|s| s.name()).collect();
        match self.parent {
            Some(parent) => {
                let summary = parent
                    .description
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let summary = if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {summary}")
                };
                format!(
                    "{} generated from template ({}), rest from {}{summary}",
                    generated.join(", "),
                    self.lang.name(),
                    parent.name
                )
            }
            None => format!(
                "{} templates: NSW graph (M=16, ef_construction=100, single-threaded build), \
                 beam search, exact rerank",
                self.lang.name()
            ),
        }
    }

    fn cargo_toml(&self, root: &str) -> String {
        let mut toml = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             publish = false\ndescription = {description}\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nannvil-abi = {{ path = {abi} }}\n",
            name = self.name,
            description = quoted(&self.description()),
            abi = quoted(&format!("{root}/abi")),
        );
        match self.lang {
            Lang::Rust => {
                let _ = writeln!(
                    toml,
                    "annvil-distance = {{ path = {} }}",
                    quoted(&format!("{root}/modules/distance"))
                );
            }
            Lang::C | Lang::Cpp => toml.push_str("\n[build-dependencies]\ncc = \"1\"\n"),
        }
        toml
    }

    fn lib_rs(&self) -> String {
        match self.lang {
            Lang::Rust => {
                let mut lib = format!(
                    "//! `{name}`: an annvil variant generated by `host new`. Each slot \
                     lives in its own\n//! file (see README.md); this file only declares \
                     them and exports them.\n\n#![warn(missing_docs)]\n\n",
                    name = self.name
                );
                let mut modules: Vec<&str> = self.generated.iter().map(|s| s.name()).collect();
                modules.sort_unstable(); // rustfmt's order
                for module in modules {
                    let _ = writeln!(lib, "mod {module};");
                }
                let _ = write!(
                    lib,
                    "\nannvil_abi::export_variant! {{\n    name: \"{}\",\n",
                    self.name
                );
                for &slot in &self.generated {
                    let _ = writeln!(
                        lib,
                        "    {0}: {0}::{1},",
                        slot.name(),
                        self.lang.slot_symbol(slot)
                    );
                }
                lib.push_str("}\n");
                lib
            }
            Lang::C | Lang::Cpp => format!(
                "//! `{}`: an annvil variant generated by `host new`, written in {}. This \
                 crate is only\n//! the shim: build.rs compiles the sources in src/, and the \
                 macro below exports\n//! `annvil_entry_v1`, forwarding to the descriptor in \
                 src/variant.c.\n\nannvil_abi::export_variant! {{ c_entry: annvil_variant_entry }}\n",
                self.name,
                if self.lang == Lang::C { "C" } else { "C++" }
            ),
        }
    }

    fn variant_c(&self) -> String {
        let mut c = format!(
            "/*\n * variant.c — the descriptor of `{name}` (generated by `host new`). Each \
             slot file\n * in src/ defines its table under a fixed name; this file collects \
             them, and the\n * Rust shim (src/lib.rs) exports the entry point returning the \
             descriptor.\n */\n#include <annvil.h>\n\n#include <stddef.h>\n\n",
            name = self.name
        );
        for &slot in &self.generated {
            let _ = writeln!(
                c,
                "extern const annvil_{}_v1 {};",
                slot.name(),
                self.lang.slot_symbol(slot)
            );
        }
        c.push_str("const annvil_descriptor *annvil_variant_entry(void);\n\n");
        let _ = write!(
            c,
            "static const annvil_descriptor descriptor = {{\n    .magic = ANNVIL_MAGIC,\n    \
             .abi_major = ANNVIL_ABI_MAJOR,\n    .abi_minor = ANNVIL_ABI_MINOR,\n    \
             .reserved = 0,\n    .struct_size = sizeof(annvil_descriptor),\n    \
             .name = \"{}\",\n    .version = \"0.1.0\",\n    .flags = 0,\n",
            self.name
        );
        for slot in SlotKind::ALL {
            let table = if self.generated.contains(&slot) {
                format!("&{}", self.lang.slot_symbol(slot))
            } else {
                "NULL".to_owned()
            };
            let _ = writeln!(c, "    .{} = {table},", slot.name());
        }
        c.push_str(
            "};\n\nconst annvil_descriptor *annvil_variant_entry(void) {\n    \
             return &descriptor;\n}\n",
        );
        c
    }

    /// The variant.yaml: generated slots are `self` with the templates'
    /// defaults; the others keep the parent's library and settings.
    fn variant_yaml(&self) -> String {
        let inherited = |slot: SlotKind| self.parent.filter(|_| !self.generated.contains(&slot));
        let slot = |slot: SlotKind, defaults: &[(&str, &str)]| match inherited(slot) {
            Some(parent) => parent.slot(slot).clone(),
            None => SlotSpec {
                library: LibrarySource::Package(self.dir.to_path_buf()),
                params: defaults
                    .iter()
                    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                declared: true,
            },
        };
        let sweep = match inherited(SlotKind::Search) {
            Some(parent) => parent.sweep.clone(),
            None => vec![(
                "ef".to_owned(),
                EF_SWEEP.iter().map(|&v| v.to_owned()).collect(),
            )],
        };
        let spec = VariantSpec {
            name: self.name.to_owned(),
            dir: self.dir.to_path_buf(),
            description: self.description(),
            requires: self.parent.map(|p| p.requires.clone()).unwrap_or_default(),
            construction: slot(SlotKind::Construction, CONSTRUCTION_DEFAULTS),
            grid: inherited(SlotKind::Construction)
                .map(|p| p.grid.clone())
                .unwrap_or_default(),
            search: slot(SlotKind::Search, &[]),
            sweep,
            refinement: slot(SlotKind::Refinement, &[]),
            // `candidates` sizes the hand-over from the search to the
            // refinement, so it is the parent's whichever slot is generated.
            candidates: self.parent.and_then(|p| p.candidates),
            python: None,
            lineage: self.parent.map(|p| Lineage {
                parent: p.name.clone(),
                slot: self.generated[0].name().to_owned(),
                change: None,
            }),
        };
        format!(
            "# Generated by `host new`: {} from the {} templates.\n{}",
            self.generated
                .iter()
                .map(|&s| format!("{} ({})", s.name(), self.lang.slot_file(s)))
                .collect::<Vec<_>>()
                .join(", "),
            self.lang.name(),
            spec.to_yaml(self.dir)
        )
    }

    fn readme(&self) -> Result<String, ScaffoldError> {
        let mut rows = String::new();
        for slot in SlotKind::ALL {
            let row = if self.generated.contains(&slot) {
                format!(
                    "| {} | `{}` | `{}` | `self` |",
                    slot.name(),
                    self.lang.slot_file(slot),
                    self.lang.slot_symbol(slot)
                )
            } else {
                let parent = self.parent.expect("only a parent leaves slots to inherit");
                format!(
                    "| {} | (inherited) | | `{}` |",
                    slot.name(),
                    self.relative(parent.slot(slot).library.path())?
                )
            };
            rows.push_str(&row);
            rows.push('\n');
        }
        let origin = match self.parent {
            Some(parent) => format!(
                "{} from the {} template, the rest from `{}`",
                self.generated[0].name(),
                self.lang.name(),
                self.relative(&parent.dir)?
            ),
            None => format!("all slots from the {} templates", self.lang.name()),
        };
        let layout = match self.lang {
            Lang::Rust => "`src/lib.rs` only declares the slot modules and exports their types \
                           with `annvil_abi::export_variant!`."
                .to_owned(),
            Lang::C | Lang::Cpp => {
                let (support, guard) = if self.lang == Lang::Cpp {
                    (
                        "annvil_support.hpp",
                        " Slot functions are `extern \"C\"` and catch every C++ exception at \
                         the boundary (`annvil::guard`).",
                    )
                } else {
                    ("annvil_support.h", "")
                };
                format!(
                    "`src/lib.rs` is the Rust shim exporting `annvil_entry_v1`. `build.rs` \
                     compiles every `src/*.c` (C11) and `src/*.cpp` (C++17) at -O3 against \
                     `abi/include/`: the contract `annvil.h` and the helpers of `{support}`. \
                     `src/variant.c` holds the descriptor and refers to each slot's table by \
                     its fixed name.{guard}"
                )
            }
        };
        Ok(include_str!("../templates/README.md")
            .replace("{{name}}", self.name)
            .replace("{{origin}}", &origin)
            .replace("{{slots}}\n", &rows)
            .replace("{{layout}}", &layout)
            .replace("{{dir}}", &self.shown.display().to_string()))
    }

    /// Reads the written variant.yaml back and checks that every inherited
    /// slot resolves to the parent's library and settings.
    fn verify(&self) -> Result<(), ScaffoldError> {
        let path = self.dir.join(crate::variant::VARIANT_FILE);
        let inconsistent = |message: String| ScaffoldError::Inconsistent {
            path: path.clone(),
            message,
        };
        let child = VariantSpec::load(self.dir).map_err(|e| inconsistent(e.to_string()))?;
        for slot in SlotKind::ALL {
            let own = child.slot(slot);
            match self.parent {
                Some(parent) if !self.generated.contains(&slot) => {
                    let theirs = parent.slot(slot);
                    let same_library = own.library == theirs.library || !theirs.declared;
                    if !same_library || own.params != theirs.params {
                        return Err(inconsistent(format!(
                            "{} differs from the parent's",
                            slot.name()
                        )));
                    }
                }
                _ => {
                    if own.library.path() != child.dir {
                        return Err(inconsistent(format!("{} is not `self`", slot.name())));
                    }
                }
            }
        }
        if let Some(parent) = self.parent {
            let kept = |slot| !self.generated.contains(&slot);
            if (kept(SlotKind::Construction) && child.grid != parent.grid)
                || (kept(SlotKind::Search) && child.sweep != parent.sweep)
                || child.candidates != parent.candidates
            {
                return Err(inconsistent(
                    "grid, sweep or candidates differ from the parent's".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A TOML basic string (JSON escapes are valid TOML escapes).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variant::ParamMap;

    fn request(
        name: &str,
        lang: Lang,
        slot: SlotChoice,
        from: Option<&Path>,
        out: &Path,
    ) -> NewVariant {
        NewVariant {
            name: name.to_owned(),
            from: from.map(Path::to_path_buf),
            lang,
            slot,
            out: Some(out.to_path_buf()),
        }
    }

    fn read(dir: &Path, file: &str) -> String {
        fs::read_to_string(dir.join(file)).unwrap()
    }

    fn params(entries: &[(&str, &str)]) -> ParamMap {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn hnsw() -> PathBuf {
        crate::compile::source_root().unwrap().join("variants/hnsw")
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "nsw-sq8", "v2"] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("2fast", "start with a lowercase letter"),
            ("Fast", "start with a lowercase letter"),
            ("my_variant", "`_` is not allowed"),
            ("a.b", "`.` is not allowed"),
            ("self", "reserves"),
            ("test", "reserves"),
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn slot_choice_and_from_must_fit() {
        let out = tempfile::tempdir().unwrap();
        let err = create(&request(
            "x",
            Lang::Rust,
            SlotChoice::Search,
            None,
            out.path(),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--slot search") && err.contains("--from"),
            "{err}"
        );
        let err = create(&request(
            "x",
            Lang::Rust,
            SlotChoice::All,
            Some(&hnsw()),
            out.path(),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--slot construction, search or refinement"),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(out.path()).unwrap().count(),
            0,
            "nothing written"
        );
    }

    #[test]
    fn all_slots_come_from_the_templates_in_every_language() {
        let out = tempfile::tempdir().unwrap();
        for lang in [Lang::Rust, Lang::C, Lang::Cpp] {
            let name = format!("all-{}", lang.name());
            let created = create(&request(&name, lang, SlotChoice::All, None, out.path())).unwrap();
            let dir = &created.dir;
            assert_eq!(created.generated, SlotKind::ALL);
            assert_eq!(created.files[0], Path::new("Cargo.toml"));
            for slot in SlotKind::ALL {
                assert_eq!(read(dir, lang.slot_file(slot)), lang.template(slot));
            }
            let lib = read(dir, "src/lib.rs");
            let descriptor = match lang {
                Lang::Rust => lib.clone(),
                Lang::C | Lang::Cpp => {
                    assert!(lib.contains("c_entry: annvil_variant_entry"), "{lib}");
                    read(dir, "src/variant.c")
                }
            };
            for slot in SlotKind::ALL {
                assert!(descriptor.contains(lang.slot_symbol(slot)), "{descriptor}");
            }
            // The path dependencies resolve from the new directory.
            let cargo = read(dir, "Cargo.toml");
            assert!(cargo.contains(&format!("name = \"{name}\"")), "{cargo}");
            let abi = cargo
                .lines()
                .find_map(|l| l.strip_prefix("annvil-abi = { path = \""))
                .and_then(|l| l.strip_suffix("\" }"))
                .unwrap();
            assert!(dir.join(abi).join("include/annvil.h").is_file(), "{abi}");

            let spec = VariantSpec::load(dir).unwrap();
            let own = LibrarySource::Package(dir.canonicalize().unwrap());
            for slot in SlotKind::ALL {
                assert_eq!(spec.slot(slot).library, own);
            }
            assert_eq!(spec.construction.params, params(CONSTRUCTION_DEFAULTS));
            assert_eq!(
                spec.sweep,
                [(
                    "ef".to_owned(),
                    EF_SWEEP.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>()
                )]
            );
            assert_eq!(spec.lineage, None);
        }
    }

    #[test]
    fn a_child_inherits_the_slots_it_does_not_generate() {
        let out = tempfile::tempdir().unwrap();
        let parent = VariantSpec::load(&hnsw()).unwrap();
        let created = create(&request(
            "kid",
            Lang::C,
            SlotChoice::Search,
            Some(&hnsw()),
            out.path(),
        ))
        .unwrap();
        let child = VariantSpec::load(&created.dir).unwrap();
        assert_eq!(child.construction.library, parent.construction.library);
        assert_eq!(child.construction.params, parent.construction.params);
        assert_eq!(child.grid, parent.grid);
        assert_eq!(child.refinement.library, parent.refinement.library);
        assert_eq!(child.candidates, parent.candidates);
        assert_eq!(
            child.search.library,
            LibrarySource::Package(child.dir.clone())
        );
        assert!(child.search.params.is_empty());
        let lineage = child.lineage.unwrap();
        assert_eq!(
            (lineage.parent.as_str(), lineage.slot.as_str()),
            ("hnsw", "search")
        );
        assert!(
            child
                .description
                .starts_with("search generated from template (c), rest from hnsw: HNSW"),
            "{}",
            child.description
        );
        let descriptor = read(&created.dir, "src/variant.c");
        assert!(descriptor.contains(".construction = NULL,"), "{descriptor}");
        assert!(descriptor.contains(".search = &annvil_variant_search_table,"));
        assert!(descriptor.contains(".refinement = NULL,"));
        assert!(!created.dir.join("src/construction.c").exists());
    }

    #[test]
    fn inherited_values_read_back_exactly() {
        let work = tempfile::tempdir().unwrap();
        let parent = work.path().join("parent");
        fs::create_dir(&parent).unwrap();
        fs::write(parent.join("Cargo.toml"), "[package]\nname = \"parent\"\n").unwrap();
        fs::write(
            parent.join("variant.yaml"),
            "description: |\n  two \"quoted\"\n  lines\n\
             requires:\n  - {package: libfoo-dev, path: /usr/include/foo.h}\n\
             construction:\n  params: {a: \"007\", b: \"yes\", c: \"1.50\", d: x y, e: true, \
             f: -3, g: \"null\", \"1\": one}\n  grid: {h: [\"0.5\", 2, \"+4\"]}\n\
             search:\n  library: self\n  params: {mode: \"~\"}\n  sweep: {k: [\"on\", 1]}\n\
             refinement:\n  candidates: 40\n",
        )
        .unwrap();
        let out = work.path().join("out");
        let created = create(&request(
            "kid",
            Lang::Rust,
            SlotChoice::Refinement,
            Some(&parent),
            &out,
        ))
        .unwrap();
        let (parent, child) = (
            VariantSpec::load(&parent).unwrap(),
            VariantSpec::load(&created.dir).unwrap(),
        );
        assert_eq!(child.construction.params, parent.construction.params);
        assert_eq!(child.grid, parent.grid);
        assert_eq!(child.search.params, parent.search.params);
        assert_eq!(child.sweep, parent.sweep);
        assert_eq!(child.candidates, Some(40));
        assert_eq!(child.requires, parent.requires);
        assert!(
            child.description.contains("two \"quoted\" lines"),
            "{}",
            child.description
        );
    }

    #[test]
    fn an_existing_directory_is_left_alone() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("taken");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        let err = create(&request(
            "taken",
            Lang::Rust,
            SlotChoice::All,
            None,
            out.path(),
        ))
        .unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists(_)), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(read(&dir, "notes.txt"), "mine");
    }
}
