//! Reaching into a running graph from another thread: its nodes' parameters (list, get, set)
//! and its outputs (counts, and taps that see every pack an output sends).
//! A [`Controls`] is handed to a run in [`RunOptions::controls`](crate::RunOptions); while the
//! run lasts it reaches this process's nodes (a control plane, `quiver-control`, serves it over
//! Zenoh). A new value is checked against the manifest (kind, range) here, then the node's own
//! thread calls the operator's `on_param` between two callbacks, which applies or refuses it
//! with a reason; the node's current values change only when the operator accepted.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use quiver_graph::{OperatorSpec, ParamKind, ParamValue};

/// Why a control request failed; each message names the node and the parameter.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ControlError {
    #[error("the graph is not running (it has not started yet, or it has ended)")]
    NotRunning,
    #[error("no node `{node}` runs in this process (nodes here: {known})")]
    UnknownNode { node: String, known: String },
    #[error("node `{node}` has no output `{output}` (its outputs: {known})")]
    UnknownOutput {
        node: String,
        output: String,
        known: String,
    },
    #[error("node `{node}` has no parameter `{name}` (its parameters: {known})")]
    UnknownParam { node: String, name: String, known: String },
    #[error("node `{node}`: parameter `{name}`: {reason}")]
    Invalid { node: String, name: String, reason: String },
    #[error("node `{node}` refused `{name}` = {value}: {reason} (it keeps {kept})")]
    Refused {
        node: String,
        name: String,
        value: String,
        reason: String,
        kept: String,
    },
    #[error("node `{node}` did not take `{name}` within {waited:?}: it is busy in a callback or hung")]
    Busy {
        node: String,
        name: String,
        waited: Duration,
    },
}

/// One parameter of a running node.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState {
    pub name: String,
    pub kind: ParamKind,
    pub value: ParamValue,
    pub default: Option<ParamValue>,
    /// `[min, max]` as text (`any` when unbounded).
    pub range: String,
    pub doc: String,
}

/// A node of this process and its parameters now.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeParams {
    pub node: String,
    pub operator: String,
    pub params: Vec<ParamState>,
}

/// A request the node's thread answers between callbacks.
pub(crate) struct ParamRequest {
    pub name: String,
    pub value: ParamValue,
    pub reply: mpsc::SyncSender<Result<(), String>>,
}

/// An output of a running node.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputState {
    pub node: String,
    pub output: String,
    pub msg_type: String,
    /// Packs sent so far.
    pub sent: u64,
}

/// A pack an output sent, seen through a [`Tap`]: the same buffers the graph's consumers read.
#[derive(Clone, Debug)]
pub struct TappedPack {
    pub name: String,
    pub msg_type: String,
    pub source_node: String,
    pub source_port: String,
    pub header: quiver_operator::Header,
    /// None: an empty DataPack.
    pub data: Option<arrow_array::ArrayRef>,
}

/// Watches one output until dropped: the header of every pack it sends, and the packs
/// themselves as many as asked for ([`Tap::want`]). It holds at most its capacity: when its
/// reader falls behind it loses some (counted in [`Tap::dropped`]); the graph never waits.
pub struct Tap {
    buffer: Arc<crate::host::TapBuffer>,
    /// The header buffer swapped with the emitting side's on each drain (no allocation there).
    spare: Mutex<std::collections::VecDeque<(u64, u64)>>,
    live: Weak<dyn Live>,
    node: usize,
    port: usize,
    id: u64,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("node", &self.node)
            .field("port", &self.port)
            .finish()
    }
}

impl Tap {
    /// Asks for up to `n` more packs (besides every header): the emitting thread shares a pack
    /// with this tap only while some are wanted.
    pub fn want(&self, n: usize) {
        self.buffer.state.lock().unwrap_or_else(|p| p.into_inner()).want = n;
    }

    /// What arrived: calls `header(seq, timestamp)` for every pack in order and returns the
    /// packs wanted; waits at most `wait` for something (polling every millisecond: the
    /// emitting thread never wakes a watcher). The emitting side keeps its allocated buffer.
    pub fn drain(&self, wait: Duration, mut header: impl FnMut(u64, u64)) -> Vec<Tapped> {
        let deadline = std::time::Instant::now() + wait;
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let packs = {
                let mut st = self.buffer.state.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::swap(&mut st.headers, &mut *spare);
                std::mem::take(&mut st.packs)
            };
            let got = !spare.is_empty() || !packs.is_empty();
            for &(seq, stamp) in spare.iter() {
                header(seq, stamp);
            }
            spare.clear();
            if got {
                return packs.into_iter().map(Tapped).collect();
            }
            if std::time::Instant::now() >= deadline {
                return Vec::new();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Packs lost because this tap was full.
    pub fn dropped(&self) -> u64 {
        self.buffer.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the run this tap watches is still going.
    pub fn running(&self) -> bool {
        self.live.strong_count() > 0
    }
}

/// A pack taken from a tap, its data not opened yet.
pub struct Tapped(crate::pack::Pack);

impl std::fmt::Debug for Tapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tapped")
            .field("header", &self.0.header)
            .finish_non_exhaustive()
    }
}

impl Tapped {
    pub fn header(&self) -> &quiver_operator::Header {
        &self.0.header
    }

