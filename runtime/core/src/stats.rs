//! Counters kept while running and the summary printed at the end.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Counters of one data input.
#[derive(Default)]
pub(crate) struct InputStats {
    pub received: AtomicU64,
    /// Frames from another process refused as malformed.
    pub rejected: AtomicU64,
    /// Packs missing from another process's sequence (lost on the way, or sent while this
    /// process was not running).
    pub missing: AtomicU64,
    pub dropped: AtomicU64,
    pub handled: AtomicU64,
    pub max_queued: AtomicU64,
    /// Empty packs handed over because nothing arrived within the input's `timeout`.
    pub timeouts: AtomicU64,
}

impl InputStats {
    pub fn saw_queue_len(&self, len: usize) {
        self.max_queued.fetch_max(len as u64, Ordering::Relaxed);
    }
}

/// Counters of one node.
pub(crate) struct NodeStats {
    /// Per data input (graph order).
    pub inputs: Vec<InputStats>,
    /// Per manifest output.
    pub outputs: Vec<AtomicU64>,
    pub timer_fires: AtomicU64,
    pub timer_missed: AtomicU64,
    pub errors: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    /// Outputs refused because the graph was stopping.
    pub undelivered: AtomicU64,
    /// Outputs a consuming process did not receive because it was not running (died, restarting).
    pub unrouted: AtomicU64,
    /// Packs sent to other processes in a frame the operator wrote in place / encoded (copied).
    pub sent_in_place: AtomicU64,
    pub sent_copied: AtomicU64,
    /// Figures the operator reported (`Context::report`), in first-report order.
    pub reports: Mutex<Vec<(String, String)>>,
}

impl NodeStats {
    pub fn new(inputs: usize, outputs: usize) -> Self {
        NodeStats {
            inputs: (0..inputs).map(|_| InputStats::default()).collect(),
            outputs: (0..outputs).map(|_| AtomicU64::new(0)).collect(),
            timer_fires: AtomicU64::new(0),
            timer_missed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            undelivered: AtomicU64::new(0),
            unrouted: AtomicU64::new(0),
            sent_in_place: AtomicU64::new(0),
            sent_copied: AtomicU64::new(0),
            reports: Mutex::new(Vec::new()),
        }
    }

    pub fn set_report(&self, key: String, value: String) {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        match reports.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => reports.push((key, value)),
        }
    }

    pub fn record_error(&self, message: String) {
        let message = bounded(message);
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(message);
        }
    }
}

/// Error messages are kept to this many characters (the rest is said to be cut).
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters (never inside a character).
pub fn bounded(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message,
        Some((at, _)) => format!("{}… ({} more bytes)", &message[..at], message.len() - at),
    }
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// Every timer-driven node finished and no message was left in flight.
    Finished,
    /// `--for` elapsed (or the step count was reached).
    Duration,
    /// Ctrl-C.
    Interrupted,
    /// Still running (a live status).
    Running,
    /// The process crashed (a summary flushed by the crash handler: the last status before it).
    Crashed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    pub name: String,
    /// `node/output`.
    pub from: String,
    pub policy: String,
    pub depth: usize,
    pub received: u64,
    pub handled: u64,
    pub dropped: u64,
    pub max_queued: u64,
    /// Malformed frames from another process (not delivered).
    #[serde(default)]
    pub rejected: u64,
    /// Packs missing from the producing process's sequence.
    #[serde(default)]
    pub missing: u64,
    /// Empty packs handed over because nothing arrived within the input's `timeout`.
    #[serde(default)]
    pub timeouts: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub id: String,
    /// The worker process it ran in (None: the main process).
    #[serde(default)]
    pub process: Option<String>,
    /// The machine (daemon) it ran on (None: where `quiver run` runs).
    #[serde(default)]
    pub machine: Option<String>,
    pub operator: String,
    pub timer_fires: u64,
    pub timer_missed: u64,
    /// (output, packs sent).
    pub outputs: Vec<(String, u64)>,
    pub inputs: Vec<InputSummary>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub undelivered: u64,
    /// Outputs a consuming process missed because it was not running.
    #[serde(default)]
    pub unrouted: u64,
    /// Packs sent to other processes in a frame the operator wrote in place (no copy), and in a
    /// frame the host encoded (a copy of the data).
    #[serde(default)]
    pub sent_in_place: u64,
    #[serde(default)]
    pub sent_copied: u64,
    /// Figures the operator reported, in first-report order.
    pub reports: Vec<(String, String)>,
}

