//! Opens variant libraries and checks their descriptor. Only worker
//! processes call this: the coordinator never loads variant code.
//!
//! Checks, in order: the library opens with `RTLD_NOW` (every symbol
//! resolves at load); it exports `annvil_entry_v1`; the entry returns a
//! non-NULL descriptor; the magic matches; the ABI major matches;
//! `struct_size` covers at least the ABI 1.0 descriptor; name and version are
//! UTF-8; each slot table's `struct_size` covers its 1.0 layout and its
//! required functions are non-NULL. Only the bytes `struct_size` covers are
//! read: a field a table's size does not cover (e.g. the 1.1 `params` of a
//! 1.0 library) reads as NULL. Libraries are never unloaded (a Rust cdylib
//! with thread-local destructors cannot be unloaded soundly), so handles
//! stay `'static`.
//!
//! [`Library::declared_params`] reads a slot's parameter declarations
//! (ABI 1.1) on demand, so a malformed declaration never stops a library
//! from loading.

use std::ffi::{CStr, c_char};
use std::fmt;
use std::mem;
use std::path::{Path, PathBuf};

use annvil_abi::ffi;

use crate::describe::{ParamInfo, ParamRange};
use crate::variant::SlotKind;

/// Why a library was refused: which library, which check, expected vs found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The library file.
    pub library: PathBuf,
    /// The check that failed.
    pub check: &'static str,
    /// What the host expected.
    pub expected: String,
    /// What it found.
    pub found: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {}: {} check failed: expected {}, found {}",
            self.library.display(),
            self.check,
            self.expected,
            self.found
        )
    }
}

impl std::error::Error for LoadError {}

/// A loaded library's descriptor, copied out field by field.
#[derive(Debug)]
pub struct Library {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The library's name.
    pub name: String,
    /// The library's version.
    pub version: String,
    /// The ABI minor version it was compiled against.
    pub abi_minor: u32,
    /// `ANNVIL_FLAG_*` bits.
    pub flags: u64,
    /// Construction table, if provided.
    pub construction: Option<ffi::annvil_construction_v1>,
    /// Search table, if provided.
    pub search: Option<ffi::annvil_search_v1>,
    /// Refinement table, if provided.
    pub refinement: Option<ffi::annvil_refinement_v1>,
}

impl Library {
    /// True when the search slot needs this library's own construction.
    pub fn search_needs_native_graph(&self) -> bool {
        self.flags & ffi::ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH != 0
    }
}

/// The fixed prefix every major version's descriptor starts with.
#[repr(C)]
struct DescriptorPrefix {
    magic: u32,
    abi_major: u32,
    abi_minor: u32,
    reserved: u32,
    struct_size: usize,
}

const ENTRY_SYMBOL: &str = "annvil_entry_v1";

/// Opens `path` and validates it; on success the library stays loaded for
/// the life of the process.
pub fn open(path: &Path) -> Result<&'static Library, LoadError> {
    let refuse = |check: &'static str, expected: String, found: String| LoadError {
        library: path.to_path_buf(),
        check,
        expected,
        found,
    };
    // SAFETY: loading a library runs its initialisers; variant libraries are
    // trusted to the extent that they run in an isolated worker process.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
    }
    .map_err(|e| {
        refuse(
            "load (RTLD_NOW)",
            "a loadable shared library".into(),
            e.to_string(),
        )
    })?;
    // SAFETY: the symbol's type is `annvil_entry_v1_fn` by the contract.
    let entry = unsafe {
        lib.get::<unsafe extern "C" fn() -> *const ffi::annvil_descriptor>(ENTRY_SYMBOL.as_bytes())
    };
    let entry = match entry {
        Ok(entry) => entry,
        Err(_) => {
            let other = (2..=9).find(|major| {
                // SAFETY: only probing for the symbol's presence; never called.
                unsafe { lib.get::<*const ()>(format!("annvil_entry_v{major}").as_bytes()) }.is_ok()
            });
            let found = match other {
                Some(major) => format!(
                    "only annvil_entry_v{major}: the library speaks ABI major {major}, this host speaks major {}",
                    ffi::ANNVIL_ABI_MAJOR
                ),
                None => "no annvil entry symbol (is this an annvil variant library?)".into(),
            };
            return Err(refuse(
                "entry symbol",
                format!("exported symbol `{ENTRY_SYMBOL}`"),
                found,
            ));
        }
    };
    // SAFETY: the entry takes no arguments and returns a pointer to a static
    // descriptor (contract).
    let raw = unsafe { entry() };
    if raw.is_null() {
        return Err(refuse(
            "descriptor",
            "a descriptor pointer".into(),
            "NULL".into(),
        ));
    }
    // SAFETY: every major version's descriptor starts with this prefix.
    let prefix = unsafe { raw.cast::<DescriptorPrefix>().read_unaligned() };
    if prefix.magic != ffi::ANNVIL_MAGIC {
        return Err(refuse(
            "magic",
            format!("{:#010x} (\"ANNV\")", ffi::ANNVIL_MAGIC),
            format!("{:#010x}", prefix.magic),
        ));
    }
    if prefix.abi_major != ffi::ANNVIL_ABI_MAJOR {
        return Err(refuse(
            "ABI major version",
            ffi::ANNVIL_ABI_MAJOR.to_string(),
            prefix.abi_major.to_string(),
        ));
    }
    let minimum = mem::size_of::<ffi::annvil_descriptor>();
    if prefix.struct_size < minimum {
        return Err(refuse(
            "descriptor struct_size",
            format!("at least {minimum} bytes (ABI 1.0)"),
            format!("{} bytes", prefix.struct_size),
        ));
    }
    // SAFETY: the descriptor is at least `minimum` bytes (checked above);
    // only the 1.0 fields are read.
    let desc = unsafe { read_covered(raw, prefix.struct_size) };
    // SAFETY (both): NULL or static NUL-terminated strings (contract).
    let name = unsafe { c_text(desc.name, "descriptor name", path) }?;
    let version = unsafe { c_text(desc.version, "descriptor version", path) }?;
    // SAFETY (all three): table pointers are NULL or point at static tables
    // whose first field is their struct_size (contract); read_table checks it.
    let construction = unsafe {
        read_table(
            desc.construction,
            mem::offset_of!(ffi::annvil_construction_v1, params),
            "construction table",
            path,
        )
    }?;
    let search = unsafe {
        read_table(
            desc.search,
            mem::offset_of!(ffi::annvil_search_v1, params),
            "search table",
            path,
        )
    }?;
    let refinement = unsafe {
        read_table(
            desc.refinement,
            mem::offset_of!(ffi::annvil_refinement_v1, params),
            "refinement table",
            path,
        )
    }?;
    let library = Library {
        path: path.to_path_buf(),
        name,
        version,
        abi_minor: desc.abi_minor,
        flags: desc.flags,
        construction,
        search,
        refinement,
    };
    library.check_required_functions()?;
    // Never unloaded: see the module documentation.
    mem::forget(lib);
    Ok(Box::leak(Box::new(library)))
}

