//! Opens variant libraries and checks their descriptor. Only worker
//! processes call this: the coordinator never loads variant code.
//!
//! [`open`] runs its checks as named steps, in order: the library opens with
//! `RTLD_NOW`, so every symbol resolves at load (`open_shared_library`); it
//! exports `annvil_entry_v1` (`entry_point`); the entry returns a non-NULL
//! descriptor whose magic and ABI major match and whose `struct_size` covers
//! at least the ABI 1.0 descriptor (`read_descriptor`); name and version are
//! UTF-8; each slot table's `struct_size` covers its 1.0 layout
//! (`read_table`) and its required functions are non-NULL
//! (`validate_table`). Only the bytes `struct_size` covers are read: a
//! field a table's size does not cover (e.g. the 1.1 `params` of a 1.0
//! library) reads as NULL. Libraries are never unloaded (a Rust cdylib with
//! thread-local destructors cannot be unloaded soundly), so handles stay
//! `'static`.
//!
//! A [`Library`] holds its slot tables validated: [`ConstructionFns`],
//! [`SearchFns`] and [`RefinementFns`] hold a plain function pointer for
//! every entry the ABI requires, and an `Option` only for an entry the ABI
//! declares optional, so callers never test for NULL.
//!
//! [`Library::declared_params`] reads a slot's parameter declarations
//! (ABI 1.1) on demand, so a malformed declaration never stops a library
//! from loading.

use std::ffi::{CStr, c_char};
use std::fmt;
use std::mem;
use std::path::{Path, PathBuf};

use annvil_abi::ffi;

use crate::describe::{DeclaredRange, ParamInfo};
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

impl LoadError {
    fn new(library: &Path, check: &'static str, expected: String, found: String) -> LoadError {
        LoadError {
            library: library.to_path_buf(),
            check,
            expected,
            found,
        }
    }
}

/// A slot's `params` entry (ABI 1.1): its parameter declarations.
pub type ParamsFn = unsafe extern "C" fn(count: *mut usize) -> *const ffi::annvil_param_info;

