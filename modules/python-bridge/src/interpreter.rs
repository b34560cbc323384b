//! Starting the embedded interpreter inside the variant's environment.

use std::ffi::{CStr, CString, c_char};
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::OnceLock;

use annvil_abi::{Error, Result};
use pyo3::ffi;

/// The environment variable naming the variant's virtual environment.
pub const ENV_VAR: &str = "ANNVIL_PYTHON_ENV";

/// Starts the interpreter once per process; later calls return the first
/// outcome. The interpreter runs as the environment's own `bin/python`
/// would: its `sys.prefix` is the environment, its site-packages are the
/// only third-party packages visible, and signal handlers stay the
/// worker's.
pub fn ensure_started() -> Result<()> {
    static STARTED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(start)
        .clone()
        .map_err(|message| Error::internal(format!("starting Python: {message}")))
}

fn start() -> std::result::Result<(), String> {
    let env = std::env::var_os(ENV_VAR)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{ENV_VAR} is not set (the host sets it for bridged variants)"))?;
    let executable = env.join("bin").join("python");
    if !executable.exists() {
        return Err(format!("{} does not exist", executable.display()));
    }
    let executable = CString::new(executable.into_os_string().into_encoded_bytes())
        .map_err(|_| format!("{ENV_VAR} contains a NUL byte"))?;
    export_python_symbols()?;
    // SAFETY: called once (OnceLock) before any other Python API use in this
    // process; the config is initialised by PyConfig_InitPythonConfig before
    // it is written, and cleared after use.
    unsafe {
        let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let config = config.assume_init_mut();
        config.install_signal_handlers = 0;
        // Compiled bytecode would be written next to read-only sources.
        config.write_bytecode = 0;
        let status =
            ffi::PyConfig_SetBytesString(config, &mut config.executable, executable.as_ptr());
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(config);
            return Err(status_message(status));
        }
        let status = ffi::Py_InitializeFromConfig(config);
        ffi::PyConfig_Clear(config);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(status_message(status));
        }
        // Release the lock the initialising thread holds, so that any
        // thread (the worker searches from several in batch mode) can take
        // it through `Python::attach`.
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

/// Makes libpython's symbols global. The worker loads this bridge with
/// `RTLD_LOCAL`, so the libpython it pulled in is invisible to the
/// extension modules Python loads next (numpy, the ANN library), which
/// expect to find the interpreter's symbols in the global scope.
fn export_python_symbols() -> std::result::Result<(), String> {
    let mut info = MaybeUninit::<libc::Dl_info>::uninit();
    let symbol = ffi::Py_InitializeFromConfig as *const libc::c_void;
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { libc::dladdr(symbol, info.as_mut_ptr()) } == 0 {
        return Err("cannot locate libpython (dladdr failed)".into());
    }
    // SAFETY: dladdr succeeded, so `info` is initialised; dli_fname points
    // at a NUL-terminated path owned by the dynamic linker.
    let path: *const c_char = unsafe { info.assume_init() }.dli_fname;
    // SAFETY: RTLD_NOLOAD only promotes the already loaded library; the
    // handle is deliberately kept (never dlclosed) for the process's life.
    let handle =
        unsafe { libc::dlopen(path, libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        // SAFETY: `path` is a valid C string (above).
        let name = unsafe { CStr::from_ptr(path) }.to_string_lossy();
        return Err(format!("cannot make {name}'s symbols global"));
    }
    Ok(())
}

/// The message of a failed initialisation status.
///
/// # Safety
/// `status.err_msg` must be NULL or a NUL-terminated string (as CPython
/// returns it).
unsafe fn status_message(status: ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return format!("exit code {}", status.exitcode);
    }
    // SAFETY: as the caller guarantees.
    unsafe { CStr::from_ptr(status.err_msg) }
        .to_string_lossy()
        .into_owned()
}
