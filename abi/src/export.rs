//! The generic `extern "C"` trampolines behind the tables that
//! [`export_variant!`](crate::export_variant) emits. Not a public API: the
//! macro is the only intended caller.
//!
//! Every trampoline converts the raw arguments into SDK types, runs the slot
//! method inside `catch_unwind`, and turns an [`Error`] or a panic into a
//! status code plus a message in the host's error buffer.

use std::any::Any;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::{mem, ptr, slice};

use crate::data::{Base, Graph, GraphView, Metric, Neighbors, Vectors};
use crate::declare::{ParamRange, ParamSpec};
use crate::error::{Error, Result, StatusCode};
use crate::ffi;
use crate::params::Params;
use crate::slots::{Construction, Refine, Search};

/// A descriptor that can live in a `static`.
pub struct StaticDescriptor(ffi::annvil_descriptor);

// SAFETY: the descriptor only holds pointers to static, immutable data
// (string literals and static tables), so sharing it between threads is safe.
unsafe impl Sync for StaticDescriptor {}

impl StaticDescriptor {
    /// A descriptor for this ABI version with the given identity and tables.
    pub const fn new(
        name: &'static CStr,
        version: &'static CStr,
        flags: u64,
        construction: Option<&'static ffi::annvil_construction_v1>,
        search: Option<&'static ffi::annvil_search_v1>,
        refinement: Option<&'static ffi::annvil_refinement_v1>,
    ) -> StaticDescriptor {
        StaticDescriptor(ffi::annvil_descriptor {
            magic: ffi::ANNVIL_MAGIC,
            abi_major: ffi::ANNVIL_ABI_MAJOR,
            abi_minor: ffi::ANNVIL_ABI_MINOR,
            reserved: 0,
            struct_size: mem::size_of::<ffi::annvil_descriptor>(),
            name: name.as_ptr(),
            version: version.as_ptr(),
            flags,
            construction: match construction {
                Some(t) => t,
                None => ptr::null(),
            },
            search: match search {
                Some(t) => t,
                None => ptr::null(),
            },
            refinement: match refinement {
                Some(t) => t,
                None => ptr::null(),
            },
        })
    }

    /// The pointer `annvil_entry_v1` returns.
    pub const fn as_ptr(&'static self) -> *const ffi::annvil_descriptor {
        &self.0
    }
}

/// A `&CStr` from a string literal ending in NUL (compile-time checked).
pub const fn c_str(with_nul: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(with_nul.as_bytes()) {
        Ok(s) => s,
        Err(_) => panic!("string must end in one NUL and contain no other"),
    }
}

/// The descriptor flags a search slot implies.
pub const fn search_flags<S: Search>() -> u64 {
    if S::NEEDS_NATIVE_GRAPH {
        ffi::ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH
    } else {
        0
    }
}

/// The `params` function of a slot table (ABI 1.1).
pub type ParamsFn = unsafe extern "C" fn(count: *mut usize) -> *const ffi::annvil_param_info;

/// A slot's declarations in their C form, built on first use and kept for
/// the library's lifetime. [`export_variant!`](crate::export_variant) puts
/// one in a `static` per slot, behind that slot's [`ParamsFn`].
pub struct ParamTable {
    specs: &'static [ParamSpec],
    built: OnceLock<CParams>,
}

/// The C array and the strings its pointers point into.
struct CParams {
    infos: Vec<ffi::annvil_param_info>,
    _strings: Vec<CString>,
}

// SAFETY: the raw pointers in `infos` point into the heap buffers of
// `_strings` (which never move, change or drop while the value lives) or
// are NULL; the value is immutable after construction.
unsafe impl Send for CParams {}
// SAFETY: as above.
unsafe impl Sync for CParams {}

impl CParams {
    fn new(specs: &[ParamSpec]) -> CParams {
        let mut strings = Vec::new();
        // A CString's buffer is its own heap allocation: moving the CString
        // into `strings` leaves the pointer valid.
        let mut keep = |s: String| -> *const c_char {
            let s = CString::new(s).expect("ParamSpec's constructors exclude NUL bytes");
            let p = s.as_ptr();
            strings.push(s);
            p
        };
        let infos = specs
            .iter()
            .map(|spec| {
                let (kind, min, max, choices) = match spec.range() {
                    ParamRange::Int { min, max } => {
                        (ffi::ANNVIL_PARAM_INT, min as f64, max as f64, ptr::null())
                    }
                    ParamRange::Float { min, max } => {
                        (ffi::ANNVIL_PARAM_FLOAT, min, max, ptr::null())
                    }
                    ParamRange::Choice(choices) => {
                        (ffi::ANNVIL_PARAM_CHOICE, 0.0, 0.0, keep(choices.join("|")))
                    }
                };
                ffi::annvil_param_info {
                    struct_size: mem::size_of::<ffi::annvil_param_info>(),
                    name: keep(spec.name().to_owned()),
                    kind,
                    flags: if spec.is_knob() {
                        ffi::ANNVIL_PARAM_FLAG_KNOB
                    } else {
                        0
                    },
                    min,
                    max,
                    choices,
                    default_value: keep(spec.default().to_owned()),
                    doc: keep(spec.doc().to_owned()),
                }
            })
            .collect();
        CParams {
            infos,
            _strings: strings,
        }
    }
}

