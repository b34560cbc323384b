//! The construction and search slots, forwarded to the adapter.

use annvil_abi::{
    Base, Construction, Error, Graph, GraphView, Metric, Neighbors, Params, Result, Search, Vectors,
};
use annvil_rerank::rank_exact;
use pyo3::buffer::PyBuffer;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::adapter::{self, Declared};
use crate::answer::{distinct_rows, ordered_pairs};
use crate::interpreter;

/// The index object the adapter's `build` returned.
pub struct PythonIndex {
    index: Py<PyAny>,
    base: Base,
    metric: Metric,
    memory: usize,
    has_batch: bool,
}

impl Construction for PythonIndex {
    fn build(base: Base, metric: Metric, params: &mut Params, threads: usize) -> Result<Self> {
        // The index's memory includes the interpreter and the library it
        // imports: the process pays for them to serve this index.
        let before = resident_bytes();
        interpreter::ensure_started()?;
        Python::attach(|py| {
            let adapter = adapter::load(py)?;
            let params = adapter::convert(&adapter, Declared::Build, params)?;
            let array = read_only_array(py, base)?;
            let index = adapter
                .getattr("build")
                .and_then(|build| build.call1((array, metric.name(), params, threads)))
                .map_err(|e| adapter::to_error(py, "the adapter's build", e))?;
            let memory = match index.getattr_opt("memory_bytes") {
                Ok(Some(method)) => method
                    .call0()
                    .and_then(|bytes| bytes.extract::<usize>())
                    .map_err(|e| adapter::to_error(py, "the index's memory_bytes", e))?,
                _ => resident_bytes().saturating_sub(before),
            };
            let has_batch = index.hasattr("search_batch").unwrap_or(false);
            Ok(PythonIndex {
                index: index.unbind(),
                base,
                metric,
                memory,
                has_batch,
            })
        })
    }

    fn view(&self) -> GraphView<'_> {
        GraphView::default()
    }

    fn memory_bytes(&self) -> usize {
        self.memory
    }
}

/// Searches the adapter's index object; works only with the bridge's own
/// construction.
pub struct PythonSearch {
    index: &'static PythonIndex,
}

/// A query buffer (a float32 array of one query) that lives as long as the
/// context, so a search copies into it instead of allocating.
pub struct QueryBuffer {
    array: Py<PyAny>,
    buffer: PyBuffer<f32>,
}

impl Search for PythonSearch {
    type Context = QueryBuffer;
    const NEEDS_NATIVE_GRAPH: bool = true;

    fn prepare(_: Base, graph: &Graph, _: Metric, params: &mut Params) -> Result<Self> {
        let index = graph.native::<PythonIndex>().ok_or_else(|| {
            Error::unsupported("the Python bridge searches only an index it built itself")
        })?;
        let mut search = PythonSearch { index };
        search.configure(params)?;
        Ok(search)
    }

    fn configure(&mut self, params: &mut Params) -> Result<()> {
        Python::attach(|py| {
            let adapter = adapter::load(py)?;
            let params = adapter::convert(&adapter, Declared::Search, params)?;
            if params.is_empty() {
                return Ok(());
            }
            self.index
                .index
                .call_method1(py, "configure", (params,))
                .map_err(|e| adapter::to_error(py, "the index's configure", e))?;
            Ok(())
        })
    }

    fn new_context(&self) -> Result<QueryBuffer> {
        Python::attach(|py| {
            let array = float_array(py, &[self.index.base.dim()])?;
            let buffer =
                PyBuffer::get(&array).map_err(|e| adapter::to_error(py, "a query buffer", e))?;
            Ok(QueryBuffer {
                array: array.unbind(),
                buffer,
            })
        })
    }

    fn search(
        &self,
        context: &mut QueryBuffer,
        query: &[f32],
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        Python::attach(|py| {
            context
                .buffer
                .copy_from_slice(py, query)
                .map_err(|e| adapter::to_error(py, "copying the query", e))?;
            let answer = self
                .index
                .index
                .call_method1(
                    py,
                    intern!(py, "search"),
                    (context.array.bind(py), out.capacity()),
                )
                .and_then(|answer| Answer::read(answer.bind(py)))
                .map_err(|e| adapter::to_error(py, "the index's search", e))?;
            let (ids, distances) = answer.row(0..answer.ids.len());
            self.push(query, ids, distances, out)
        })
    }

