//! Parameter files: `quiver run --params FILE` sets node parameters over the graph's, and
//! `quiver param dump` writes one from a running graph. The format is a mapping of node ids to
//! mappings of parameter names to values, as in a graph's `params:`:
//!
//! ```yaml
//! controller: { linear_speed: 0.3, turn_rate: 1.2 }
//! laser:
//!   median_window: 5
//! ```
//!
//! Every value is checked like a graph's (kind, range; paths relative to the file's folder);
//! unknown nodes and parameters are located errors.

use std::path::Path;

use crate::error::{ErrorKind, Errors, Sink};
use crate::graph::Graph;
use crate::raw::{MAX_FILE_BYTES, RawScalar, Spanned, read_text};
use crate::validate::{a_kind, convert, required_path, resolve_path};
use crate::yaml::{self, Span, Value};

/// Reads `file` and sets the parameters it names on `graph`'s nodes.
pub fn apply_params_file(graph: &mut Graph, file: &Path) -> Result<(), Errors> {
    let mut sink = Sink::new(file.to_path_buf());
    match read_text(file, MAX_FILE_BYTES) {
        Err((span, e)) => sink.push(span, None, None, ErrorKind::Io(e)),
        Ok(text) => apply(graph, file, &text, &mut sink),
    }
    sink.finish(())
}

fn apply(graph: &mut Graph, file: &Path, text: &str, sink: &mut Sink) {
    let root = match yaml::parse(text) {
        Err(e) => return sink.push(e.span, None, None, ErrorKind::Syntax(e.message)),
        Ok(None) => return, // an empty file sets nothing
        Ok(Some(root)) => root,
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let shape = |sink: &mut Sink, span: Span, node: Option<&str>, what: String, found: &'static str| {
        sink.push(
            span,
            node,
            None,
            ErrorKind::Shape {
                what,
                expected: "a mapping",
                found,
            },
        )
    };
    let Value::Map(nodes) = &root.value else {
        return shape(
            sink,
            root.span,
            None,
            "a parameter file (node: { param: value })".into(),
            root.kind(),
        );
    };
    let mut seen_nodes: Vec<&str> = Vec::new();
    for (k, v) in nodes {
        let Value::Scalar { text: id, .. } = &k.value else {
            shape(sink, k.span, None, "a node id".into(), k.kind());
            continue;
        };
        if seen_nodes.contains(&id.as_str()) {
            sink.push(
                k.span,
                None,
                None,
                ErrorKind::DuplicateKey {
                    key: id.clone(),
                    what: "the parameter file".into(),
                },
            );
            continue;
        }
        seen_nodes.push(id);
        let Some(ni) = graph.node_index(id) else {
            let known: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
            sink.push(
                k.span,
                None,
                None,
                ErrorKind::UnknownNode {
                    node: id.clone(),
                    known: known.join(", "),
                },
            );
            continue;
        };
        let Value::Map(params) = &v.value else {
            shape(sink, v.span, Some(id), format!("node `{id}`'s parameters"), v.kind());
            continue;
        };
        let mut seen_params: Vec<&str> = Vec::new();
        for (pk, pv) in params {
            let Value::Scalar { text: name, .. } = &pk.value else {
                shape(sink, pk.span, Some(id), "a parameter name".into(), pk.kind());
                continue;
            };
            if seen_params.contains(&name.as_str()) {
                sink.push(
                    pk.span,
                    Some(id),
                    None,
                    ErrorKind::DuplicateKey {
                        key: name.clone(),
                        what: format!("node `{id}`'s parameters"),
                    },
                );
                continue;
            }
            seen_params.push(name);
            let node = &graph.nodes[ni];
            let Some(spec) = node.spec.params.iter().find(|p| p.name == *name) else {
                let known: Vec<&str> = node.spec.params.iter().map(|p| p.name.as_str()).collect();
                sink.push(
                    pk.span,
                    Some(id),
                    None,
                    ErrorKind::BadValue {
                        what: format!("parameter `{name}`"),
                        reason: format!(
                            "operator `{}` has no such parameter (its parameters: {})",
                            node.spec.name,
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    },
                );
                continue;
            };
            let scalar = match &pv.value {
                Value::Scalar { text, quoted } => RawScalar::Text {
                    text: text.clone(),
                    quoted: *quoted,
                },
                Value::Null => RawScalar::Null,
                _ => {
                    sink.push(
                        pv.span,
                        Some(id),
                        None,
                        ErrorKind::BadValue {
                            what: format!("parameter `{name}`"),
                            reason: format!("expected {}, found {}", a_kind(spec.kind), pv.kind()),
                        },
                    );
                    continue;
                }
            };
            let value = convert(
                &Spanned {
                    value: scalar,
                    span: pv.span,
                },
                spec.kind,
            )
            .and_then(|v| spec.check(&v).map(|()| v))
            .and_then(|v| required_path(spec, v))
            .and_then(|v| resolve_path(v, dir, "the parameter file's folder"));
            match value {
                Ok(v) => {
                    let node = &mut graph.nodes[ni];
                    if let Some(slot) = node.params.iter_mut().find(|(n, _)| n == name) {
                        slot.1 = v;
                    }
                }
                Err(reason) => sink.push(
                    pv.span,
                    Some(id),
                    None,
                    ErrorKind::BadValue {
                        what: format!("parameter `{name}`"),
                        reason,
                    },
                ),
            }
        }
    }
}
