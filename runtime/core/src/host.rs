//! The host side of the C ABI: the functions plugins call (`emit`, `now_ns`, `log`, ...), plugin
//! instances and guarded calls into them, and the wrapper that keeps a library loaded while any
//! array it produced is alive.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arrow_array::{ArrayRef, make_array};
use arrow_data::transform::MutableArrayData;
use arrow_schema::DataType;
use quiver_abi as abi;
use quiver_graph::{ParamValue, Passing};
use quiver_operator::ffi::{
    export_array_only, export_schema, param_to_c, read_str, release_array, release_schema, schema_type, str_ref,
    take_array, take_schema,
};
use quiver_operator::{Header, PackId};

use crate::pack::{ForeignArray, Pack};
use crate::transport::{FrameSender, LentFrame};
use crate::wire::{self, FrameSpace};

use crate::loader::Library;
use crate::stats::NodeStats;

/// Where one output's packs go.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub node: usize,
    /// Index of the consumer's data queue.
    pub slot: usize,
}

/// A process (not this one) that consumes an output.
pub(crate) struct RemoteTarget {
    pub process: String,
    pub key: String,
    pub sender: Box<dyn FrameSender>,
    /// Frames sent (for termination detection).
    pub sent: AtomicU64,
    /// The last send found nobody listening (so an outage is logged once, not per message).
    pub missing: AtomicBool,
}

/// One declared output of a node.
pub(crate) struct OutputRoute {
    pub id: Arc<PackId>,
    pub seq: AtomicU64,
    pub targets: Vec<Target>,
    /// Other processes consuming this output.
    pub remote: Vec<RemoteTarget>,
    /// The data type of the last array emitted here: a plugin sends a schema only when it changes.
    pub last_type: Mutex<Option<DataType>>,
    /// Observers from outside the graph (`quiver topic echo`).
    pub taps: Taps,
}

/// Who is watching an output from outside the graph. Costs one relaxed load per pack when
/// nobody is; a watcher that cannot keep up loses packs (counted), the graph never waits. No
/// watcher is woken from the emit path (no system call there): watchers poll their buffers.
#[derive(Default)]
pub(crate) struct Taps {
    any: AtomicBool,
    sinks: Mutex<Vec<Arc<TapBuffer>>>,
}

/// One watcher: the (seq, timestamp) of every pack (bounded: a watcher that falls behind loses
/// some, counted), and the packs themselves only as many as it asked for (`want`): sharing a
/// pack is an atomic increment on buffers the graph's consumers also touch, so a watcher that
/// forwards 2000 packs a second costs that, not one per pack sent.
pub(crate) struct TapBuffer {
    pub id: u64,
    pub capacity: usize,
    pub state: Mutex<TapState>,
    pub dropped: AtomicU64,
}

#[derive(Default)]
pub(crate) struct TapState {
    pub headers: std::collections::VecDeque<(u64, u64)>,
    pub packs: std::collections::VecDeque<Pack>,
    /// Packs the watcher still wants.
    pub want: usize,
}

impl Taps {
    /// Hands `pack`'s header, and the pack itself (a reference, no copy) when wanted, to every
    /// watcher with room.
    #[inline]
    pub fn offer(&self, pack: &Pack) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        for s in sinks.iter() {
            let mut st = s.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.headers.len() < s.capacity {
                st.headers.push_back((pack.header.seq, pack.header.timestamp_ns));
            } else {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
            if st.want > 0 && st.packs.len() < s.capacity {
                st.want -= 1;
                st.packs.push_back(pack.clone());
            }
        }
    }

    pub fn add(&self, sink: Arc<TapBuffer>) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks.push(sink);
        self.any.store(true, Ordering::Relaxed);
    }

    pub fn remove(&self, id: u64) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks.retain(|s| s.id != id);
        self.any.store(!sinks.is_empty(), Ordering::Relaxed);
    }
}

/// The graph is shutting down: the output was not accepted.
#[derive(Debug)]
pub(crate) struct Closed;

/// What an executor offers the emit path.
pub(crate) trait Engine {
    /// Queues `pack` for `target`; may wait while a `block` queue is full.
    fn deliver(&self, target: Target, pack: Pack) -> Result<(), Closed>;
    /// The run's clock.
    fn now_ns(&self) -> u64;
    /// Runs `wait`, a wait for room on the way to another process (a remote `block` edge):
    /// backpressure like a full local queue, not counted in the callback's health time.
    fn backpressure(&self, wait: &mut dyn FnMut()) {
        wait();
    }
}

