//! Graphs split over processes: the supervisor (`quiver run`) and its workers (`quiver worker`),
//! and the line protocol between them. The data between processes goes over quiver-zenoh; this
//! is only the control: start together, stop together, restart what dies.

pub mod detach;
pub mod machines;
pub mod protocol;
pub mod supervisor;
pub mod worker;

/// How `quiver run` reaches other machines.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    /// Daemons' endpoints (`--connect`, `QUIVER_CONNECT`).
    pub connect: Vec<String>,
    pub tls: Option<quiver_zenoh::Tls>,
    /// The run's id, when it was chosen before (a detached run's, by `quiver run --detach`).
    pub run_id: Option<String>,
    /// `run --params FILE`: the workers read it too.
    pub params: Option<std::path::PathBuf>,
}

/// A fresh run id: `<pid>-<hex nanoseconds>`.
pub fn new_run_id() -> String {
    format!(
        "{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    )
}
