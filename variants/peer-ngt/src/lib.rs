//! `peer-ngt`: NGT's graph index (ANNG/ONNG) and quantized graph (PyPI ngt),
//! served through annvil-python-bridge by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-ngt",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
