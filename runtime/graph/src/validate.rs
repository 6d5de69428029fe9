//! Raw graph + operator manifests -> validated [`Graph`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::error::{ErrorKind, Errors, Sink};
use crate::graph::{Edge, Graph, Input, MAIN_PROCESS, Node, OperatorRef, QueueSpec, Source, Target};
use crate::raw::{Passing, Policy, RawGraph, RawNode, RawScalar, RawSource, Restart, Spanned, is_process_name};
use crate::spec::{GraphPort, OperatorSpec, ParamKind, ParamValue, types_match};
use crate::yaml::Span;

/// Finds an operator's manifest; the error says what was tried (e.g. where it looked).
pub type Resolver<'a> = dyn FnMut(&OperatorRef) -> Result<Arc<OperatorSpec>, String> + 'a;

/// At most this many names in a list of what exists (an error lists them as a hint).
const LISTED: usize = 12;

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut more = 0usize;
    for s in items {
        if shown.len() < LISTED {
            shown.push(s.as_ref().to_string());
        } else {
            more += 1;
        }
    }
    match (shown.is_empty(), more) {
        (true, _) => "none".into(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{}, and {n} more", shown.join(", ")),
    }
}

/// The operator reference a raw node names.
pub fn operator_ref(raw: &RawGraph, node: &RawNode) -> Option<OperatorRef> {
    if let Some(name) = &node.operator {
        return Some(OperatorRef::Name(name.value.clone()));
    }
    let path = Path::new(&node.path.as_ref()?.value);
    Some(OperatorRef::Path(if path.is_absolute() {
        path.to_path_buf()
    } else {
        raw.dir().join(path)
    }))
}

