//! quiver-control: reach a running graph from outside. Every process of a run (the main one
//! and each worker) serves its own nodes on a Zenoh session of its own and says where in a
//! local registry of runs; `quiver param` finds a run there by graph name or id and asks.
//!
//! - [`Server`]: serves a [`quiver_runtime::Controls`] (parameters: list, set) under
//!   `quiver/ctl/<run>/<process>/...` until dropped; registers the process in [`runs`].
//! - [`runs`]: the local registry (one JSON file per live process in `runs::dir()`).
//! - [`Client`]: connects to a run's processes and asks them; [`proto`] is what they exchange.

pub mod client;
pub mod proto;
pub mod runs;
pub mod server;

pub use client::Client;
pub use server::Server;

/// Why a control request could not be made or answered.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("opening the control session: {0}")]
    Open(String),
    #[error("{0}")]
    NoRun(String),
    #[error("asking {what}: {reason}")]
    Query { what: String, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error("the registry of runs ({path}): {reason}")]
    Registry { path: String, reason: String },
}
