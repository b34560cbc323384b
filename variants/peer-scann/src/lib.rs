//! `peer-scann`: ScaNN's partitioning tree, anisotropic AH scoring and exact reorder (PyPI scann),
//! served through annvil-python-bridge by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-scann",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