/// What the host knows about a node while calling into it.
pub(crate) struct NodeShared {
    pub id: String,
    pub library: Arc<Library>,
    /// Per manifest output.
    pub routes: Vec<OutputRoute>,
    pub stats: NodeStats,
    /// Frames lent to the operator (`alloc_output`) that it still holds.
    pub lent: Mutex<Vec<Weak<Lent>>>,
    /// Every declared parameter's current value (the graph's, then what `on_param` accepted).
    pub params: Mutex<Vec<(String, ParamValue)>>,
}

/// Room before a lent region for the frame's magic, meta and the pack's other (small) buffers.
const LENT_HEAD: usize = 16 * 1024;
/// Smaller buffers are ordinary memory: copying them costs less than lending a frame.
const LEND_MIN: usize = 16 * 1024;

/// A frame lent to an operator: it writes its data into the region, the host writes the rest
/// of the frame around it when the pack is emitted, and the transport sends it without a copy.
pub(crate) struct Lent {
    frame: Box<dyn LentFrame>,
    space: FrameSpace,
    /// The frame went out: its bytes are final; another pack over the region is copied.
    sent: AtomicBool,
}

/// The `HostCtx` behind one call into a plugin.
pub(crate) struct CallCtx<'a> {
    pub node: &'a NodeShared,
    pub engine: &'a dyn Engine,
    /// The plugin's error message, or why the last host call failed.
    pub error: String,
    pub finish_requested: bool,
    pub accepting_outputs: bool,
    /// An output was refused because the graph is stopping (counted as undelivered; a
    /// callback that fails because of it has not failed).
    pub stopping: bool,
}

impl<'a> CallCtx<'a> {
    pub fn new(node: &'a NodeShared, engine: &'a dyn Engine) -> Self {
        CallCtx {
            node,
            engine,
            error: String::new(),
            finish_requested: false,
            accepting_outputs: true,
            stopping: false,
        }
    }

    fn as_host_ctx(&mut self) -> *mut abi::HostCtx {
        (self as *mut CallCtx<'a>).cast()
    }
}

/// # Safety
/// `ctx` must be the `CallCtx` the host passed to the plugin call in progress.
unsafe fn call_ctx<'a>(ctx: *mut abi::HostCtx) -> &'a mut CallCtx<'a> {
    // SAFETY: guaranteed by the caller; the CallCtx outlives the plugin call.
    unsafe { &mut *ctx.cast::<CallCtx<'a>>() }
}

/// Runs host code called from a plugin: a host panic must not unwind into plugin code.
fn no_unwind<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        tracing::error!(
            "host callback panicked: {}",
            quiver_operator::ffi::panic_message(p.as_ref())
        );
        fallback
    })
}

unsafe extern "C" fn host_emit(
    ctx: *mut abi::HostCtx,
    port: u32,
    array: *mut abi::ArrowArray,
    schema: *mut abi::ArrowSchema,
    options: abi::EmitOptions,
) -> abi::Status {
    no_unwind(abi::STATUS_ERROR, || {
        // SAFETY: ctx is the current call's CallCtx; array/schema are null or valid exported
        // structs lent by the plugin for this call.
        unsafe {
            let cx = call_ctx(ctx);
            if !cx.accepting_outputs {
                cx.error = "outputs are not accepted while stopping".into();
                return abi::STATUS_CLOSED;
            }
            let Some(route) = cx.node.routes.get(port as usize) else {
                cx.error = format!("no output #{port}");
                return abi::STATUS_ERROR;
            };
            let data = if array.is_null() {
                None
            } else {
                let data_type = {
                    let mut last = route.last_type.lock().unwrap_or_else(|p| p.into_inner());
                    if schema.is_null() {
                        match last.clone() {
                            Some(t) => t,
                            None => {
                                cx.error = "an array without a schema, and none sent before on this output".into();
                                return abi::STATUS_ERROR;
                            }
                        }
                    } else {
                        let mut schema = take_schema(&mut *schema);
                        let parsed = schema_type(&schema);
                        release_schema(&mut schema);
                        match parsed
                            .map_err(|e| e.to_string())
                            .and_then(|t| check_layout(&route.id, t))
                        {
                            Ok(t) => {
                                *last = Some(t.clone());
                                t
                            }
                            Err(e) => {
                                cx.error = e;
                                return abi::STATUS_ERROR;
                            }
                        }
                    }
                };
                let adopted = ForeignArray::adopt(take_array(&mut *array), data_type, cx.node.library.clone());
                // A new schema: check the whole layout once (later packs of the same type get
                // the cheap structural check only; consumers' imports validate them too).
                let checked = adopted.and_then(|a| {
                    if schema.is_null() {
                        Ok(a)
                    } else {
                        a.to_arrow().map(|_| a).map_err(|e| e.to_string())
                    }
                });
                match checked {
                    Ok(a) => Some(a),
                    Err(e) => {
                        cx.error = format!("malformed Arrow array on output `{}`: {e}", route.id.source_port);
                        return abi::STATUS_ERROR;
                    }
                }
            };
            let seq = route.seq.fetch_add(1, Ordering::Relaxed);
            let timestamp_ns = if options.has_timestamp != 0 {
                options.timestamp_ns
            } else {
                cx.engine.now_ns()
            };
            let pack = Pack {
                id: route.id.clone(),
                header: Header {
                    seq,
                    timestamp_ns,
                    is_updated: true,
                },
                data,
            };
            cx.node.stats.outputs[port as usize].fetch_add(1, Ordering::Relaxed);
            route.taps.offer(&pack);
            for &target in &route.targets {
                if cx.engine.deliver(target, pack.clone()).is_err() {
                    cx.node.stats.undelivered.fetch_add(1, Ordering::Relaxed);
                    cx.stopping = true;
                    cx.error = "the graph is stopping".into();
                    return abi::STATUS_CLOSED;
                }
            }
            if !route.remote.is_empty()
                && let Err(e) = send_remote(cx.engine, cx.node, route, &pack)
            {
                cx.error = e;
                return abi::STATUS_ERROR;
            }
            abi::STATUS_OK
        }
    })
}