    fn search_batch(
        &self,
        context: &mut QueryBuffer,
        queries: Vectors<'_>,
        out: &mut [Neighbors<'_>],
    ) -> Result<()> {
        if !self.index.has_batch {
            for (query, out) in queries.rows().zip(out) {
                self.search(context, query, out)?;
            }
            return Ok(());
        }
        let k = out.first().map_or(0, Neighbors::capacity);
        Python::attach(|py| {
            let array = float_array(py, &[queries.len(), queries.dim()])?;
            let answer = PyBuffer::get(&array)
                .and_then(|buffer| buffer.copy_from_slice(py, queries.as_slice()))
                .and_then(|()| {
                    self.index
                        .index
                        .call_method1(py, intern!(py, "search_batch"), (&array, k))
                })
                .and_then(|answer| Answer::read(answer.bind(py)))
                .map_err(|e| adapter::to_error(py, "the index's search_batch", e))?;
            if answer.ids.len() != queries.len() * k {
                return Err(Error::internal(format!(
                    "the index's search_batch returned {} ids for {} queries of k = {k}",
                    answer.ids.len(),
                    queries.len()
                )));
            }
            for (i, (query, out)) in queries.rows().zip(out).enumerate() {
                let (ids, distances) = answer.row(i * k..(i + 1) * k);
                self.push(query, ids, distances, out)?;
            }
            Ok(())
        })
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

impl PythonSearch {
    /// Writes a library's answer for `query`: with its distances, the ids
    /// in its order (see [`ordered_pairs`]); with ids alone, the rows they
    /// name (see [`distinct_rows`]) in increasing exact distance. When `k`
    /// covers the whole base, every row by exact distance.
    fn push(
        &self,
        query: &[f32],
        ids: &[i64],
        distances: Option<&[f32]>,
        out: &mut Neighbors<'_>,
    ) -> Result<()> {
        let base = &self.index.base;
        match distances {
            Some(distances) if out.capacity() < base.len() => {
                for (row, distance) in
                    ordered_pairs(ids, distances, base.len()).map_err(Error::internal)?
                {
                    out.push(row, distance);
                }
            }
            _ => {
                let rows =
                    distinct_rows(ids, base.len(), out.capacity()).map_err(Error::internal)?;
                rank_exact(base, self.index.metric, query, rows, out);
            }
        }
        Ok(())
    }
}

/// What the adapter's `search` or `search_batch` returned: ids, or a pair
/// (ids, distances) of the same shape, flattened row-major.
struct Answer {
    ids: Vec<i64>,
    distances: Option<Vec<f32>>,
}

impl Answer {
    fn read(answer: &Bound<'_, PyAny>) -> PyResult<Answer> {
        // A pair of sequences; a tuple of ids (numbers) is an answer of ids.
        let pair = answer.cast::<PyTuple>().ok().filter(|pair| {
            pair.len() == 2 && pair.get_item(0).is_ok_and(|first| first.len().is_ok())
        });
        let Some(pair) = pair else {
            return Ok(Answer {
                ids: integers(answer)?,
                distances: None,
            });
        };
        let (ids, distances) = (integers(&pair.get_item(0)?)?, floats(&pair.get_item(1)?)?);
        if ids.len() != distances.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "returned {} ids and {} distances; return one distance per id",
                ids.len(),
                distances.len()
            )));
        }
        Ok(Answer {
            ids,
            distances: Some(distances),
        })
    }

    /// The ids and distances (if any) of the answer's `rows`.
    fn row(&self, rows: std::ops::Range<usize>) -> (&[i64], Option<&[f32]>) {
        let distances = self.distances.as_deref().map(|d| &d[rows.clone()]);
        (&self.ids[rows], distances)
    }
}

/// A read-only float32 array of shape (n, dim) over the base vectors, without
/// a copy.
fn read_only_array<'py>(py: Python<'py>, base: Base) -> Result<Bound<'py, PyAny>> {
    let bytes = std::mem::size_of_val(base.as_slice());
    let length = pyo3::ffi::Py_ssize_t::try_from(bytes)
        .map_err(|_| Error::invalid("the base vectors are too large for Python"))?;
    // SAFETY: the base vectors stay valid and unchanged until the graph built
    // over them is destroyed (ABI contract); the memoryview is read-only, so
    // Python never writes through the cast-away const.
    let view = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyMemoryView_FromMemory(
                base.as_slice().as_ptr().cast_mut().cast(),
                length,
                pyo3::ffi::PyBUF_READ,
            ),
        )
    };
    let numpy = py.import("numpy");
    view.and_then(|view| {
        let numpy = numpy?;
        numpy
            .call_method1("frombuffer", (view, numpy.getattr("float32")?))?
            .call_method1("reshape", (base.len(), base.dim()))
    })
    .map_err(|e| adapter::to_error(py, "wrapping the base vectors", e))
}

/// A new, writable float32 array of `shape`.
fn float_array<'py>(py: Python<'py>, shape: &[usize]) -> Result<Bound<'py, PyAny>> {
    py.import("numpy")
        .and_then(|numpy| numpy.call_method1("empty", (shape.to_vec(), numpy.getattr("float32")?)))
        .map_err(|e| adapter::to_error(py, "allocating a query array", e))
}

/// The integers of an id array (any integer dtype, any shape, C order).
fn integers(ids: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    let py = ids.py();
    if let Ok(buffer) = PyBuffer::<i64>::get(ids) {
        return buffer.to_vec(py);
    }
    // GLASS and others answer in int32: read it without a numpy round trip.
    if let Ok(buffer) = PyBuffer::<i32>::get(ids) {
        return Ok(buffer.to_vec(py)?.into_iter().map(i64::from).collect());
    }
    let converted = py
        .import("numpy")?
        .call_method1("ascontiguousarray", (ids, intern!(py, "int64")))?;
    PyBuffer::<i64>::get(&converted)?.to_vec(py)
}

/// The values of a distance array (any float dtype, any shape, C order).
fn floats(distances: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    let py = distances.py();
    if let Ok(buffer) = PyBuffer::<f32>::get(distances) {
        return buffer.to_vec(py);
    }
    let converted = py
        .import("numpy")?
        .call_method1("ascontiguousarray", (distances, intern!(py, "float32")))?;
    PyBuffer::<f32>::get(&converted)?.to_vec(py)
}

/// The process's resident set size in bytes (0 when /proc is unreadable).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}
