//! A validated graph turned into what executors need: libraries, output routes, queue settings,
//! timers. Shared by the real-time and the stepped executor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_graph::{Graph, Passing, Policy, Source};
use quiver_operator::PackId;

use crate::error::RunError;
use crate::host::{CallCtx, Engine, Instance, NodeShared, OutputRoute, Target};
use crate::loader::Registry;
use crate::queue::Queue;
use crate::stats::{InputSummary, NodeStats, NodeSummary};

/// A data input: where it comes from and how it is queued.
pub(crate) struct InputPlan {
    pub name: String,
    /// `node/output`.
    pub from: String,
    pub depth: usize,
    pub policy: Policy,
    pub manifest_port: u32,
    pub passing: Passing,
}

pub(crate) struct PlannedNode {
    pub shared: NodeShared,
    /// Data inputs in graph order.
    pub inputs: Vec<InputPlan>,
    /// (manifest timer index, period).
    pub timers: Vec<(u32, Duration)>,
}

pub(crate) struct Plan {
    pub name: String,
    pub nodes: Vec<PlannedNode>,
}

impl PlannedNode {
    /// Fresh, empty queues for this node's data inputs.
    pub fn make_queues(&self) -> Vec<Queue> {
        self.inputs.iter().map(|i| Queue::new(i.depth, i.policy)).collect()
    }

    /// Whether a timer drives this node.
    pub fn has_timers(&self) -> bool {
        !self.timers.is_empty()
    }
}

impl Plan {
    pub fn new(graph: &Graph, registry: &Registry) -> Result<Plan, RunError> {
        let mut nodes = Vec::new();
        for (ni, node) in graph.nodes.iter().enumerate() {
            let library = registry.resolve(&node.operator).map_err(|e| RunError::Create {
                node: node.id.clone(),
                message: e.to_string(),
            })?;
            let spec = &library.spec;
            let routes = spec
                .outputs
                .iter()
                .map(|out| {
                    let targets = graph
                        .consumers(ni, &out.name)
                        .into_iter()
                        .map(|(consumer, input)| {
                            // The slot is the input's position among the consumer's data inputs.
                            let slot = graph.nodes[consumer].inputs[..input]
                                .iter()
                                .filter(|i| matches!(i.source, Source::Edge(_)))
                                .count();
                            Target { node: consumer, slot }
                        })
                        .collect();
                    OutputRoute {
                        id: Arc::new(PackId::new(&node.id, &out.name, &out.msg_type)),
                        seq: AtomicU64::new(0),
                        targets,
                        last_type: Mutex::new(None),
                    }
                })
                .collect();
            let mut queues = Vec::new();
            let mut timers = Vec::new();
            for input in &node.inputs {
                match &input.source {
                    Source::Edge(e) => {
                        let port =
                            spec.inputs
                                .iter()
                                .position(|p| p.name == input.name)
                                .ok_or_else(|| RunError::Create {
                                    node: node.id.clone(),
                                    message: format!("no input `{}`", input.name),
                                })?;
                        let from = format!("{}/{}", graph.nodes[e.node].id, e.port);
                        queues.push(InputPlan {
                            name: input.name.clone(),
                            from,
                            depth: if e.queue.policy == Policy::Latest {
                                1
                            } else {
                                e.queue.depth.max(1)
                            },
                            policy: e.queue.policy,
                            manifest_port: port as u32,
                            passing: e.passing,
                        });
                    }
                    Source::Timer(period) => {
                        // Checked by validation; the lookup gives the manifest index.
                        let t =
                            spec.timers
                                .iter()
                                .position(|t| t.name == input.name)
                                .ok_or_else(|| RunError::Create {
                                    node: node.id.clone(),
                                    message: format!("no timer `{}`", input.name),
                                })?;
                        timers.push((t as u32, *period));
                    }
                }
            }
            let stats = NodeStats::new(queues.len(), spec.outputs.len());
            nodes.push(PlannedNode {
                shared: NodeShared {
                    id: node.id.clone(),
                    library: library.clone(),
                    routes,
                    stats,
                },
                inputs: queues,
                timers,
            });
        }
        Ok(Plan {
            name: graph.name.clone(),
            nodes,
        })
    }

    /// Creates every instance in declaration order; on a failure the ones already made are
    /// destroyed and the node is named.
    pub fn create_instances(&self, graph: &Graph, engine: &dyn Engine) -> Result<Vec<Instance>, RunError> {
        let mut out = Vec::new();
        for (node, planned) in graph.nodes.iter().zip(&self.nodes) {
            let mut cx = CallCtx::new(&planned.shared, engine);
            // Outputs from `new` would reach queues nobody drives yet: refuse them.
            cx.accepting_outputs = false;
            let inst =
                Instance::create(&planned.shared.library, &node.id, &node.params, &mut cx).map_err(|message| {
                    RunError::Create {
                        node: node.id.clone(),
                        message,
                    }
                })?;
            out.push(inst);
        }
        Ok(out)
    }

    /// The per-node summaries (queues' policies from `queues`, counters from stats).
    pub fn summaries(&self) -> Vec<NodeSummary> {
        self.nodes
            .iter()
            .map(|n| {
                let s = &n.shared.stats;
                let spec = &n.shared.library.spec;
                NodeSummary {
                    id: n.shared.id.clone(),
                    operator: spec.name.clone(),
                    timer_fires: s.timer_fires.load(Ordering::Relaxed),
                    timer_missed: s.timer_missed.load(Ordering::Relaxed),
                    outputs: spec
                        .outputs
                        .iter()
                        .zip(&s.outputs)
                        .map(|(p, c)| (p.name.clone(), c.load(Ordering::Relaxed)))
                        .collect(),
                    inputs: n
                        .inputs
                        .iter()
                        .zip(&s.inputs)
                        .map(|(i, st)| InputSummary {
                            name: i.name.clone(),
                            from: i.from.clone(),
                            policy: i.policy.name().into(),
                            depth: i.depth,
                            received: st.received.load(Ordering::Relaxed),
                            handled: st.handled.load(Ordering::Relaxed),
                            dropped: st.dropped.load(Ordering::Relaxed),
                            max_queued: st.max_queued.load(Ordering::Relaxed),
                        })
                        .collect(),
                    errors: s.errors.load(Ordering::Relaxed),
                    first_error: s.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                    undelivered: s.undelivered.load(Ordering::Relaxed),
                    reports: s.reports.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                }
            })
            .collect()
    }
}