    /// Its data as an arrow array (zero copy).
    pub fn open(self) -> TappedPack {
        tapped(self.0)
    }
}

fn tapped(p: crate::pack::Pack) -> TappedPack {
    TappedPack {
        name: p.id.name.clone(),
        msg_type: p.id.msg_type.clone(),
        source_node: p.id.source_node.clone(),
        source_port: p.id.source_port.clone(),
        header: p.header,
        data: p.data.as_ref().and_then(|d| d.to_arrow().ok()),
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(live) = self.live.upgrade() {
            live.untap(self.node, self.port, self.id);
        }
    }
}

/// What a running engine offers [`Controls`].
pub(crate) trait Live: Send + Sync {
    /// The node's outputs: (name, message type, packs sent).
    fn outputs(&self, node: usize) -> Vec<(String, String, u64)>;
    /// Adds a watcher to output `port` of `node`.
    fn tap(&self, node: usize, port: usize, sink: Arc<crate::host::TapBuffer>);
    fn untap(&self, node: usize, port: usize, id: u64);
    /// This process's nodes: (index, id, spec).
    fn local_nodes(&self) -> Vec<(usize, String, Arc<OperatorSpec>)>;
    /// The node's current parameter values.
    fn values(&self, node: usize) -> Vec<(String, ParamValue)>;
    /// Queues `req` for the node's thread; false when the node no longer takes requests.
    fn request(&self, node: usize, req: ParamRequest) -> bool;
}

/// A handle on a run's nodes, usable from any thread, before, during and after the run.
#[derive(Clone, Default)]
pub struct Controls {
    live: Arc<Mutex<Option<Weak<dyn Live>>>>,
}

impl std::fmt::Debug for Controls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controls").field("running", &self.running()).finish()
    }
}

/// How long `set_param` waits for the node's thread by default.
pub const SET_PARAM_WAIT: Duration = Duration::from_secs(5);

impl Controls {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn attach(&self, live: Weak<dyn Live>) {
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Some(live);
    }

    pub(crate) fn detach(&self) {
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn get(&self) -> Result<Arc<dyn Live>, ControlError> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
            .ok_or(ControlError::NotRunning)
    }

    /// Whether a run is attached.
    pub fn running(&self) -> bool {
        self.get().is_ok()
    }

    /// Every node of this process with its parameters' current values, in graph order.
    pub fn nodes(&self) -> Result<Vec<NodeParams>, ControlError> {
        let live = self.get()?;
        Ok(live
            .local_nodes()
            .into_iter()
            .map(|(i, id, spec)| node_params(&id, &spec, live.values(i)))
            .collect())
    }

    fn find(&self, live: &Arc<dyn Live>, node: &str) -> Result<(usize, Arc<OperatorSpec>), ControlError> {
        let nodes = live.local_nodes();
        nodes
            .iter()
            .find(|(_, id, _)| id == node)
            .map(|(i, _, spec)| (*i, spec.clone()))
            .ok_or_else(|| ControlError::UnknownNode {
                node: node.into(),
                known: names(nodes.iter().map(|(_, id, _)| id.as_str())),
            })
    }

    /// Every output of this process's nodes, with what it has sent so far.
    pub fn outputs(&self) -> Result<Vec<OutputState>, ControlError> {
        let live = self.get()?;
        Ok(live
            .local_nodes()
            .into_iter()
            .flat_map(|(i, id, _)| {
                live.outputs(i)
                    .into_iter()
                    .map(move |(output, msg_type, sent)| OutputState {
                        node: id.clone(),
                        output,
                        msg_type,
                        sent,
                    })
            })
            .collect())
    }

