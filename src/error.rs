//! One error type for the whole library. Every user-facing failure names the problem and the
//! offending value; kernels never return errors (inputs are validated once, at the edges).

use std::path::PathBuf;

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor had the wrong shape for the layer or operation.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape { context: String, expected: String, got: String },

    /// A configuration value is invalid (units, rates, names, ...).
    #[error("invalid config: {0}")]
    Config(String),

    /// A layer type, activation, loss, optimizer or option that memcell does not know.
    #[error("unsupported {what}: {name}")]
    Unsupported { what: String, name: String },

    /// Data that cannot be used: empty, too short, NaN/inf, not increasing, ...
    #[error("invalid data: {0}")]
    Data(String),

    /// Training diverged.
    #[error("loss became {value} at epoch {epoch}, batch {batch}; training stopped")]
    NonFiniteLoss { epoch: usize, batch: usize, value: f64 },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A file was read but its contents are malformed.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
}

/// Shorthand for `Result<T, memcell::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn shape(context: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Error::Shape { context: context.into(), expected: expected.into(), got: got.into() }
    }
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
    pub fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }
    pub fn unsupported(what: impl Into<String>, name: impl Into<String>) -> Self {
        Error::Unsupported { what: what.into(), name: name.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), msg: msg.into() }
    }
}