/// Checks the raw graph against the operators' manifests.
pub fn validate(raw: &RawGraph, resolve: &mut Resolver<'_>) -> Result<Graph, Errors> {
    let mut sink = Sink::new(raw.file.clone());

    // Node ids.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        if let Some(&first) = ids.get(n.id.value.as_str()) {
            sink.push(
                n.id.span,
                None,
                None,
                ErrorKind::DuplicateNode {
                    id: n.id.value.clone(),
                    first_line: raw.nodes[first].id.span.line,
                },
            );
        } else {
            ids.insert(&n.id.value, i);
        }
    }

    let placement = check_placement(&mut sink, raw);

    // Operators, resolved once per reference.
    let mut cache: HashMap<OperatorRef, Result<Arc<OperatorSpec>, String>> = HashMap::new();
    let specs: Vec<Option<Arc<OperatorSpec>>> = raw
        .nodes
        .iter()
        .map(|n| {
            let r = operator_ref(raw, n)?;
            let result = cache.entry(r.clone()).or_insert_with(|| resolve(&r)).clone();
            match result {
                Ok(spec) => Some(spec),
                Err(message) => {
                    let span = n.operator.as_ref().or(n.path.as_ref()).map_or(n.span, |s| s.span);
                    sink.push(span, Some(&n.id.value), None, ErrorKind::Operator(message));
                    None
                }
            }
        })
        .collect();

    // Ports the graph declares join the operator's own: one spec per such node.
    let mut graph_ports: Vec<Vec<GraphPort>> = Vec::new();
    let specs: Vec<Option<Arc<OperatorSpec>>> = specs
        .into_iter()
        .zip(&raw.nodes)
        .map(|(spec, n)| {
            let (spec, ports) = match spec {
                Some(spec) => {
                    let (s, p) = declared_ports(&mut sink, n, spec);
                    (Some(s), p)
                }
                None => (None, Vec::new()),
            };
            graph_ports.push(ports);
            spec
        })
        .collect();

    let mut nodes = Vec::new();
    for (ni, n) in raw.nodes.iter().enumerate() {
        let id = n.id.value.as_str();
        let spec = specs[ni].clone();
        if let Some(spec) = &spec {
            for out in &n.outputs {
                if spec.find_output(&out.value).is_none() {
                    sink.push(
                        out.span,
                        Some(id),
                        Some(&out.value),
                        ErrorKind::UndeclaredOutput {
                            operator: spec.name.clone(),
                            port: out.value.clone(),
                            known: list(spec.outputs.iter().map(|p| &p.name)),
                        },
                    );
                }
            }
        }
        let params = spec
            .as_ref()
            .map(|s| check_params(&mut sink, n, s, raw.dir()))
            .unwrap_or_default();
        let mut inputs = Vec::new();
        for input in &n.inputs {
            let port = input.name.value.as_str();
            let source = match &input.source {
                RawSource::Timer(period) => {
                    if let Some(spec) = &spec
                        && spec.find_timer(port).is_none()
                    {
                        let kind = match spec.find_input(port) {
                            Some(p) => ErrorKind::DataBoundToTimer {
                                operator: spec.name.clone(),
                                port: port.into(),
                                msg_type: p.msg_type.clone(),
                            },
                            None => undeclared_input(spec, port),
                        };
                        sink.push(input.name.span, Some(id), Some(port), kind);
                    }
                    Source::Timer(period.value)
                }
                RawSource::From {
                    node,
                    port: from_port,
                    queue,
                    passing,
                    timeout,
                } => {
                    let from_text = format!("{}/{}", node.value, from_port.value);
                    let Some(&producer) = ids.get(node.value.as_str()) else {
                        sink.push(
                            node.span,
                            Some(id),
                            Some(port),
                            ErrorKind::UnknownNode {
                                node: node.value.clone(),
                                known: list(raw.nodes.iter().map(|n| &n.id.value)),
                            },
                        );
                        continue;
                    };
                    let producer_raw = &raw.nodes[producer];
                    if !producer_raw.outputs.iter().any(|o| o.value == from_port.value) {
                        sink.push(
                            from_port.span,
                            Some(id),
                            Some(port),
                            ErrorKind::UnlistedOutput {
                                node: node.value.clone(),
                                port: from_port.value.clone(),
                                listed: list(producer_raw.outputs.iter().map(|o| &o.value)),
                            },
                        );
                    }
                    let from_type = specs[producer]
                        .as_ref()
                        .and_then(|s| s.find_output(&from_port.value))
                        .map(|p| p.msg_type.clone());
                    if let Some(spec) = &spec {
                        match spec.find_input(port) {
                            None if spec.find_timer(port).is_some() => sink.push(
                                input.name.span,
                                Some(id),
                                Some(port),
                                ErrorKind::TimerBoundToData {
                                    operator: spec.name.clone(),
                                    port: port.into(),
                                    from: from_text.clone(),
                                },
                            ),
                            None => sink.push(input.name.span, Some(id), Some(port), undeclared_input(spec, port)),
                            Some(to) => {
                                if let Some(from_type) = &from_type
                                    && !types_match(from_type, &to.msg_type)
                                {
                                    sink.push(
                                        input.name.span,
                                        Some(id),
                                        Some(port),
                                        ErrorKind::TypeMismatch {
                                            from: from_text.clone(),
                                            from_type: from_type.clone(),
                                            to: format!("{id}/{port}"),
                                            to_type: to.msg_type.clone(),
                                        },
                                    );
                                }
                            }
                        }
                    }
                    let policy = queue.policy.as_ref().map_or(Policy::Block, |p| p.value);
                    let default_depth = if policy == Policy::Latest {
                        1
                    } else {
                        crate::graph::DEFAULT_DEPTH
                    };
                    Source::Edge(Edge {
                        node: producer,
                        port: from_port.value.clone(),
                        msg_type: from_type.unwrap_or_default(),
                        queue: QueueSpec {
                            depth: queue.depth.as_ref().map_or(default_depth, |d| d.value),
                            policy,
                        },
                        passing: passing.as_ref().map_or(Passing::ByReference, |p| p.value),
                        timeout: timeout.as_ref().map(|t| t.value),
                    })
                }
            };
            inputs.push(Input {
                name: port.into(),
                source,
                span: input.name.span,
            });
        }
        if let (Some(spec), Some(operator)) = (spec, operator_ref(raw, n)) {
            nodes.push(Node {
                id: id.into(),
                operator,
                spec,
                params,
                inputs,
                outputs: n.outputs.iter().map(|o| o.value.clone()).collect(),
                process: placement[ni].0.clone(),
                target: placement[ni].1.clone(),
                target_span: n
                    .machine
                    .as_ref()
                    .map(|m| m.span)
                    .or(n.labels.as_ref().map(|l| l.span))
                    .unwrap_or(n.span),
                restart: n.restart.as_ref().map_or(Restart::Never, |r| r.value),
                health_timeout: n
                    .health_timeout
                    .as_ref()
                    .map_or(crate::graph::DEFAULT_HEALTH_TIMEOUT, |h| h.value),
                graph_ports: std::mem::take(&mut graph_ports[ni]),
                span: n.span,
            });
        }
    }
    let name = raw.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| {
        raw.file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "graph".into())
    });
    sink.finish(Graph {
        name,
        file: raw.file.clone(),
        nodes,
    })
}

