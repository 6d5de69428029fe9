//! quiver-runtime: the host. Loads operator plugins, wires their queues, runs a graph.
//!
//! - [`Registry`] / [`SearchPath`]: find libraries, do the ABI handshake, read manifests.
//! - [`load_graph`]: parse and validate a graph file against the manifests.
//! - [`run`]: run a validated graph in real time (a thread per node) or stepped (simulated
//!   clock, one thread, deterministic), and return a [`Summary`].
//!
//! - [`wire`]: the frame format of a DataPack between processes (used by transports).
//!
//! The transport between processes is not here: this crate knows nothing of Zenoh.

mod error;
mod host;
mod loader;
mod pack;
mod plan;
mod queue;
mod realtime;
mod stats;
mod stepped;
pub mod wire;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use error::{LoadError, RunError};
pub use host::CallFailure;
pub use loader::{Library, Registry, SearchPath, library_file_name};
pub use quiver_operator::{DataPack, Header, PackId};
pub use stats::{EndReason, InputSummary, NodeSummary, Summary};

use quiver_graph::Graph;

/// How to run.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Threads and the real clock; `duration: None` runs until the work ends or `stop`.
    RealTime { duration: Option<Duration> },
    /// Simulated clock, fixed order. `step`: the step size (default: the GCD of the timer
    /// periods). Runs `steps` steps, or `duration / step`, or until the work ends.
    Stepped {
        steps: Option<u64>,
        duration: Option<Duration>,
        step: Option<Duration>,
    },
}

/// Called now and then with the run's figures so far (`EndReason::Running`).
pub type StatusHook = Arc<dyn Fn(&Summary) + Send + Sync>;

#[derive(Clone)]
pub struct RunOptions {
    pub mode: Mode,
    /// Set to stop the run (Ctrl-C).
    pub stop: Option<Arc<AtomicBool>>,
    /// How long stopping waits for queues to drain.
    pub drain_timeout: Duration,
    /// A live status callback and how often (wall time) it is called.
    pub status: Option<(StatusHook, Duration)>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("mode", &self.mode)
            .field("drain_timeout", &self.drain_timeout)
            .field("status", &self.status.as_ref().map(|(_, every)| every))
            .finish()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: Mode::RealTime { duration: None },
            stop: None,
            drain_timeout: Duration::from_secs(10),
            status: None,
        }
    }
}

/// Reads and validates a graph file, loading the operators it names through `registry`.
pub fn load_graph(file: &Path, registry: &Registry) -> Result<Graph, quiver_graph::Errors> {
    let raw = quiver_graph::load(file)?;
    quiver_graph::validate(&raw, &mut |r| {
        registry
            .resolve(r)
            .map(|lib| lib.spec.clone())
            .map_err(|e| e.to_string())
    })
}

/// Runs a validated graph.
pub fn run(graph: &Graph, registry: &Registry, options: &RunOptions) -> Result<Summary, RunError> {
    let plan = plan::Plan::new(graph, registry)?;
    let stop = options.stop.as_deref();
    match &options.mode {
        Mode::RealTime { duration } => realtime::run(
            graph,
            plan,
            *duration,
            stop,
            options.drain_timeout,
            options.status.as_ref(),
        ),
        Mode::Stepped { steps, duration, step } => {
            let dt = stepped::step_size(graph, *step);
            let steps = steps.or_else(|| duration.map(|d| d.as_nanos().div_ceil(dt.as_nanos().max(1)) as u64));
            stepped::run(graph, plan, dt, steps, stop, options.status.as_ref())
        }
    }
}