    /// Watches output `output` of `node` (see [`Tap`]); holds at most `capacity` packs.
    pub fn tap(&self, node: &str, output: &str, capacity: usize) -> Result<Tap, ControlError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let live = self.get()?;
        let (i, spec) = self.find(&live, node)?;
        let port = spec
            .outputs
            .iter()
            .position(|p| p.name == output)
            .ok_or_else(|| ControlError::UnknownOutput {
                node: node.into(),
                output: output.into(),
                known: names(spec.outputs.iter().map(|p| p.name.as_str())),
            })?;
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let buffer = Arc::new(crate::host::TapBuffer {
            id,
            capacity: capacity.max(1),
            state: Mutex::new(crate::host::TapState {
                headers: std::collections::VecDeque::with_capacity(capacity.max(1)),
                ..Default::default()
            }),
            dropped: Default::default(),
        });
        live.tap(i, port, buffer.clone());
        Ok(Tap {
            spare: Mutex::new(std::collections::VecDeque::with_capacity(capacity.max(1))),
            buffer,
            live: Arc::downgrade(&live),
            node: i,
            port,
            id,
        })
    }

    /// One node's parameters now.
    pub fn node(&self, node: &str) -> Result<NodeParams, ControlError> {
        let live = self.get()?;
        let (i, spec) = self.find(&live, node)?;
        Ok(node_params(node, &spec, live.values(i)))
    }

    /// Reads `text` as a value of `node`'s parameter `name` (as the graph file would write it).
    pub fn parse_value(&self, node: &str, name: &str, text: &str) -> Result<ParamValue, ControlError> {
        let live = self.get()?;
        let (_, spec) = self.find(&live, node)?;
        let p = param_spec(node, &spec, name)?;
        quiver_graph::param_from_text(text, p.kind).map_err(|reason| ControlError::Invalid {
            node: node.into(),
            name: name.into(),
            reason,
        })
    }

    /// Sets `node`'s parameter `name`: checked against the manifest (kind, range), then passed
    /// to the operator's `on_param` on the node's thread, which may refuse it with a reason.
    /// Waits at most `wait` for the node to take it.
    pub fn set_param(&self, node: &str, name: &str, value: ParamValue, wait: Duration) -> Result<(), ControlError> {
        let live = self.get()?;
        let (i, spec) = self.find(&live, node)?;
        let p = param_spec(node, &spec, name)?;
        let invalid = |reason: String| ControlError::Invalid {
            node: node.into(),
            name: name.into(),
            reason,
        };
        if value.kind() != p.kind {
            return Err(invalid(format!(
                "expected a {}, got a {} ({value})",
                p.kind,
                value.kind()
            )));
        }
        if p.kind == ParamKind::Path {
            return Err(invalid(
                "a path is read when the node starts: set it in the graph file or with `quiver run --params`".into(),
            ));
        }
        p.check(&value).map_err(invalid)?;
        let (reply, answer) = mpsc::sync_channel(1);
        let req = ParamRequest {
            name: name.into(),
            value: value.clone(),
            reply,
        };
        if !live.request(i, req) {
            return Err(ControlError::NotRunning);
        }
        drop(live);
        match answer.recv_timeout(wait) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => {
                let kept = self
                    .get()
                    .ok()
                    .and_then(|l| {
                        l.values(i)
                            .into_iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| v.to_string())
                    })
                    .unwrap_or_else(|| "its value".into());
                Err(ControlError::Refused {
                    node: node.into(),
                    name: name.into(),
                    value: value.to_string(),
                    reason,
                    kept,
                })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ControlError::Busy {
                node: node.into(),
                name: name.into(),
                waited: wait,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ControlError::NotRunning),
        }
    }
}

fn param_spec<'a>(node: &str, spec: &'a OperatorSpec, name: &str) -> Result<&'a quiver_graph::ParamSpec, ControlError> {
    spec.params
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ControlError::UnknownParam {
            node: node.into(),
            name: name.into(),
            known: names(spec.params.iter().map(|p| p.name.as_str())),
        })
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.map(|s| format!("`{s}`")).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn node_params(id: &str, spec: &OperatorSpec, values: Vec<(String, ParamValue)>) -> NodeParams {
    NodeParams {
        node: id.into(),
        operator: spec.name.clone(),
        params: spec
            .params
            .iter()
            .filter_map(|p| {
                let value = values.iter().find(|(n, _)| *n == p.name)?.1.clone();
                Some(ParamState {
                    name: p.name.clone(),
                    kind: p.kind,
                    value,
                    default: p.default.clone(),
                    range: p.range_text(),
                    doc: p.doc.clone(),
                })
            })
            .collect(),
    }
}

/// The node thread's answer to a request: the operator's verdict, the current values updated
/// when it accepted.
pub(crate) fn answer(
    node: &crate::host::NodeShared,
    instance: &mut crate::host::Instance,
    cx: &mut crate::host::CallCtx<'_>,
    req: ParamRequest,
) {
    let result = instance.on_param(cx, &req.name, &req.value);
    let verdict = match result {
        Ok(()) => {
            let mut values = node.params.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = values.iter_mut().find(|(n, _)| *n == req.name) {
                slot.1 = req.value.clone();
            }
            tracing::info!(node = %node.id, "parameter `{}` set to {}", req.name, req.value);
            Ok(())
        }
        Err(f) => {
            let reason = match f {
                crate::host::CallFailure::Rejected(m) | crate::host::CallFailure::Error(m) => m,
                crate::host::CallFailure::Panic(m) => format!("the operator panicked: {m}"),
            };
            let reason = if reason.is_empty() {
                "no reason given".into()
            } else {
                reason
            };
            tracing::warn!(node = %node.id, "parameter `{}` = {} refused: {reason}", req.name, req.value);
            Err(reason)
        }
    };
    let _ = req.reply.send(verdict);
}
