//! Opens variant libraries and checks their descriptor. Only worker
//! processes call this: the coordinator never loads variant code.
//!
//! Checks, in order: the library opens with `RTLD_NOW` (every symbol
//! resolves at load); it exports `annvil_entry_v1`; the entry returns a
//! non-NULL descriptor; the magic matches; the ABI major matches;
//! `struct_size` covers at least the ABI 1.0 descriptor; name and version are
//! UTF-8; each slot table's `struct_size` covers its 1.0 layout and its
//! required functions are non-NULL. Only the bytes `struct_size` covers are
//! read. Libraries are never unloaded (a Rust cdylib with thread-local
//! destructors cannot be unloaded soundly), so handles stay `'static`.

use std::ffi::{CStr, c_char};
use std::fmt;
use std::mem;
use std::path::{Path, PathBuf};

use annvil_abi::ffi;

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
    let text = |p: *const c_char, field: &'static str| -> Result<String, LoadError> {
        if p.is_null() {
            return Err(refuse(field, "a string".into(), "NULL".into()));
        }
        // SAFETY: non-NULL, NUL-terminated static string (contract).
        unsafe { CStr::from_ptr(p) }
            .to_str()
            .map(str::to_owned)
            .map_err(|_| refuse(field, "UTF-8".into(), "invalid UTF-8".into()))
    };
    let name = text(desc.name, "descriptor name")?;
    let version = text(desc.version, "descriptor version")?;
    // SAFETY (all three): table pointers are NULL or point at static tables
    // whose first field is their struct_size (contract); read_table checks it.
    let construction = unsafe { read_table(desc.construction, "construction table", path) }?;
    let search = unsafe { read_table(desc.search, "search table", path) }?;
    let refinement = unsafe { read_table(desc.refinement, "refinement table", path) }?;
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

/// Reads a slot table behind its `struct_size`.
///
/// # Safety
/// `table` must be NULL or point at a table starting with `usize struct_size`
/// and valid for `struct_size` bytes.
unsafe fn read_table<T: Default>(
    table: *const T,
    what: &'static str,
    path: &Path,
) -> Result<Option<T>, LoadError> {
    if table.is_null() {
        return Ok(None);
    }
    // SAFETY: the first field of every table is its usize struct_size.
    let size = unsafe { table.cast::<usize>().read_unaligned() };
    let minimum = mem::size_of::<T>();
    if size < minimum {
        return Err(LoadError {
            library: path.to_path_buf(),
            check: what,
            expected: format!("struct_size of at least {minimum} bytes (ABI 1.0)"),
            found: format!("{size} bytes"),
        });
    }
    // SAFETY: valid for `size >= minimum` bytes (caller and check above).
    Ok(Some(unsafe { read_covered(table, size) }))
}

impl Library {
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
