//! quiver-zenoh: the [`Transport`] between the processes of one run, over Zenoh (pinned 1.10.2).
//!
//! - One Zenoh session per process, peer mode, TCP on loopback with the endpoints `quiver run`
//!   chose: no scouting, no multicast, no router.
//! - A frame ([`quiver_runtime::wire`]) is written once into a Zenoh shared-memory buffer
//!   (64-byte aligned) and put with congestion control `Block`; the receiver wraps the mapped
//!   buffer as an Arrow [`Buffer`] (no copy) and decodes arrays that point into it. Pools are
//!   added on demand up to a cap; a frame that finds no room even then goes as a plain
//!   (copied) put: slower, never lost.
//! - A producer may write its data straight into such a buffer ([`FrameSender::lend`]): the
//!   host then writes only the meta and small buffers around it and the buffer is put as it is.
//! - Backpressure: the receiving callback blocks while a `block` queue is full; Zenoh stops
//!   reading that link, TCP fills, the sender's put waits.
//!
//! Shared-memory lifecycle (Zenoh's own): segments are `/dev/shm/<n>.zenoh`, unlinked when the
//! last process mapping them exits; a killed process's segments are unlinked by the next Zenoh
//! process that starts using shared memory (an exclusive-flock scan). The last process to exit
//! cannot unlink what it still maps itself: [`sweep_segments`] finishes the job (the
//! supervisor calls it once every process of the run has exited).

mod config;
mod pool;
mod segments;
mod tls;

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

use arrow_buffer::Buffer;
use quiver_runtime::wire::Encoded;
use quiver_runtime::{Delivery, FrameHandler, FrameReceiver, FrameSender, LentFrame, Transport, TransportError};
use zenoh::Wait;
use zenoh::bytes::ZBytes;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::shm::{ZShm, ZShmMut};

pub use config::{Endpoints, NETWORK_BLOCK_MS, NETWORK_LEASE_MS, Tuning, session_config};

/// The tuning of every process of a run across machines: Zenoh's default (fragmenting)
/// transport, a short lease, bounded waits on cut links.
pub fn network_tuning(mut t: Tuning) -> Tuning {
    t.lowlatency = false;
    t.lease_ms = Some(NETWORK_LEASE_MS);
    t.network_block_ms = Some(NETWORK_BLOCK_MS);
    t
}
pub use segments::{mapped_segments, sweep_segments, unmapped_segments};
pub use tls::{Tls, with_tls};

/// The Zenoh this crate is built on (for tests and tools that talk to a run directly).
pub mod external {
    pub use zenoh;
}

/// Why the transport could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ZenohError {
    #[error("bad Zenoh configuration `{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("cannot open the Zenoh session (listen {listen:?}, connect {connect:?}): {reason}")]
    Open {
        listen: Vec<String>,
        connect: Vec<String>,
        reason: String,
    },
}

/// The transport of one process.
pub struct ZenohTransport {
    session: zenoh::Session,
    shm: Option<Arc<pool::Pools>>,
    tuning: Tuning,
}

impl std::fmt::Debug for ZenohTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohTransport")
            .field("zid", &self.session.zid())
            .field("shm_bytes", &self.shm.as_ref().map(|p| p.total_bytes()))
            .finish()
    }
}

impl ZenohTransport {
    /// Opens this process's session with default tuning.
    pub fn open(endpoints: &Endpoints) -> Result<Arc<ZenohTransport>, ZenohError> {
        Self::open_tuned(endpoints, &Tuning::from_env())
    }