/// The node's `ports:` checked against the operator (it must take graph ports; settings it
/// declares; no clash; each port an input or an output), and the spec with them appended.
fn declared_ports(sink: &mut Sink, n: &RawNode, spec: Arc<OperatorSpec>) -> (Arc<OperatorSpec>, Vec<GraphPort>) {
    if n.ports.is_empty() {
        return (spec, Vec::new());
    }
    let id = n.id.value.as_str();
    let Some(taken) = &spec.graph_ports else {
        sink.push(
            n.ports_span.unwrap_or(n.span),
            Some(id),
            None,
            ErrorKind::PortsNotTaken {
                operator: spec.name.clone(),
            },
        );
        return (spec, Vec::new());
    };
    let mut ports = Vec::new();
    for p in &n.ports {
        let name = p.name.value.as_str();
        let push = |sink: &mut Sink, span, kind| sink.push(span, Some(id), Some(name), kind);
        if spec.find_input(name).is_some() || spec.find_output(name).is_some() || spec.find_timer(name).is_some() {
            push(
                sink,
                p.name.span,
                ErrorKind::PortClash {
                    operator: spec.name.clone(),
                    port: name.into(),
                },
            );
            continue;
        }
        for (key, _) in &p.settings {
            if !taken.settings.iter().any(|s| s.name == key.value) {
                push(
                    sink,
                    key.span,
                    ErrorKind::UnknownPortSetting {
                        operator: spec.name.clone(),
                        key: key.value.clone(),
                        known: list(taken.settings.iter().map(|s| &s.name)),
                    },
                );
            }
        }
        let output = n.outputs.iter().any(|o| o.value == name);
        let input = n.inputs.iter().any(|i| i.name.value == name);
        match (output, input) {
            (true, true) => push(sink, p.name.span, ErrorKind::PortBothWays { port: name.into() }),
            (false, false) => push(sink, p.name.span, ErrorKind::UnusedPort { port: name.into() }),
            _ => {}
        }
        let Some(msg_type) = &p.msg_type else { continue };
        // `pkg/msg/Type` (ROS's spelling) is `pkg/Type`, as ports everywhere else name types.
        let ty = match msg_type.value.split('/').collect::<Vec<_>>().as_slice() {
            [pkg, "msg", ty] => format!("{pkg}/{ty}"),
            _ => msg_type.value.clone(),
        };
        if !taken.types.is_empty() && !taken.types.contains(&ty) {
            push(
                sink,
                msg_type.span,
                ErrorKind::UnknownPortType {
                    operator: spec.name.clone(),
                    msg_type: msg_type.value.clone(),
                    known: list(&taken.types),
                },
            );
            // Still declared (as written), so the node's edges are not reported again.
        }
        ports.push(GraphPort {
            name: name.into(),
            msg_type: ty,
            output,
            settings: p
                .settings
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
        });
    }
    let expanded = Arc::new(spec.with_graph_ports(&ports));
    (expanded, ports)
}

