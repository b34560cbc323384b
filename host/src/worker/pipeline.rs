//! Safe wrappers over the slot tables of loaded libraries, used by workers.
//!
//! Lifetimes encode the contract's ownership rules: a [`Graph`] borrows the
//! [`BaseVectors`]; a [`Searcher`] borrows the graph; a [`SearchContext`]
//! borrows the searcher, so `configure` (which takes `&mut Searcher`) cannot
//! run while a context exists; and drops run in reverse order, each through
//! the owning library's `destroy`.

use std::ffi::{CString, c_char};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use annvil_abi::{Metric, StatusCode, ffi};

use super::loader::{ConstructionFns, Library, RefinementFns, SearchFns};
use crate::variant::ParamMap;

/// A slot call that returned an error status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotError {
    /// `construction.build`, `search.search`, ...
    pub call: &'static str,
    /// The raw status code.
    pub status: i32,
    /// The library's message.
    pub message: String,
}

impl SlotError {
    /// The status, if it is one this ABI version defines.
    pub fn known_status(&self) -> Option<StatusCode> {
        StatusCode::from_code(self.status)
    }
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .known_status()
            .map_or("unknown status", StatusCode::name);
        write!(f, "{} returned status {} ({name})", self.call, self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for SlotError {}

/// Result of a slot call.
pub type SlotResult<T> = Result<T, SlotError>;

const ERROR_CAPACITY: usize = 2048;

/// Runs one slot call with a fresh host-owned error buffer.
fn call(
    name: &'static str,
    body: impl FnOnce(*mut ffi::annvil_error) -> ffi::annvil_status,
) -> SlotResult<()> {
    let mut buffer = [0u8; ERROR_CAPACITY];
    let mut error = ffi::annvil_error {
        message: buffer.as_mut_ptr().cast::<c_char>(),
        capacity: ERROR_CAPACITY,
    };
    let status = body(&mut error);
    if status == ffi::ANNVIL_OK {
        return Ok(());
    }
    let end = buffer
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(ERROR_CAPACITY);
    Err(SlotError {
        call: name,
        status,
        message: String::from_utf8_lossy(&buffer[..end]).into_owned(),
    })
}

/// The handle a successful call wrote, or an error when it wrote NULL.
fn returned_handle<T>(handle: *mut T, call: &'static str) -> SlotResult<NonNull<T>> {
    NonNull::new(handle).ok_or_else(|| SlotError {
        call,
        status: StatusCode::Internal.code(),
        message: "returned OK but no handle".into(),
    })
}

/// A parameter map as the C structs the ABI takes.
struct CParams {
    _strings: Vec<CString>,
    items: Vec<ffi::annvil_param>,
}

impl CParams {
    fn new(params: &ParamMap) -> CParams {
        let mut strings = Vec::with_capacity(params.len() * 2);
        let mut items = Vec::with_capacity(params.len());
        for (k, v) in params {
            // Keys and values come from YAML scalars; an interior NUL is
            // replaced so the slot sees (and rejects) a visibly odd value.
            let key = CString::new(k.replace('\0', "?")).expect("NUL replaced");
            let value = CString::new(v.replace('\0', "?")).expect("NUL replaced");
            items.push(ffi::annvil_param {
                key: key.as_ptr(),
                value: value.as_ptr(),
            });
            strings.push(key);
            strings.push(value);
        }
        CParams {
            _strings: strings,
            items,
        }
    }

    fn raw(&self) -> ffi::annvil_params {
        ffi::annvil_params {
            items: self.items.as_ptr(),
            count: self.items.len(),
        }
    }
}

/// Base vectors handed to prepare/build; the struct lives at a stable
/// address for as long as any handle prepared from it.
pub struct BaseVectors<'a> {
    raw: Box<ffi::annvil_vectors>,
    dim: usize,
    _data: PhantomData<&'a [f32]>,
}

impl<'a> BaseVectors<'a> {
    /// Wraps row-major vectors of `dim` floats.
    pub fn new(data: &'a [f32], dim: usize) -> BaseVectors<'a> {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "data is not a whole number of vectors"
        );
        BaseVectors {
            raw: Box::new(ffi::annvil_vectors {
                struct_size: std::mem::size_of::<ffi::annvil_vectors>(),
                data: data.as_ptr(),
                count: data.len() / dim,
                dim,
            }),
            dim,
            _data: PhantomData,
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.raw.count
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.raw.count == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// A built graph, destroyed through its library on drop.
pub struct Graph<'a> {
    library: &'static Library,
    table: &'static ConstructionFns,
    handle: NonNull<ffi::annvil_graph>,
    view: ffi::annvil_graph_view,
    _base: PhantomData<&'a BaseVectors<'a>>,
}

// SAFETY: a graph is immutable after build and its accessors are documented
// as safe to call concurrently (annvil.h, construction slot).
unsafe impl Send for Graph<'_> {}
// SAFETY: as above.
unsafe impl Sync for Graph<'_> {}

fn table<T>(table: &'static Option<T>, library: &Library, slot: &str) -> SlotResult<&'static T> {
    table.as_ref().ok_or_else(|| SlotError {
        call: "load",
        status: StatusCode::Unsupported.code(),
        message: format!(
            "library {} ({}) provides no {slot} slot",
            library.name,
            library.path.display()
        ),
    })
}

impl<'a> Graph<'a> {
    /// Builds with `library`'s construction slot.
    pub fn build(
        library: &'static Library,
        base: &'a BaseVectors<'a>,
        metric: Metric,
        params: &ParamMap,
        threads: usize,
    ) -> SlotResult<Graph<'a>> {
        let table = table(&library.construction, library, "construction")?;
        let params = CParams::new(params);
        let mut handle = ptr::null_mut();
        call("construction.build", |error| {
            // SAFETY: all pointers are valid for the call; `base` outlives
            // the graph (lifetime 'a).
            unsafe {
                (table.build)(
                    &*base.raw,
                    metric.to_raw(),
                    &params.raw(),
                    threads.max(1) as u32,
                    &mut handle,
                    error,
                )
            }
        })?;
        let handle = returned_handle(handle, "construction.build")?;
        let mut graph = Graph {
            library,
            table,
            handle,
            view: ffi::annvil_graph_view::default(),
            _base: PhantomData,
        };
        graph.view.struct_size = std::mem::size_of::<ffi::annvil_graph_view>();
        let mut view = graph.view;
        call("construction.graph_view", |error| {
            // SAFETY: the handle is live; `view` is a valid out-struct.
            unsafe { (table.graph_view)(handle.as_ptr(), &mut view, error) }
        })?;
        graph.view = view;
        Ok(graph)
    }

    /// Memory the graph reports owning.
    pub fn memory_bytes(&self) -> usize {
        // SAFETY: the handle is live.
        unsafe { (self.table.graph_memory_bytes)(self.handle.as_ptr()) }
    }

    /// The standard view as the library filled it.
    pub fn view(&self) -> &ffi::annvil_graph_view {
        &self.view
    }

    /// The library that built it.
    pub fn library(&self) -> &'static Library {
        self.library
    }
}

impl Drop for Graph<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle is live and no searcher borrows it any more.
        unsafe { (self.table.graph_destroy)(self.handle.as_ptr()) }
    }
}

