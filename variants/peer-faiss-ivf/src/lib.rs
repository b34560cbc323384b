//! `peer-faiss-ivf`: faiss's IVF fast-scan PQ index with an exact refine,
//! from its own PyPI build, served through annvil-python-bridge by
//! `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-faiss-ivf",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
