//! Things that are allowed but likely wrong: reported by `check` and `run`, never refused: cycles
//! of `block` queues, nodes nothing ever calls, and required inputs left unbound.

use std::fmt;
use std::path::PathBuf;

use crate::graph::Graph;
use crate::raw::Policy;
use crate::yaml::Span;

/// A located warning.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphWarning {
    pub file: PathBuf,
    pub span: Span,
    pub message: String,
}

impl fmt::Display for GraphWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.span.line,
            self.span.col,
            self.message
        )
    }
}

/// What `check` and `run` warn about, in file order.
pub fn warnings(graph: &Graph) -> Vec<GraphWarning> {
    let mut out = block_cycles(graph);
    out.extend(never_called(graph));
    out.extend(required_unbound(graph));
    out.sort_by_key(|w| w.span);
    out
}

/// Nodes with no bound input and no bound timer: the runtime never calls them after creating
/// them, so their outputs stay silent (e.g. a ROS bridge without its `poll` timer).
fn never_called(graph: &Graph) -> Vec<GraphWarning> {
    graph
        .nodes
        .iter()
        .filter(|node| node.inputs.is_empty() && !(node.spec.timers.is_empty() && node.spec.inputs.is_empty()))
        .map(|node| {
            let bind = match node.spec.timers.first() {
                Some(t) => format!(
                    "bind timer `{}` ({}), e.g. `inputs: {{ {}: {{ timer: 10ms }} }}`",
                    t.name, t.doc, t.name
                ),
                None => format!(
                    "bind one of its inputs ({})",
                    node.spec
                        .inputs
                        .iter()
                        .map(|p| format!("`{}`", p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            GraphWarning {
                file: graph.file.clone(),
                span: node.span,
                message: format!(
                    "node `{}` has no bound input or timer, so it is never called and sends nothing: {bind}",
                    node.id
                ),
            }
        })
        .collect()
}

/// Inputs the operator's manifest marks required that the node does not bind.
fn required_unbound(graph: &Graph) -> Vec<GraphWarning> {
    let mut out = Vec::new();
    for node in &graph.nodes {
        for port in node.spec.inputs.iter().filter(|p| p.required) {
            if node.inputs.iter().any(|i| i.name == port.name) {
                continue;
            }
            out.push(GraphWarning {
                file: graph.file.clone(),
                span: node.span,
                message: format!(
                    "node `{}`: operator `{}` requires input `{}` ({}, {}) and it is not bound, so the node \
                     cannot do its job: bind it, e.g. `inputs: {{ {}: {{ from: NODE/OUTPUT }} }}`",
                    node.id, node.spec.name, port.name, port.msg_type, port.doc, port.name
                ),
            });
        }
    }
    out
}

/// Cycles made only of `block` queues: when every queue on the loop is full, every node on it
/// waits for the next one, for ever.
fn block_cycles(graph: &Graph) -> Vec<GraphWarning> {
    let n = graph.nodes.len();
    // Block edges: producer -> consumer.
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (ci, node) in graph.nodes.iter().enumerate() {
        for (_, e) in node.edges() {
            if e.queue.policy == Policy::Block {
                next[e.node].push(ci);
            }
        }
    }
    let mut out = Vec::new();
    for component in strongly_connected(&next) {
        let cyclic = component.len() > 1 || next[component[0]].contains(&component[0]);
        if !cyclic {
            continue;
        }
        let mut ids: Vec<&str> = component.iter().map(|&i| graph.nodes[i].id.as_str()).collect();
        ids.sort_unstable();
        // Point at the first block input of the cycle in file order.
        let span = component
            .iter()
            .flat_map(|&ci| {
                graph.nodes[ci]
                    .edges()
                    .filter(|(_, e)| e.queue.policy == Policy::Block && component.contains(&e.node))
                    .map(|(input, _)| input.span)
            })
            .min()
            .unwrap_or_default();
        out.push(GraphWarning {
            file: graph.file.clone(),
            span,
            message: format!(
                "nodes {} form a cycle of `block` queues: if every queue on it fills up, each node waits for the next \
                 for ever; give one edge of the loop `queue: {{ policy: latest }}` or `drop_oldest`",
                ids.join(", ")
            ),
        });
    }
    out
}

/// Tarjan's strongly connected components, iteratively.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next edge to visit)
        let mut work = vec![(root, 0)];
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = next[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_and_self_loops() {
        let mut comps = strongly_connected(&[vec![1], vec![2], vec![0], vec![3], vec![]]);
        for c in &mut comps {
            c.sort_unstable();
        }
        comps.sort();
        assert_eq!(comps, vec![vec![0, 1, 2], vec![3], vec![4]]);
    }
}