/// A prepared searcher over a graph.
pub struct Searcher<'g> {
    table: &'static SearchFns,
    handle: NonNull<ffi::annvil_searcher>,
    _view: Box<ffi::annvil_graph_view>,
    _graph: PhantomData<&'g Graph<'g>>,
}

// SAFETY: a searcher is shared read-only between threads; `configure`, the
// only mutation, takes `&mut self` (annvil.h, search slot).
unsafe impl Send for Searcher<'_> {}
// SAFETY: as above.
unsafe impl Sync for Searcher<'_> {}

impl<'g> Searcher<'g> {
    /// Prepares `library`'s search slot over `graph`. The graph's native
    /// handle is passed only when both slots come from the same library.
    pub fn prepare(
        library: &'static Library,
        base: &'g BaseVectors<'g>,
        graph: &'g Graph<'g>,
        metric: Metric,
        params: &ParamMap,
    ) -> SlotResult<Searcher<'g>> {
        let table = table(&library.search, library, "search")?;
        let same_library = ptr::eq(library, graph.library());
        if library.search_needs_native_graph() && !same_library {
            return Err(SlotError {
                call: "search.prepare",
                status: StatusCode::Unsupported.code(),
                message: format!(
                    "the search slot of {} needs its own construction slot (ANNVIL_FLAG_SEARCH_NEEDS_NATIVE_GRAPH), \
                     but the graph was built by {}",
                    library.name,
                    graph.library().name
                ),
            });
        }
        let mut view = Box::new(*graph.view());
        if !same_library {
            view.native = ptr::null_mut();
            view.native_tag = ptr::null();
        }
        let params = CParams::new(params);
        let mut handle = ptr::null_mut();
        call("search.prepare", |error| {
            // SAFETY: base, view and graph outlive the searcher ('g); the
            // view box has a stable address.
            unsafe {
                (table.prepare)(
                    &*base.raw,
                    &*view,
                    metric.to_raw(),
                    &params.raw(),
                    &mut handle,
                    error,
                )
            }
        })?;
        let handle = returned_handle(handle, "search.prepare")?;
        Ok(Searcher {
            table,
            handle,
            _view: view,
            _graph: PhantomData,
        })
    }

    /// Sets swept knobs; no context may exist (enforced by `&mut self`).
    pub fn configure(&mut self, params: &ParamMap) -> SlotResult<()> {
        let params = CParams::new(params);
        call("search.configure", |error| {
            // SAFETY: the handle is live and not in use by any context.
            unsafe { (self.table.configure)(self.handle.as_ptr(), &params.raw(), error) }
        })
    }

    /// New per-thread scratch space.
    pub fn context(&self) -> SlotResult<SearchContext<'_>> {
        let mut handle = ptr::null_mut();
        call("search.context_new", |error| {
            // SAFETY: the handle is live; concurrent context_new is allowed.
            unsafe { (self.table.context_new)(self.handle.as_ptr(), &mut handle, error) }
        })?;
        let handle = returned_handle(handle, "search.context_new")?;
        Ok(SearchContext {
            table: self.table,
            handle,
            _searcher: PhantomData,
        })
    }

    /// Memory the searcher reports owning.
    pub fn memory_bytes(&self) -> usize {
        // SAFETY: the handle is live.
        unsafe { (self.table.searcher_memory_bytes)(self.handle.as_ptr()) }
    }
}

