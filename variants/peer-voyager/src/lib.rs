//! `peer-voyager`: Spotify's Voyager HNSW index (PyPI voyager),
//! served through annvil-python-bridge by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-voyager",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
