//! `peer-glass`: GLASS's HNSW/NSG graphs with SQ8U/SQ4U search (PyPI pyglass-portable),
//! served through annvil-python-bridge by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-glass",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
