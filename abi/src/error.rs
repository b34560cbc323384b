//! Status codes and the error type every SDK slot method returns.

use std::fmt;

use crate::ffi;

/// A non-OK status code of the ABI (`ANNVIL_ERR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// A parameter value, size or pointer is invalid.
    InvalidArgument,
    /// A parameter key the slot does not know.
    UnknownParameter,
    /// A vector's dimension differs from the base dimension.
    DimensionMismatch,
    /// The metric, input or slot combination is not supported.
    Unsupported,
    /// An allocation failed.
    OutOfMemory,
    /// A panic or exception was caught at the boundary.
    Panic,
    /// Any other failure.
    Internal,
}

impl StatusCode {
    /// Every status, in code order.
    pub const ALL: [StatusCode; 7] = [
        StatusCode::InvalidArgument,
        StatusCode::UnknownParameter,
        StatusCode::DimensionMismatch,
        StatusCode::Unsupported,
        StatusCode::OutOfMemory,
        StatusCode::Panic,
        StatusCode::Internal,
    ];

    /// The raw `annvil_status` code.
    pub const fn code(self) -> ffi::annvil_status {
        match self {
            StatusCode::InvalidArgument => ffi::ANNVIL_ERR_INVALID_ARGUMENT,
            StatusCode::UnknownParameter => ffi::ANNVIL_ERR_UNKNOWN_PARAMETER,
            StatusCode::DimensionMismatch => ffi::ANNVIL_ERR_DIMENSION_MISMATCH,
            StatusCode::Unsupported => ffi::ANNVIL_ERR_UNSUPPORTED,
            StatusCode::OutOfMemory => ffi::ANNVIL_ERR_OUT_OF_MEMORY,
            StatusCode::Panic => ffi::ANNVIL_ERR_PANIC,
            StatusCode::Internal => ffi::ANNVIL_ERR_INTERNAL,
        }
    }

    /// The status for a raw error code, or `None` for `ANNVIL_OK` and for
    /// codes this version of the ABI does not define.
    pub fn from_code(code: ffi::annvil_status) -> Option<StatusCode> {
        StatusCode::ALL.into_iter().find(|s| s.code() == code)
    }

    /// A short lowercase name, e.g. `dimension mismatch`.
    pub const fn name(self) -> &'static str {
        match self {
            StatusCode::InvalidArgument => "invalid argument",
            StatusCode::UnknownParameter => "unknown parameter",
            StatusCode::DimensionMismatch => "dimension mismatch",
            StatusCode::Unsupported => "unsupported",
            StatusCode::OutOfMemory => "out of memory",
            StatusCode::Panic => "panic",
            StatusCode::Internal => "internal error",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A slot failure: the status returned to the host and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The status code the host receives.
    pub status: StatusCode,
    /// The message written into the host's error buffer.
    pub message: String,
}

impl Error {
    /// An error with the given status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    /// [`StatusCode::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(StatusCode::InvalidArgument, message)
    }

    /// [`StatusCode::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(StatusCode::Unsupported, message)
    }

    /// [`StatusCode::Internal`].
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(StatusCode::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

/// Result of every SDK slot method.
pub type Result<T> = std::result::Result<T, Error>;
