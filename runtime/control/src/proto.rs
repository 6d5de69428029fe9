//! What the client and a run's processes exchange (JSON in Zenoh query payloads and replies).

use serde::{Deserialize, Serialize};

/// The key a process answers `params` queries on.
pub fn params_key(run: &str, process: &str) -> String {
    format!("quiver/ctl/{run}/{process}/params")
}

/// The key a process answers `set` queries on.
pub fn set_key(run: &str, process: &str) -> String {
    format!("quiver/ctl/{run}/{process}/set")
}

/// One parameter of a running node, values as the graph file writes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub kind: String,
    pub value: String,
    /// None: the graph must set it.
    pub default: Option<String>,
    pub range: String,
    pub doc: String,
}

/// A running node and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeParams {
    pub node: String,
    pub operator: String,
    /// The process it runs in (`main` for the main one).
    pub process: String,
    pub params: Vec<Param>,
}

/// `set`: a new value, written as in a graph file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetParam {
    pub node: String,
    pub name: String,
    pub value: String,
}

/// The answer to `set`: the value now in force, or why nothing changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetReply {
    pub value: Option<String>,
    pub error: Option<String>,
}

/// Writes a value the way a graph file (and `param_from_text`) reads it back.
pub fn value_text(v: &quiver_graph::ParamValue) -> String {
    match v {
        quiver_graph::ParamValue::String(s) => format!("{s:?}"),
        quiver_graph::ParamValue::Duration(d) => quiver_graph::format_duration(*d),
        other => other.to_string(),
    }
}

/// The key a process answers `topics` queries on.
pub fn topics_key(run: &str, process: &str) -> String {
    format!("quiver/ctl/{run}/{process}/topics")
}

/// The key a process answers `tap` queries on.
pub fn tap_key(run: &str, process: &str) -> String {
    format!("quiver/ctl/{run}/{process}/tap")
}

/// Where a tapped output's packs are published (wire frames).
pub fn tap_data_key(run: &str, process: &str, node: &str, output: &str) -> String {
    format!("quiver/ctl/{run}/{process}/data/{node}/{output}")
}

/// An output of a running node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// `node/output`.
    pub topic: String,
    pub msg_type: String,
    pub process: String,
    /// Packs sent so far.
    pub sent: u64,
    /// Nanoseconds since the run started (with `sent`: the mean rate).
    pub uptime_ns: u64,
    /// Its consumers in the graph: `node/input`.
    pub consumers: Vec<String>,
}

/// `tap`: watch an output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TapRequest {
    pub node: String,
    pub output: String,
}

/// The answer to `tap`: where its packs are published (subscribe there), or why not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TapReply {
    pub key: Option<String>,
    pub error: Option<String>,
}

/// Where a tapped output's statistics are published, once a second (JSON [`TapStats`]).
pub fn tap_stats_key(run: &str, process: &str, node: &str, output: &str) -> String {
    format!("quiver/ctl/{run}/{process}/stats/{node}/{output}")
}

/// One second of an output, as its process saw every pack (not only those forwarded).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TapStats {
    /// How long the window was (ns).
    pub window_ns: u64,
    /// Packs the output sent in the window (from its sequence numbers).
    pub packs: u64,
    /// Packs the tap saw (the rest it lost: more than its buffer between two drains).
    pub seen: u64,
    /// Periods between consecutive packs, on their own timestamps (ns).
    pub periods: u64,
    pub period_min_ns: u64,
    pub period_max_ns: u64,
    pub period_mean_ns: f64,
    pub period_std_ns: f64,
    /// Bytes of the packs forwarded, scaled to every pack seen (an estimate when forwarding
    /// was capped).
    pub bytes: u64,
    /// Packs forwarded to watchers in the window (at most [`FORWARD_MAX_PER_SECOND`]).
    pub forwarded: u64,
}

/// A tap forwards at most this many packs a second to its watchers (a person reads far fewer;
/// the rest are counted, and statistics still see every pack).
pub const FORWARD_MAX_PER_SECOND: u64 = 2000;