    pub fn open_tuned(endpoints: &Endpoints, tuning: &Tuning) -> Result<Arc<ZenohTransport>, ZenohError> {
        let shm = match tuning.shm_pool_bytes {
            0 => None,
            want => match pool::Pools::new(want, tuning.shm_max_bytes) {
                Ok(pools) => Some(Arc::new(pools)),
                Err(e) => {
                    tracing::warn!("no shared memory (frames are copied between processes): {e}");
                    None
                }
            },
        };
        let mut tuning = tuning.clone();
        if tuning.lowlatency && shm.is_none() {
            // The low-latency transport does not fragment: big frames need shared memory.
            tracing::warn!(
                "without shared memory the low-latency transport cannot carry big frames: using the default one"
            );
            tuning.lowlatency = false;
        }
        let config = config::session_config(endpoints, &tuning)?;
        let session = zenoh::open(config).wait().map_err(|e| ZenohError::Open {
            listen: endpoints.listen.clone(),
            connect: endpoints.connect.clone(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new(ZenohTransport { session, shm, tuning }))
    }

    /// The endpoints this session listens on (with the port the system chose for port 0).
    pub fn listening(&self) -> Vec<String> {
        self.session
            .info()
            .locators()
            .wait()
            .into_iter()
            .map(|l| l.to_string())
            .collect()
    }

    /// Bytes of this process's shared-memory pools now (0: frames are copied).
    pub fn pool_bytes(&self) -> usize {
        self.shm.as_ref().map_or(0, |p| p.total_bytes())
    }

    /// Closes the session (senders and receivers stop). Idempotent.
    pub fn close(&self) {
        if let Err(e) = self.session.close().wait() {
            tracing::debug!("closing the Zenoh session: {e}");
        }
    }
}

impl Transport for ZenohTransport {
    fn sender(&self, key: &str, delivery: Delivery) -> Result<Box<dyn FrameSender>, TransportError> {
        let congestion = match (delivery, self.tuning.network_block_ms) {
            (Delivery::MayDrop, Some(_)) => CongestionControl::Drop,
            _ => CongestionControl::Block,
        };
        let publisher = self
            .session
            .declare_publisher(key.to_string())
            .congestion_control(congestion)
            .express(!self.tuning.batching)
            .wait()
            .map_err(|e| TransportError(format!("declaring a publisher on `{key}`: {e}")))?;
        let matched = Arc::new(AtomicBool::new(false));
        let flag = matched.clone();
        publisher
            .matching_listener()
            .callback(move |status| flag.store(status.matching(), Ordering::SeqCst))
            .background()
            .wait()
            .map_err(|e| TransportError(format!("watching the receivers of `{key}`: {e}")))?;
        if let Ok(status) = publisher.matching_status().wait() {
            matched.fetch_or(status.matching(), Ordering::SeqCst);
        }
        Ok(Box::new(ZenohSender {
            publisher,
            matched,
            shm: self.shm.clone(),
            shm_threshold: self.tuning.shm_threshold,
            lowlatency: self.tuning.lowlatency,
            copied_once: AtomicBool::new(false),
        }))
    }

    fn receiver(&self, key: &str, on_frame: FrameHandler) -> Result<Box<dyn FrameReceiver>, TransportError> {
        let subscriber = self
            .session
            .declare_subscriber(key.to_string())
            .callback(move |sample| {
                let payload = sample.payload();
                let buffer = match payload.as_shm() {
                    // Zero copy: the Arrow buffer owns a reference to the mapped segment.
                    Some(shm) => {
                        let owned: ZShm = shm.to_owned();
                        Buffer::from(bytes::Bytes::from_owner(owned))
                    }
                    None => Buffer::from(payload.to_bytes().into_owned()),
                };
                on_frame(buffer);
            })
            .wait()
            .map_err(|e| TransportError(format!("declaring a subscriber on `{key}`: {e}")))?;
        Ok(Box::new(ZenohReceiver {
            _subscriber: subscriber,
        }))
    }
}

/// The largest frame the low-latency transport takes as a plain put (its batch is 64 KiB).
const MAX_PLAIN_LOWLATENCY: usize = 60 * 1024;

struct ZenohSender {
    publisher: Publisher<'static>,
    matched: Arc<AtomicBool>,
    shm: Option<Arc<pool::Pools>>,
    shm_threshold: usize,
    /// The low-latency transport carries at most one batch (64 KiB) per message: a bigger frame
    /// must wait for shared memory rather than go as a copy.
    lowlatency: bool,
    copied_once: AtomicBool,
}

impl ZenohSender {
    fn alloc(&self, len: usize) -> Option<zenoh::shm::ZShmMut> {
        match self.shm.as_ref()?.alloc(len) {
            Ok(buf) => Some(buf),
            Err(why) => {
                if !self.copied_once.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        key = %self.publisher.key_expr(),
                        "{why}: such frames are copied (QUIVER_SHM_MAX_MB raises the cap); logged once per output"
                    );
                }
                None
            }
        }
    }
}

