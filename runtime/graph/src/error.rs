//! Errors in a graph file: each names the file, line and column and, where it applies, the node
//! and port.

use std::fmt;
use std::path::PathBuf;

use crate::yaml::Span;

/// What is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("malformed YAML: {0}")]
    Syntax(String),
    #[error("the file is empty: a graph needs at least `nodes:`")]
    Empty,
    #[error("expected {expected} for {what}, found {found}")]
    Shape {
        what: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("unknown key `{key}` in {what} (allowed: {allowed})")]
    UnknownKey { key: String, what: String, allowed: String },
    #[error("key `{key}` appears twice in {what}")]
    DuplicateKey { key: String, what: String },
    #[error("missing key `{key}` in {what}")]
    MissingKey { key: &'static str, what: String },
    #[error("invalid value for {what}: {reason}")]
    BadValue { what: String, reason: String },
    #[error("node id `{id}` is used twice (first at line {first_line})")]
    DuplicateNode { id: String, first_line: usize },
    #[error("input `{input}` is bound twice")]
    DuplicateInput { input: String },
    #[error("give either `operator:` or `path:`, not both")]
    OperatorAndPath,
    #[error("missing `operator:` (a name found on the operator path) or `path:` (a library file)")]
    NoOperator,
    #[error("`{text}` is not `node/output`")]
    BadFrom { text: String },
    #[error("unknown node `{node}` (nodes: {known})")]
    UnknownNode { node: String, known: String },
    #[error("node `{node}` does not list output `{port}` in its `outputs:` (it lists: {listed})")]
    UnlistedOutput { node: String, port: String, listed: String },
    #[error("{0}")]
    Operator(String),
    #[error(
        "operator `{operator}` declares its own ports: `ports` is for operators whose ports the graph declares (such as ros2-bridge)"
    )]
    PortsNotTaken { operator: String },
    #[error("`{key}` is not a setting of operator `{operator}`'s ports (settings: {known})")]
    UnknownPortSetting {
        operator: String,
        key: String,
        known: String,
    },
    #[error("operator `{operator}` cannot carry message type {msg_type} (known types: {known})")]
    UnknownPortType {
        operator: String,
        msg_type: String,
        known: String,
    },
    #[error("port `{port}` is already declared by operator `{operator}`")]
    PortClash { operator: String, port: String },
    #[error("port `{port}` is declared in `ports` but neither listed in `outputs` nor bound in `inputs`")]
    UnusedPort { port: String },
    #[error("port `{port}` is both listed in `outputs` and bound in `inputs`: a port is one or the other")]
    PortBothWays { port: String },
    #[error("operator `{operator}` has no output `{port}` (its outputs: {known})")]
    UndeclaredOutput {
        operator: String,
        port: String,
        known: String,
    },
    #[error("operator `{operator}` has no input `{port}` (its inputs: {inputs}; its timers: {timers})")]
    UndeclaredInput {
        operator: String,
        port: String,
        inputs: String,
        timers: String,
    },
    #[error("`{port}` is a timer of operator `{operator}`: bind it as `{{ timer: 100ms }}`, not to `{from}`")]
    TimerBoundToData {
        operator: String,
        port: String,
        from: String,
    },
    #[error("`{port}` is a data input of operator `{operator}` (type {msg_type}): it cannot be a timer")]
    DataBoundToTimer {
        operator: String,
        port: String,
        msg_type: String,
    },
    #[error("type mismatch: `{from}` sends {from_type} but `{to}` expects {to_type}")]
    TypeMismatch {
        from: String,
        from_type: String,
        to: String,
        to_type: String,
    },
    #[error("operator `{operator}` has no parameter `{param}` (its parameters: {known})")]
    UnknownParam {
        operator: String,
        param: String,
        known: String,
    },
    #[error("parameter `{param}`: {reason}")]
    BadParam { param: String, reason: String },
    #[error("parameter `{param}` is required (a {kind}: {doc})")]
    MissingParam { param: String, kind: String, doc: String },
    #[error(
        "policy `latest` keeps exactly one message, so its depth is 1 (got {depth}); use `drop_oldest` to keep {depth}"
    )]
    LatestDepth { depth: usize },
}

/// One error, located.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphError {
    pub file: PathBuf,
    pub span: Span,
    pub node: Option<String>,
    pub port: Option<String>,
    pub kind: ErrorKind,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.span.line, self.span.col)?;
        match (&self.node, &self.port) {
            (Some(n), Some(p)) => write!(f, "node `{n}`, port `{p}`: ")?,
            (Some(n), None) => write!(f, "node `{n}`: ")?,
            _ => {}
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for GraphError {}

/// Every error found in a graph file, in file order.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct Errors(pub Vec<GraphError>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Errors {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &GraphError> {
        self.0.iter()
    }
}

/// Collects errors for one file.
pub(crate) struct Sink {
    pub file: PathBuf,
    pub errors: Vec<GraphError>,
}

impl Sink {
    pub fn new(file: PathBuf) -> Self {
        Sink {
            file,
            errors: Vec::new(),
        }
    }

    pub fn push(&mut self, span: Span, node: Option<&str>, port: Option<&str>, kind: ErrorKind) {
        self.errors.push(GraphError {
            file: self.file.clone(),
            span,
            node: node.map(str::to_string),
            port: port.map(str::to_string),
            kind,
        });
    }

    pub fn finish<T>(mut self, value: T) -> Result<T, Errors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            self.errors.sort_by_key(|e| e.span);
            Err(Errors(self.errors))
        }
    }
}