impl ParamTable {
    /// A table for `specs`; nothing is built until the host asks.
    pub const fn new(specs: &'static [ParamSpec]) -> ParamTable {
        ParamTable {
            specs,
            built: OnceLock::new(),
        }
    }

    /// The body of a slot's [`ParamsFn`]: the C array (built once, then
    /// shared), with its length written to `*count`; NULL and 0 when the
    /// slot declares nothing.
    ///
    /// # Safety
    /// `count` must be NULL or valid for one write (the host's out-pointer).
    pub unsafe fn export(&'static self, count: *mut usize) -> *const ffi::annvil_param_info {
        let infos = guard_value(&[][..], || {
            self.built
                .get_or_init(|| CParams::new(self.specs))
                .infos
                .as_slice()
        });
        // SAFETY: NULL or valid for a write (caller).
        if let Some(count) = unsafe { count.as_mut() } {
            *count = infos.len();
        }
        if infos.is_empty() {
            ptr::null()
        } else {
            infos.as_ptr()
        }
    }
}

/// The table's `params` entry: `f` when the slot declares anything, else
/// NULL.
const fn params_entry(specs: &[ParamSpec], f: ParamsFn) -> Option<ParamsFn> {
    if specs.is_empty() { None } else { Some(f) }
}

// ---------------------------------------------------------------------------
// Shared conversions

/// Writes `message` (truncated at a character boundary) into the host's
/// error buffer.
fn write_error(error: *mut ffi::annvil_error, message: &str) {
    // SAFETY: the contract makes `error` NULL or a valid host-owned buffer
    // descriptor for the duration of the call.
    let Some(error) = (unsafe { error.as_mut() }) else {
        return;
    };
    if error.message.is_null() || error.capacity == 0 {
        return;
    }
    let mut len = message.len().min(error.capacity - 1);
    while !message.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: `message` points at `capacity` writable bytes (contract) and
    // `len + 1 <= capacity`.
    unsafe {
        ptr::copy_nonoverlapping(message.as_ptr(), error.message.cast::<u8>(), len);
        *error.message.add(len) = 0;
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic with a non-string payload"
    }
}

/// Runs `body`, mapping an error or a panic to a status and a message.
fn guard(error: *mut ffi::annvil_error, body: impl FnOnce() -> Result<()>) -> ffi::annvil_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ffi::ANNVIL_OK,
        Ok(Err(e)) => {
            write_error(error, &e.message);
            e.status.code()
        }
        Err(payload) => {
            write_error(error, &format!("panic: {}", panic_message(&*payload)));
            StatusCode::Panic.code()
        }
    }
}

/// Runs an infallible accessor; a panic yields `fallback`.
fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Borrows a host array of `len` elements; NULL is accepted only when empty.
///
/// # Safety
/// `data` must be NULL or valid for `len` reads for `'a`.
pub(crate) unsafe fn host_slice<'a, T>(data: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::invalid(format!("{what} pointer is NULL")));
    }
    // SAFETY: non-NULL and valid for `len` reads (caller).
    Ok(unsafe { slice::from_raw_parts(data, len) })
}

/// Borrows a host output buffer of `len` elements.
///
/// # Safety
/// `data` must be NULL or valid for `len` writes for `'a`, unaliased.
unsafe fn host_slice_mut<'a, T>(data: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if data.is_null() {
        return Err(Error::invalid(format!("{what} pointer is NULL")));
    }
    // SAFETY: non-NULL, valid for `len` writes and unaliased (caller).
    Ok(unsafe { slice::from_raw_parts_mut(data, len) })
}

/// Frees a handle made by [`write_handle`] from a `Box<T>`; NULL is a no-op.
///
/// # Safety
/// `handle` must be NULL or a pointer [`write_handle`] produced from a
/// `Box<T>`, handed back exactly once (the contract's `destroy` rule).
unsafe fn destroy_handle<H, T>(handle: *mut H) {
    if handle.is_null() {
        return;
    }
    // SAFETY: produced by Box::into_raw for a Box<T> and returned once (caller).
    let boxed = unsafe { Box::from_raw(handle.cast::<T>()) };
    guard_value((), || drop(boxed));
}

