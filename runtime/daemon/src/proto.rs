//! What crosses the control plane, as JSON. The worker protocol itself (orders and reports)
//! is the `quiver` binary's: a daemon relays its lines without reading them.

use serde::{Deserialize, Serialize};

/// This build's version, compared with every daemon's before anything is prepared there.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `quiver machines` shows of a daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub name: String,
    pub labels: Vec<String>,
    pub version: String,
    pub abi: u32,
    /// Where its control plane listens.
    pub listen: Vec<String>,
    /// The host its runs' processes listen on (data plane).
    pub host: String,
    /// Refuses shipped libraries (`--no-fetch`).
    pub no_fetch: bool,
    /// Its links need certificates signed by the cluster's CA.
    #[serde(default)]
    pub tls: bool,
    /// Runs with processes here now.
    pub runs: Vec<RunInfo>,
    /// Runs this daemon supervises (`quiver run --detach`), running or ended.
    #[serde(default)]
    pub detached: Vec<DetachedInfo>,
    pub cpus: usize,
    /// 1-minute load average.
    pub load: f32,
    /// CPU use of the whole machine (all CPUs, 0..100) since the previous query.
    pub cpu_percent: Option<f32>,
    pub mem_total_mb: u64,
    pub mem_available_mb: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run: String,
    pub graph: String,
    pub processes: Vec<String>,
}

/// A run handed to a daemon (`quiver run --detach`), as `quiver ps` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetachedInfo {
    pub run: String,
    pub graph: String,
    /// The daemon supervising it.
    pub machine: String,
    /// Seconds since the Unix epoch when it was detached.
    pub started_unix: u64,
    /// Seconds it has run (until now, or until it ended).
    pub uptime_s: f64,
    /// Its latest live status line.
    pub status: String,
    /// How it ended; `None` while it runs.
    pub ended: Option<DetachedEnd>,
}

/// How a detached run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetachedEnd {
    /// "exited cleanly", "exited with status 1", "killed by signal 9 (SIGKILL)".
    pub how: String,
    /// `quiver run`'s exit code (0 ok, 1 a node or process failed, 2 it did not start).
    pub code: Option<i32>,
    /// Its summary (`--summary-json`), when it got to write one.
    pub summary: Option<String>,
    /// Its `error:` lines.
    pub errors: Vec<String>,
}

/// Hand a whole run to a daemon: it fetches the graph, the libraries and the files, and runs
/// `quiver run` there, which supervises the graph's processes on every machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detach {
    /// The run's id (`quiver ps`, `attach`, `stop`).
    pub run: String,
    pub version: String,
    pub abi: u32,
    pub graph_name: String,
    /// Where the files are served while this request is answered (`quiver/run/<ship>/blob/*`).
    pub ship: String,
    pub graph: ShippedFile,
    pub libraries: Vec<ShippedLibrary>,
    pub files: Vec<ShippedFile>,
    /// `--for` (ms).
    pub duration_ms: Option<u64>,
    /// `--drain` (ms); none: the default. A stop waits at most `STOP_WAIT` (60 s) in all.
    #[serde(default)]
    pub drain_ms: Option<u64>,
}

/// Which detached run (`attach`, `stop`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub run: String,
}

/// What a detached run printed, numbered (a follower joins the backlog with the live lines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Out {
    /// A line of its stdout.
    Line(String),
    /// A line of its stderr.
    Log(String),
    /// Its live status line.
    Status(String),
    /// It ended.
    Ended(DetachedEnd),
}

/// Lines of a detached run's output (backlog or live), with their sequence numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutLine {
    pub seq: u64,
    pub out: Out,
}

/// A detached run's live status line starts with this on its stderr (`quiver run
/// --status-lines`); the daemon keeps it apart from the log.
pub const STATUS_PREFIX: &str = "quiver-status: ";

/// A file by content.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
}

/// A file of the run's machine: where it is there (absolute) and what it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShippedFile {
    pub path: String,
    pub blob: Blob,
}

/// An operator library the graph names (by operator name or by path).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShippedLibrary {
    /// The operator's name (its manifest's).
    pub operator: String,
    /// Where it is on the run's machine.
    pub path: String,
    /// The graph gave the library by path (`path:`), not by name.
    pub by_path: bool,
    pub blob: Blob,
}

/// Data-plane endpoints for `count` processes of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reserve {
    pub run: String,
    pub count: usize,
}

/// Run one process of a graph: fetch what it needs, start a worker, relay its lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prepare {
    pub run: String,
    pub version: String,
    pub abi: u32,
    pub graph_name: String,
    pub process: String,
    /// Counts the times this process was prepared in this run (0 first).
    pub incarnation: u32,
    /// The graph file.
    pub graph: ShippedFile,
    pub libraries: Vec<ShippedLibrary>,
    /// Path parameters (maps, models, image folders' files).
    pub files: Vec<ShippedFile>,
    /// The worker's arguments after `quiver worker GRAPH` (process, prefix, endpoints, ...).
    pub worker_args: Vec<String>,
}

/// The answer to a [`Prepare`] or [`Reserve`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The worker runs; its reports follow on the run's `up` key.
    Started,
    Reserved {
        endpoints: Vec<String>,
    },
    /// A detached run started (`Detach`).
    Detached,
    /// The backlog of a detached run's output (`attach`).
    Backlog {
        info: DetachedInfo,
        lines: Vec<OutLine>,
        /// The sequence number the next live line will have.
        next: u64,
    },
    /// A detached run stopped (`stop`) or had ended.
    Stopped {
        info: DetachedInfo,
    },
    Refused {
        message: String,
    },
}

/// Daemon -> run, about one remote worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Up {
    /// A line of the worker's stdout (reports, and whatever operators print).
    Line(String),
    /// A line of its stderr (logs).
    Log(String),
    /// The worker ended (how).
    Exited { how: String, success: bool },
}

/// Run -> daemon, for one remote worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Down {
    /// A line for its stdin (an order).
    Line(String),
    /// Close its stdin: it stops at once (and is killed if it has not exited within 5 s).
    Close,
}

pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    serde_json::to_vec(msg).unwrap_or_default()
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("malformed control message: {e}"))
}
