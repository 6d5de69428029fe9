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