/// Writes a new handle into a host out-pointer.
///
/// # Safety
/// `out` must be NULL or valid for one write.
unsafe fn write_handle<H, T>(out: *mut *mut H, value: Box<T>) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid("output handle pointer is NULL"));
    }
    // SAFETY: `out` is valid for one write (caller); ownership of the box
    // moves to the host until it calls the matching destroy.
    unsafe { out.write(Box::into_raw(value).cast::<H>()) };
    Ok(())
}

/// The base vectors of a prepare/build call, kept until the handle dies.
///
/// # Safety
/// `base` must be NULL or point at a valid `annvil_vectors` whose data stays
/// valid and unchanged until the handle made from it is destroyed (contract).
unsafe fn base_from(base: *const ffi::annvil_vectors) -> Result<Base> {
    // SAFETY: NULL or valid for reads (caller).
    let base = unsafe { base.as_ref() }.ok_or_else(|| Error::invalid("base vectors are NULL"))?;
    if base.struct_size < mem::size_of::<ffi::annvil_vectors>() {
        return Err(Error::invalid(format!(
            "annvil_vectors.struct_size is {}, expected at least {}",
            base.struct_size,
            mem::size_of::<ffi::annvil_vectors>()
        )));
    }
    let len = base
        .count
        .checked_mul(base.dim)
        .ok_or_else(|| Error::invalid("base vector count * dim overflows"))?;
    // SAFETY: `data` holds count * dim floats that outlive the handle
    // (caller), hence the 'static borrow.
    let data = unsafe { host_slice::<f32>(base.data, len, "base vector data") }?;
    Vectors::new(data, base.dim)
}

/// # Safety
/// `params` must be NULL or point at a valid `annvil_params` for the call.
unsafe fn params_from(params: *const ffi::annvil_params) -> Result<Params> {
    // SAFETY: NULL or valid for reads (caller).
    let Some(params) = (unsafe { params.as_ref() }) else {
        return Ok(Params::default());
    };
    // SAFETY: `items` holds `count` entries for the call (caller).
    let items = unsafe { host_slice(params.items, params.count, "parameter list") }?;
    let text = |p: *const c_char, what: &str| -> Result<String> {
        if p.is_null() {
            return Err(Error::invalid(format!("parameter {what} is NULL")));
        }
        // SAFETY: non-NULL and NUL-terminated (contract).
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str()
            .map(str::to_owned)
            .map_err(|_| Error::invalid(format!("parameter {what} is not UTF-8")))
    };
    let pairs = items
        .iter()
        .map(|item| Ok((text(item.key, "key")?, text(item.value, "value")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Params::new(pairs))
}

fn metric_from(raw: ffi::annvil_metric) -> Result<Metric> {
    Metric::from_raw(raw).ok_or_else(|| Error::unsupported(format!("unknown metric code {raw}")))
}

fn check_dim(dim: usize, expected: usize) -> Result<()> {
    if dim == expected {
        Ok(())
    } else {
        Err(Error::new(
            StatusCode::DimensionMismatch,
            format!("query has dimension {dim}, the base vectors have {expected}"),
        ))
    }
}

/// Copies the fields of `value` that the reader's `struct_size` covers into
/// `out`, keeping the reader's `struct_size`.
///
/// # Safety
/// `out` must be valid for `reader_size` bytes of writes, and `T` must start
/// with a `usize` struct_size field.
unsafe fn write_covered<T>(value: &T, out: *mut T, reader_size: usize) {
    let len = reader_size.min(mem::size_of::<T>());
    let skip = mem::size_of::<usize>().min(len);
    // SAFETY: both regions are valid for `len` bytes and do not overlap; the
    // first `skip` bytes (struct_size) are left as the reader set them.
    unsafe {
        ptr::copy_nonoverlapping(
            (value as *const T).cast::<u8>().add(skip),
            out.cast::<u8>().add(skip),
            len - skip,
        );
    }
}

// ---------------------------------------------------------------------------
// Construction

/// What a construction's native handle points at: the graph object and the
/// type name that identifies it.
struct NativeHandle {
    object: &'static (dyn Any + Send + Sync),
    tag: &'static str,
}

struct GraphBox<C> {
    graph: C,
    levels: Vec<ffi::annvil_graph_level>,
    view: ffi::annvil_graph_view,
    native: NativeHandle,
    tag: CString,
}

impl<C: Construction> GraphBox<C> {
    fn new(graph: C, num_nodes: usize) -> Result<Box<GraphBox<C>>> {
        let type_name = std::any::type_name::<C>();
        let mut boxed = Box::new(GraphBox {
            graph,
            levels: Vec::new(),
            view: ffi::annvil_graph_view::default(),
            native: NativeHandle {
                object: &(),
                tag: type_name,
            },
            tag: CString::new(type_name).map_err(|e| Error::internal(e.to_string()))?,
        });
        // SAFETY: the graph lives in this box, which never moves and is only
        // freed by `graph_destroy`; the contract destroys every searcher that
        // could hold this reference before that.
        let object: &'static C = unsafe { &*ptr::addr_of!(boxed.graph) };
        boxed.native.object = object;
        let view = object.view();
        view.validate(num_nodes)?;
        boxed.levels = view
            .levels
            .iter()
            .map(|l| ffi::annvil_graph_level {
                offsets: l.offsets.as_ptr(),
                neighbors: l.neighbors.as_ptr(),
            })
            .collect();
        boxed.view = ffi::annvil_graph_view {
            struct_size: mem::size_of::<ffi::annvil_graph_view>(),
            num_nodes: view.num_nodes,
            num_levels: view.levels.len() as u32,
            levels: boxed.levels.as_ptr(),
            num_entry_points: view.entry_points.len() as u32,
            entry_points: view.entry_points.as_ptr(),
            native: ptr::addr_of!(boxed.native).cast_mut().cast(),
            native_tag: boxed.tag.as_ptr(),
        };
        Ok(boxed)
    }
}

unsafe extern "C" fn build<C: Construction>(
    base: *const ffi::annvil_vectors,
    metric: ffi::annvil_metric,
    params: *const ffi::annvil_params,
    threads: u32,
    out: *mut *mut ffi::annvil_graph,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: the host passes valid inputs per the construction contract.
        let (base, mut params) = unsafe { (base_from(base)?, params_from(params)?) };
        let metric = metric_from(metric)?;
        let graph = C::build(base, metric, &mut params, threads.max(1) as usize)?;
        params.finish()?;
        let boxed = GraphBox::new(graph, base.len())?;
        // SAFETY: `out` is a valid host out-pointer (contract).
        unsafe { write_handle(out, boxed) }
    })
}