impl FrameSender for ZenohSender {
    fn send(&self, frame: &Encoded) -> Result<(), TransportError> {
        let len = frame.len();
        let mut buf = if len < self.shm_threshold {
            None
        } else {
            self.alloc(len)
        };
        if buf.is_none() && self.lowlatency && len >= MAX_PLAIN_LOWLATENCY {
            // No room now: wait for receivers to let go of earlier frames (backpressure).
            let pools = self
                .shm
                .as_ref()
                .ok_or_else(|| TransportError("no shared memory".into()))?;
            buf = Some(pools.alloc_waiting(len).map_err(TransportError)?);
        }
        let result = match buf {
            Some(mut buf) => {
                frame
                    .write_to(&mut buf[..])
                    .map_err(|e| TransportError(format!("writing a frame: {e}")))?;
                self.publisher.put(buf).wait()
            }
            None => self.publisher.put(frame.to_vec()).wait(),
        };
        result.map_err(|e| TransportError(format!("put on `{}`: {e}", self.publisher.key_expr())))
    }

    fn matched(&self) -> bool {
        self.matched.load(Ordering::SeqCst)
    }

    fn lend(&self, size: usize) -> Option<Box<dyn LentFrame>> {
        let mut buf = self.alloc(size)?;
        let ptr = buf.as_mut_ptr();
        Some(Box::new(ZenohLent {
            ptr: AtomicPtr::new(ptr),
            size: buf.len(),
            state: Mutex::new(LentState::Writable(buf)),
        }))
    }

    fn send_lent(&self, frame: &dyn LentFrame) -> Result<(), TransportError> {
        let lent = frame
            .as_any()
            .downcast_ref::<ZenohLent>()
            .ok_or_else(|| TransportError("a frame lent by another transport".into()))?;
        let bytes = {
            let mut state = lent.state.lock().unwrap_or_else(|p| p.into_inner());
            let bytes = match std::mem::replace(&mut *state, LentState::Taken) {
                LentState::Writable(buf) => ZBytes::from(buf),
                LentState::Sent(bytes) => bytes,
                LentState::Taken => return Err(TransportError("a lent frame lost its buffer".into())),
            };
            *state = LentState::Sent(bytes.clone());
            bytes
        };
        self.publisher
            .put(bytes)
            .wait()
            .map_err(|e| TransportError(format!("put on `{}`: {e}", self.publisher.key_expr())))
    }
}

/// A shared-memory buffer lent for writing a frame in place. Sending it turns it into an
/// immutable Zenoh buffer, kept (and so kept mapped and allocated) as long as the host holds
/// the frame: the sender's own arrays point into it.
struct ZenohLent {
    ptr: AtomicPtr<u8>,
    size: usize,
    state: Mutex<LentState>,
}

enum LentState {
    Writable(ZShmMut),
    Sent(ZBytes),
    /// Only while switching from one to the other.
    Taken,
}

impl LentFrame for ZenohLent {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.load(Ordering::Relaxed)
    }

    fn size(&self) -> usize {
        self.size
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct ZenohReceiver {
    _subscriber: Subscriber<()>,
}

impl FrameReceiver for ZenohReceiver {}
