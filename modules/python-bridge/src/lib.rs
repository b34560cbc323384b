//! `annvil-python-bridge`: one library that serves the construction and
//! search slots of every variant whose index lives in a Python ANN library
//! (faiss, GLASS, ScaNN, ...).
//!
//! The variant's directory holds an **adapter module** (a short Python file,
//! named in variant.yaml's `python:` section with the pinned requirements of
//! its environment). The bridge embeds CPython, loads the adapter, and
//! forwards each slot call to it:
//!
//! ```python
//! BUILD_PARAMS = {"M": int, "ef_construction": int}   # build parameters
//! SEARCH_PARAMS = {"ef": int}                         # search parameters and knobs
//!
//! def build(base, metric, params, threads):
//!     """base: read-only float32 array (n, dim); metric: "euclidean",
//!     "angular" (unit-normalised vectors) or "ip"; params: dict of the
//!     declared build parameters given in variant.yaml, already converted
//!     by their declared type; threads: threads the build may use. Returns
//!     the index object. After build returns, every call must run on the
//!     calling thread alone (set the library's thread count to 1)."""
//!
//! class Index:
//!     def configure(self, params): ...     # search parameters, then each knob setting
//!     def search(self, query, k): ...      # query: float32 (dim,); returns ids (ints, -1 = none)
//!                                          # or (ids, distances): nearest first, smaller closer
//!     def search_batch(self, queries, k):  # optional: float32 (m, dim) -> ids (m, k) or (ids, distances)
//!     def memory_bytes(self): ...          # optional; else the RSS the build added (with Python itself, on the first build)
//! ```
//!
//! The bridge parses each parameter with its declared type (`bool` from
//! `true`/`false`/`1`/`0`; any other type is called on the string) and
//! rejects keys the adapter does not declare. An answer of ids alone is
//! ranked by the exact distance of every returned id, each id kept once (so
//! it is ordered by the true distance whatever the library returns, and a
//! short answer padded with a repeated id is not an invalid one). An answer
//! with the library's own distances keeps the library's order and
//! distances, checked to be finite and increasing: the ABI's search
//! distances only order candidates, the host recomputes what it scores, and
//! recomputing them would add to the library's time memory traffic its own
//! binding does not pay. The bridge exposes an empty graph view: the search
//! slot needs this library's own construction.
//!
//! The coordinator tells the worker where things are through two
//! environment variables it sets itself: `ANNVIL_PYTHON_ENV` (the variant's
//! virtual environment) and `ANNVIL_PYTHON_ADAPTER` (the adapter file).
//!
//! A bridged variant is a one-line cargo package (every variant is one):
//!
//! ```ignore
//! annvil_abi::export_variant! {
//!     name: "peer-faiss",
//!     construction: annvil_python_bridge::PythonIndex,
//!     search: annvil_python_bridge::PythonSearch,
//! }
//! ```
//!
//! with a `python` feature that turns on this crate's. Workspace builds
//! leave it off (they must work on a machine without Python) and the slots
//! then only report that they cannot serve; the host turns it on, against
//! the environment's interpreter, when it builds a variant to evaluate.

#[cfg(feature = "python")]
mod adapter;
mod answer;
mod flag;
#[cfg(feature = "python")]
mod interpreter;
#[cfg(feature = "python")]
mod slots;
#[cfg(not(feature = "python"))]
mod unavailable;

#[cfg(feature = "python")]
pub use slots::{PythonIndex, PythonSearch};
#[cfg(not(feature = "python"))]
pub use unavailable::{PythonIndex, PythonSearch};