unsafe extern "C" fn graph_view<C: Construction>(
    graph: *const ffi::annvil_graph,
    out: *mut ffi::annvil_graph_view,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: `graph` was made by `build::<C>` (contract); `out` is NULL
        // or a valid host struct whose struct_size the host set.
        let (graph, reader_size) = unsafe {
            let graph = graph.cast::<GraphBox<C>>().as_ref();
            (graph, out.as_ref().map(|o| o.struct_size))
        };
        let graph = graph.ok_or_else(|| Error::invalid("graph is NULL"))?;
        let reader_size = reader_size.ok_or_else(|| Error::invalid("output view is NULL"))?;
        // SAFETY: `out` is valid for `reader_size` bytes (contract).
        unsafe { write_covered(&graph.view, out, reader_size) };
        Ok(())
    })
}

unsafe extern "C" fn graph_memory_bytes<C: Construction>(graph: *const ffi::annvil_graph) -> usize {
    // SAFETY: `graph` is NULL or was made by `build::<C>` (contract).
    let graph = unsafe { graph.cast::<GraphBox<C>>().as_ref() };
    guard_value(0, || {
        graph.map_or(0, |g| {
            g.graph.memory_bytes() + g.levels.capacity() * mem::size_of::<ffi::annvil_graph_level>()
        })
    })
}

unsafe extern "C" fn graph_destroy<C: Construction>(graph: *mut ffi::annvil_graph) {
    // SAFETY: the host hands back a handle this library made, once (contract).
    unsafe { destroy_handle::<_, GraphBox<C>>(graph) }
}

/// The construction table for `C`; `params` serves `C::PARAMS` (see
/// [`ParamTable`]).
pub const fn construction_table<C: Construction>(params: ParamsFn) -> ffi::annvil_construction_v1 {
    ffi::annvil_construction_v1 {
        struct_size: mem::size_of::<ffi::annvil_construction_v1>(),
        build: Some(build::<C>),
        graph_view: Some(graph_view::<C>),
        graph_memory_bytes: Some(graph_memory_bytes::<C>),
        graph_destroy: Some(graph_destroy::<C>),
        params: params_entry(C::PARAMS, params),
    }
}

// ---------------------------------------------------------------------------
// Search

struct SearcherBox<S> {
    searcher: S,
    dim: usize,
}

struct SearchContextBox<S: Search> {
    searcher: *const SearcherBox<S>,
    scratch: S::Context,
}