impl NodeSummary {
    /// The value the operator last reported for `key`.
    pub fn report(&self, key: &str) -> Option<&str> {
        self.reports.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What happened to a worker process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    pub name: String,
    /// The machine (daemon) it ran on (None: where `quiver run` runs).
    #[serde(default)]
    pub machine: Option<String>,
    /// The nodes it runs.
    pub nodes: Vec<String>,
    pub restarts: u32,
    /// Each failure: how the process ended (`killed by signal 11 (SIGSEGV)`).
    pub failures: Vec<String>,
    /// How it ended at last (`exited cleanly`, or the failure that left it dead).
    pub end: String,
}

/// What happened in a run, per node and per input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub graph: String,
    pub stepped: bool,
    /// Wall time, or simulated time in stepped mode.
    pub elapsed: Duration,
    pub steps: Option<u64>,
    pub end: EndReason,
    pub nodes: Vec<NodeSummary>,
    /// Worker processes (empty when everything ran in one process).
    pub processes: Vec<ProcessSummary>,
}

impl Summary {
    /// One line for a live status: time, each node's reported figures, drops and errors so far.
    pub fn status_line(&self) -> String {
        let mut parts = vec![format!("t={:.1}s", self.elapsed.as_secs_f64())];
        for n in &self.nodes {
            if !n.reports.is_empty() {
                let figures: Vec<String> = n.reports.iter().map(|(k, v)| format!("{k}={v}")).collect();
                match &n.machine {
                    Some(m) => parts.push(format!("{}@{m}: {}", n.id, figures.join(" "))),
                    None => parts.push(format!("{}: {}", n.id, figures.join(" "))),
                }
            }
        }
        parts.push(format!("drops={}", self.total_dropped()));
        let errors: u64 = self.nodes.iter().map(|n| n.errors).sum();
        if errors > 0 {
            parts.push(format!("errors={errors}"));
        }
        parts.join(" | ")
    }

    /// Nodes that reported errors.
    pub fn failed_nodes(&self) -> Vec<&NodeSummary> {
        self.nodes.iter().filter(|n| n.errors > 0).collect()
    }

