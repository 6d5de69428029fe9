//! A validated graph turned into what executors need: libraries, output routes, queue settings,
//! timers. Shared by the real-time and the stepped executor.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_graph::{Graph, Passing, Policy, Source};
use quiver_operator::PackId;

use crate::error::RunError;
use crate::host::{CallCtx, Engine, Instance, NodeShared, OutputRoute, RemoteTarget, Target};
use crate::loader::Registry;
use crate::queue::Queue;
use crate::stats::{InputSummary, NodeStats, NodeSummary};
use crate::transport::{Delivery, KeyCount, Part, PartStatus, edge_key};

/// A data input: where it comes from and how it is queued.
pub(crate) struct InputPlan {
    pub name: String,
    /// `node/output`.
    pub from: String,
    pub depth: usize,
    pub policy: Policy,
    pub manifest_port: u32,
    pub passing: Passing,
    /// `timeout:` an empty pack is handed over when nothing arrived for this long.
    pub timeout: Option<Duration>,
    /// The producer's identity (what an empty pack on a timeout carries).
    pub id: Arc<PackId>,
}

pub(crate) struct PlannedNode {
    /// Runs in this process (else another process runs it; it only names routes here).
    pub local: bool,
    pub shared: NodeShared,
    /// Data inputs in graph order.
    pub inputs: Vec<InputPlan>,
    /// (manifest timer index, period).
    pub timers: Vec<(u32, Duration)>,
    /// How long one callback may run before the node is reported hung.
    pub health_timeout: Duration,
}

/// Frames from another process's output, delivered to this process's consumers.
pub(crate) struct RemoteInput {
    pub key: String,
    /// The producing output's identity (what decoded frames must match).
    pub id: Arc<PackId>,
    pub targets: Vec<Target>,
    /// Frames received (rejected ones included), for termination detection.
    pub received: AtomicU64,
    /// The sequence number expected next (`u64::MAX`: none seen yet; the first frame sets it, so a
    /// restarted process does not count what its previous incarnation received).
    pub next_seq: AtomicU64,
}