/// The graph a search slot receives.
///
/// # Safety
/// `view` must be NULL or a valid view whose data outlives the searcher, and
/// a non-NULL `native` must come from this library's `GraphBox` (the host
/// guarantees it is NULL across libraries).
unsafe fn graph_from(view: *const ffi::annvil_graph_view) -> Result<Graph> {
    // SAFETY: NULL or valid for reads (caller).
    let Some(view) = (unsafe { view.as_ref() }) else {
        return Ok(Graph {
            view: GraphView::default(),
            native: None,
        });
    };
    if view.struct_size < mem::size_of::<ffi::annvil_graph_view>() {
        return Err(Error::invalid(format!(
            "annvil_graph_view.struct_size is {}, expected at least {}",
            view.struct_size,
            mem::size_of::<ffi::annvil_graph_view>()
        )));
    }
    // SAFETY: the view's arrays outlive the searcher (caller).
    let graph_view = unsafe { GraphView::from_ffi(view) }?;
    graph_view.validate(view.num_nodes)?;
    // SAFETY: a non-NULL native handle was made by this library's GraphBox
    // (caller) and lives as long as the graph.
    let native = unsafe { view.native.cast::<NativeHandle>().as_ref() }.map(|h| (h.object, h.tag));
    Ok(Graph {
        view: graph_view,
        native,
    })
}

unsafe extern "C" fn search_prepare<S: Search>(
    base: *const ffi::annvil_vectors,
    view: *const ffi::annvil_graph_view,
    metric: ffi::annvil_metric,
    params: *const ffi::annvil_params,
    out: *mut *mut ffi::annvil_searcher,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: the host passes valid inputs per the search contract.
        let (base, graph, mut params) =
            unsafe { (base_from(base)?, graph_from(view)?, params_from(params)?) };
        if !graph.view.levels.is_empty() && graph.view.num_nodes != base.len() {
            return Err(Error::invalid(format!(
                "graph has {} nodes but there are {} base vectors",
                graph.view.num_nodes,
                base.len()
            )));
        }
        let metric = metric_from(metric)?;
        let searcher = S::prepare(base, &graph, metric, &mut params)?;
        params.finish()?;
        let boxed = Box::new(SearcherBox {
            searcher,
            dim: base.dim(),
        });
        // SAFETY: `out` is a valid host out-pointer (contract).
        unsafe { write_handle(out, boxed) }
    })
}

unsafe extern "C" fn search_configure<S: Search>(
    searcher: *mut ffi::annvil_searcher,
    params: *const ffi::annvil_params,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: `searcher` was made by `search_prepare::<S>` and nothing
        // else uses it during configure (contract).
        let searcher = unsafe { searcher.cast::<SearcherBox<S>>().as_mut() }
            .ok_or_else(|| Error::invalid("searcher is NULL"))?;
        // SAFETY: valid for the call (contract).
        let mut params = unsafe { params_from(params) }?;
        searcher.searcher.configure(&mut params)?;
        params.finish()
    })
}

unsafe extern "C" fn search_context_new<S: Search>(
    searcher: *const ffi::annvil_searcher,
    out: *mut *mut ffi::annvil_search_context,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        let searcher = searcher.cast::<SearcherBox<S>>();
        // SAFETY: `searcher` was made by `search_prepare::<S>` (contract).
        let scratch = unsafe { searcher.as_ref() }
            .ok_or_else(|| Error::invalid("searcher is NULL"))?
            .searcher
            .new_context()?;
        let boxed = Box::new(SearchContextBox::<S> { searcher, scratch });
        // SAFETY: `out` is a valid host out-pointer (contract).
        unsafe { write_handle(out, boxed) }
    })
}

/// The context behind a `search`/`search_batch` handle and its searcher.
///
/// # Safety
/// `context` must be NULL or made by `search_context_new::<S>`, used by this
/// thread only for `'a`; its searcher outlives it (contract).
unsafe fn search_context<'a, S: Search>(
    context: *mut ffi::annvil_search_context,
) -> Result<(&'a mut SearchContextBox<S>, &'a SearcherBox<S>)> {
    // SAFETY: as the caller guarantees.
    let context = unsafe { context.cast::<SearchContextBox<S>>().as_mut() }
        .ok_or_else(|| Error::invalid("search context is NULL"))?;
    // SAFETY: the searcher outlives its contexts (caller).
    let searcher = unsafe { &*context.searcher };
    Ok((context, searcher))
}