impl Drop for Searcher<'_> {
    fn drop(&mut self) {
        // SAFETY: live handle; every context borrowed it and is gone.
        unsafe { (self.table.searcher_destroy)(self.handle.as_ptr()) }
    }
}

/// Per-thread search scratch space.
pub struct SearchContext<'s> {
    table: &'static SearchFns,
    handle: NonNull<ffi::annvil_search_context>,
    _searcher: PhantomData<&'s Searcher<'s>>,
}

// SAFETY: a context may move between threads; it is used by one thread at a
// time, which `&mut self` on `search` guarantees (annvil.h, search slot).
unsafe impl Send for SearchContext<'_> {}

impl SearchContext<'_> {
    /// Searches `ids.len()` candidates; returns how many were written.
    pub fn search(
        &mut self,
        query: &[f32],
        ids: &mut [u32],
        distances: &mut [f32],
    ) -> SlotResult<usize> {
        assert_eq!(ids.len(), distances.len());
        let mut found = 0usize;
        call("search.search", |error| {
            // SAFETY: live context used by this thread only; buffers hold
            // ids.len() elements.
            unsafe {
                (self.table.search)(
                    self.handle.as_ptr(),
                    query.as_ptr(),
                    query.len(),
                    ids.len(),
                    ids.as_mut_ptr(),
                    distances.as_mut_ptr(),
                    &mut found,
                    error,
                )
            }
        })?;
        check_found("search.search", found, ids.len())
    }

    /// Searches the queries of `queries` (row-major, `found.len()` of them)
    /// in one `search_batch` call when the library has one (ABI 1.2), else
    /// with one `search` each. Query i's candidates go to the i-th of the
    /// equal chunks of `ids` and `distances`, their count to `found[i]`.
    pub fn search_batch(
        &mut self,
        queries: &[f32],
        ids: &mut [u32],
        distances: &mut [f32],
        found: &mut [usize],
    ) -> SlotResult<()> {
        let count = found.len();
        assert!(count > 0 && ids.len() == distances.len() && ids.len().is_multiple_of(count));
        let (dim, n) = (queries.len() / count, ids.len() / count);
        let Some(batch) = self.table.search_batch else {
            let rows = queries.chunks_exact(dim).zip(ids.chunks_exact_mut(n));
            for ((query, ids), (distances, found)) in
                rows.zip(distances.chunks_exact_mut(n).zip(found.iter_mut()))
            {
                *found = self.search(query, ids, distances)?;
            }
            return Ok(());
        };
        call("search.search_batch", |error| {
            // SAFETY: live context used by this thread only; `queries` holds
            // count * dim floats, `ids` and `distances` count * n elements,
            // `found` count.
            unsafe {
                batch(
                    self.handle.as_ptr(),
                    queries.as_ptr(),
                    count,
                    dim,
                    n,
                    ids.as_mut_ptr(),
                    distances.as_mut_ptr(),
                    found.as_mut_ptr(),
                    error,
                )
            }
        })?;
        found
            .iter()
            .try_for_each(|&f| check_found("search.search_batch", f, n).map(drop))
    }

    /// Scratch memory the context reports owning.
    pub fn memory_bytes(&self) -> usize {
        // SAFETY: live context, not in use concurrently (&self of a !Sync type).
        unsafe { (self.table.context_memory_bytes)(self.handle.as_ptr()) }
    }

    /// Distance computations so far, when the library counts them.
    pub fn distance_count(&self) -> Option<u64> {
        let f = self.table.context_distance_count?;
        // SAFETY: live context, not in use concurrently (&self of a !Sync type).
        Some(unsafe { f(self.handle.as_ptr()) })
    }
}

