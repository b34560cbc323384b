//! The variant's adapter module: loading it, converting its parameters and
//! turning its exceptions into ABI errors.

use std::path::PathBuf;

use annvil_abi::{Error, Params, Result, StatusCode};

use pyo3::exceptions::{PyMemoryError, PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};

use crate::flag::parse_flag;

/// The environment variable naming the adapter file.
pub const ENV_VAR: &str = "ANNVIL_PYTHON_ADAPTER";

/// Which declaration of the adapter a slot's parameters follow.
#[derive(Clone, Copy, Debug)]
pub enum Declared {
    /// `BUILD_PARAMS`: the construction's parameters.
    Build,
    /// `SEARCH_PARAMS`: the search's fixed parameters and knobs.
    Search,
}

impl Declared {
    fn attribute(self) -> &'static str {
        match self {
            Declared::Build => "BUILD_PARAMS",
            Declared::Search => "SEARCH_PARAMS",
        }
    }
}

/// Imports the adapter named by [`ENV_VAR`] (once per process: Python
/// caches the module under the name `annvil_adapter`).
pub fn load(py: Python<'_>) -> Result<Bound<'_, PyModule>> {
    let path = std::env::var_os(ENV_VAR)
        .map(PathBuf::from)
        .ok_or_else(|| Error::internal(format!("{ENV_VAR} is not set (the host sets it)")))?;
    let import = || -> PyResult<Bound<'_, PyModule>> {
        let modules = py.import("sys")?.getattr("modules")?;
        if let Ok(module) = modules.get_item("annvil_adapter") {
            return Ok(module.cast_into::<PyModule>()?);
        }
        let util = py.import("importlib.util")?;
        let spec = util.call_method1("spec_from_file_location", ("annvil_adapter", &path))?;
        let module = util
            .call_method1("module_from_spec", (&spec,))?
            .cast_into::<PyModule>()?;
        spec.getattr("loader")?
            .call_method1("exec_module", (&module,))?;
        modules.set_item("annvil_adapter", &module)?;
        Ok(module)
    };
    import().map_err(|e| to_error(py, &format!("loading {}", path.display()), e))
}

/// The declared parameters in `params` as a dict of converted values: each
/// key is looked up in the adapter's declaration and its value passed
/// through the declared type (`int`, `float`, `str` or any callable that
/// parses a string). Keys the adapter does not declare stay unread, so the
/// SDK rejects them as unknown.
pub fn convert<'py>(
    adapter: &Bound<'py, PyModule>,
    declared: Declared,
    params: &mut Params,
) -> Result<Bound<'py, PyDict>> {
    let py = adapter.py();
    let out = PyDict::new(py);
    let attribute = declared.attribute();
    let Ok(declarations) = adapter.getattr(attribute) else {
        return Ok(out);
    };
    let declarations = declarations
        .cast_into::<PyDict>()
        .map_err(|_| Error::internal(format!("the adapter's {attribute} is not a dict")))?;
    for (name, kind) in declarations.iter() {
        let name: String = name.extract().map_err(|_| {
            Error::internal(format!(
                "a key of the adapter's {attribute} is not a string"
            ))
        })?;
        let Some(raw) = params.get::<String>(&name)? else {
            continue;
        };
        let value = if kind.is(py.get_type::<PyBool>()) {
            parse_flag(&raw)
                .map(|flag| PyBool::new(py, flag).to_owned().into_any())
                .ok_or_else(|| PyValueError::new_err("expected true, false, 1 or 0"))
        } else {
            kind.call1((raw.as_str(),))
        };
        let value = value.map_err(|e| {
            Error::invalid(format!(
                "parameter `{name}`: `{raw}` is not a valid {}: {e}",
                kind.getattr("__name__")
                    .map_or_else(|_| kind.to_string(), |n| n.to_string())
            ))
        })?;
        out.set_item(&name, value)
            .map_err(|e| to_error(py, "collecting parameters", e))?;
    }
    Ok(out)
}

/// An ABI error for a Python exception raised while doing `what`: a
/// `ValueError`/`TypeError` is an invalid argument, `NotImplementedError`
/// unsupported, `MemoryError` out of memory, anything else internal; the
/// message ends with the innermost traceback line.
pub fn to_error(py: Python<'_>, what: &str, error: PyErr) -> Error {
    let status =
        if error.is_instance_of::<PyValueError>(py) || error.is_instance_of::<PyTypeError>(py) {
            StatusCode::InvalidArgument
        } else if error.is_instance_of::<PyNotImplementedError>(py) {
            StatusCode::Unsupported
        } else if error.is_instance_of::<PyMemoryError>(py) {
            StatusCode::OutOfMemory
        } else {
            StatusCode::Internal
        };
    let location = error
        .traceback(py)
        .and_then(|mut tb| {
            while let Ok(next) = tb.getattr("tb_next") {
                match next.cast_into() {
                    Ok(next) => tb = next,
                    Err(_) => break,
                }
            }
            let frame = tb.getattr("tb_frame").ok()?;
            let file: String = frame
                .getattr("f_code")
                .ok()?
                .getattr("co_filename")
                .ok()?
                .extract()
                .ok()?;
            let line: u32 = tb.getattr("tb_lineno").ok()?.extract().ok()?;
            Some(format!(" (at {file}:{line})"))
        })
        .unwrap_or_default();
    Error::new(status, format!("{what}: {error}{location}"))
}