#[allow(clippy::too_many_arguments, reason = "mirrors the C signature")]
unsafe extern "C" fn search_search<S: Search>(
    context: *mut ffi::annvil_search_context,
    query: *const f32,
    dim: usize,
    n: usize,
    ids: *mut u32,
    distances: *mut f32,
    found: *mut usize,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: `context` comes from the host per the search contract.
        let (context, searcher) = unsafe { search_context::<S>(context) }?;
        check_dim(dim, searcher.dim)?;
        // SAFETY: `query` holds `dim` floats; `ids` and `distances` are host
        // buffers of `n` elements (contract).
        let (query, ids, distances) = unsafe {
            (
                host_slice(query, dim, "query")?,
                host_slice_mut(ids, n, "ids")?,
                host_slice_mut(distances, n, "distances")?,
            )
        };
        if found.is_null() {
            return Err(Error::invalid("found pointer is NULL"));
        }
        let mut out = Neighbors::new(ids, distances);
        searcher
            .searcher
            .search(&mut context.scratch, query, &mut out)?;
        // SAFETY: non-NULL host out-pointer (contract).
        unsafe { found.write(out.len()) };
        Ok(())
    })
}

#[allow(clippy::too_many_arguments, reason = "mirrors the C signature")]
unsafe extern "C" fn search_search_batch<S: Search>(
    context: *mut ffi::annvil_search_context,
    queries: *const f32,
    count: usize,
    dim: usize,
    n: usize,
    ids: *mut u32,
    distances: *mut f32,
    found: *mut usize,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: `context` comes from the host per the search contract.
        let (context, searcher) = unsafe { search_context::<S>(context) }?;
        check_dim(dim, searcher.dim)?;
        let total = |per: usize| {
            count
                .checked_mul(per)
                .ok_or_else(|| Error::invalid("batch size overflows"))
        };
        let (floats, slots) = (total(dim)?, total(n)?);
        // SAFETY: `queries` holds `count * dim` floats; `ids` and
        // `distances` are host buffers of `count * n` elements and `found`
        // of `count` (contract).
        let (queries, ids, distances, found) = unsafe {
            (
                host_slice(queries, floats, "queries")?,
                host_slice_mut(ids, slots, "ids")?,
                host_slice_mut(distances, slots, "distances")?,
                host_slice_mut(found, count, "found")?,
            )
        };
        if count == 0 {
            return Ok(());
        }
        let queries = Vectors::new(queries, dim)?;
        let mut out: Vec<Neighbors<'_>> = if n == 0 {
            (0..count)
                .map(|_| Neighbors::new(&mut [], &mut []))
                .collect()
        } else {
            ids.chunks_mut(n)
                .zip(distances.chunks_mut(n))
                .map(|(ids, distances)| Neighbors::new(ids, distances))
                .collect()
        };
        searcher
            .searcher
            .search_batch(&mut context.scratch, queries, &mut out)?;
        for (found, out) in found.iter_mut().zip(&out) {
            *found = out.len();
        }
        Ok(())
    })
}

unsafe extern "C" fn searcher_memory_bytes<S: Search>(
    searcher: *const ffi::annvil_searcher,
) -> usize {
    // SAFETY: NULL or made by `search_prepare::<S>` (contract).
    let searcher = unsafe { searcher.cast::<SearcherBox<S>>().as_ref() };
    guard_value(0, || searcher.map_or(0, |s| s.searcher.memory_bytes()))
}

unsafe extern "C" fn search_context_memory_bytes<S: Search>(
    context: *const ffi::annvil_search_context,
) -> usize {
    // SAFETY: NULL or made by `search_context_new::<S>` (contract).
    let context = unsafe { context.cast::<SearchContextBox<S>>().as_ref() };
    guard_value(0, || {
        context.map_or(0, |c| {
            mem::size_of::<SearchContextBox<S>>() + S::context_memory_bytes(&c.scratch)
        })
    })
}

unsafe extern "C" fn search_distance_count<S: Search>(
    context: *const ffi::annvil_search_context,
) -> u64 {
    // SAFETY: NULL or made by `search_context_new::<S>` (contract).
    let context = unsafe { context.cast::<SearchContextBox<S>>().as_ref() };
    guard_value(0, || context.map_or(0, |c| S::distance_count(&c.scratch)))
}

unsafe extern "C" fn search_context_destroy<S: Search>(context: *mut ffi::annvil_search_context) {
    // SAFETY: the host hands back a handle this library made, once (contract).
    unsafe { destroy_handle::<_, SearchContextBox<S>>(context) }
}

unsafe extern "C" fn searcher_destroy<S: Search>(searcher: *mut ffi::annvil_searcher) {
    // SAFETY: the host hands back a handle this library made, once (contract).
    unsafe { destroy_handle::<_, SearcherBox<S>>(searcher) }
}