/// A pack on its way to other processes: a lent frame written in place, or an encoded copy.
enum Outgoing {
    Lent(Arc<Lent>),
    Encoded(wire::Encoded),
}

/// Sends a pack to the other processes that consume it: framed once, sent per process. A
/// process that is not listening (dead, restarting) misses it: counted as `unrouted`, logged
/// once per outage.
fn send_remote(engine: &dyn Engine, node: &NodeShared, route: &OutputRoute, pack: &Pack) -> Result<(), String> {
    // Framed once, on the first process that listens.
    let mut outgoing = None;
    for r in &route.remote {
        if !r.sender.matched() {
            node.stats.unrouted.fetch_add(1, Ordering::Relaxed);
            if !r.missing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    node = %node.id,
                    "process `{}` is not receiving output `{}`: its packs are counted as lost until it is back",
                    r.process,
                    route.id.source_port
                );
            }
            continue;
        }
        if r.missing.swap(false, Ordering::Relaxed) {
            tracing::info!(node = %node.id, "process `{}` receives output `{}` again", r.process, route.id.source_port);
        }
        let frame = match &outgoing {
            Some(f) => f,
            None => outgoing.insert(frame_pack(node, route, pack)?),
        };
        let mut sent = Ok(());
        engine.backpressure(&mut || {
            sent = match frame {
                Outgoing::Lent(lent) => r.sender.send_lent(&*lent.frame),
                Outgoing::Encoded(encoded) => r.sender.send(encoded),
            };
        });
        match sent {
            Ok(()) => {
                r.sent.fetch_add(1, Ordering::Relaxed);
                let counter = match frame {
                    Outgoing::Lent(_) => &node.stats.sent_in_place,
                    Outgoing::Encoded(_) => &node.stats.sent_copied,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                node.stats.unrouted.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node = %node.id, "sending output `{}` to process `{}`: {e}", route.id.source_port, r.process);
            }
        }
    }
    Ok(())
}

/// The frame for `pack`: the lent frame its data was written into when there is one (only the
/// meta and small buffers are written, around the data), else an encoded copy.
fn frame_pack(node: &NodeShared, route: &OutputRoute, pack: &Pack) -> Result<Outgoing, String> {
    let array = match &pack.data {
        Some(d) => Some(
            d.to_arrow()
                .map_err(|e| format!("output `{}`: {e}", route.id.source_port))?,
        ),
        None => None,
    };
    if let Some(array) = &array {
        let held: Vec<Arc<Lent>> = node
            .lent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for lent in held {
            let placed = wire::encode_in_place(&route.id, &pack.header, array, &lent.space)
                .map_err(|e| format!("output `{}` cannot cross processes: {e}", route.id.source_port))?;
            let Some(placed) = placed else { continue };
            // `encode_in_place` places everything before the region; checked again, it is cheap.
            let fits = std::iter::once(placed.head.len())
                .chain(placed.pieces.iter().map(|(at, b)| at.saturating_add(b.len())))
                .all(|end| end <= lent.space.region_at);
            if !fits {
                continue;
            }
            if lent.sent.swap(true, Ordering::SeqCst) {
                tracing::debug!(
                    node = %node.id,
                    "output `{}`: a buffer already sent once is sent again: copied",
                    route.id.source_port
                );
                continue;
            }
            write_around(&lent, &placed);
            return Ok(Outgoing::Lent(lent));
        }
    }
    wire::encode(&route.id, &pack.header, array.as_ref())
        .map(Outgoing::Encoded)
        .map_err(|e| format!("output `{}` cannot cross processes: {e}", route.id.source_port))
}

