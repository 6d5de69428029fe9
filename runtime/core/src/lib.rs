//! quiver-runtime: the host. Loads operator plugins, wires their queues, runs a graph.
//!
//! - [`Registry`] / [`SearchPath`]: find libraries, do the ABI handshake, read manifests.
//! - [`load_graph`]: parse and validate a graph file against the manifests.
//! - [`run`]: run a validated graph in real time (a thread per node) or stepped (simulated
//!   clock, one thread, deterministic), and return a [`Summary`].
//!
//! - [`wire`]: the frame format of a DataPack between processes (used by transports).
//! - [`Transport`] / [`Control`]: the seams of a run split over processes. [`RunOptions::part`]
//!   names this process's share; a transport (quiver-zenoh) carries frames, a control (the
//!   `quiver` binary's supervisor and workers) paces the run. This crate knows nothing of Zenoh
//!   or of how processes are started.
//! - [`Controls`]: reach a running graph's nodes from another thread (list, get and set
//!   parameters through the operator's `on_param`); a control plane serves it over Zenoh.
//! - [`install_crash_handler`]: a segfault or abort in an operator names the node and the
//!   callback before the process dies, and flushes the last summary [`set_crash_summary`] was
//!   given (opt-in; the `quiver` binary installs it and refreshes the summary every second).

mod controls;
mod crash;
mod error;
mod host;
mod loader;
mod pack;
mod plan;
mod queue;
mod realtime;
mod stats;
mod stepped;
mod transport;
pub mod wire;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use controls::{
    ControlError, Controls, NodeParams, OutputState, ParamState, SET_PARAM_WAIT, Tap, Tapped, TappedPack,
};
pub use crash::{install as install_crash_handler, set_last_summary as set_crash_summary};
pub use error::{LoadError, RunError};
pub use host::CallFailure;
pub use loader::{Library, Registry, SearchPath, library_file_name};
pub use quiver_operator::{DataPack, Header, PackId};
pub use stats::{EndReason, InputSummary, NodeSummary, ProcessSummary, Summary};
pub use transport::{
    Command, Control, Delivery, FrameHandler, FrameReceiver, FrameSender, KeyCount, LentFrame, Part, PartStatus,
    Transport, TransportError, edge_key,
};

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
    /// This process's share of a graph split over processes (None: the whole graph here).
    pub part: Option<Part>,
    /// Reaches the running nodes from other threads (parameters; real-time runs).
    pub controls: Option<Controls>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("mode", &self.mode)
            .field("drain_timeout", &self.drain_timeout)
            .field("status", &self.status.as_ref().map(|(_, every)| every))
            .field("part", &self.part)
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
            part: None,
            controls: None,
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

/// Runs a validated graph in this process (all of it, or `options.part`'s share of it, paced by
/// the run's duration and stop flag).
pub fn run(graph: &Graph, registry: &Registry, options: &RunOptions) -> Result<Summary, RunError> {
    run_inner(graph, registry, options, None)
}

/// Runs this process's share of a graph split over processes, paced by `control` (which
/// replaces `options`' duration, stop flag and drain timeout).
pub fn run_part(
    graph: &Graph,
    registry: &Registry,
    options: &RunOptions,
    control: &mut dyn Control,
) -> Result<Summary, RunError> {
    if options.part.is_none() {
        return Err(RunError::Options("run_part needs `RunOptions::part`".into()));
    }
    run_inner(graph, registry, options, Some(control))
}

fn run_inner(
    graph: &Graph,
    registry: &Registry,
    options: &RunOptions,
    control: Option<&mut dyn Control>,
) -> Result<Summary, RunError> {
    let part = options.part.as_ref();
    let plan = plan::Plan::new(graph, registry, part)?;
    let stop = options.stop.as_deref();
    match &options.mode {
        Mode::RealTime { duration } => {
            let pacer = match control {
                Some(c) => realtime::Pacer::External(c),
                None => realtime::Pacer::Local(realtime::LocalControl {
                    started: std::time::Instant::now(),
                    duration: *duration,
                    stop,
                    drain_timeout: options.drain_timeout,
                    draining_since: None,
                }),
            };
            realtime::run(
                graph,
                plan,
                part,
                pacer,
                options.status.as_ref(),
                options.controls.as_ref(),
            )
        }
        Mode::Stepped { .. } if part.is_some() => Err(RunError::Options(
            "a stepped run is one process: run it without a part (deploy keys are ignored)".into(),
        )),
        Mode::Stepped { steps, duration, step } => {
            let dt = stepped::step_size(graph, *step);
            let steps = steps.or_else(|| duration.map(|d| d.as_nanos().div_ceil(dt.as_nanos().max(1)) as u64));
            stepped::check_bounds(graph, dt, steps)?;
            stepped::run(graph, plan, dt, steps, stop, options.status.as_ref())
        }
    }
}
