use std::path::PathBuf;

/// Why a library could not be used as an operator.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "operator `{name}` not found: looked for {file} in {searched} (set QUIVER_OPERATOR_PATH, build the operator, or give `path:`)"
    )]
    NotFound {
        name: String,
        file: String,
        searched: String,
    },
    #[error("cannot load {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path} is not a quiver operator: it exports no QUIVER_ABI_VERSION")]
    NotAPlugin { path: PathBuf },
    #[error("host ABI {host}, plugin ABI {plugin}: {path} (rebuild the operator with a quiver-operator of ABI {host})")]
    AbiMismatch { host: u32, plugin: u32, path: PathBuf },
    #[error("{path}: bad manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path} declares operator `{found}`, not `{wanted}`")]
    WrongName {
        path: PathBuf,
        wanted: String,
        found: String,
    },
}

/// Why a graph could not be started or run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Graph(#[from] quiver_graph::Errors),
    #[error("node `{node}`: {message}")]
    Create { node: String, message: String },
    #[error("cannot start a thread for node `{node}`: {reason}")]
    Thread { node: String, reason: String },
    #[error("{0}")]
    Options(String),
    #[error("between processes: {0}")]
    Transport(String),
}
