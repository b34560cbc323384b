//! `peer-pynndescent`: PyNNDescent's NNDescent index with its search graph (PyPI pynndescent),
//! served through annvil-python-bridge by `adapter.py` (see README.md).

annvil_abi::export_variant! {
    name: "peer-pynndescent",
    construction: annvil_python_bridge::PythonIndex,
    search: annvil_python_bridge::PythonSearch,
}
