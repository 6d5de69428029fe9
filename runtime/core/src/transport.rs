//! The seams of a run split over several processes. Core knows neither Zenoh nor how processes
//! are started:
//!
//! - a [`Transport`] carries DataPack frames ([`crate::wire`]) between processes, one key per
//!   (output, consuming process) pair (quiver-zenoh implements it over Zenoh shared memory);
//! - a [`Control`] tells this process's executor when to start, when to stop its timers and when
//!   to close, from what every process reports (the `quiver` binary implements it for the
//!   supervisor and its workers).

use std::sync::Arc;

use arrow_buffer::Buffer;
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::stats::{EndReason, NodeSummary};
use crate::wire::Encoded;

/// A transport failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Called on a transport thread for every frame that arrives on a key. It may block while a
/// `block` queue is full: that is how backpressure reaches the sender.
pub type FrameHandler = Box<dyn Fn(Buffer) + Send + Sync>;

/// What a key's consumers promise about loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Some consumer has a `block` queue: nothing may be dropped; a send waits.
    Lossless,
    /// Every consumer drops anyway (`latest`, `drop_oldest`): a congested or cut link may drop
    /// the frame rather than hold the producer (the receiver counts the gap as missing).
    MayDrop,
}

/// Carries frames between the processes of one run.
pub trait Transport: Send + Sync {
    /// A sender for `key` (exactly one process receives it).
    fn sender(&self, key: &str, delivery: Delivery) -> Result<Box<dyn FrameSender>, TransportError>;
    /// Starts receiving `key`; frames reach `on_frame` until the receiver is dropped.
    fn receiver(&self, key: &str, on_frame: FrameHandler) -> Result<Box<dyn FrameReceiver>, TransportError>;
}

/// The sending end of one key.
pub trait FrameSender: Send + Sync {
    /// Sends one frame. Waits while the link is congested: nothing is dropped on the way.
    fn send(&self, frame: &Encoded) -> Result<(), TransportError>;
    /// Memory for a frame of `size` bytes that is written in place and then sent as it is with
    /// [`send_lent`](Self::send_lent) (a shared-memory buffer). `None`: this transport has no
    /// such memory now; the frame will be encoded and copied.
    fn lend(&self, size: usize) -> Option<Box<dyn LentFrame>> {
        let _ = size;
        None
    }
    /// Sends a frame lent by [`lend`](Self::lend) (by any sender of the same transport) as it
    /// is; it may be sent on several keys. Its bytes must not change after the first send.
    fn send_lent(&self, frame: &dyn LentFrame) -> Result<(), TransportError> {
        let _ = frame;
        Err(TransportError("this transport lends no frames".into()))
    }
    /// Whether the receiving process is listening now (cheap; called per message).
    fn matched(&self) -> bool;
}

/// A frame's memory lent by a transport: written in place, then sent without a copy.
pub trait LentFrame: Send + Sync {
    /// The first byte: 64-byte aligned, [`size`](Self::size) bytes writable until the first
    /// send, valid while `self` lives.
    fn as_ptr(&self) -> *mut u8;
    fn size(&self) -> usize;
    /// For the transport to find its own type again in `send_lent`.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The receiving end of one key; dropping it stops the frames.
pub trait FrameReceiver: Send + Sync {}

/// This process's share of a graph split over processes.
#[derive(Clone)]
pub struct Part {
    /// The process whose nodes run here (`main` for the one `quiver run` is).
    pub process: String,
    pub transport: Arc<dyn Transport>,
    /// Unique to the run: keys of two runs never meet.
    pub prefix: String,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("process", &self.process)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The key of the frames from output `output` (manifest index) of node `node` (graph index) to
/// the nodes of `process`. Indices, not names: node ids may hold characters keys cannot.
pub fn edge_key(prefix: &str, node: usize, output: usize, process: &str) -> String {
    format!("{prefix}/{node}/{output}/{process}")
}

/// Frames counted on one key, for termination detection: when every process is idle and every
/// key's sent count equals its received count, no message is in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    pub key: String,
    pub frames: u64,
}

/// What this process reports to its [`Control`] every few milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartStatus {
    /// No message queued or being handled, no timer callback running.
    pub idle: bool,
    /// Every timer-driven node here has finished (true when there is none).
    pub finished: bool,
    /// Frames sent per outgoing key.
    pub sent: Vec<KeyCount>,
    /// Frames received per incoming key (rejected ones included).
    pub received: Vec<KeyCount>,
}

/// What the executor does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Keep going.
    Run,
    /// Stop the timers and let queues drain (the reason goes into the summary).
    StopTimers(EndReason),
    /// Close the queues, stop the operators, return the summary.
    Close,
}

/// Paces a run: when it starts, when it ends.
pub trait Control: Send {
    /// Everything here is created and wired; returns when the run should begin.
    fn ready(&mut self) -> Result<(), RunError>;
    /// Called every couple of milliseconds. `nodes` gives this process's figures so far.
    fn poll(&mut self, status: &PartStatus, nodes: &dyn Fn() -> Vec<NodeSummary>) -> Command;
    /// Asked while this process waits for the others before [`ready`](Self::ready): `Some(why)`
    /// when the run will not start (another process failed to prepare): the wait ends and the
    /// created instances are stopped.
    fn aborted(&mut self) -> Option<String> {
        None
    }
    /// A node of this process is hung: a callback has run past its health timeout (`message`
    /// says which and how long). A worker process ends itself here so that its supervisor
    /// restarts it; the default carries on (the node's error is recorded either way).
    fn hung(&mut self, node: &str, message: &str) {
        let _ = (node, message);
    }
}