/// Writes the head and small buffers of a frame around the region the operator wrote (the
/// caller checked that they end before it).
fn write_around(lent: &Lent, placed: &wire::Placed) {
    let base = lent.frame.as_ptr();
    let pieces =
        std::iter::once((0, placed.head.as_slice())).chain(placed.pieces.iter().map(|(at, b)| (*at, b.as_slice())));
    for (at, bytes) in pieces {
        // SAFETY: the transport lent `size()` >= region_at bytes at `base`, writable until the
        // first send (`sent` was false and is now true: this is the only writer). The operator
        // was lent only the region, which `[at, at + len)` ends before (checked by the caller),
        // and `bytes` is other memory (the meta, or a buffer outside the region).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(at), bytes.len()) };
    }
}

/// A port declared with a msg-defs type must carry that type's Arrow layout. Checked when a
/// schema arrives (the first pack and every type change), not per pack.
pub(crate) fn check_layout(id: &PackId, got: DataType) -> Result<DataType, String> {
    match quiver_msgs::Registry::builtin().data_type(&id.msg_type) {
        Some(want) if *want != got => Err(format!(
            "declared as {} but the data is {got}; build it with quiver_msgs::{} (layout {want})",
            id.msg_type,
            id.msg_type.rsplit('/').next().unwrap_or_default()
        )),
        _ => Ok(got),
    }
}

unsafe extern "C" fn host_now(ctx: *mut abi::HostCtx) -> u64 {
    // SAFETY: ctx is the current call's CallCtx.
    no_unwind(0, || unsafe { call_ctx(ctx).engine.now_ns() })
}

unsafe extern "C" fn host_log(ctx: *mut abi::HostCtx, level: u32, msg: abi::StrRef) {
    no_unwind((), || {
        // SAFETY: ctx is the current call's CallCtx; msg is valid for the call.
        let (node, msg) = unsafe { (&call_ctx(ctx).node.id, read_str(msg)) };
        match level {
            abi::LOG_ERROR => tracing::error!(node = %node, "{msg}"),
            abi::LOG_WARN => tracing::warn!(node = %node, "{msg}"),
            abi::LOG_INFO => tracing::info!(node = %node, "{msg}"),
            abi::LOG_DEBUG => tracing::debug!(node = %node, "{msg}"),
            _ => tracing::trace!(node = %node, "{msg}"),
        }
    })
}

unsafe extern "C" fn host_set_error(ctx: *mut abi::HostCtx, msg: abi::StrRef) {
    // SAFETY: ctx is the current call's CallCtx; msg is valid for the call.
    no_unwind((), || unsafe { call_ctx(ctx).error = read_str(msg) })
}

unsafe extern "C" fn host_finish(ctx: *mut abi::HostCtx) {
    // SAFETY: ctx is the current call's CallCtx.
    no_unwind((), || unsafe { call_ctx(ctx).finish_requested = true })
}

unsafe extern "C" fn host_report(ctx: *mut abi::HostCtx, key: abi::StrRef, value: abi::StrRef) {
    no_unwind((), || {
        // SAFETY: ctx is the current call's CallCtx; the strings are valid for the call.
        let (cx, key, value) = unsafe { (call_ctx(ctx), read_str(key), read_str(value)) };
        cx.node.stats.set_report(key, value);
    })
}

unsafe extern "C" fn host_last_error(ctx: *mut abi::HostCtx) -> abi::StrRef {
    // SAFETY: ctx is the current call's CallCtx; the string lives until the next host call.
    no_unwind(abi::StrRef::EMPTY, || unsafe { str_ref(&call_ctx(ctx).error) })
}