pub(crate) struct Plan {
    pub name: String,
    pub nodes: Vec<PlannedNode>,
    /// Keys this process receives (empty in a single-process run).
    pub remote_inputs: Vec<RemoteInput>,
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
    /// `part`: which process this is, in a run split over processes (None: everything here).
    pub fn new(graph: &Graph, registry: &Registry, part: Option<&Part>) -> Result<Plan, RunError> {
        let here = |ni: usize| part.is_none_or(|p| graph.process_of(ni) == p.process);
        let mut nodes = Vec::new();
        let mut remote_inputs: Vec<RemoteInput> = Vec::new();
        for (ni, node) in graph.nodes.iter().enumerate() {
            let library = registry.resolve(&node.operator).map_err(|e| RunError::Create {
                node: node.id.clone(),
                message: e.to_string(),
            })?;
            let spec = &node.spec;
            let mut routes = Vec::new();
            for (oi, out) in spec.outputs.iter().enumerate() {
                let id = Arc::new(PackId::new(&node.id, &out.name, &out.msg_type));
                let mut targets = Vec::new();
                let mut remote: Vec<RemoteTarget> = Vec::new();
                for (consumer, input) in graph.consumers(ni, &out.name) {
                    // The slot is the input's position among the consumer's data inputs.
                    let slot = graph.nodes[consumer].inputs[..input]
                        .iter()
                        .filter(|i| matches!(i.source, Source::Edge(_)))
                        .count();
                    let target = Target { node: consumer, slot };
                    match (here(ni), here(consumer), part) {
                        (true, true, _) | (_, _, None) => targets.push(target),
                        // Produced here, consumed there: one sender per consuming process.
                        (true, false, Some(part)) => {
                            let process = graph.process_of(consumer);
                            if !remote.iter().any(|r| r.process == process) {
                                let key = edge_key(&part.prefix, ni, oi, process);
                                // Lossless unless every input it feeds there drops anyway.
                                let lossless = graph
                                    .consumers(ni, &out.name)
                                    .into_iter()
                                    .filter(|(c, _)| graph.process_of(*c) == process)
                                    .any(|(c, i)| match &graph.nodes[c].inputs[i].source {
                                        Source::Edge(e) => e.queue.policy == quiver_graph::Policy::Block,
                                        Source::Timer(_) => false,
                                    });
                                let delivery = if lossless {
                                    Delivery::Lossless
                                } else {
                                    Delivery::MayDrop
                                };
                                let sender = part.transport.sender(&key, delivery).map_err(|e| RunError::Create {
                                    node: node.id.clone(),
                                    message: format!("output `{}` to process `{process}`: {e}", out.name),
                                })?;
                                remote.push(RemoteTarget {
                                    process: process.into(),
                                    key,
                                    sender,
                                    sent: AtomicU64::new(0),
                                    missing: AtomicBool::new(false),
                                });
                            }
                        }
                        // Produced there, consumed here: one receiver per producing output.
                        (false, true, Some(part)) => {
                            let key = edge_key(&part.prefix, ni, oi, &part.process);
                            match remote_inputs.iter_mut().find(|r| r.key == key) {
                                Some(r) => r.targets.push(target),
                                None => remote_inputs.push(RemoteInput {
                                    key,
                                    id: id.clone(),
                                    targets: vec![target],
                                    received: AtomicU64::new(0),
                                    next_seq: AtomicU64::new(u64::MAX),
                                }),
                            }
                        }
                        (false, false, Some(_)) => {}
                    }
                }
                routes.push(OutputRoute {
                    id,
                    seq: AtomicU64::new(0),
                    targets,
                    remote,
                    last_type: Mutex::new(None),
                    taps: Default::default(),
                });
            }
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
                            timeout: e.timeout,
                            id: Arc::new(PackId::new(&graph.nodes[e.node].id, &e.port, &e.msg_type)),
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
                local: here(ni),
                shared: NodeShared {
                    id: node.id.clone(),
                    library: library.clone(),
                    routes,
                    stats,
                    lent: Default::default(),
                    params: Mutex::new(node.params.clone()),
                },
                inputs: queues,
                timers,
                health_timeout: node.health_timeout,
            });
        }
        Ok(Plan {
            name: graph.name.clone(),
            nodes,
            remote_inputs,
        })
    }

    /// Creates every local instance in declaration order (None for nodes of other processes);
    /// on a failure the ones already made are destroyed and the node is named.
    pub fn create_instances(&self, graph: &Graph, engine: &dyn Engine) -> Result<Vec<Option<Instance>>, RunError> {
        let mut out = Vec::new();
        for (node, planned) in graph.nodes.iter().zip(&self.nodes) {
            if !planned.local {
                out.push(None);
                continue;
            }
            let mut cx = CallCtx::new(&planned.shared, engine);
            // Outputs from `new` would reach queues nobody drives yet: refuse them.
            cx.accepting_outputs = false;
            let inst = Instance::create(
                &planned.shared.library,
                &node.id,
                &node.params,
                &node.graph_ports,
                &mut cx,
            )
            .map_err(|message| RunError::Create {
                node: node.id.clone(),
                message,
            });
            match inst {
                Ok(inst) => out.push(Some(inst)),
                Err(e) => {
                    // Roll back: every instance created so far is stopped, then destroyed.
                    self.stop_unstarted(out, engine);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Stops instances that never ran (the run failed before it started): `stop` runs on each,
    /// then they are destroyed. Errors in `stop` are logged against the node.
    pub fn stop_unstarted(&self, instances: Vec<Option<Instance>>, engine: &dyn Engine) {
        for (planned, inst) in self.nodes.iter().zip(instances) {
            let Some(mut inst) = inst else { continue };
            let mut cx = CallCtx::new(&planned.shared, engine);
            if let Err(f) = inst.stop(&mut cx) {
                tracing::warn!("node `{}`: stop after a failed start: {f}", planned.shared.id);
            }
        }
    }

    /// The per-node summaries of the nodes run here (counters from stats).
    pub fn summaries(&self, graph: &Graph) -> Vec<NodeSummary> {
        self.nodes
            .iter()
            .zip(&graph.nodes)
            .filter(|(n, _)| n.local)
            .map(|(n, gn)| {
                let s = &n.shared.stats;
                let spec = &gn.spec;
                NodeSummary {
                    id: n.shared.id.clone(),
                    process: gn.process.clone(),
                    machine: None,
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
                            rejected: st.rejected.load(Ordering::Relaxed),
                            missing: st.missing.load(Ordering::Relaxed),
                            timeouts: st.timeouts.load(Ordering::Relaxed),
                        })
                        .collect(),
                    errors: s.errors.load(Ordering::Relaxed),
                    first_error: s.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                    undelivered: s.undelivered.load(Ordering::Relaxed),
                    unrouted: s.unrouted.load(Ordering::Relaxed),
                    sent_in_place: s.sent_in_place.load(Ordering::Relaxed),
                    sent_copied: s.sent_copied.load(Ordering::Relaxed),
                    reports: s.reports.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                }
            })
            .collect()
    }

    /// Frames sent and received per key, for [`PartStatus`].
    pub fn key_counts(&self, status: &mut PartStatus) {
        status.sent = self
            .nodes
            .iter()
            .flat_map(|n| &n.shared.routes)
            .flat_map(|r| &r.remote)
            .map(|r| KeyCount {
                key: r.key.clone(),
                frames: r.sent.load(Ordering::SeqCst),
            })
            .collect();
        status.received = self
            .remote_inputs
            .iter()
            .map(|r| KeyCount {
                key: r.key.clone(),
                frames: r.received.load(Ordering::SeqCst),
            })
            .collect();
    }
}