/// Reports an invalid value of a placement key on a node.
fn bad_value(sink: &mut Sink, span: Span, node: &str, what: &str, reason: String) {
    sink.push(
        span,
        Some(node),
        None,
        ErrorKind::BadValue {
            what: what.into(),
            reason,
        },
    );
}

/// The process each node runs in (None: the main process, the one `quiver run` is) and the
/// machine that process runs on, from `deploy: { process, machine, labels }` and `isolate`;
/// checks that the keys agree, that every node of a process names the same machine, and that
/// `restart` is only used on worker processes and consistently within one. A node with a
/// machine (or labels) but no process runs in that machine's default process, named after
/// the machine (or the labels joined by `+`).
fn check_placement(sink: &mut Sink, raw: &RawGraph) -> Vec<(Option<String>, Target)> {
    let mut out: Vec<(Option<String>, Target)> = Vec::new();
    // Processes named by `isolate`: each belongs to the node of that id.
    let mut isolated: HashSet<&str> = HashSet::new();
    for n in &raw.nodes {
        let id = n.id.value.as_str();
        let isolate = n.isolate.as_ref().filter(|i| i.value);
        let target = match (&n.machine, &n.labels) {
            (Some(m), _) => Target::Machine(m.value.clone()),
            (None, Some(l)) if !l.value.is_empty() => {
                let mut labels: Vec<String> = l.value.iter().map(|l| l.value.clone()).collect();
                labels.sort();
                labels.dedup();
                Target::Labels(labels)
            }
            _ => Target::Here,
        };
        let process = match (&n.process, isolate) {
            (Some(p), Some(i)) => {
                bad_value(
                    sink,
                    i.span,
                    id,
                    "`isolate`",
                    format!(
                        "the node is already placed in process `{}` by `deploy`; give one of the two",
                        p.value
                    ),
                );
                None
            }
            (Some(p), None) if p.value == MAIN_PROCESS => {
                if !target.is_here() {
                    bad_value(
                        sink,
                        p.span,
                        id,
                        "`process`",
                        format!("`main` is the process `quiver run` is: it cannot run on {target}"),
                    );
                }
                None
            }
            (Some(p), None) => Some(p.value.clone()),
            (None, Some(i)) => {
                if is_process_name(id) && id != MAIN_PROCESS {
                    isolated.insert(id);
                    Some(id.to_string())
                } else {
                    bad_value(
                        sink,
                        i.span,
                        id,
                        "`isolate`",
                        format!(
                            "the node id `{id}` cannot name a process (letters, digits, `_`, `-`; not `main`): use `deploy: {{ process: NAME }}`"
                        ),
                    );
                    None
                }
            }
            (None, None) => match &target {
                Target::Here => None,
                Target::Machine(m) => Some(m.clone()),
                Target::Labels(l) => Some(l.join("+")),
            },
        };
        out.push((process, target));
    }
    for n in &raw.nodes {
        if let Some(p) = &n.process
            && isolated.contains(p.value.as_str())
            && p.value != n.id.value
        {
            bad_value(
                sink,
                p.span,
                &n.id.value,
                "`process`",
                format!("process `{0}` belongs to node `{0}` alone (`isolate: true`)", p.value),
            );
        }
    }
    // A process runs on one machine.
    let mut machine_of: HashMap<&str, (&Target, &str)> = HashMap::new();
    for (n, (process, target)) in raw.nodes.iter().zip(&out) {
        let Some(process) = process else { continue };
        match machine_of.get(process.as_str()) {
            Some((first, by)) if *first != target => {
                let span = n
                    .machine
                    .as_ref()
                    .map(|m| m.span)
                    .or(n.labels.as_ref().map(|l| l.span))
                    .or(n.process.as_ref().map(|p| p.span))
                    .unwrap_or(n.span);
                bad_value(
                    sink,
                    span,
                    &n.id.value,
                    "`deploy`",
                    format!(
                        "process `{process}` runs on {first} (node `{by}`), this node puts it on {target}; a process runs on one machine: name another process"
                    ),
                );
            }
            Some(_) => {}
            None => {
                machine_of.insert(process, (target, &n.id.value));
            }
        }
    }
    // Restart policies: per worker process, one policy.
    let mut policies: HashMap<&str, (Restart, &str)> = HashMap::new();
    for (n, (process, _)) in raw.nodes.iter().zip(&out) {
        let Some(r) = &n.restart else { continue };
        let Some(process) = process else {
            bad_value(
                sink,
                r.span,
                &n.id.value,
                "`restart`",
                "only a node in a worker process can be restarted: add `isolate: true` or `deploy: { process: NAME }`"
                    .into(),
            );
            continue;
        };
        match policies.get(process.as_str()) {
            Some((other, by)) if *other != r.value => bad_value(
                sink,
                r.span,
                &n.id.value,
                "`restart`",
                format!(
                    "node `{by}` in the same process `{process}` asks for another restart policy; a process restarts as a whole"
                ),
            ),
            Some(_) => {}
            None => {
                policies.insert(process, (r.value, &n.id.value));
            }
        }
    }
    out
}