impl Drop for SearchContext<'_> {
    fn drop(&mut self) {
        // SAFETY: live handle, no longer in use.
        unsafe { (self.table.context_destroy)(self.handle.as_ptr()) }
    }
}

fn check_found(call: &'static str, found: usize, capacity: usize) -> SlotResult<usize> {
    if found > capacity {
        return Err(SlotError {
            call,
            status: StatusCode::Internal.code(),
            message: format!("reported {found} results for a buffer of {capacity}"),
        });
    }
    Ok(found)
}

/// A prepared refiner.
pub struct Refiner<'a> {
    table: &'static RefinementFns,
    handle: NonNull<ffi::annvil_refiner>,
    _base: PhantomData<&'a BaseVectors<'a>>,
}

// SAFETY: a refiner is shared read-only between threads (annvil.h).
unsafe impl Send for Refiner<'_> {}
// SAFETY: as above.
unsafe impl Sync for Refiner<'_> {}

impl<'a> Refiner<'a> {
    /// Prepares `library`'s refinement slot.
    pub fn prepare(
        library: &'static Library,
        base: &'a BaseVectors<'a>,
        metric: Metric,
        params: &ParamMap,
    ) -> SlotResult<Refiner<'a>> {
        let table = table(&library.refinement, library, "refinement")?;
        let params = CParams::new(params);
        let mut handle = ptr::null_mut();
        call("refinement.prepare", |error| {
            // SAFETY: base outlives the refiner ('a).
            unsafe {
                (table.prepare)(
                    &*base.raw,
                    metric.to_raw(),
                    &params.raw(),
                    &mut handle,
                    error,
                )
            }
        })?;
        let handle = returned_handle(handle, "refinement.prepare")?;
        Ok(Refiner {
            table,
            handle,
            _base: PhantomData,
        })
    }

    /// New per-thread scratch space.
    pub fn context(&self) -> SlotResult<RefineContext<'_>> {
        let mut handle = ptr::null_mut();
        call("refinement.context_new", |error| {
            // SAFETY: live handle; concurrent context_new is allowed.
            unsafe { (self.table.context_new)(self.handle.as_ptr(), &mut handle, error) }
        })?;
        let handle = returned_handle(handle, "refinement.context_new")?;
        Ok(RefineContext {
            table: self.table,
            handle,
            _refiner: PhantomData,
        })
    }

    /// Memory the refiner reports owning.
    pub fn memory_bytes(&self) -> usize {
        // SAFETY: live handle.
        unsafe { (self.table.refiner_memory_bytes)(self.handle.as_ptr()) }
    }
}

impl Drop for Refiner<'_> {
    fn drop(&mut self) {
        // SAFETY: live handle; every context is gone.
        unsafe { (self.table.refiner_destroy)(self.handle.as_ptr()) }
    }
}

/// Per-thread refinement scratch space.
pub struct RefineContext<'r> {
    table: &'static RefinementFns,
    handle: NonNull<ffi::annvil_refine_context>,
    _refiner: PhantomData<&'r Refiner<'r>>,
}

// SAFETY: used by one thread at a time, guaranteed by `&mut self` (annvil.h).
unsafe impl Send for RefineContext<'_> {}