/// The construction slot's functions, validated by the loader (see
/// `annvil_construction_v1` in annvil.h for each entry's contract).
#[derive(Debug, Clone, Copy)]
pub struct ConstructionFns {
    /// Builds a graph.
    pub build: unsafe extern "C" fn(
        base: *const ffi::annvil_vectors,
        metric: ffi::annvil_metric,
        params: *const ffi::annvil_params,
        threads: u32,
        out: *mut *mut ffi::annvil_graph,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Fills the standard view of a graph.
    pub graph_view: unsafe extern "C" fn(
        graph: *const ffi::annvil_graph,
        out: *mut ffi::annvil_graph_view,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Bytes the graph owns.
    pub graph_memory_bytes: unsafe extern "C" fn(graph: *const ffi::annvil_graph) -> usize,
    /// Frees a graph.
    pub graph_destroy: unsafe extern "C" fn(graph: *mut ffi::annvil_graph),
    /// Optional: the build parameter declarations (ABI 1.1).
    pub params: Option<ParamsFn>,
}

/// The search slot's functions, validated by the loader (see
/// `annvil_search_v1` in annvil.h for each entry's contract).
#[derive(Debug, Clone, Copy)]
pub struct SearchFns {
    /// Prepares a searcher over a graph view.
    pub prepare: unsafe extern "C" fn(
        base: *const ffi::annvil_vectors,
        view: *const ffi::annvil_graph_view,
        metric: ffi::annvil_metric,
        params: *const ffi::annvil_params,
        out: *mut *mut ffi::annvil_searcher,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Sets the swept knobs.
    pub configure: unsafe extern "C" fn(
        searcher: *mut ffi::annvil_searcher,
        params: *const ffi::annvil_params,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Creates per-thread scratch space.
    pub context_new: unsafe extern "C" fn(
        searcher: *const ffi::annvil_searcher,
        out: *mut *mut ffi::annvil_search_context,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Searches one query.
    pub search: unsafe extern "C" fn(
        context: *mut ffi::annvil_search_context,
        query: *const f32,
        dim: usize,
        n: usize,
        ids: *mut u32,
        distances: *mut f32,
        found: *mut usize,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Bytes the searcher owns.
    pub searcher_memory_bytes: unsafe extern "C" fn(searcher: *const ffi::annvil_searcher) -> usize,
    /// Bytes a context owns.
    pub context_memory_bytes:
        unsafe extern "C" fn(context: *const ffi::annvil_search_context) -> usize,
    /// Optional: distance computations a context has made.
    pub context_distance_count:
        Option<unsafe extern "C" fn(context: *const ffi::annvil_search_context) -> u64>,
    /// Frees a context.
    pub context_destroy: unsafe extern "C" fn(context: *mut ffi::annvil_search_context),
    /// Frees a searcher.
    pub searcher_destroy: unsafe extern "C" fn(searcher: *mut ffi::annvil_searcher),
    /// Optional: the search parameter declarations (ABI 1.1).
    pub params: Option<ParamsFn>,
    /// Optional (ABI 1.2): searches many queries in one call.
    pub search_batch: Option<
        unsafe extern "C" fn(
            context: *mut ffi::annvil_search_context,
            queries: *const f32,
            count: usize,
            dim: usize,
            n: usize,
            ids: *mut u32,
            distances: *mut f32,
            found: *mut usize,
            error: *mut ffi::annvil_error,
        ) -> ffi::annvil_status,
    >,
}

/// The refinement slot's functions, validated by the loader (see
/// `annvil_refinement_v1` in annvil.h for each entry's contract).
#[derive(Debug, Clone, Copy)]
pub struct RefinementFns {
    /// Prepares a refiner.
    pub prepare: unsafe extern "C" fn(
        base: *const ffi::annvil_vectors,
        metric: ffi::annvil_metric,
        params: *const ffi::annvil_params,
        out: *mut *mut ffi::annvil_refiner,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Creates per-thread scratch space.
    pub context_new: unsafe extern "C" fn(
        refiner: *const ffi::annvil_refiner,
        out: *mut *mut ffi::annvil_refine_context,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Refines one query's candidates.
    pub refine: unsafe extern "C" fn(
        context: *mut ffi::annvil_refine_context,
        query: *const f32,
        dim: usize,
        candidates: *const u32,
        candidate_distances: *const f32,
        num_candidates: usize,
        k: usize,
        ids: *mut u32,
        distances: *mut f32,
        found: *mut usize,
        error: *mut ffi::annvil_error,
    ) -> ffi::annvil_status,
    /// Bytes the refiner owns.
    pub refiner_memory_bytes: unsafe extern "C" fn(refiner: *const ffi::annvil_refiner) -> usize,
    /// Bytes a context owns.
    pub context_memory_bytes:
        unsafe extern "C" fn(context: *const ffi::annvil_refine_context) -> usize,
    /// Frees a context.
    pub context_destroy: unsafe extern "C" fn(context: *mut ffi::annvil_refine_context),
    /// Frees a refiner.
    pub refiner_destroy: unsafe extern "C" fn(refiner: *mut ffi::annvil_refiner),
    /// Optional: the refinement parameter declarations (ABI 1.1).
    pub params: Option<ParamsFn>,
}

/// A slot table as the C ABI lays it out, and its validated form.
trait SlotTable: Default {
    /// The table's name in refusals.
    const NAME: &'static str;
    /// Bytes of the table's ABI 1.0 layout: `params` (1.1) starts there.
    const MIN_SIZE: usize;
    /// The table with every required entry present.
    type Validated;
    /// The validated table, or the name of the first required entry that
    /// is NULL.
    fn validate(&self) -> Result<Self::Validated, &'static str>;
}

/// A required entry, or its name when it is NULL.
fn required<F>(entry: Option<F>, name: &'static str) -> Result<F, &'static str> {
    entry.ok_or(name)
}

impl SlotTable for ffi::annvil_construction_v1 {
    const NAME: &'static str = "construction table";
    const MIN_SIZE: usize = mem::offset_of!(ffi::annvil_construction_v1, params);
    type Validated = ConstructionFns;
    fn validate(&self) -> Result<ConstructionFns, &'static str> {
        Ok(ConstructionFns {
            build: required(self.build, "build")?,
            graph_view: required(self.graph_view, "graph_view")?,
            graph_memory_bytes: required(self.graph_memory_bytes, "graph_memory_bytes")?,
            graph_destroy: required(self.graph_destroy, "graph_destroy")?,
            params: self.params,
        })
    }
}

impl SlotTable for ffi::annvil_search_v1 {
    const NAME: &'static str = "search table";
    const MIN_SIZE: usize = mem::offset_of!(ffi::annvil_search_v1, params);
    type Validated = SearchFns;
    fn validate(&self) -> Result<SearchFns, &'static str> {
        Ok(SearchFns {
            prepare: required(self.prepare, "prepare")?,
            configure: required(self.configure, "configure")?,
            context_new: required(self.context_new, "context_new")?,
            search: required(self.search, "search")?,
            searcher_memory_bytes: required(self.searcher_memory_bytes, "searcher_memory_bytes")?,
            context_memory_bytes: required(self.context_memory_bytes, "context_memory_bytes")?,
            context_distance_count: self.context_distance_count,
            context_destroy: required(self.context_destroy, "context_destroy")?,
            searcher_destroy: required(self.searcher_destroy, "searcher_destroy")?,
            params: self.params,
            search_batch: self.search_batch,
        })
    }
}

impl SlotTable for ffi::annvil_refinement_v1 {
    const NAME: &'static str = "refinement table";
    const MIN_SIZE: usize = mem::offset_of!(ffi::annvil_refinement_v1, params);
    type Validated = RefinementFns;
    fn validate(&self) -> Result<RefinementFns, &'static str> {
        Ok(RefinementFns {
            prepare: required(self.prepare, "prepare")?,
            context_new: required(self.context_new, "context_new")?,
            refine: required(self.refine, "refine")?,
            refiner_memory_bytes: required(self.refiner_memory_bytes, "refiner_memory_bytes")?,
            context_memory_bytes: required(self.context_memory_bytes, "context_memory_bytes")?,
            context_destroy: required(self.context_destroy, "context_destroy")?,
            refiner_destroy: required(self.refiner_destroy, "refiner_destroy")?,
            params: self.params,
        })
    }
}

/// A loaded library's descriptor, copied out field by field, with its slot
/// tables validated.
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
    pub construction: Option<ConstructionFns>,
    /// Search table, if provided.
    pub search: Option<SearchFns>,
    /// Refinement table, if provided.
    pub refinement: Option<RefinementFns>,
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

/// The signature of `annvil_entry_v1`.
type EntryFn = unsafe extern "C" fn() -> *const ffi::annvil_descriptor;

/// Opens `path` and validates it; on success the library stays loaded for
/// the life of the process.
pub fn open(path: &Path) -> Result<&'static Library, LoadError> {
    let lib = open_shared_library(path)?;
    let entry = entry_point(&lib, path)?;
    let desc = read_descriptor(entry, path)?;
    let library = library_of(&desc, path)?;
    // Never unloaded: see the module documentation.
    mem::forget(lib);
    Ok(Box::leak(Box::new(library)))
}

/// Loads the file with every symbol resolved now (`RTLD_NOW`).
fn open_shared_library(path: &Path) -> Result<libloading::os::unix::Library, LoadError> {
    // SAFETY: loading a library runs its initialisers; variant libraries are
    // trusted to the extent that they run in an isolated worker process.
    unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
    }
    .map_err(|e| {
        LoadError::new(
            path,
            "load (RTLD_NOW)",
            "a loadable shared library".into(),
            e.to_string(),
        )
    })
}

/// The library's `annvil_entry_v1`; when it is missing, the refusal names
/// the other major version the library speaks, if any.
fn entry_point(lib: &libloading::os::unix::Library, path: &Path) -> Result<EntryFn, LoadError> {
    // SAFETY: the symbol's type is `annvil_entry_v1_fn` by the contract.
    if let Ok(entry) = unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) } {
        return Ok(*entry);
    }
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
    Err(LoadError::new(
        path,
        "entry symbol",
        format!("exported symbol `{ENTRY_SYMBOL}`"),
        found,
    ))
}

/// Calls the entry and copies out the descriptor after checking its prefix:
/// non-NULL, magic, ABI major, and a `struct_size` covering ABI 1.0.
fn read_descriptor(entry: EntryFn, path: &Path) -> Result<ffi::annvil_descriptor, LoadError> {
    // SAFETY: the entry takes no arguments and returns a pointer to a static
    // descriptor (contract).
    let raw = unsafe { entry() };
    if raw.is_null() {
        return Err(LoadError::new(
            path,
            "descriptor",
            "a descriptor pointer".into(),
            "NULL".into(),
        ));
    }
    // SAFETY: every major version's descriptor starts with this prefix.
    let prefix = unsafe { raw.cast::<DescriptorPrefix>().read_unaligned() };
    check_prefix(&prefix, path)?;
    // SAFETY: the descriptor is at least its ABI 1.0 size (checked above);
    // only the 1.0 fields are read.
    Ok(unsafe { read_covered(raw, prefix.struct_size) })
}

/// Refuses a descriptor of another format, another major version, or one
/// smaller than the ABI 1.0 descriptor.
fn check_prefix(prefix: &DescriptorPrefix, path: &Path) -> Result<(), LoadError> {
    if prefix.magic != ffi::ANNVIL_MAGIC {
        return Err(LoadError::new(
            path,
            "magic",
            format!("{:#010x} (\"ANNV\")", ffi::ANNVIL_MAGIC),
            format!("{:#010x}", prefix.magic),
        ));
    }
    if prefix.abi_major != ffi::ANNVIL_ABI_MAJOR {
        return Err(LoadError::new(
            path,
            "ABI major version",
            ffi::ANNVIL_ABI_MAJOR.to_string(),
            prefix.abi_major.to_string(),
        ));
    }
    let minimum = mem::size_of::<ffi::annvil_descriptor>();
    if prefix.struct_size < minimum {
        return Err(LoadError::new(
            path,
            "descriptor struct_size",
            format!("at least {minimum} bytes (ABI 1.0)"),
            format!("{} bytes", prefix.struct_size),
        ));
    }
    Ok(())
}

/// The descriptor's contents as owned data: its strings checked, its slot
/// tables read (each `struct_size` covering its ABI 1.0 layout), then
/// validated (every required function non-NULL).
fn library_of(desc: &ffi::annvil_descriptor, path: &Path) -> Result<Library, LoadError> {
    // SAFETY: the descriptor's name is NULL or a static NUL-terminated
    // string (contract).
    let name = unsafe { c_text(desc.name, "descriptor name", path) }?;
    // SAFETY: the version is NULL or a static NUL-terminated string
    // (contract).
    let version = unsafe { c_text(desc.version, "descriptor version", path) }?;
    // SAFETY: a table pointer is NULL or points at a static table whose
    // first field is its struct_size (contract); read_table checks that size.
    let construction = unsafe { read_table(desc.construction, path) }?;
    // SAFETY: as for the construction table.
    let search = unsafe { read_table(desc.search, path) }?;
    // SAFETY: as for the construction table.
    let refinement = unsafe { read_table(desc.refinement, path) }?;
    Ok(Library {
        path: path.to_path_buf(),
        name,
        version,
        abi_minor: desc.abi_minor,
        flags: desc.flags,
        construction: validate_table(construction, path)?,
        search: validate_table(search, path)?,
        refinement: validate_table(refinement, path)?,
    })
}

/// A table's validated form; refused when a required function is NULL.
fn validate_table<T: SlotTable>(
    table: Option<T>,
    path: &Path,
) -> Result<Option<T::Validated>, LoadError> {
    let Some(table) = table else {
        return Ok(None);
    };
    table.validate().map(Some).map_err(|entry| {
        LoadError::new(path, T::NAME, format!("non-NULL `{entry}`"), "NULL".into())
    })
}

/// An owned copy of a static C string of the library at `path`.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string.
unsafe fn c_text(p: *const c_char, field: &'static str, path: &Path) -> Result<String, LoadError> {
    let refuse =
        |expected: &str, found: &str| LoadError::new(path, field, expected.into(), found.into());
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
/// the table's ABI 1.0 size; fields beyond the size read as zero (NULL).
///
/// # Safety
/// `table` must be NULL or point at a table starting with `usize struct_size`
/// and valid for `struct_size` bytes.
unsafe fn read_table<T: SlotTable>(table: *const T, path: &Path) -> Result<Option<T>, LoadError> {
    if table.is_null() {
        return Ok(None);
    }
    // SAFETY: the first field of every table is its usize struct_size.
    let size = unsafe { table.cast::<usize>().read_unaligned() };
    if size < T::MIN_SIZE {
        return Err(LoadError::new(
            path,
            T::NAME,
            format!("struct_size of at least {} bytes (ABI 1.0)", T::MIN_SIZE),
            format!("{size} bytes"),
        ));
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
                self.construction.and_then(|t| t.params),
                "construction parameter declarations",
            ),
            SlotKind::Search => (
                self.search.and_then(|t| t.params),
                "search parameter declarations",
            ),
            SlotKind::Refinement => (
                self.refinement.and_then(|t| t.params),
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
        let refuse = |expected, found| LoadError::new(&self.path, check, expected, found);
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
            ffi::ANNVIL_PARAM_INT => DeclaredRange::Int {
                min: info.min,
                max: info.max,
            },
            ffi::ANNVIL_PARAM_FLOAT => DeclaredRange::Float {
                min: info.min,
                max: info.max,
            },
            ffi::ANNVIL_PARAM_CHOICE => DeclaredRange::Choice {
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
}
