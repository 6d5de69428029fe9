//! The validated graph: every reference resolved, every type and parameter checked.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::raw::{Passing, Policy, Restart};

/// The process `quiver run` itself is; `deploy: { process: main }` names it.
/// How long one callback may run before its node is reported hung, unless the node sets
/// `health: { timeout }`.
pub const DEFAULT_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub const MAIN_PROCESS: &str = "main";
use crate::spec::{GraphPort, OperatorSpec, ParamValue};
use crate::yaml::Span;

/// Default queue depth of a data input.
pub const DEFAULT_DEPTH: usize = 16;

/// Where an operator's library comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperatorRef {
    /// A name looked up on the operator search path.
    Name(String),
    /// A library file (relative paths already resolved against the graph's folder).
    Path(PathBuf),
}

impl std::fmt::Display for OperatorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OperatorRef::Name(n) => f.write_str(n),
            OperatorRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Which machine runs a node (`deploy: { machine }` or `{ labels }`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The machine `quiver run` runs on.
    #[default]
    Here,
    /// The daemon of this name.
    Machine(String),
    /// Any daemon that has every one of these labels (sorted, no duplicates).
    Labels(Vec<String>),
}

impl Target {
    pub fn is_here(&self) -> bool {
        matches!(self, Target::Here)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Here => f.write_str("this machine"),
            Target::Machine(m) => write!(f, "machine `{m}`"),
            Target::Labels(l) => write!(f, "a machine labelled {}", l.join(", ")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub depth: usize,
    pub policy: Policy,
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            depth: DEFAULT_DEPTH,
            policy: Policy::Block,
        }
    }
}

/// A data edge into an input: which node and output it comes from, and how it is queued.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// Index of the producing node in [`Graph::nodes`].
    pub node: usize,
    pub port: String,
    pub msg_type: String,
    pub queue: QueueSpec,
    pub passing: Passing,
    /// `timeout:` the consumer gets an empty DataPack when nothing arrived for this long.
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Edge(Edge),
    Timer(Duration),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub name: String,
    pub source: Source,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: String,
    pub operator: OperatorRef,
    pub spec: Arc<OperatorSpec>,
    /// Every declared parameter, in manifest order, defaults filled in.
    pub params: Vec<(String, ParamValue)>,
    pub inputs: Vec<Input>,
    /// The outputs the graph file lists.
    pub outputs: Vec<String>,
    /// The worker process the node runs in; None: the main process.
    pub process: Option<String>,
    /// The machine its process runs on (every node of a process has the same).
    pub target: Target,
    /// Where `machine` or `labels` is written (the node's own span when neither is).
    pub target_span: Span,
    /// What happens when the node's worker process dies.
    pub restart: Restart,
    /// How long one callback may run before the node is reported hung (`health: { timeout }`,
    /// else [`DEFAULT_HEALTH_TIMEOUT`]).
    pub health_timeout: std::time::Duration,
    /// Ports the graph declared (`ports:`), already part of `spec`; passed to the operator.
    pub graph_ports: Vec<GraphPort>,
    pub span: Span,
}

impl Node {
    /// Data inputs (not timers).
    pub fn edges(&self) -> impl Iterator<Item = (&Input, &Edge)> {
        self.inputs.iter().filter_map(|i| match &i.source {
            Source::Edge(e) => Some((i, e)),
            Source::Timer(_) => None,
        })
    }

    /// Timer inputs with their periods.
    pub fn timers(&self) -> impl Iterator<Item = (&Input, Duration)> {
        self.inputs.iter().filter_map(|i| match i.source {
            Source::Timer(d) => Some((i, d)),
            Source::Edge(_) => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub name: String,
    pub file: PathBuf,
    pub nodes: Vec<Node>,
}

impl Graph {
    /// The worker processes nodes are placed in, in order of first mention (the main process
    /// is not listed).
    pub fn processes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for n in &self.nodes {
            if let Some(p) = n.process.as_deref()
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
        out
    }

    /// The machine a process runs on (`main` and processes without `machine`/`labels`: here).
    pub fn process_target(&self, process: &str) -> &Target {
        static HERE: Target = Target::Here;
        self.nodes
            .iter()
            .find(|n| n.process.as_deref() == Some(process))
            .map_or(&HERE, |n| &n.target)
    }

    /// Whether some node runs on another machine (the run needs daemons).
    pub fn uses_machines(&self) -> bool {
        self.nodes.iter().any(|n| !n.target.is_here())
    }

    /// The name of the process a node runs in.
    pub fn process_of(&self, node: usize) -> &str {
        self.nodes[node].process.as_deref().unwrap_or(MAIN_PROCESS)
    }

    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Every (consumer node, input index) fed by `node`'s output `port`.
    pub fn consumers(&self, node: usize, port: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (ni, n) in self.nodes.iter().enumerate() {
            for (ii, input) in n.inputs.iter().enumerate() {
                if let Source::Edge(e) = &input.source
                    && e.node == node
                    && e.port == port
                {
                    out.push((ni, ii));
                }
            }
        }
        out
    }

    /// The fixed order stepped mode runs nodes in: producers before consumers; inside a cycle the
    /// node declared first goes first (so its inputs from later nodes arrive one step late).
    pub fn schedule_order(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        for (ni, node) in self.nodes.iter().enumerate() {
            for (_, e) in node.edges() {
                if e.node != ni {
                    indegree[ni] += 1;
                }
            }
        }
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            // The first ready node in declaration order; in a cycle, the first remaining node.
            let next = (0..n)
                .find(|&i| !done[i] && indegree[i] == 0)
                .or_else(|| (0..n).find(|&i| !done[i]));
            let Some(next) = next else { break };
            done[next] = true;
            order.push(next);
            for (ci, node) in self.nodes.iter().enumerate() {
                if done[ci] {
                    continue;
                }
                for (_, e) in node.edges() {
                    if e.node == next && ci != next {
                        indegree[ci] = indegree[ci].saturating_sub(1);
                    }
                }
            }
        }
        order
    }
}