fn undeclared_input(spec: &OperatorSpec, port: &str) -> ErrorKind {
    ErrorKind::UndeclaredInput {
        operator: spec.name.clone(),
        port: port.into(),
        inputs: list(spec.inputs.iter().map(|p| format!("{} ({})", p.name, p.msg_type))),
        timers: list(spec.timers.iter().map(|t| &t.name)),
    }
}

/// Typed parameters in manifest order, defaults filled in; errors for unknown, mistyped,
/// out-of-range and missing ones.
fn check_params(sink: &mut Sink, n: &RawNode, spec: &OperatorSpec, dir: &Path) -> Vec<(String, ParamValue)> {
    let id = n.id.value.as_str();
    let mut given: HashMap<&str, ParamValue> = HashMap::new();
    for (name, value) in &n.params {
        let Some(p) = spec.find_param(&name.value) else {
            sink.push(
                name.span,
                Some(id),
                None,
                ErrorKind::UnknownParam {
                    operator: spec.name.clone(),
                    param: name.value.clone(),
                    known: list(spec.params.iter().map(|p| format!("{} ({})", p.name, p.kind))),
                },
            );
            continue;
        };
        let typed = convert(value, p.kind)
            .and_then(|v| required_path(p, v))
            .and_then(|v| resolve_path(v, dir, "the graph's folder"))
            .and_then(|v| p.check(&v).map(|()| v));
        match typed {
            Ok(v) => {
                given.insert(&name.value, v);
            }
            Err(reason) => sink.push(
                value.span,
                Some(id),
                None,
                ErrorKind::BadParam {
                    param: name.value.clone(),
                    reason,
                },
            ),
        }
    }
    let mut out = Vec::new();
    for p in &spec.params {
        if let Some(v) = given.remove(p.name.as_str()) {
            out.push((p.name.clone(), v));
        } else if let Some(d) = &p.default {
            // A default path is relative to the graph's folder too.
            match resolve_path(d.clone(), dir, "the graph's folder") {
                Ok(v) => out.push((p.name.clone(), v)),
                Err(reason) => sink.push(
                    n.id.span,
                    Some(id),
                    None,
                    ErrorKind::BadParam {
                        param: p.name.clone(),
                        reason: format!("(default) {reason}"),
                    },
                ),
            }
        } else if !n.params.iter().any(|(name, _)| name.value == p.name) {
            sink.push(
                n.id.span,
                Some(id),
                None,
                ErrorKind::MissingParam {
                    param: p.name.clone(),
                    kind: p.kind.to_string(),
                    doc: p.doc.clone(),
                },
            );
        }
    }
    out
}

/// An empty path is "left out": allowed for an optional path only (a required one would reach
/// the operator as "" and fail there without a name).
pub(crate) fn required_path(p: &crate::spec::ParamSpec, v: ParamValue) -> Result<ParamValue, String> {
    match &v {
        ParamValue::Path(s) if s.is_empty() && p.default.is_none() => {
            Err("an empty path: this parameter is required, give a file or a folder".into())
        }
        _ => Ok(v),
    }
}

