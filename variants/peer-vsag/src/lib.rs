//! `peer-vsag`: VSAG's HGraph index with SQ8/RaBitQ codes (PyPI pyvsag),
//! served through annvil-python-bridge by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-vsag",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