unsafe extern "C" fn host_alloc_output(
    ctx: *mut abi::HostCtx,
    port: u32,
    len: usize,
    out: *mut abi::OutputBuffer,
) -> abi::Status {
    no_unwind(abi::STATUS_ERROR, || {
        // SAFETY: ctx is the current call's CallCtx; `out` is valid for the call.
        let (cx, out) = unsafe { (call_ctx(ctx), &mut *out) };
        *out = abi::OutputBuffer::none();
        let Some(route) = cx.node.routes.get(port as usize) else {
            cx.error = format!("no output #{port}");
            return abi::STATUS_ERROR;
        };
        let Some(remote) = route.remote.first() else {
            return abi::STATUS_OK; // consumed in this process only: ordinary memory
        };
        if len < LEND_MIN {
            return abi::STATUS_OK;
        }
        let Some(frame) = LENT_HEAD.checked_add(len).and_then(|size| remote.sender.lend(size)) else {
            return abi::STATUS_OK;
        };
        let space = FrameSpace {
            base: frame.as_ptr() as usize,
            len: frame.size(),
            region_at: LENT_HEAD,
            region_len: len,
        };
        if space.len < LENT_HEAD + len {
            return abi::STATUS_OK;
        }
        let data = frame.as_ptr().wrapping_add(LENT_HEAD);
        let lent = Arc::new(Lent {
            frame,
            space,
            sent: AtomicBool::new(false),
        });
        {
            let mut held = cx.node.lent.lock().unwrap_or_else(|p| p.into_inner());
            held.retain(|w| w.strong_count() > 0);
            held.push(Arc::downgrade(&lent));
        }
        *out = abi::OutputBuffer {
            data,
            len,
            handle: Arc::into_raw(lent).cast_mut().cast(),
            release: Some(release_lent),
        };
        abi::STATUS_OK
    })
}

unsafe extern "C" fn release_lent(handle: *mut c_void) {
    no_unwind((), || {
        // SAFETY: `handle` is one strong count of a `Lent` made by `host_alloc_output`, given
        // back exactly once (ABI rule).
        let lent = unsafe { Arc::from_raw(handle.cast_const().cast::<Lent>()) };
        drop(lent);
    })
}

static HOST_API: abi::HostApi = abi::HostApi {
    struct_size: size_of::<abi::HostApi>(),
    emit: host_emit,
    now_ns: host_now,
    log: host_log,
    set_error: host_set_error,
    finish: host_finish,
    last_error: host_last_error,
    report: host_report,
    alloc_output: host_alloc_output,
};

/// A new array with its own buffers (passing by value).
pub(crate) fn deep_copy(array: &ArrayRef) -> ArrayRef {
    let data = array.to_data();
    let mut copy = MutableArrayData::new(vec![&data], false, data.len());
    match copy.try_extend(0, 0, data.len()) {
        Ok(()) => make_array(copy.freeze()),
        // Only on offset overflow, impossible when copying an array that already exists whole.
        Err(_) => array.clone(),
    }
}

/// How a call into a plugin failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    Error(String),
    Panic(String),
    Rejected(String),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Error(m) => write!(f, "{m}"),
            CallFailure::Panic(m) => write!(f, "panicked: {m}"),
            CallFailure::Rejected(m) => write!(f, "rejected: {m}"),
        }
    }
}

fn status_result(status: abi::Status, cx: &mut CallCtx<'_>) -> Result<(), CallFailure> {
    let msg = std::mem::take(&mut cx.error);
    match status {
        abi::STATUS_OK => Ok(()),
        abi::STATUS_PANIC => Err(CallFailure::Panic(msg)),
        abi::STATUS_REJECTED => Err(CallFailure::Rejected(msg)),
        abi::STATUS_ERROR | abi::STATUS_CLOSED => Err(CallFailure::Error(msg)),
        other => Err(CallFailure::Error(format!("unknown status {other}: {msg}"))),
    }
}

/// One operator instance inside a plugin.
pub(crate) struct Instance {
    ptr: *mut c_void,
    library: Arc<Library>,
}

// SAFETY: operators are `Send` (the SDK's `Operator: Send` bound); the host calls one instance
// from one thread at a time.
unsafe impl Send for Instance {}

