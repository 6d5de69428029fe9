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

fn mermaid_id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Renders `graph` in `format`.
pub fn render(graph: &Graph, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", graph.name.replace('"', "'"));
            let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box, style=rounded];");
            for n in &graph.nodes {
                let _ = writeln!(out, "  \"{}\" [label=\"{}\\n({})\"];", n.id, n.id, n.spec.name);
                for (input, period) in n.timers() {
                    let t = format!("{}.{}", n.id, input.name);
                    let _ = writeln!(
                        out,
                        "  \"{t}\" [shape=circle, label=\"{}\", fontsize=9];\n  \"{t}\" -> \"{}\" [label=\"{}\", style=dashed];",
                        quiver_manifest::format_duration(period),
                        n.id,
                        input.name
                    );
                }
            }
            for n in &graph.nodes {
                for (input, e) in n.edges() {
                    let _ = writeln!(
                        out,
                        "  \"{}\" -> \"{}\" [label=\"{} -> {}\\n{}\"];",
                        graph.nodes[e.node].id,
                        n.id,
                        e.port,
                        input.name,
                        edge_label(&e.msg_type, e.queue.depth, e.queue.policy, e.passing)
                    );
                }
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for n in &graph.nodes {
                let _ = writeln!(out, "  {}[\"{}<br/>({})\"]", mermaid_id(&n.id), n.id, n.spec.name);
                for (input, period) in n.timers() {
                    let t = mermaid_id(&format!("{}.{}", n.id, input.name));
                    let _ = writeln!(
                        out,
                        "  {t}((\"{}\")) -. {} .-> {}",
                        quiver_manifest::format_duration(period),
                        input.name,
                        mermaid_id(&n.id)
                    );
                }
            }
            for n in &graph.nodes {
                for input in &n.inputs {
                    if let Source::Edge(e) = &input.source {
                        let _ = writeln!(
                            out,
                            "  {} -- \"{} -> {}: {}\" --> {}",
                            mermaid_id(&graph.nodes[e.node].id),
                            e.port,
                            input.name,
                            edge_label(&e.msg_type, e.queue.depth, e.queue.policy, e.passing),
                            mermaid_id(&n.id)
                        );
                    }
                }
            }
        }
    }
    out
}