/// "a bool", "an int".
pub(crate) fn a_kind(kind: ParamKind) -> String {
    match kind {
        ParamKind::Int => "an int".into(),
        k => format!("a {k}"),
    }
}

/// Makes a path parameter absolute (relative to `dir`, which `base` names in messages) and
/// checks the file exists.
pub(crate) fn resolve_path(v: ParamValue, dir: &Path, base: &str) -> Result<ParamValue, String> {
    let ParamValue::Path(p) = v else { return Ok(v) };
    if p.is_empty() {
        return Ok(ParamValue::Path(p)); // an optional path left out
    }
    let full = if Path::new(&p).is_absolute() {
        p.clone().into()
    } else {
        dir.join(&p)
    };
    let full = std::path::absolute(&full).unwrap_or(full);
    match std::fs::metadata(&full) {
        Err(_) if !full.exists() => {
            return Err(format!(
                "no such file: {p} (looked for {}; relative paths start at {base})",
                full.display()
            ));
        }
        Err(e) => return Err(format!("{}: {e}", full.display())),
        // A FIFO would block for ever, a device (`/dev/zero`) never end.
        Ok(m) if !m.is_file() && !m.is_dir() => {
            return Err(format!(
                "{} is not a regular file or a folder (a pipe, a device or a socket)",
                full.display()
            ));
        }
        Ok(_) => {}
    }
    Ok(ParamValue::Path(full.display().to_string()))
}

/// Reads a value of `kind` written as on a command line or in a graph file (`0.5`, `20ms`,
/// `true`; quotes around a string are optional): what `quiver param set` takes.
pub fn param_from_text(text: &str, kind: ParamKind) -> Result<ParamValue, String> {
    let t = text.trim();
    let unquoted = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| t.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')));
    let scalar = Spanned {
        value: RawScalar::Text {
            text: unquoted.unwrap_or(t).to_string(),
            quoted: unquoted.is_some(),
        },
        span: crate::yaml::Span::default(),
    };
    convert(&scalar, kind)
}

/// Reads a YAML scalar as a value of `kind`.
pub fn convert(value: &Spanned<RawScalar>, kind: ParamKind) -> Result<ParamValue, String> {
    let (text, quoted) = match &value.value {
        RawScalar::Null => return Err(format!("expected {}, got nothing", a_kind(kind))),
        RawScalar::Text { text, quoted } => (text.as_str(), *quoted),
    };
    let shown = if quoted {
        format!("string \"{text}\"")
    } else {
        format!("`{text}`")
    };
    let number = |t: &str| t.replace('_', "");
    match kind {
        ParamKind::String => Ok(ParamValue::String(text.into())),
        ParamKind::Path => Ok(ParamValue::Path(text.into())),
        _ if quoted && kind != ParamKind::Duration => Err(format!("expected {}, got {shown}", a_kind(kind))),
        ParamKind::Bool => match text {
            "true" | "True" | "TRUE" => Ok(ParamValue::Bool(true)),
            "false" | "False" | "FALSE" => Ok(ParamValue::Bool(false)),
            _ => Err(format!("expected a bool (true or false), got {shown}")),
        },
        ParamKind::Int => number(text)
            .parse::<i64>()
            .map(ParamValue::Int)
            .map_err(|_| format!("expected an int, got {shown}")),
        ParamKind::Float => {
            let t = number(text);
            let v = match t.as_str() {
                ".inf" | ".Inf" | "+.inf" => Ok(f64::INFINITY),
                "-.inf" | "-.Inf" => Ok(f64::NEG_INFINITY),
                ".nan" | ".NaN" => Ok(f64::NAN),
                _ => t.parse::<f64>(),
            };
            v.map(ParamValue::Float)
                .map_err(|_| format!("expected a float, got {shown}"))
        }
        ParamKind::Duration => quiver_manifest::parse_duration(text).map(ParamValue::Duration),
    }
}