/// An owned copy of a static C string of the library at `path`.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string.
unsafe fn c_text(p: *const c_char, field: &'static str, path: &Path) -> Result<String, LoadError> {
    let refuse = |expected: &str, found: &str| LoadError {
        library: path.to_path_buf(),
        check: field,
        expected: expected.into(),
        found: found.into(),
    };
    if p.is_null() {
        return Err(refuse("a string", "NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated (caller).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(str::to_owned)
        .map_err(|_| refuse("UTF-8", "invalid UTF-8"))
}

/// Copies the bytes of `*raw` that `size` covers into a zeroed `T`.
///
/// # Safety
/// `raw` must be valid for `min(size, size_of::<T>())` bytes of reads, and
/// all-zero bytes must be a valid `T` (true of the generated C structs).
unsafe fn read_covered<T: Default>(raw: *const T, size: usize) -> T {
    let mut value = T::default();
    let len = size.min(mem::size_of::<T>());
    // SAFETY: caller guarantees `len` readable bytes; the destination is a
    // local of size_of::<T>() >= len bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(raw.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), len)
    };
    value
}

/// Reads a slot table behind its `struct_size`, which must cover at least
/// `minimum` bytes (the table's ABI 1.0 size); fields beyond the size read
/// as zero (NULL).
///
/// # Safety
/// `table` must be NULL or point at a table starting with `usize struct_size`
/// and valid for `struct_size` bytes.
unsafe fn read_table<T: Default>(
    table: *const T,
    minimum: usize,
    what: &'static str,
    path: &Path,
) -> Result<Option<T>, LoadError> {
    if table.is_null() {
        return Ok(None);
    }
    // SAFETY: the first field of every table is its usize struct_size.
    let size = unsafe { table.cast::<usize>().read_unaligned() };
    if size < minimum {
        return Err(LoadError {
            library: path.to_path_buf(),
            check: what,
            expected: format!("struct_size of at least {minimum} bytes (ABI 1.0)"),
            found: format!("{size} bytes"),
        });
    }
    // SAFETY: valid for `size` bytes (caller); read_covered reads at most
    // that many and zeroes the rest.
    Ok(Some(unsafe { read_covered(table, size) }))
}

impl Library {
    /// The parameters `slot` of this library declares, in declaration
    /// order: empty when the library does not fill the slot, its table
    /// predates ABI 1.1 or its `params` function is NULL. Declarations of a
    /// kind this host does not know (from a newer minor) are skipped.
    /// Refused: a NULL or non-UTF-8 string, or an element `struct_size`
    /// smaller than the ABI 1.1 `annvil_param_info` or differing from the
    /// first element's (the array's stride).
    pub fn declared_params(&self, slot: SlotKind) -> Result<Vec<ParamInfo>, LoadError> {
        let (function, check) = match slot {
            SlotKind::Construction => (
                self.construction.as_ref().and_then(|t| t.params),
                "construction parameter declarations",
            ),
            SlotKind::Search => (
                self.search.as_ref().and_then(|t| t.params),
                "search parameter declarations",
            ),
            SlotKind::Refinement => (
                self.refinement.as_ref().and_then(|t| t.params),
                "refinement parameter declarations",
            ),
        };
        let Some(function) = function else {
            return Ok(Vec::new());
        };
        let mut count = 0usize;
        // SAFETY: `params` takes a valid out-pointer and returns NULL or a
        // static array of `count` elements (contract).
        let first = unsafe { function(&mut count) };
        if first.is_null() || count == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: every element starts with its usize struct_size (contract).
        let stride = unsafe { first.cast::<usize>().read_unaligned() };
        let minimum = mem::size_of::<ffi::annvil_param_info>();
        let refuse = |expected: String, found: String| LoadError {
            library: self.path.clone(),
            check,
            expected,
            found,
        };
        if stride < minimum {
            return Err(refuse(
                format!("annvil_param_info.struct_size of at least {minimum} bytes (ABI 1.1)"),
                format!("{stride} bytes"),
            ));
        }
        let mut declared = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the array holds `count` elements of `stride` bytes
            // (contract: every element's struct_size equals the first's).
            let raw =
                unsafe { first.cast::<u8>().add(i * stride) }.cast::<ffi::annvil_param_info>();
            // SAFETY: as above.
            let size = unsafe { raw.cast::<usize>().read_unaligned() };
            if size != stride {
                return Err(refuse(
                    format!("every element's struct_size equal to the first's ({stride} bytes)"),
                    format!("{size} bytes in element {i}"),
                ));
            }
            // SAFETY: valid for `stride >= minimum` bytes (checked above).
            let info = unsafe { read_covered(raw, stride) };
            // SAFETY: the strings are NULL or static NUL-terminated (contract).
            if let Some(param) = unsafe { self.param_info(&info, check) }? {
                declared.push(param);
            }
        }
        Ok(declared)
    }

    /// One declaration as owned data; `None` for an unknown kind.
    ///
    /// # Safety
    /// The strings of `info` must be NULL or NUL-terminated.
    unsafe fn param_info(
        &self,
        info: &ffi::annvil_param_info,
        check: &'static str,
    ) -> Result<Option<ParamInfo>, LoadError> {
        let text = |p: *const c_char, field: &str| {
            // SAFETY: every string of `info` is NULL or NUL-terminated
            // (caller).
            unsafe { c_text(p, check, &self.path) }.map_err(|mut e| {
                e.expected = format!("{} for `{field}`", e.expected);
                e
            })
        };
        let range = match info.kind {
            ffi::ANNVIL_PARAM_INT => ParamRange::Int {
                min: info.min,
                max: info.max,
            },
            ffi::ANNVIL_PARAM_FLOAT => ParamRange::Float {
                min: info.min,
                max: info.max,
            },
            ffi::ANNVIL_PARAM_CHOICE => ParamRange::Choice {
                choices: text(info.choices, "choices")?
                    .split('|')
                    .map(str::to_owned)
                    .collect(),
            },
            _ => return Ok(None),
        };
        Ok(Some(ParamInfo {
            name: text(info.name, "name")?,
            range,
            default: text(info.default_value, "default_value")?,
            knob: info.flags & ffi::ANNVIL_PARAM_FLAG_KNOB != 0,
            doc: text(info.doc, "doc")?,
        }))
    }

    fn check_required_functions(&self) -> Result<(), LoadError> {
        let missing = |table: &'static str, field: &str| LoadError {
            library: self.path.clone(),
            check: table,
            expected: format!("non-NULL `{field}`"),
            found: "NULL".into(),
        };
        if let Some(t) = &self.construction {
            for (field, present) in [
                ("build", t.build.is_some()),
                ("graph_view", t.graph_view.is_some()),
                ("graph_memory_bytes", t.graph_memory_bytes.is_some()),
                ("graph_destroy", t.graph_destroy.is_some()),
            ] {
                if !present {
                    return Err(missing("construction table", field));
                }
            }
        }
        if let Some(t) = &self.search {
            for (field, present) in [
                ("prepare", t.prepare.is_some()),
                ("configure", t.configure.is_some()),
                ("context_new", t.context_new.is_some()),
                ("search", t.search.is_some()),
                ("searcher_memory_bytes", t.searcher_memory_bytes.is_some()),
                ("context_memory_bytes", t.context_memory_bytes.is_some()),
                ("context_destroy", t.context_destroy.is_some()),
                ("searcher_destroy", t.searcher_destroy.is_some()),
            ] {
                if !present {
                    return Err(missing("search table", field));
                }
            }
        }
        if let Some(t) = &self.refinement {
            for (field, present) in [
                ("prepare", t.prepare.is_some()),
                ("context_new", t.context_new.is_some()),
                ("refine", t.refine.is_some()),
                ("refiner_memory_bytes", t.refiner_memory_bytes.is_some()),
                ("context_memory_bytes", t.context_memory_bytes.is_some()),
                ("context_destroy", t.context_destroy.is_some()),
                ("refiner_destroy", t.refiner_destroy.is_some()),
            ] {
                if !present {
                    return Err(missing("refinement table", field));
                }
            }
        }
        Ok(())
    }
}
