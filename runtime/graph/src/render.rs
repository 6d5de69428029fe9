//! Drawing a graph: Graphviz DOT and Mermaid flowcharts. Edges carry the message type and any
//! non-default queue; timers are drawn as small clock nodes.

use std::fmt::Write;

use crate::graph::{DEFAULT_DEPTH, Graph, Source};
use crate::raw::{Passing, Policy};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Dot,
    Mermaid,
}

fn edge_label(msg_type: &str, depth: usize, policy: Policy, passing: Passing) -> String {
    let mut label = msg_type.to_string();
    let default_depth = if policy == Policy::Latest { 1 } else { DEFAULT_DEPTH };
    if policy != Policy::Block || depth != default_depth {
        let _ = write!(label, " [{} {}]", policy.name(), depth);
    }
    if passing == Passing::ByValue {
        label.push_str(" (by value)");
    }
    label
}

/// Text inside a DOT double-quoted string.
fn dot(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a Mermaid label (`"..."`): quotes and `#` as entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid node id: by position, so distinct ids never merge (`a-b` and `a_b`).
fn mermaid_id(node: usize) -> String {
    format!("n{node}")
}

/// Renders `graph` in `format`.
pub fn render(graph: &Graph, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", dot(&graph.name));
            let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box, style=rounded];");
            for n in &graph.nodes {
                let id = dot(&n.id);
                let _ = writeln!(out, "  \"{id}\" [label=\"{id}\\n({})\"];", dot(&n.spec.name));
                for (input, period) in n.timers() {
                    let t = dot(&format!("{}.{}", n.id, input.name));
                    let _ = writeln!(
                        out,
                        "  \"{t}\" [shape=circle, label=\"{}\", fontsize=9];\n  \"{t}\" -> \"{id}\" [label=\"{}\", style=dashed];",
                        quiver_manifest::format_duration(period),
                        dot(&input.name)
                    );
                }
            }
            for n in &graph.nodes {
                for (input, e) in n.edges() {
                    let _ = writeln!(
                        out,
                        "  \"{}\" -> \"{}\" [label=\"{} -> {}\\n{}\"];",
                        dot(&graph.nodes[e.node].id),
                        dot(&n.id),
                        dot(&e.port),
                        dot(&input.name),
                        dot(&edge_label(&e.msg_type, e.queue.depth, e.queue.policy, e.passing))
                    );
                }
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, n) in graph.nodes.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  {}[\"{}<br/>({})\"]",
                    mermaid_id(i),
                    mermaid_text(&n.id),
                    mermaid_text(&n.spec.name)
                );
                for (k, (input, period)) in n.timers().enumerate() {
                    let t = format!("{}_t{k}", mermaid_id(i));
                    let _ = writeln!(
                        out,
                        "  {t}((\"{}\")) -. \"{}\" .-> {}",
                        quiver_manifest::format_duration(period),
                        mermaid_text(&input.name),
                        mermaid_id(i)
                    );
                }
            }
            for (i, n) in graph.nodes.iter().enumerate() {
                for input in &n.inputs {
                    if let Source::Edge(e) = &input.source {
                        let _ = writeln!(
                            out,
                            "  {} -- \"{}\" --> {}",
                            mermaid_id(e.node),
                            mermaid_text(&format!(
                                "{} -> {}: {}",
                                e.port,
                                input.name,
                                edge_label(&e.msg_type, e.queue.depth, e.queue.policy, e.passing)
                            )),
                            mermaid_id(i)
                        );
                    }
                }
            }
        }
    }
    out
}