/// The search table for `S`; `params` serves `S::PARAMS` (see
/// [`ParamTable`]).
pub const fn search_table<S: Search>(params: ParamsFn) -> ffi::annvil_search_v1 {
    ffi::annvil_search_v1 {
        struct_size: mem::size_of::<ffi::annvil_search_v1>(),
        prepare: Some(search_prepare::<S>),
        configure: Some(search_configure::<S>),
        context_new: Some(search_context_new::<S>),
        search: Some(search_search::<S>),
        searcher_memory_bytes: Some(searcher_memory_bytes::<S>),
        context_memory_bytes: Some(search_context_memory_bytes::<S>),
        context_distance_count: if S::COUNTS_DISTANCES {
            Some(search_distance_count::<S>)
        } else {
            None
        },
        context_destroy: Some(search_context_destroy::<S>),
        searcher_destroy: Some(searcher_destroy::<S>),
        params: params_entry(S::PARAMS, params),
        search_batch: Some(search_search_batch::<S>),
    }
}

// ---------------------------------------------------------------------------
// Refinement

struct RefinerBox<R> {
    refiner: R,
    dim: usize,
    num_base: usize,
}

struct RefineContextBox<R: Refine> {
    refiner: *const RefinerBox<R>,
    scratch: R::Context,
}

unsafe extern "C" fn refine_prepare<R: Refine>(
    base: *const ffi::annvil_vectors,
    metric: ffi::annvil_metric,
    params: *const ffi::annvil_params,
    out: *mut *mut ffi::annvil_refiner,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: the host passes valid inputs per the refinement contract.
        let (base, mut params) = unsafe { (base_from(base)?, params_from(params)?) };
        let metric = metric_from(metric)?;
        let refiner = R::prepare(base, metric, &mut params)?;
        params.finish()?;
        let boxed = Box::new(RefinerBox {
            refiner,
            dim: base.dim(),
            num_base: base.len(),
        });
        // SAFETY: `out` is a valid host out-pointer (contract).
        unsafe { write_handle(out, boxed) }
    })
}

unsafe extern "C" fn refine_context_new<R: Refine>(
    refiner: *const ffi::annvil_refiner,
    out: *mut *mut ffi::annvil_refine_context,
    error: *mut ffi::annvil_error,
) -> ffi::annvil_status {
    guard(error, || {
        let refiner = refiner.cast::<RefinerBox<R>>();
        // SAFETY: made by `refine_prepare::<R>` (contract).
        let scratch = unsafe { refiner.as_ref() }
            .ok_or_else(|| Error::invalid("refiner is NULL"))?
            .refiner
            .new_context()?;
        let boxed = Box::new(RefineContextBox::<R> { refiner, scratch });
        // SAFETY: `out` is a valid host out-pointer (contract).
        unsafe { write_handle(out, boxed) }
    })
}

#[allow(clippy::too_many_arguments, reason = "mirrors the C signature")]
unsafe extern "C" fn refine_refine<R: Refine>(
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
) -> ffi::annvil_status {
    guard(error, || {
        // SAFETY: made by `refine_context_new::<R>`, used by this thread only;
        // its refiner outlives it (contract).
        let context = unsafe { context.cast::<RefineContextBox<R>>().as_mut() }
            .ok_or_else(|| Error::invalid("refine context is NULL"))?;
        // SAFETY: as above.
        let refiner = unsafe { &*context.refiner };
        check_dim(dim, refiner.dim)?;
        // SAFETY: host arrays of the stated lengths (contract).
        let (query, candidates, candidate_distances, ids, distances) = unsafe {
            (
                host_slice(query, dim, "query")?,
                host_slice(candidates, num_candidates, "candidates")?,
                host_slice(candidate_distances, num_candidates, "candidate distances")?,
                host_slice_mut(ids, k, "ids")?,
                host_slice_mut(distances, k, "distances")?,
            )
        };
        if let Some(&bad) = candidates.iter().find(|&&c| c as usize >= refiner.num_base) {
            return Err(Error::invalid(format!(
                "candidate id {bad} is out of range (there are {} base vectors)",
                refiner.num_base
            )));
        }
        if found.is_null() {
            return Err(Error::invalid("found pointer is NULL"));
        }
        let mut out = Neighbors::new(ids, distances);
        refiner.refiner.refine(
            &mut context.scratch,
            query,
            candidates,
            candidate_distances,
            &mut out,
        )?;
        // SAFETY: non-NULL host out-pointer (contract).
        unsafe { found.write(out.len()) };
        Ok(())
    })
}

unsafe extern "C" fn refiner_memory_bytes<R: Refine>(refiner: *const ffi::annvil_refiner) -> usize {
    // SAFETY: NULL or made by `refine_prepare::<R>` (contract).
    let refiner = unsafe { refiner.cast::<RefinerBox<R>>().as_ref() };
    guard_value(0, || refiner.map_or(0, |r| r.refiner.memory_bytes()))
}

