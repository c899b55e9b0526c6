//! The library's errors: bad suite, key and behaviour files (with line numbers
//! or field paths), failed control-plane calls, targets that do not start,
//! and I/O with its context.

/// Everything the load tester's library can fail with. Request-level failures
/// during a run are not errors: they are counted (see `stats::ErrorKind`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A suite file that does not parse or does not validate.
    #[error("{path}:{line}:{column}: {message}")]
    Suite {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A bad line in a key file.
    #[error("{path}:{line}: {message}")]
    KeyFile {
        path: String,
        line: usize,
        message: String,
    },
    /// A behaviour file (rules and variants) that does not parse or validate.
    #[error("{path}: {message}")]
    Behaviour { path: String, message: String },
    /// Reading or writing a file, spawning a process, binding a socket.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Options that cannot work together (e.g. an open loop without a rate).
    #[error("{0}")]
    Invalid(String),
    /// A URL the tool cannot use.
    #[error("bad URL {url:?}: {message}")]
    Url { url: String, message: String },
    /// An HTTP exchange that failed outside a measured run (API calls, probes).
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// A target that could not be prepared, started or reached.
    #[error("target {name}: {message}")]
    Target { name: String, message: String },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;