impl Instance {
    pub fn create(
        library: &Arc<Library>,
        node_id: &str,
        params: &[(String, ParamValue)],
        ports: &[quiver_graph::GraphPort],
        cx: &mut CallCtx<'_>,
    ) -> Result<Instance, String> {
        let c_ports = quiver_operator::ffi::CGraphPorts::new(ports);
        let c_params: Vec<abi::NamedParam> = params
            .iter()
            .map(|(name, v)| abi::NamedParam {
                name: str_ref(name),
                value: param_to_c(v),
            })
            .collect();
        // SAFETY: a valid vtable from a loaded library; all pointers valid for the call.
        let ptr = unsafe {
            (library.vtable.create)(
                &HOST_API,
                cx.as_host_ctx(),
                str_ref(node_id),
                c_params.as_ptr(),
                c_params.len(),
                c_ports.as_ptr(),
                c_ports.len(),
            )
        };
        if ptr.is_null() {
            let msg = std::mem::take(&mut cx.error);
            return Err(if msg.is_empty() {
                "the operator could not be created".into()
            } else {
                msg
            });
        }
        Ok(Instance {
            ptr,
            library: library.clone(),
        })
    }

    /// Delivers `pack` on input `port`. `sent_type`: the data type last delivered on this input
    /// to this instance; the schema is sent only when it changes.
    pub fn on_input(
        &mut self,
        cx: &mut CallCtx<'_>,
        port: u32,
        pack: &Pack,
        passing: Passing,
        is_updated: bool,
        sent_type: &mut Option<DataType>,
    ) -> Result<(), CallFailure> {
        let id = &pack.id;
        let (array, schema, has_data) = match &pack.data {
            Some(data) => {
                let schema = if sent_type.as_ref() == Some(data.data_type()) {
                    abi::ArrowSchema::released()
                } else {
                    let s = export_schema(data.data_type())
                        .map_err(|e| CallFailure::Error(format!("exporting input: {e}")))?;
                    *sent_type = Some(data.data_type().clone());
                    s
                };
                let array = if passing == Passing::ByValue {
                    let shared = data
                        .to_arrow()
                        .map_err(|e| CallFailure::Error(format!("copying input: {e}")))?;
                    export_array_only(&deep_copy(&shared))
                } else {
                    data.export()
                };
                (array, schema, 1)
            }
            None => (abi::ArrowArray::released(), abi::ArrowSchema::released(), 0),
        };
        let h = &pack.header;
        let mut c_pack = abi::InputPack {
            name: str_ref(&id.name),
            msg_type: str_ref(&id.msg_type),
            source_node: str_ref(&id.source_node),
            source_port: str_ref(&id.source_port),
            header: abi::PackHeader {
                seq: h.seq,
                timestamp_ns: h.timestamp_ns,
                is_updated: u8::from(is_updated),
            },
            has_data,
            array,
            schema,
        };
        // SAFETY: live instance of this library; the pack is valid for the call.
        let status =
            unsafe { (self.library.vtable.on_input)(self.ptr, &HOST_API, cx.as_host_ctx(), port, &mut c_pack) };
        // SAFETY: whatever the plugin did not take is released by us.
        unsafe {
            release_array(&mut c_pack.array);
            release_schema(&mut c_pack.schema);
        }
        status_result(status, cx)
    }

    /// A parameter changes at run time (kind and range already checked): the operator applies
    /// it, or refuses it with a reason (`CallFailure::Rejected`).
    pub fn on_param(&mut self, cx: &mut CallCtx<'_>, name: &str, value: &ParamValue) -> Result<(), CallFailure> {
        let param = abi::NamedParam {
            name: str_ref(name),
            value: param_to_c(value),
        };
        // SAFETY: live instance of this library; the parameter (and the strings it points to)
        // are valid for the call.
        let status = unsafe { (self.library.vtable.on_param)(self.ptr, &HOST_API, cx.as_host_ctx(), &param) };
        status_result(status, cx)
    }

    pub fn on_timer(&mut self, cx: &mut CallCtx<'_>, timer: u32) -> Result<(), CallFailure> {
        // SAFETY: live instance of this library.
        let status = unsafe { (self.library.vtable.on_timer)(self.ptr, &HOST_API, cx.as_host_ctx(), timer) };
        status_result(status, cx)
    }

    pub fn stop(&mut self, cx: &mut CallCtx<'_>) -> Result<(), CallFailure> {
        cx.accepting_outputs = false;
        // SAFETY: live instance of this library.
        let status = unsafe { (self.library.vtable.stop)(self.ptr, &HOST_API, cx.as_host_ctx()) };
        status_result(status, cx)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the instance came from this library's `create` and is destroyed once, before
        // the library (we hold a reference to it).
        unsafe { (self.library.vtable.destroy)(self.ptr) }
    }
}