unsafe extern "C" fn refine_context_memory_bytes<R: Refine>(
    context: *const ffi::annvil_refine_context,
) -> usize {
    // SAFETY: NULL or made by `refine_context_new::<R>` (contract).
    let context = unsafe { context.cast::<RefineContextBox<R>>().as_ref() };
    guard_value(0, || {
        context.map_or(0, |c| {
            mem::size_of::<RefineContextBox<R>>() + R::context_memory_bytes(&c.scratch)
        })
    })
}

unsafe extern "C" fn refine_context_destroy<R: Refine>(context: *mut ffi::annvil_refine_context) {
    // SAFETY: the host hands back a handle this library made, once (contract).
    unsafe { destroy_handle::<_, RefineContextBox<R>>(context) }
}

unsafe extern "C" fn refiner_destroy<R: Refine>(refiner: *mut ffi::annvil_refiner) {
    // SAFETY: the host hands back a handle this library made, once (contract).
    unsafe { destroy_handle::<_, RefinerBox<R>>(refiner) }
}

/// The refinement table for `R`; `params` serves `R::PARAMS` (see
/// [`ParamTable`]).
pub const fn refinement_table<R: Refine>(params: ParamsFn) -> ffi::annvil_refinement_v1 {
    ffi::annvil_refinement_v1 {
        struct_size: mem::size_of::<ffi::annvil_refinement_v1>(),
        prepare: Some(refine_prepare::<R>),
        context_new: Some(refine_context_new::<R>),
        refine: Some(refine_refine::<R>),
        refiner_memory_bytes: Some(refiner_memory_bytes::<R>),
        context_memory_bytes: Some(refine_context_memory_bytes::<R>),
        context_destroy: Some(refine_context_destroy::<R>),
        refiner_destroy: Some(refiner_destroy::<R>),
        params: params_entry(R::PARAMS, params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec::int("M", 4, 64, "16", "neighbours per node"),
        ParamSpec::float("alpha", 1.0, 1.5, "1.2", ""),
        ParamSpec::choice("codes", &["f32", "sq8", "sq4"], "f32", "storage").knob(),
    ];

    fn text(p: *const c_char) -> &'static str {
        assert!(!p.is_null());
        // SAFETY: non-NULL pointers in an exported table are NUL-terminated
        // strings that live as long as the static table.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn export_round_trips_every_field_and_returns_one_array() {
        static TABLE: ParamTable = ParamTable::new(SPECS);
        let mut count = usize::MAX;
        // SAFETY: `count` is a valid out-pointer.
        let first = unsafe { TABLE.export(&mut count) };
        assert_eq!(count, 3);
        // SAFETY: the table holds `count` entries for the program's life.
        let infos = unsafe { slice::from_raw_parts(first, count) };
        let size = mem::size_of::<ffi::annvil_param_info>();
        assert!(infos.iter().all(|i| i.struct_size == size));
        let [m, alpha, codes] = infos else {
            unreachable!()
        };
        assert_eq!((text(m.name), m.kind), ("M", ffi::ANNVIL_PARAM_INT));
        assert_eq!((m.min, m.max, m.flags), (4.0, 64.0, 0));
        assert!(m.choices.is_null());
        assert_eq!(
            (text(m.default_value), text(m.doc)),
            ("16", "neighbours per node")
        );
        assert_eq!(alpha.kind, ffi::ANNVIL_PARAM_FLOAT);
        assert_eq!((alpha.min, alpha.max, text(alpha.doc)), (1.0, 1.5, ""));
        assert_eq!(codes.kind, ffi::ANNVIL_PARAM_CHOICE);
        assert_eq!(text(codes.choices), "f32|sq8|sq4");
        assert_eq!(codes.flags, ffi::ANNVIL_PARAM_FLAG_KNOB);
        // SAFETY: as above; a NULL count is allowed and left alone.
        let again = unsafe { TABLE.export(ptr::null_mut()) };
        assert_eq!(again, first, "built once, then shared");
    }

    #[test]
    fn nothing_declared_is_null_and_zero() {
        static EMPTY: ParamTable = ParamTable::new(&[]);
        let mut count = 7;
        // SAFETY: `count` is a valid out-pointer.
        assert!(unsafe { EMPTY.export(&mut count) }.is_null());
        assert_eq!(count, 0);
        unsafe extern "C" fn f(count: *mut usize) -> *const ffi::annvil_param_info {
            // SAFETY: forwarded host out-pointer.
            unsafe { EMPTY.export(count) }
        }
        assert!(params_entry(&[], f).is_none());
        assert!(params_entry(SPECS, f).is_some());
    }
}
