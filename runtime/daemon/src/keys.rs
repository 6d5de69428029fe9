//! Where things live on the control plane (Zenoh key expressions). Names (machines, processes)
//! are checked to be key-safe before they get here; a run id is `<pid>-<hex>`.

/// A daemon's description (queryable): [`crate::DaemonInfo`].
pub fn daemon_info(name: &str) -> String {
    format!("quiver/daemon/{name}/info")
}
/// Every daemon's description.
pub const DAEMON_INFO_ALL: &str = "quiver/daemon/*/info";
/// Data-plane endpoints for a run's processes (queryable): [`crate::Reserve`].
pub fn daemon_reserve(name: &str) -> String {
    format!("quiver/daemon/{name}/reserve")
}
/// Prepare one process of a run (queryable): [`crate::Prepare`].
pub fn daemon_prepare(name: &str) -> String {
    format!("quiver/daemon/{name}/prepare")
}
/// Hand a whole run to this daemon (queryable): [`crate::Detach`].
pub fn daemon_detach(name: &str) -> String {
    format!("quiver/daemon/{name}/detach")
}
/// The backlog of a detached run's output (queryable): [`crate::RunRef`].
pub fn daemon_attach(name: &str) -> String {
    format!("quiver/daemon/{name}/attach")
}
/// Stop a detached run and answer its summary (queryable): [`crate::RunRef`].
pub fn daemon_stop(name: &str) -> String {
    format!("quiver/daemon/{name}/stop")
}
/// What a detached run prints, live: [`crate::OutLine`].
pub fn detached_out(run: &str) -> String {
    format!("quiver/detached/{run}/out")
}
/// A daemon's liveliness token: it vanishes when the daemon dies or its link is cut.
pub fn daemon_alive(name: &str) -> String {
    format!("quiver/alive/daemon/{name}")
}
pub const DAEMON_ALIVE_ALL: &str = "quiver/alive/daemon/*";
/// A run's liveliness token (held by `quiver run`): daemons stop the run's processes when it
/// vanishes.
pub fn run_alive(run: &str) -> String {
    format!("quiver/alive/run/{run}")
}
/// A file the run offers, by SHA-256 (queryable on `quiver run`'s session).
pub fn run_blob(run: &str, sha256: &str) -> String {
    format!("quiver/run/{run}/blob/{sha256}")
}
/// What a remote worker says (daemon -> run): [`crate::Up`]. One key per incarnation, so
/// a replaced worker's last words never reach its successor.
pub fn run_up(run: &str, process: &str, incarnation: u32) -> String {
    format!("quiver/run/{run}/up/{process}/{incarnation}")
}
/// What a remote worker is told (run -> daemon): [`crate::Down`].
pub fn run_down(run: &str, process: &str, incarnation: u32) -> String {
    format!("quiver/run/{run}/down/{process}/{incarnation}")
}

/// The last chunk of a key (`quiver/alive/daemon/robot` -> `robot`).
pub fn last(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}
