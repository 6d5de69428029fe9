//! quiver-daemon: the control plane between machines.
//!
//! - [`serve`]: `quiver daemon`: a Zenoh router that answers `info`, `reserve` and `prepare`
//!   queries, fetches what a run ships ([`Cache`], by SHA-256), starts one `quiver worker` per
//!   prepared process and relays its lines ([`Up`], [`Down`]); it stops a run's processes when
//!   the run's liveliness token vanishes.
//! - [`Client`]: what `quiver run`, `quiver check` and `quiver machines` use to reach daemons:
//!   list them, offer files, reserve data-plane endpoints, prepare processes, talk to remote
//!   workers, watch daemons come and go.
//! - detached runs (`quiver run --detach`): a daemon runs the whole run's `quiver run` itself,
//!   keeps and relays its output ([`Out`]) and stops it on request ([`Detach`], [`RunRef`]).
//! - [`keys`]: where all of that lives on Zenoh; [`session`]: the sessions' configuration.
//!
//! The data between processes does not pass here: workers connect to one another directly
//! (quiver-zenoh), on the endpoints the daemons reserved.

mod cache;
mod client;
mod daemon;
mod detached;
pub mod keys;
mod proto;
pub mod session;

pub use cache::{Cache, Stage, is_sha256, sha256_file, sha256_hex};
pub use client::{Client, Follow, Remote, RunHandle, Watch};
pub use daemon::{DaemonConfig, describe, serve};
pub use proto::{
    Blob, DaemonInfo, Detach, DetachedEnd, DetachedInfo, Down, Out, OutLine, Prepare, Reply, Reserve, RunInfo, RunRef,
    STATUS_PREFIX, ShippedFile, ShippedLibrary, Up, VERSION, decode, encode,
};

/// The control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("bad Zenoh configuration `{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("cannot reach a daemon at {endpoints} (is `quiver daemon` running there, and the port open?): {reason}")]
    Open { endpoints: String, reason: String },
    #[error("{0}")]
    Zenoh(String),
    #[error("the cache folder {path}: {reason}")]
    Cache { path: String, reason: String },
}

/// A name that may be a key chunk and a folder name: letters, digits, `_`, `-`, `+`, `.`
/// (not `.` or `..` alone).
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
}

/// A Zenoh error message without the source location Zenoh appends (` at /path/file.rs:N.`).
pub(crate) fn plain(message: &str) -> String {
    match message.find(" at /") {
        Some(i) => message[..i].trim_end_matches('.').to_string(),
        None => message.to_string(),
    }
}