impl RefineContext<'_> {
    /// Refines `candidates` (with the search's distances) into `ids.len()`
    /// results; returns the count.
    pub fn refine(
        &mut self,
        query: &[f32],
        candidates: &[u32],
        candidate_distances: &[f32],
        ids: &mut [u32],
        distances: &mut [f32],
    ) -> SlotResult<usize> {
        assert_eq!(ids.len(), distances.len());
        assert_eq!(candidates.len(), candidate_distances.len());
        let mut found = 0usize;
        call("refinement.refine", |error| {
            // SAFETY: live context used by this thread only; array lengths
            // as passed.
            unsafe {
                (self.table.refine)(
                    self.handle.as_ptr(),
                    query.as_ptr(),
                    query.len(),
                    candidates.as_ptr(),
                    candidate_distances.as_ptr(),
                    candidates.len(),
                    ids.len(),
                    ids.as_mut_ptr(),
                    distances.as_mut_ptr(),
                    &mut found,
                    error,
                )
            }
        })?;
        check_found("refinement.refine", found, ids.len())
    }
}

impl RefineContext<'_> {
    /// Scratch memory the context reports owning.
    pub fn memory_bytes(&self) -> usize {
        // SAFETY: live context, not in use concurrently (&self of a !Sync type).
        unsafe { (self.table.context_memory_bytes)(self.handle.as_ptr()) }
    }
}

impl Drop for RefineContext<'_> {
    fn drop(&mut self) {
        // SAFETY: live handle, no longer in use.
        unsafe { (self.table.context_destroy)(self.handle.as_ptr()) }
    }
}

/// Answers queries end to end with one thread's contexts: search for
/// `candidates` results, then refine to `k` (or keep the first `k` when the
/// variant has no refinement slot).
pub struct QueryRunner<'s> {
    search: SearchContext<'s>,
    refine: Option<RefineContext<'s>>,
    candidate_ids: Vec<u32>,
    candidate_distances: Vec<f32>,
}

impl<'s> QueryRunner<'s> {
    /// A runner asking the search for `candidates` results.
    pub fn new(
        searcher: &'s Searcher<'_>,
        refiner: Option<&'s Refiner<'_>>,
        candidates: usize,
    ) -> SlotResult<QueryRunner<'s>> {
        Ok(QueryRunner {
            search: searcher.context()?,
            refine: refiner.map(Refiner::context).transpose()?,
            candidate_ids: vec![0; candidates],
            candidate_distances: vec![0.0; candidates],
        })
    }

    /// Writes up to `ids.len()` final results for `query`; returns the count.
    pub fn run(
        &mut self,
        query: &[f32],
        ids: &mut [u32],
        distances: &mut [f32],
    ) -> SlotResult<usize> {
        let Some(refine) = &mut self.refine else {
            return self.search.search(query, ids, distances);
        };
        let n = self.search.search(
            query,
            &mut self.candidate_ids,
            &mut self.candidate_distances,
        )?;
        refine.refine(
            query,
            &self.candidate_ids[..n],
            &self.candidate_distances[..n],
            ids,
            distances,
        )
    }

    /// Writes the final results of the queries of `queries` (row-major,
    /// `found.len()` of them): the search runs as one batch (see
    /// [`SearchContext::search_batch`]), the refinement per query. Query i's
    /// results go to the i-th of the equal chunks of `ids` and `distances`.
    pub fn run_batch(
        &mut self,
        queries: &[f32],
        ids: &mut [u32],
        distances: &mut [f32],
        found: &mut [usize],
    ) -> SlotResult<()> {
        let Some(refine) = &mut self.refine else {
            return self.search.search_batch(queries, ids, distances, found);
        };
        let count = found.len();
        let candidates = self.candidate_ids.len();
        let mut candidate_ids = vec![0u32; count * candidates];
        let mut candidate_distances = vec![0f32; count * candidates];
        let mut candidate_found = vec![0usize; count];
        self.search.search_batch(
            queries,
            &mut candidate_ids,
            &mut candidate_distances,
            &mut candidate_found,
        )?;
        let (dim, k) = (queries.len() / count, ids.len() / count);
        for (i, found) in found.iter_mut().enumerate() {
            let c = i * candidates..i * candidates + candidate_found[i];
            *found = refine.refine(
                &queries[i * dim..(i + 1) * dim],
                &candidate_ids[c.clone()],
                &candidate_distances[c],
                &mut ids[i * k..(i + 1) * k],
                &mut distances[i * k..(i + 1) * k],
            )?;
        }
        Ok(())
    }

    /// Scratch memory of this runner's contexts.
    pub fn memory_bytes(&self) -> usize {
        self.search.memory_bytes() + self.refine.as_ref().map_or(0, RefineContext::memory_bytes)
    }

    /// Distance computations of the search context, when counted.
    pub fn distance_count(&self) -> Option<u64> {
        self.search.distance_count()
    }
}
