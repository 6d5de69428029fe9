//! YAML tree -> raw graph: the file's structure with every location kept, unknown keys refused.
//! No operator is looked at yet; that is `validate`'s job.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ErrorKind, Errors, Sink};
use crate::yaml::{self, Node, Span, Value};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// How a queue behaves when full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The producer waits: nothing is lost (reliable).
    Block,
    /// The oldest queued message is dropped and counted.
    DropOldest,
    /// Only the newest message is kept (depth 1); replaced ones are counted as drops.
    Latest,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Block => "block",
            Policy::DropOldest => "drop_oldest",
            Policy::Latest => "latest",
        }
    }
}

/// How a DataPack reaches a consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Passing {
    /// The consumer reads the producer's buffers (zero copy).
    ByReference,
    /// The consumer gets its own copy.
    ByValue,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RawQueue {
    pub depth: Option<Spanned<usize>>,
    pub policy: Option<Spanned<Policy>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RawSource {
    From {
        node: Spanned<String>,
        port: Spanned<String>,
        queue: RawQueue,
        passing: Option<Spanned<Passing>>,
        /// `timeout: 500ms`: an empty DataPack when nothing arrived for that long.
        timeout: Option<Spanned<Duration>>,
    },
    Timer(Spanned<Duration>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RawInput {
    pub name: Spanned<String>,
    pub source: RawSource,
}

/// A parameter value as written: text (with quoting) or nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum RawScalar {
    Null,
    Text { text: String, quoted: bool },
}

/// When a worker process is restarted after it dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Restart {
    /// A dead worker stays dead (the rest of the graph keeps running).
    Never,
    /// Restarted after a failure, at most `max` times in a row, waiting `delay` before the
    /// first restart and twice as long before each next one (at most `max_delay`). A process
    /// that ran for `window` before it died starts a new row (its count and delay reset).
    OnFailure {
        max: u32,
        delay: std::time::Duration,
        max_delay: std::time::Duration,
        window: std::time::Duration,
    },
}

/// The default number of restarts in a row for `restart: on-failure`.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// `restart: on-failure` defaults: the first delay, its cap, the window that resets the count.
pub const DEFAULT_RESTART_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
pub const DEFAULT_RESTART_MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(10);
pub const DEFAULT_RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl Restart {
    /// `on-failure` with every default.
    pub const ON_FAILURE: Restart = Restart::OnFailure {
        max: DEFAULT_MAX_RESTARTS,
        delay: DEFAULT_RESTART_DELAY,
        max_delay: DEFAULT_RESTART_MAX_DELAY,
        window: DEFAULT_RESTART_WINDOW,
    };

    /// How long to wait before the `n`-th restart in a row (1-based).
    pub fn delay_before(&self, n: u32) -> std::time::Duration {
        match self {
            Restart::Never => std::time::Duration::ZERO,
            Restart::OnFailure { delay, max_delay, .. } => {
                let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
                delay.checked_mul(factor).unwrap_or(*max_delay).min(*max_delay)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RawNode {
    pub id: Spanned<String>,
    pub span: Span,
    pub operator: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub params: Vec<(Spanned<String>, Spanned<RawScalar>)>,
    pub inputs: Vec<RawInput>,
    pub outputs: Vec<Spanned<String>>,
    /// `deploy: { process: NAME }`.
    pub process: Option<Spanned<String>>,
    /// `deploy: { machine: NAME }`: the daemon of that name runs the node.
    pub machine: Option<Spanned<String>>,
    /// `deploy: { labels: [A, B] }`: any daemon with all these labels runs the node. The span
    /// is the list's.
    pub labels: Option<Spanned<Vec<Spanned<String>>>>,
    /// `isolate: true`.
    pub isolate: Option<Spanned<bool>>,
    pub restart: Option<Spanned<Restart>>,
    /// `health: { timeout: 2s }`: how long one callback may run before the node is reported
    /// hung (and, isolated, its process killed).
    pub health_timeout: Option<Spanned<std::time::Duration>>,
    /// `ports:` (operators whose ports the graph declares).
    pub ports: Vec<RawPort>,
    /// Where `ports:` is, for errors about the key itself.
    pub ports_span: Option<Span>,
}

/// A port declared in the graph: `scan: { type: sensor_msgs/msg/LaserScan, topic: /scan }`.
#[derive(Clone, Debug, PartialEq)]
pub struct RawPort {
    pub name: Spanned<String>,
    pub msg_type: Option<Spanned<String>>,
    /// The other keys, for the operator (checked against its declared port settings).
    pub settings: Vec<(Spanned<String>, Spanned<String>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RawGraph {
    pub file: PathBuf,
    pub name: Option<Spanned<String>>,
    pub nodes: Vec<RawNode>,
}

impl RawGraph {
    /// The folder relative paths in the file are resolved against.
    pub fn dir(&self) -> &Path {
        self.file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }
}

const GRAPH_KEYS: &[&str] = &["name", "description", "nodes"];
const NODE_KEYS: &[&str] = &[
    "id",
    "description",
    "operator",
    "path",
    "params",
    "inputs",
    "outputs",
    "deploy",
    "isolate",
    "restart",
    "health",
    "ports",
];
const DEPLOY_KEYS: &[&str] = &["process", "machine", "labels"];
const RESTART_KEYS: &[&str] = &["policy", "max", "delay", "max_delay", "window"];
const HEALTH_KEYS: &[&str] = &["timeout"];
const INPUT_KEYS: &[&str] = &["from", "timer", "queue", "passing", "timeout"];
const QUEUE_KEYS: &[&str] = &["depth", "policy"];

/// A graph file larger than this is refused (the shipped graphs are a few KiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a text file of at most `limit` bytes (a graph, a map): its text, or an error and
/// where it is (an invalid UTF-8 sequence at its own line and column).
pub fn read_text(file: &Path, limit: u64) -> Result<String, (Span, String)> {
    use std::io::Read;
    let start = Span { line: 1, col: 1 };
    let f = std::fs::File::open(file).map_err(|e| (start, e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| (start, e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err((start, format!("the file is larger than {} MiB", limit >> 20)));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        (
            yaml::locate(&valid, at),
            format!("not UTF-8 text: byte 0x{:02x} at offset {at}", e.as_bytes()[at]),
        )
    })
}

/// An operator name as the search path resolves it (`lib<name>.so`): no `/`, no `..`.
fn is_operator_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Reads a graph file.
pub fn load(file: &Path) -> Result<RawGraph, Errors> {
    match read_text(file, MAX_FILE_BYTES) {
        Ok(text) => parse(file, &text),
        Err((span, e)) => {
            let mut sink = Sink::new(file.to_path_buf());
            sink.push(span, None, None, ErrorKind::Io(e));
            sink.finish(RawGraph {
                file: file.to_path_buf(),
                name: None,
                nodes: vec![],
            })
        }
    }
}

/// Parses graph text; `file` is used in locations and to resolve relative paths.
pub fn parse(file: &Path, text: &str) -> Result<RawGraph, Errors> {
    let mut sink = Sink::new(file.to_path_buf());
    let mut graph = RawGraph {
        file: file.to_path_buf(),
        name: None,
        nodes: Vec::new(),
    };
    match yaml::parse(text) {
        Err(e) => sink.push(e.span, None, None, ErrorKind::Syntax(e.message)),
        Ok(None) => sink.push(Span { line: 1, col: 1 }, None, None, ErrorKind::Empty),
        Ok(Some(root)) => {
            let mut cx = Cx {
                sink: &mut sink,
                node: None,
            };
            read_graph(&mut cx, &root, &mut graph);
        }
    }
    sink.finish(graph)
}

/// The sink plus the node being read, so every error names it.
struct Cx<'a> {
    sink: &'a mut Sink,
    node: Option<String>,
}

impl Cx<'_> {
    fn err(&mut self, span: Span, port: Option<&str>, kind: ErrorKind) {
        let node = self.node.clone();
        self.sink.push(span, node.as_deref(), port, kind);
    }

    fn shape(&mut self, node: &Node, what: &str, expected: &'static str) {
        self.err(
            node.span,
            None,
            ErrorKind::Shape {
                what: what.into(),
                expected,
                found: node.kind(),
            },
        );
    }

    /// The entries of a mapping with string keys, refusing unknown and duplicate keys.
    fn fields<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Vec<(&'n str, Span, &'n Node)> {
        let Value::Map(entries) = &node.value else {
            self.shape(node, what, "a mapping");
            return Vec::new();
        };
        let mut out: Vec<(&str, Span, &Node)> = Vec::new();
        for (k, v) in entries {
            let Some(key) = self.key(k, what) else {
                continue;
            };
            if !allowed.contains(&key) {
                self.err(
                    k.span,
                    None,
                    ErrorKind::UnknownKey {
                        key: key.into(),
                        what: what.into(),
                        allowed: allowed.join(", "),
                    },
                );
            } else if out.iter().any(|(seen, _, _)| *seen == key) {
                self.err(
                    k.span,
                    None,
                    ErrorKind::DuplicateKey {
                        key: key.into(),
                        what: what.into(),
                    },
                );
            } else {
                out.push((key, k.span, v));
            }
        }
        out
    }

    fn key<'n>(&mut self, k: &'n Node, what: &str) -> Option<&'n str> {
        match &k.value {
            Value::Scalar { text, .. } => Some(text),
            _ => {
                self.shape(k, &format!("a key in {what}"), "a plain name");
                None
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match &node.value {
            Value::Scalar { text, .. } => Some(Spanned {
                value: text.clone(),
                span: node.span,
            }),
            _ => {
                self.shape(node, what, "a string");
                None
            }
        }
    }
}

fn read_graph(cx: &mut Cx<'_>, root: &Node, graph: &mut RawGraph) {
    let mut saw_nodes = false;
    for (key, _span, value) in cx.fields(root, "the graph", GRAPH_KEYS) {
        match key {
            "name" => graph.name = cx.string(value, "`name`"),
            "description" => {}
            "nodes" => {
                saw_nodes = true;
                match &value.value {
                    Value::Seq(items) => {
                        for item in items {
                            if let Some(node) = read_node(cx, item) {
                                graph.nodes.push(node);
                            }
                        }
                    }
                    _ => cx.shape(value, "`nodes`", "a list of nodes"),
                }
            }
            _ => {}
        }
    }
    if !saw_nodes && matches!(root.value, Value::Map(_)) {
        cx.err(
            root.span,
            None,
            ErrorKind::MissingKey {
                key: "nodes",
                what: "the graph".into(),
            },
        );
    }
}

fn read_node(cx: &mut Cx<'_>, item: &Node) -> Option<RawNode> {
    // Find the id first so every later error names the node.
    cx.node = None;
    if let Value::Map(entries) = &item.value {
        for (k, v) in entries {
            if matches!(&k.value, Value::Scalar { text, .. } if text == "id")
                && let Value::Scalar { text, .. } = &v.value
            {
                cx.node = Some(text.clone());
            }
        }
    }
    let fields = cx.fields(item, "a node", NODE_KEYS);
    if !matches!(item.value, Value::Map(_)) {
        return None;
    }
    let mut node = RawNode {
        id: Spanned {
            value: String::new(),
            span: item.span,
        },
        span: item.span,
        operator: None,
        path: None,
        params: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        process: None,
        machine: None,
        labels: None,
        isolate: None,
        restart: None,
        health_timeout: None,
        ports: Vec::new(),
        ports_span: None,
    };
    let mut has_id = false;
    for (key, _span, value) in fields {
        match key {
            "id" => {
                if let Some(id) = cx.string(value, "`id`") {
                    if id.value.is_empty() || id.value.contains('/') || id.value.chars().any(char::is_control) {
                        cx.err(
                            id.span,
                            None,
                            ErrorKind::BadValue {
                                what: "`id`".into(),
                                reason: "a node id is a non-empty name without `/` or control characters".into(),
                            },
                        );
                    }
                    node.id = id;
                    has_id = true;
                }
            }
            "description" => {}
            "operator" => {
                node.operator = cx.string(value, "`operator`");
                if let Some(name) = &node.operator
                    && !is_operator_name(&name.value)
                {
                    cx.err(
                        name.span,
                        None,
                        ErrorKind::BadValue {
                            what: "`operator`".into(),
                            reason:
                                "an operator name is letters, digits, `_` and `-` (give a library file with `path:`)"
                                    .into(),
                        },
                    );
                }
            }
            "path" => node.path = cx.string(value, "`path`"),
            "params" => read_params(cx, value, &mut node),
            "inputs" => read_inputs(cx, value, &mut node),
            "deploy" => read_deploy(cx, value, &mut node),
            "isolate" => {
                if let Some(s) = cx.string(value, "`isolate`") {
                    match s.value.as_str() {
                        "true" => {
                            node.isolate = Some(Spanned {
                                value: true,
                                span: s.span,
                            })
                        }
                        "false" => {
                            node.isolate = Some(Spanned {
                                value: false,
                                span: s.span,
                            })
                        }
                        other => cx.err(
                            s.span,
                            None,
                            ErrorKind::BadValue {
                                what: "`isolate`".into(),
                                reason: format!("`{other}` is not true or false"),
                            },
                        ),
                    }
                }
            }
            "restart" => node.restart = read_restart(cx, value),
            "health" => {
                for (hkey, _hspan, hvalue) in cx.fields(value, "`health`", HEALTH_KEYS) {
                    if hkey != "timeout" {
                        continue;
                    }
                    let Some(s) = cx.string(hvalue, "`timeout`") else {
                        continue;
                    };
                    match quiver_manifest::parse_duration(&s.value) {
                        Ok(d) if d.is_zero() => cx.err(
                            s.span,
                            None,
                            ErrorKind::BadValue {
                                what: "`timeout`".into(),
                                reason: "a health timeout must be greater than zero".into(),
                            },
                        ),
                        Ok(d) => node.health_timeout = Some(Spanned { value: d, span: s.span }),
                        Err(reason) => cx.err(
                            s.span,
                            None,
                            ErrorKind::BadValue {
                                what: "`timeout`".into(),
                                reason,
                            },
                        ),
                    }
                }
            }
            "ports" => {
                node.ports_span = Some(value.span);
                read_ports(cx, value, &mut node);
            }
            "outputs" => match &value.value {
                Value::Seq(items) => {
                    for item in items {
                        if let Some(s) = cx.string(item, "an output name") {
                            if node.outputs.iter().any(|o| o.value == s.value) {
                                cx.err(
                                    s.span,
                                    Some(&s.value),
                                    ErrorKind::DuplicateKey {
                                        key: s.value.clone(),
                                        what: "`outputs`".into(),
                                    },
                                );
                            } else {
                                node.outputs.push(s);
                            }
                        }
                    }
                }
                Value::Null => {}
                _ => cx.shape(value, "`outputs`", "a list of output names"),
            },
            _ => {}
        }
    }
    if !has_id {
        cx.err(
            item.span,
            None,
            ErrorKind::MissingKey {
                key: "id",
                what: "a node".into(),
            },
        );
        return None;
    }
    match (&node.operator, &node.path) {
        (Some(_), Some(p)) => cx.err(p.span, None, ErrorKind::OperatorAndPath),
        (None, None) => cx.err(node.id.span, None, ErrorKind::NoOperator),
        _ => {}
    }
    Some(node)
}

/// `deploy: { process, machine, labels }`. Machine names and labels are names like process
/// names (they appear in Zenoh keys); `machine` and `labels` exclude each other.
fn read_deploy(cx: &mut Cx<'_>, value: &Node, node: &mut RawNode) {
    let name_of = |cx: &mut Cx<'_>, v: &Node, what: &str, kind: &str| -> Option<Spanned<String>> {
        let name = cx.string(v, what)?;
        if is_process_name(&name.value) {
            Some(name)
        } else {
            cx.err(
                name.span,
                None,
                ErrorKind::BadValue {
                    what: what.into(),
                    reason: format!("`{}` is not a {kind} (letters, digits, `_` and `-`)", name.value),
                },
            );
            None
        }
    };
    for (dkey, _dspan, dvalue) in cx.fields(value, "`deploy`", DEPLOY_KEYS) {
        match dkey {
            "process" => node.process = name_of(cx, dvalue, "`process`", "process name"),
            "machine" => node.machine = name_of(cx, dvalue, "`machine`", "machine name"),
            "labels" => match &dvalue.value {
                Value::Seq(items) => {
                    let mut labels: Vec<Spanned<String>> = Vec::new();
                    for item in items {
                        if let Some(l) = name_of(cx, item, "a label", "label")
                            && !labels.iter().any(|seen| seen.value == l.value)
                        {
                            labels.push(l);
                        }
                    }
                    if items.is_empty() {
                        cx.err(
                            dvalue.span,
                            None,
                            ErrorKind::BadValue {
                                what: "`labels`".into(),
                                reason: "the list is empty: name at least one label, or leave `labels` out".into(),
                            },
                        );
                    } else {
                        node.labels = Some(Spanned {
                            value: labels,
                            span: dvalue.span,
                        });
                    }
                }
                _ => cx.shape(dvalue, "`labels`", "a list of labels"),
            },
            _ => {}
        }
    }
    if let (Some(_), Some(l)) = (&node.machine, &node.labels) {
        cx.err(
            l.span,
            None,
            ErrorKind::BadValue {
                what: "`labels`".into(),
                reason: "`machine` already names the daemon; give `machine` or `labels`, not both".into(),
            },
        );
        node.labels = None;
    }
}

/// A process name: used in Zenoh keys and in messages.
pub(crate) fn is_process_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `restart: never | on-failure` or
/// `restart: { policy: on-failure, max: 5, delay: 100ms, max_delay: 10s, window: 60s }`.
fn read_restart(cx: &mut Cx<'_>, value: &Node) -> Option<Spanned<Restart>> {
    let policy_of = |cx: &mut Cx<'_>, s: &Spanned<String>| match s.value.as_str() {
        "never" => Some(Restart::Never),
        "on-failure" => Some(Restart::ON_FAILURE),
        other => {
            cx.err(
                s.span,
                None,
                ErrorKind::BadValue {
                    what: "`restart`".into(),
                    reason: format!("`{other}` is not one of never, on-failure"),
                },
            );
            None
        }
    };
    if let Value::Scalar { .. } = value.value {
        let s = cx.string(value, "`restart`")?;
        let policy = policy_of(cx, &s)?;
        return Some(Spanned {
            value: policy,
            span: s.span,
        });
    }
    let mut policy = None;
    let mut policy_given = false;
    let mut max = None;
    let mut durations: Vec<(&str, std::time::Duration, Span)> = Vec::new();
    let mut tuned: Option<Span> = None;
    for (key, _span, v) in cx.fields(value, "`restart`", RESTART_KEYS) {
        policy_given |= key == "policy";
        let Some(s) = cx.string(v, &format!("`{key}`")) else {
            continue;
        };
        match key {
            "policy" => policy = policy_of(cx, &s).map(|p| (p, s.span)),
            "max" => match s.value.parse::<u32>() {
                Ok(n) => {
                    max = Some(n);
                    tuned.get_or_insert(s.span);
                }
                Err(_) => cx.err(
                    s.span,
                    None,
                    ErrorKind::BadValue {
                        what: "`max`".into(),
                        reason: format!("`{}` is not a whole number", s.value),
                    },
                ),
            },
            "delay" | "max_delay" | "window" => match quiver_manifest::parse_duration(&s.value) {
                Ok(d) => {
                    durations.push((key, d, s.span));
                    tuned.get_or_insert(s.span);
                }
                Err(reason) => cx.err(
                    s.span,
                    None,
                    ErrorKind::BadValue {
                        what: format!("`{key}`"),
                        reason,
                    },
                ),
            },
            _ => {}
        }
    }
    match (policy, tuned) {
        (
            Some((
                Restart::OnFailure {
                    max: m,
                    delay,
                    max_delay,
                    window,
                },
                span,
            )),
            _,
        ) => {
            let get = |k: &str, default: std::time::Duration| {
                durations
                    .iter()
                    .find(|(key, _, _)| *key == k)
                    .map_or(default, |(_, d, _)| *d)
            };
            let (delay, max_delay, window) = (get("delay", delay), get("max_delay", max_delay), get("window", window));
            if max_delay < delay {
                let at = durations
                    .iter()
                    .find(|(k, _, _)| *k == "max_delay")
                    .map_or(span, |(_, _, s)| *s);
                cx.err(
                    at,
                    None,
                    ErrorKind::BadValue {
                        what: "`max_delay`".into(),
                        reason: "shorter than `delay`".into(),
                    },
                );
                return None;
            }
            Some(Spanned {
                value: Restart::OnFailure {
                    max: max.unwrap_or(m),
                    delay,
                    max_delay,
                    window,
                },
                span,
            })
        }
        (Some((Restart::Never, _)), Some(span)) => {
            cx.err(
                span,
                None,
                ErrorKind::BadValue {
                    what: "`restart`".into(),
                    reason: "`max`, `delay`, `max_delay` and `window` only apply to `policy: on-failure`".into(),
                },
            );
            None
        }
        (Some((p, span)), None) => Some(Spanned { value: p, span }),
        (None, _) => {
            if matches!(value.value, Value::Map(_)) && !policy_given {
                cx.err(
                    value.span,
                    None,
                    ErrorKind::MissingKey {
                        key: "policy",
                        what: "`restart`".into(),
                    },
                );
            }
            None
        }
    }
}

/// `ports: { NAME: { type: pkg/msg/Type, KEY: VALUE, ... }, ... }`.
fn read_ports(cx: &mut Cx<'_>, value: &Node, node: &mut RawNode) {
    let Value::Map(entries) = &value.value else {
        if value.value != Value::Null {
            cx.shape(value, "`ports`", "a mapping of port names to their type and settings");
        }
        return;
    };
    for (k, v) in entries {
        let Some(name) = cx.key(k, "`ports`") else {
            continue;
        };
        if node.ports.iter().any(|p| p.name.value == name) {
            cx.err(
                k.span,
                Some(name),
                ErrorKind::DuplicateKey {
                    key: name.into(),
                    what: "`ports`".into(),
                },
            );
            continue;
        }
        let mut port = RawPort {
            name: Spanned {
                value: name.into(),
                span: k.span,
            },
            msg_type: None,
            settings: Vec::new(),
        };
        let Value::Map(settings) = &v.value else {
            cx.shape(
                v,
                &format!("port `{name}`"),
                "a mapping with `type` and the port's settings",
            );
            continue;
        };
        for (sk, sv) in settings {
            let Some(key) = cx.key(sk, &format!("port `{name}`")) else {
                continue;
            };
            let Some(text) = cx.string(sv, &format!("`{key}` of port `{name}`")) else {
                continue;
            };
            if key == "type" {
                port.msg_type = Some(text);
            } else {
                port.settings.push((
                    Spanned {
                        value: key.into(),
                        span: sk.span,
                    },
                    text,
                ));
            }
        }
        if port.msg_type.is_none() {
            cx.err(
                k.span,
                Some(name),
                ErrorKind::MissingKey {
                    key: "type",
                    what: format!("port `{name}`"),
                },
            );
        }
        node.ports.push(port);
    }
}

fn read_params(cx: &mut Cx<'_>, value: &Node, node: &mut RawNode) {
    let Value::Map(entries) = &value.value else {
        if value.value != Value::Null {
            cx.shape(value, "`params`", "a mapping of parameter names to values");
        }
        return;
    };
    for (k, v) in entries {
        let Some(name) = cx.key(k, "`params`") else {
            continue;
        };
        if node.params.iter().any(|(n, _)| n.value == name) {
            cx.err(
                k.span,
                None,
                ErrorKind::DuplicateKey {
                    key: name.into(),
                    what: "`params`".into(),
                },
            );
            continue;
        }
        let scalar = match &v.value {
            Value::Null => RawScalar::Null,
            Value::Scalar { text, quoted } => RawScalar::Text {
                text: text.clone(),
                quoted: *quoted,
            },
            _ => {
                cx.shape(v, &format!("parameter `{name}`"), "a single value");
                continue;
            }
        };
        node.params.push((
            Spanned {
                value: name.into(),
                span: k.span,
            },
            Spanned {
                value: scalar,
                span: v.span,
            },
        ));
    }
}

fn read_inputs(cx: &mut Cx<'_>, value: &Node, node: &mut RawNode) {
    let Value::Map(entries) = &value.value else {
        if value.value != Value::Null {
            cx.shape(value, "`inputs`", "a mapping of input names to sources");
        }
        return;
    };
    for (k, v) in entries {
        let Some(name) = cx.key(k, "`inputs`") else {
            continue;
        };
        if node.inputs.iter().any(|i| i.name.value == name) {
            cx.err(k.span, Some(name), ErrorKind::DuplicateInput { input: name.into() });
            continue;
        }
        let name = Spanned {
            value: name.to_string(),
            span: k.span,
        };
        if let Some(source) = read_source(cx, v, &name.value) {
            node.inputs.push(RawInput { name, source });
        }
    }
}

fn split_from(cx: &mut Cx<'_>, s: &Spanned<String>, port: &str) -> Option<(Spanned<String>, Spanned<String>)> {
    match s.value.split_once('/') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() && !p.contains('/') => Some((
            Spanned {
                value: n.into(),
                span: s.span,
            },
            // Point at the port part of `node/port`.
            Spanned {
                value: p.into(),
                span: Span {
                    line: s.span.line,
                    col: s.span.col + n.len() + 1,
                },
            },
        )),
        _ => {
            cx.err(s.span, Some(port), ErrorKind::BadFrom { text: s.value.clone() });
            None
        }
    }
}

fn read_source(cx: &mut Cx<'_>, v: &Node, port: &str) -> Option<RawSource> {
    if let Value::Scalar { .. } = v.value {
        let s = cx.string(v, "an input")?;
        let (node, port_name) = split_from(cx, &s, port)?;
        return Some(RawSource::From {
            node,
            port: port_name,
            queue: RawQueue::default(),
            passing: None,
            timeout: None,
        });
    }
    if !matches!(v.value, Value::Map(_)) {
        cx.err(
            v.span,
            Some(port),
            ErrorKind::Shape {
                what: format!("input `{port}`"),
                expected: "`node/output`, `{ from: node/output, queue: {...} }` or `{ timer: 100ms }`",
                found: v.kind(),
            },
        );
        return None;
    }
    let what = format!("input `{port}`");
    let mut from = None;
    let mut timer = None;
    let mut queue = RawQueue::default();
    let mut passing = None;
    let mut has_queue = None;
    let mut timeout = None;
    for (key, span, value) in cx.fields(v, &what, INPUT_KEYS) {
        match key {
            "timeout" => {
                if let Some(s) = cx.string(value, "`timeout`") {
                    match quiver_manifest::parse_duration(&s.value) {
                        Ok(d) if d.is_zero() => cx.err(
                            s.span,
                            Some(port),
                            ErrorKind::BadValue {
                                what: "`timeout`".into(),
                                reason: "an input timeout must be greater than zero".into(),
                            },
                        ),
                        Ok(d) => timeout = Some(Spanned { value: d, span: s.span }),
                        Err(reason) => cx.err(
                            s.span,
                            Some(port),
                            ErrorKind::BadValue {
                                what: "`timeout`".into(),
                                reason,
                            },
                        ),
                    }
                }
            }
            "from" => {
                if let Some(s) = cx.string(value, "`from`") {
                    from = split_from(cx, &s, port);
                }
            }
            "timer" => {
                if let Some(s) = cx.string(value, "`timer`") {
                    match quiver_manifest::parse_duration(&s.value) {
                        Ok(d) if d.is_zero() => cx.err(
                            s.span,
                            Some(port),
                            ErrorKind::BadValue {
                                what: "`timer`".into(),
                                reason: "a timer period must be greater than zero".into(),
                            },
                        ),
                        Ok(d) => timer = Some(Spanned { value: d, span: s.span }),
                        Err(reason) => cx.err(
                            s.span,
                            Some(port),
                            ErrorKind::BadValue {
                                what: "`timer`".into(),
                                reason,
                            },
                        ),
                    }
                }
            }
            "queue" => {
                has_queue = Some(span);
                for (qkey, _qspan, qvalue) in cx.fields(value, &format!("the queue of input `{port}`"), QUEUE_KEYS) {
                    match qkey {
                        "depth" => {
                            let Some(s) = cx.string(qvalue, "`depth`") else {
                                continue;
                            };
                            match s.value.parse::<usize>() {
                                Ok(d) if d > 0 => queue.depth = Some(Spanned { value: d, span: s.span }),
                                _ => cx.err(
                                    s.span,
                                    Some(port),
                                    ErrorKind::BadValue {
                                        what: "`depth`".into(),
                                        reason: format!("`{}` is not a whole number of at least 1", s.value),
                                    },
                                ),
                            }
                        }
                        "policy" => {
                            let Some(s) = cx.string(qvalue, "`policy`") else {
                                continue;
                            };
                            let policy = match s.value.as_str() {
                                "block" => Policy::Block,
                                "drop_oldest" => Policy::DropOldest,
                                "latest" => Policy::Latest,
                                other => {
                                    cx.err(
                                        s.span,
                                        Some(port),
                                        ErrorKind::BadValue {
                                            what: "`policy`".into(),
                                            reason: format!("`{other}` is not one of block, drop_oldest, latest"),
                                        },
                                    );
                                    continue;
                                }
                            };
                            queue.policy = Some(Spanned {
                                value: policy,
                                span: s.span,
                            });
                        }
                        _ => {}
                    }
                }
            }
            "passing" => {
                let Some(s) = cx.string(value, "`passing`") else {
                    continue;
                };
                let p = match s.value.as_str() {
                    "by_reference" => Passing::ByReference,
                    "by_value" => Passing::ByValue,
                    other => {
                        cx.err(
                            s.span,
                            Some(port),
                            ErrorKind::BadValue {
                                what: "`passing`".into(),
                                reason: format!("`{other}` is not one of by_reference, by_value"),
                            },
                        );
                        continue;
                    }
                };
                passing = Some(Spanned { value: p, span: s.span });
            }
            _ => {}
        }
    }
    if let (
        Some(Spanned {
            value: Policy::Latest, ..
        }),
        Some(depth),
    ) = (&queue.policy, &queue.depth)
        && depth.value != 1
    {
        cx.err(depth.span, Some(port), ErrorKind::LatestDepth { depth: depth.value });
    }
    match (from, timer) {
        (Some((node, port_name)), None) => Some(RawSource::From {
            node,
            port: port_name,
            queue,
            passing,
            timeout,
        }),
        (None, Some(t)) => {
            if let Some(span) = has_queue
                .or(passing.as_ref().map(|p| p.span))
                .or(timeout.as_ref().map(|t| t.span))
            {
                cx.err(
                    span,
                    Some(port),
                    ErrorKind::BadValue {
                        what: format!("input `{port}`"),
                        reason: "a timer has no queue, passing policy or timeout".into(),
                    },
                );
            }
            Some(RawSource::Timer(t))
        }
        (Some(_), Some(t)) => {
            cx.err(
                t.span,
                Some(port),
                ErrorKind::BadValue {
                    what: format!("input `{port}`"),
                    reason: "give either `from:` or `timer:`, not both".into(),
                },
            );
            None
        }
        (None, None) => {
            // `from` may have been present but malformed (already reported).
            if !cx
                .sink
                .errors
                .iter()
                .any(|e| e.span.line == v.span.line && e.port.as_deref() == Some(port))
            {
                cx.err(
                    v.span,
                    Some(port),
                    ErrorKind::MissingKey {
                        key: "from",
                        what: what.clone(),
                    },
                );
            }
            None
        }
    }
}
