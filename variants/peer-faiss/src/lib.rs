//! `peer-faiss`: faiss's own PyPI build, served through annvil-python-bridge
//! by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-faiss",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