    pub fn node(&self, id: &str) -> Option<&NodeSummary> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn total_dropped(&self) -> u64 {
        self.nodes.iter().flat_map(|n| &n.inputs).map(|i| i.dropped).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = match self.end {
            EndReason::Finished => "all sources finished",
            EndReason::Duration => "duration reached",
            EndReason::Interrupted => "interrupted",
            EndReason::Running => "running",
            EndReason::Crashed => "the process crashed (figures as of the last status, up to a second before)",
        };
        if let Some(steps) = self.steps {
            writeln!(
                f,
                "graph `{}`: stepped, {steps} steps, {:.3}s simulated ({end})",
                self.graph,
                self.elapsed.as_secs_f64()
            )?;
        } else {
            writeln!(
                f,
                "graph `{}`: ran {:.3}s ({end})",
                self.graph,
                self.elapsed.as_secs_f64()
            )?;
        }
        writeln!(
            f,
            "{:<18} {:<16} {:>10} {:>10} {:>8}  outputs",
            "node", "operator", "in", "timer", "errors"
        )?;
        for n in &self.nodes {
            let handled: u64 = n.inputs.iter().map(|i| i.handled).sum();
            let outs: Vec<String> = n.outputs.iter().map(|(o, c)| format!("{o}={c}")).collect();
            writeln!(
                f,
                "{:<18} {:<16} {:>10} {:>10} {:>8}  {}",
                n.id,
                n.operator,
                handled,
                n.timer_fires,
                n.errors,
                if outs.is_empty() { "-".into() } else { outs.join(" ") }
            )?;
        }
        let inputs: Vec<(&NodeSummary, &InputSummary)> = self
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter().map(move |i| (n, i)))
            .collect();
        if !inputs.is_empty() {
            writeln!(
                f,
                "{:<28} {:<24} {:<16} {:>10} {:>10} {:>8} {:>8}",
                "input", "from", "queue", "received", "handled", "dropped", "max-q"
            )?;
            for (n, i) in inputs {
                writeln!(
                    f,
                    "{:<28} {:<24} {:<16} {:>10} {:>10} {:>8} {:>8}",
                    format!("{}/{}", n.id, i.name),
                    i.from,
                    format!("{} {}", i.policy, i.depth),
                    i.received,
                    i.handled,
                    i.dropped,
                    i.max_queued
                )?;
            }
        }
        for n in &self.nodes {
            for i in n.inputs.iter().filter(|i| i.rejected > 0) {
                writeln!(
                    f,
                    "node `{}`, input `{}`: {} malformed frames from another process rejected",
                    n.id, i.name, i.rejected
                )?;
            }
            for i in n.inputs.iter().filter(|i| i.timeouts > 0) {
                writeln!(
                    f,
                    "node `{}`, input `{}`: {} timeouts (nothing from `{}` in time: an empty pack each)",
                    n.id, i.name, i.timeouts, i.from
                )?;
            }
            for i in n.inputs.iter().filter(|i| i.missing > 0) {
                writeln!(
                    f,
                    "node `{}`, input `{}`: {} packs missing from `{}`'s sequence (lost between processes)",
                    n.id, i.name, i.missing, i.from
                )?;
            }
        }
        for p in &self.processes {
            let restarts = if p.restarts > 0 {
                format!(", restarted {} time(s)", p.restarts)
            } else {
                String::new()
            };
            let on = p
                .machine
                .as_ref()
                .map(|m| format!(" on machine `{m}`"))
                .unwrap_or_default();
            writeln!(
                f,
                "process `{}`{on} ({}): {}{restarts}",
                p.name,
                p.nodes.join(", "),
                p.end
            )?;
            for failure in &p.failures {
                writeln!(f, "process `{}`: {failure}", p.name)?;
            }
        }
        for n in &self.nodes {
            if !n.reports.is_empty() {
                let figures: Vec<String> = n.reports.iter().map(|(k, v)| format!("{k} {v}")).collect();
                writeln!(f, "node `{}`: {}", n.id, figures.join(", "))?;
            }
        }
        for n in &self.nodes {
            if n.timer_missed > 0 {
                writeln!(
                    f,
                    "node `{}`: {} timer ticks missed (callbacks slower than the period)",
                    n.id, n.timer_missed
                )?;
            }
            if n.sent_in_place > 0 {
                writeln!(
                    f,
                    "node `{}`: {} of {} packs to other processes written in place (not copied)",
                    n.id,
                    n.sent_in_place,
                    n.sent_in_place + n.sent_copied
                )?;
            }
            if n.unrouted > 0 {
                writeln!(
                    f,
                    "node `{}`: {} outputs lost because a consuming process was not running",
                    n.id, n.unrouted
                )?;
            }
            if n.undelivered > 0 {
                writeln!(
                    f,
                    "node `{}`: {} outputs not delivered because the graph was stopping",
                    n.id, n.undelivered
                )?;
            }
            if let Some(e) = &n.first_error {
                writeln!(f, "node `{}`: {} error(s); first: {e}", n.id, n.errors)?;
            }
        }
        Ok(())
    }
}
