//! The real-time executor: one thread per node, bounded queues per input with their QoS policy,
//! timers on the monotonic clock.
//!
//! Shutdown: timers stop, queues drain (every queued message is handled), then every operator's
//! `stop` runs on its own thread. "Nothing can happen any more" (every timer-driven node has
//! finished and no message is queued or being handled) also ends the run.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quiver_graph::Graph;

use arrow_buffer::Buffer;

use crate::StatusHook;
use crate::error::RunError;
use crate::host::{CallCtx, CallFailure, Closed, Engine, Instance, Target, check_layout};
use crate::pack::{ForeignArray, Pack};
use crate::plan::Plan;
use crate::queue::{Item, Offer, Queue, oldest};
use crate::stats::{EndReason, Summary};
use crate::transport::{Command, Control, Part, PartStatus};
use crate::wire;

/// The run's clock: monotonic, aligned to wall-clock time at the start.
pub(crate) struct Clock {
    start: Instant,
    start_wall_ns: u64,
}

impl Clock {
    pub fn new() -> Self {
        let start_wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            start: Instant::now(),
            start_wall_ns,
        }
    }
    pub fn now_ns(&self) -> u64 {
        self.start_wall_ns + self.start.elapsed().as_nanos() as u64
    }
}

struct InboxState {
    queues: Vec<Queue>,
    /// Parameter changes for the node's thread, taken before the next message.
    requests: std::collections::VecDeque<ParamRequest>,
    next_ticket: u64,
    consumer_waiting: bool,
    producers_waiting: usize,
    closed: bool,
}

/// A node's input queues behind one lock: arrival order across inputs is kept (tickets).
struct Inbox {
    state: Mutex<InboxState>,
    /// The node's thread waits here for input.
    ready: Condvar,
    /// Producers wait here while a `block` queue is full.
    space: Condvar,
    /// Items in all queues, readable without the lock (for the brief look before sleeping).
    queued: AtomicUsize,
}

/// How long a node thread looks for new input before it sleeps: 6 rounds of growing spins, then
/// a few yields (a few microseconds in all).
const SPIN_ROUNDS: u32 = 10;

enum Next {
    Item(usize, Item),
    Param(ParamRequest),
    Timeout,
    Closed,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pop(&self, deadline: Option<Instant>) -> Next {
        let mut st = self.lock();
        let mut spun = false;
        loop {
            if let Some(req) = st.requests.pop_front() {
                return Next::Param(req);
            }
            if let Some(slot) = oldest(&st.queues, u64::MAX)
                && let Some(item) = st.queues[slot].items.pop_front()
            {
                self.queued.fetch_sub(1, Ordering::Release);
                // Wake blocked producers only once the queue is half empty (or empty): waking
                // them for every freed slot turns a full queue into a context switch per
                // message.
                let q = &st.queues[slot];
                let wake = st.producers_waiting > 0 && q.items.len() <= q.depth / 2;
                drop(st);
                if wake {
                    self.space.notify_all();
                }
                return Next::Item(slot, item);
            }
            if st.closed {
                return Next::Closed;
            }
            if !spun {
                // A message often follows within microseconds (a burst, a chain): look again
                // briefly before paying for a sleep and a wake-up (as crossbeam's receivers do).
                spun = true;
                drop(st);
                for i in 0..SPIN_ROUNDS {
                    if self.queued.load(Ordering::Acquire) > 0 {
                        break;
                    }
                    if i < 6 {
                        for _ in 0..(1 << i) {
                            std::hint::spin_loop();
                        }
                    } else {
                        std::thread::yield_now();
                    }
                }
                st = self.lock();
                continue;
            }
            st.consumer_waiting = true;
            st = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        st.consumer_waiting = false;
                        return Next::Timeout;
                    }
                    self.ready
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
            };
            st.consumer_waiting = false;
        }
    }

    /// Queues a parameter change for the node's thread; false once the inbox is closed.
    fn request(&self, req: ParamRequest) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.requests.push_back(req);
        let wake = st.consumer_waiting;
        drop(st);
        if wake {
            self.ready.notify_one();
        }
        true
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.space.notify_all();
    }
}

struct RtNode {
    inbox: Inbox,
    busy: Busy,
}

use crate::controls::ParamRequest;
use crate::crash::{IN_INPUT, IN_STOP, IN_TIMER};

/// What a node's thread is doing, for the health watchdog.
#[derive(Default)]
struct Busy {
    /// When the running callback began (the run clock's ns + 1); 0 while none runs.
    since: AtomicU64,
    /// Which callback: `IN_TIMER | manifest timer`, `IN_INPUT | slot`, `IN_STOP`.
    what: AtomicU32,
    /// The running callback was reported hung.
    reported: AtomicBool,
    /// Some callback of this node was reported hung: its thread may never return.
    hung: AtomicBool,
    /// Waiting for room in a consumer's `block` queue: backpressure, not a hang (the wait is
    /// not counted in the callback's time).
    blocked: AtomicBool,
}

thread_local! {
    /// The node whose thread this is (None on transport threads).
    static CURRENT_NODE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

impl Busy {
    fn begin(&self, what: u32, now_ns: u64) {
        crate::crash::in_callback(what);
        self.what.store(what, Ordering::Relaxed);
        self.reported.store(false, Ordering::Relaxed);
        self.since.store(now_ns + 1, Ordering::Release);
    }

    /// The callback returned: how long it ran, and whether it had been reported hung.
    fn end(&self, now_ns: u64) -> (Duration, bool) {
        crate::crash::in_callback(u32::MAX);
        let since = self.since.swap(0, Ordering::AcqRel);
        let ran = Duration::from_nanos(now_ns.saturating_sub(since.saturating_sub(1)));
        (ran, self.reported.load(Ordering::Relaxed))
    }
}

/// The callback `what` names, for messages (`input `scan``, `timer `tick``, `stop`).
fn callback_name(planned: &crate::plan::PlannedNode, what: u32) -> String {
    match what & (3 << 30) {
        IN_TIMER => {
            let i = (what & !(3 << 30)) as usize;
            let name = planned
                .shared
                .library
                .spec
                .timers
                .get(i)
                .map_or("?", |t| t.name.as_str());
            format!("timer `{name}`")
        }
        IN_INPUT => {
            let slot = (what & !(3 << 30)) as usize;
            format!("input `{}`", planned.inputs.get(slot).map_or("?", |i| i.name.as_str()))
        }
        _ => "stop".into(),
    }
}

/// State every thread shares.
struct Shared {
    plan: Plan,
    nodes: Vec<RtNode>,
    clock: Clock,
    /// Messages queued or being handled.
    pending: AtomicUsize,
    /// Timer callbacks running.
    active_timers: AtomicUsize,
    timers_on: AtomicBool,
    /// When the timers were stopped (ticks after it are not missed ticks).
    timers_stopped: Mutex<Option<Instant>>,
    finished: Vec<AtomicBool>,
}

impl Engine for Shared {
    fn deliver(&self, target: Target, pack: Pack) -> Result<(), Closed> {
        let node = &self.nodes[target.node];
        let stats = &self.plan.nodes[target.node].shared.stats.inputs[target.slot];
        let mut st = node.inbox.lock();
        let mut item = Item {
            ticket: 0,
            step: 0,
            pack,
        };
        loop {
            if st.closed {
                return Err(Closed);
            }
            item.ticket = st.next_ticket;
            match st.queues[target.slot].offer(item, false) {
                Offer::Queued => {
                    self.pending.fetch_add(1, Ordering::SeqCst);
                    node.inbox.queued.fetch_add(1, Ordering::Release);
                    break;
                }
                Offer::QueuedDropping => {
                    // One in, one dropped: `pending` is unchanged.
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Offer::Full(back) => {
                    item = back;
                    st.producers_waiting += 1;
                    let mut guard = Some(st);
                    self.backpressure(&mut || {
                        if let Some(st) = guard.take() {
                            guard = Some(node.inbox.space.wait(st).unwrap_or_else(|p| p.into_inner()));
                        }
                    });
                    st = guard.expect("the lock is given back");
                    st.producers_waiting -= 1;
                }
            }
        }
        st.next_ticket += 1;
        stats.received.fetch_add(1, Ordering::Relaxed);
        stats.saw_queue_len(st.queues[target.slot].items.len());
        let wake = st.consumer_waiting;
        // Notify after unlocking, so the woken thread does not block on the lock we still hold.
        drop(st);
        if wake {
            node.inbox.ready.notify_one();
        }
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn backpressure(&self, wait: &mut dyn FnMut()) {
        let producer = CURRENT_NODE.with(std::cell::Cell::get).map(|ni| &self.nodes[ni].busy);
        let waited_from = Instant::now();
        if let Some(b) = producer {
            b.blocked.store(true, Ordering::Release);
        }
        wait();
        if let Some(b) = producer {
            // The callback's clock excludes the wait.
            let waited = waited_from.elapsed().as_nanos() as u64;
            let since = b.since.load(Ordering::Acquire);
            if since != 0 {
                b.since.store(since + waited, Ordering::Release);
            }
            b.blocked.store(false, Ordering::Release);
        }
    }
}

impl crate::controls::Live for Shared {
    fn local_nodes(&self) -> Vec<(usize, String, Arc<quiver_graph::OperatorSpec>)> {
        self.plan
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.local)
            .map(|(i, p)| (i, p.shared.id.clone(), p.shared.library.spec.clone()))
            .collect()
    }

    fn values(&self, node: usize) -> Vec<(String, quiver_graph::ParamValue)> {
        self.plan.nodes[node]
            .shared
            .params
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn request(&self, node: usize, req: ParamRequest) -> bool {
        self.plan.nodes[node].local && self.nodes[node].inbox.request(req)
    }

    fn outputs(&self, node: usize) -> Vec<(String, String, u64)> {
        let shared = &self.plan.nodes[node].shared;
        shared
            .routes
            .iter()
            .enumerate()
            .map(|(port, r)| {
                (
                    r.id.source_port.clone(),
                    r.id.msg_type.clone(),
                    shared.stats.outputs[port].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    fn tap(&self, node: usize, port: usize, sink: Arc<crate::host::TapBuffer>) {
        if let Some(r) = self.plan.nodes[node].shared.routes.get(port) {
            r.taps.add(sink);
        }
    }

    fn untap(&self, node: usize, port: usize, id: u64) {
        if let Some(r) = self.plan.nodes[node].shared.routes.get(port) {
            r.taps.remove(id);
        }
    }
}

/// Errors of one node logged before only every `ERROR_LOG_EVERY`th is (all are counted).
const ERRORS_LOGGED: u64 = 10;
const ERROR_LOG_EVERY: u64 = 1000;

fn report(shared: &Shared, node: usize, what: &str, failure: CallFailure) {
    let id = &shared.plan.nodes[node].shared.id;
    // An operator's message can be huge (a 10 MB value echoed back): logs and the summary get
    // its beginning.
    let message = crate::stats::bounded(format!("{what}: {failure}"));
    let stats = &shared.plan.nodes[node].shared.stats;
    let n = stats.errors.load(Ordering::Relaxed) + 1;
    // A node failing on every tick must not flood the log: the first few, then every 1000th.
    if n <= ERRORS_LOGGED {
        tracing::error!(node = %id, "{message}");
        if n == ERRORS_LOGGED {
            tracing::warn!(node = %id, "{ERRORS_LOGGED} errors: from now on every {ERROR_LOG_EVERY}th is logged (all are counted)");
        }
    } else if n.is_multiple_of(ERROR_LOG_EVERY) {
        tracing::error!(node = %id, "{message} ({n} errors so far)");
    }
    stats.record_error(message);
}

/// A callback returned after more than the node's health timeout.
fn report_slow(shared: &Shared, ni: usize, what: u32, ran: Duration, was_reported: bool) {
    let planned = &shared.plan.nodes[ni];
    let limit = planned.health_timeout;
    if ran <= limit {
        return;
    }
    let name = callback_name(planned, what);
    let message = format!(
        "{name} ran {:.1} s, over the node's health timeout of {} (`health: {{ timeout }}`)",
        ran.as_secs_f64(),
        quiver_graph::format_duration(limit)
    );
    if was_reported {
        tracing::warn!(node = %planned.shared.id, "{name} returned after {:.1} s", ran.as_secs_f64());
    } else {
        tracing::error!(node = %planned.shared.id, "{message}");
        planned.shared.stats.record_error(message);
    }
}

fn node_thread(shared: &Shared, ni: usize, mut instance: Instance) -> Instance {
    let planned = &shared.plan.nodes[ni];
    let node = &planned.shared;
    let inbox = &shared.nodes[ni].inbox;
    let busy = &shared.nodes[ni].busy;
    CURRENT_NODE.with(|c| c.set(Some(ni)));
    crate::crash::enter_node(ni);
    let start = Instant::now();
    let mut deadlines: Vec<Instant> = planned.timers.iter().map(|(_, p)| start + *p).collect();
    let mut finished = planned.timers.is_empty();
    let mut sent_types = vec![None; planned.inputs.len()];
    // Input timeouts: when each one is due, and how many fired since data last came.
    let mut input_due: Vec<Option<Instant>> = planned.inputs.iter().map(|i| i.timeout.map(|t| start + t)).collect();
    let mut silent: Vec<u64> = vec![0; planned.inputs.len()];
    // An empty pack repeats the last sequence number seen (nothing new: no gap either).
    let mut last_seq: Vec<u64> = vec![0; planned.inputs.len()];
    loop {
        if shared.timers_on.load(Ordering::SeqCst) {
            let now = Instant::now();
            for slot in 0..planned.inputs.len() {
                let (Some(due), Some(timeout)) = (input_due[slot], planned.inputs[slot].timeout) else {
                    continue;
                };
                if due > now {
                    continue;
                }
                let input = &planned.inputs[slot];
                if silent[slot] == 0 {
                    tracing::warn!(
                        node = %node.id,
                        "input `{}`: nothing from `{}` for {}: empty packs until data is back",
                        input.name,
                        input.from,
                        quiver_graph::format_duration(timeout)
                    );
                }
                silent[slot] += 1;
                node.stats.inputs[slot].timeouts.fetch_add(1, Ordering::Relaxed);
                let empty = Pack {
                    id: input.id.clone(),
                    header: quiver_operator::Header {
                        seq: last_seq[slot],
                        timestamp_ns: shared.clock.now_ns(),
                        is_updated: false,
                    },
                    data: None,
                };
                let mut cx = CallCtx::new(node, shared);
                busy.begin(IN_INPUT | slot as u32, shared.clock.now_ns());
                let result = instance.on_input(
                    &mut cx,
                    input.manifest_port,
                    &empty,
                    input.passing,
                    false,
                    &mut sent_types[slot],
                );
                let (ran, was_reported) = busy.end(shared.clock.now_ns());
                report_slow(shared, ni, IN_INPUT | slot as u32, ran, was_reported);
                if let Err(f) = result
                    && !cx.stopping
                {
                    report(shared, ni, &format!("input `{}` (timeout)", input.name), f);
                }
                input_due[slot] = Some(Instant::now() + timeout);
            }
        }
        let timers_live = !finished && shared.timers_on.load(Ordering::SeqCst);
        if timers_live {
            let now = Instant::now();
            for (t, &(index, period)) in planned.timers.iter().enumerate() {
                if deadlines[t] > now || finished {
                    continue;
                }
                shared.active_timers.fetch_add(1, Ordering::SeqCst);
                let mut cx = CallCtx::new(node, shared);
                node.stats.timer_fires.fetch_add(1, Ordering::Relaxed);
                busy.begin(IN_TIMER | index, shared.clock.now_ns());
                let result = instance.on_timer(&mut cx, index);
                let (ran, was_reported) = busy.end(shared.clock.now_ns());
                report_slow(shared, ni, IN_TIMER | index, ran, was_reported);
                if let Err(f) = result
                    && !cx.stopping
                {
                    report(
                        shared,
                        ni,
                        &format!("timer `{}`", node.library.spec.timers[index as usize].name),
                        f,
                    );
                }
                if cx.finish_requested {
                    finished = true;
                    shared.finished[ni].store(true, Ordering::SeqCst);
                }
                shared.active_timers.fetch_sub(1, Ordering::SeqCst);
                deadlines[t] += period;
                let now = Instant::now();
                if deadlines[t] <= now {
                    // The callback overran one or more periods: skip the missed ticks. Only
                    // ticks before the timers stopped were missed (a callback that outlives
                    // the run must not count ticks the run never had).
                    let until = shared
                        .timers_stopped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .map_or(now, |at| at.min(now));
                    let behind = (now - deadlines[t]).as_nanos() / period.as_nanos().max(1) + 1;
                    if until > deadlines[t] {
                        let missed = (until - deadlines[t]).as_nanos() / period.as_nanos().max(1) + 1;
                        node.stats.timer_missed.fetch_add(missed as u64, Ordering::Relaxed);
                    }
                    deadlines[t] += period * behind as u32;
                }
            }
        }
        let deadline = if shared.timers_on.load(Ordering::SeqCst) {
            let timers = if finished {
                None
            } else {
                deadlines.iter().min().copied()
            };
            let inputs = input_due.iter().flatten().min().copied();
            match (timers, inputs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else {
            None
        };
        match inbox.pop(deadline) {
            Next::Item(slot, item) => {
                let input = &planned.inputs[slot];
                last_seq[slot] = item.pack.header.seq;
                if let Some(timeout) = input.timeout {
                    input_due[slot] = Some(Instant::now() + timeout);
                    if silent[slot] > 0 {
                        tracing::warn!(
                            node = %node.id,
                            "input `{}`: data from `{}` is back after {} timeout(s)",
                            input.name,
                            input.from,
                            silent[slot]
                        );
                        silent[slot] = 0;
                    }
                }
                let mut cx = CallCtx::new(node, shared);
                busy.begin(IN_INPUT | slot as u32, shared.clock.now_ns());
                let result = instance.on_input(
                    &mut cx,
                    input.manifest_port,
                    &item.pack,
                    input.passing,
                    true,
                    &mut sent_types[slot],
                );
                let (ran, was_reported) = busy.end(shared.clock.now_ns());
                report_slow(shared, ni, IN_INPUT | slot as u32, ran, was_reported);
                drop(item);
                node.stats.inputs[slot].handled.fetch_add(1, Ordering::Relaxed);
                if let Err(f) = result
                    && !cx.stopping
                {
                    report(shared, ni, &format!("input `{}`", input.name), f);
                }
                if cx.finish_requested && !finished {
                    finished = true;
                    shared.finished[ni].store(true, Ordering::SeqCst);
                }
                shared.pending.fetch_sub(1, Ordering::SeqCst);
            }
            Next::Param(req) => {
                let mut cx = CallCtx::new(node, shared);
                crate::controls::answer(node, &mut instance, &mut cx, req);
            }
            Next::Timeout => {}
            Next::Closed => break,
        }
    }
    let mut cx = CallCtx::new(node, shared);
    busy.begin(IN_STOP, shared.clock.now_ns());
    let result = instance.stop(&mut cx);
    let (ran, was_reported) = busy.end(shared.clock.now_ns());
    report_slow(shared, ni, IN_STOP, ran, was_reported);
    if let Err(f) = result {
        report(shared, ni, "stop", f);
    }
    instance
}

/// Reports every node whose running callback has passed its health timeout (once per
/// callback); returns the hung ones' ids and messages found this time.
fn watch_health(shared: &Shared) -> Vec<(String, String)> {
    let now = shared.clock.now_ns();
    let mut found = Vec::new();
    for (ni, n) in shared.nodes.iter().enumerate() {
        let since = n.busy.since.load(Ordering::Acquire);
        if since == 0 || n.busy.blocked.load(Ordering::Acquire) {
            continue;
        }
        let planned = &shared.plan.nodes[ni];
        let ran = Duration::from_nanos(now.saturating_sub(since - 1));
        if ran <= planned.health_timeout || n.busy.reported.swap(true, Ordering::AcqRel) {
            continue;
        }
        n.busy.hung.store(true, Ordering::Release);
        let name = callback_name(planned, n.busy.what.load(Ordering::Relaxed));
        let message = format!(
            "{name} has not returned after {:.1} s (health timeout {}): the node is hung",
            ran.as_secs_f64(),
            quiver_graph::format_duration(planned.health_timeout)
        );
        tracing::error!(node = %planned.shared.id, "{message}");
        planned.shared.stats.record_error(message.clone());
        found.push((planned.shared.id.clone(), message));
    }
    found
}

/// Idle but for hung nodes: no queued message and no running callback anywhere else.
fn idle_but_hung(shared: &Shared) -> bool {
    shared.nodes.iter().all(|n| {
        n.busy.hung.load(Ordering::Acquire)
            || (n.inbox.queued.load(Ordering::Acquire) == 0 && n.busy.since.load(Ordering::Acquire) == 0)
    })
}

/// Decides, in a single-process run, when it ends: `--for`, Ctrl-C, or all work done; then
/// waits for the queues to drain (at most `drain_timeout`).
pub(crate) struct LocalControl<'a> {
    pub started: Instant,
    pub duration: Option<Duration>,
    pub stop: Option<&'a AtomicBool>,
    pub drain_timeout: Duration,
    pub draining_since: Option<Instant>,
}

impl LocalControl<'_> {
    fn poll(&mut self, status: &PartStatus) -> Command {
        match self.draining_since {
            None => {
                let end = if self.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                    Some(EndReason::Interrupted)
                } else if self.duration.is_some_and(|d| self.started.elapsed() >= d) {
                    Some(EndReason::Duration)
                } else if status.finished && status.idle {
                    Some(EndReason::Finished)
                } else {
                    None
                };
                match end {
                    Some(reason) => {
                        self.draining_since = Some(Instant::now());
                        Command::StopTimers(reason)
                    }
                    None => Command::Run,
                }
            }
            Some(since) => {
                if status.idle {
                    Command::Close
                } else if since.elapsed() > self.drain_timeout {
                    tracing::warn!("queues did not drain within {:?}; stopping anyway", self.drain_timeout);
                    Command::Close
                } else {
                    Command::Run
                }
            }
        }
    }
}

/// Who paces the run.
pub(crate) enum Pacer<'a> {
    Local(LocalControl<'a>),
    External(&'a mut dyn Control),
}

/// How long this process waits for the processes consuming its outputs to listen.
const MATCH_TIMEOUT: Duration = Duration::from_secs(20);

fn on_frame(shared: &Shared, ri: usize, frame: &Buffer) {
    let rin = &shared.plan.remote_inputs[ri];
    let decoded = wire::decode(frame).and_then(|wp| {
        if wp.id.msg_type != rin.id.msg_type
            || wp.id.source_node != rin.id.source_node
            || wp.id.source_port != rin.id.source_port
        {
            return Err(wire::WireError::Malformed(format!(
                "a frame of {}/{} ({}) on the key of {}/{}",
                wp.id.source_node, wp.id.source_port, wp.id.msg_type, rin.id.source_node, rin.id.source_port
            )));
        }
        if let Some(data) = &wp.data {
            check_layout(&rin.id, data.data_type().clone()).map_err(wire::WireError::Invalid)?;
        }
        Ok(wp)
    });
    match decoded {
        Ok(wp) => {
            // Frames of one key arrive in order; a jump means packs were lost on the way (or
            // sent while this process was down: the producer counts those as unrouted).
            let seq = wp.header.seq;
            let expected = rin.next_seq.swap(seq + 1, Ordering::Relaxed);
            if expected != u64::MAX && seq > expected {
                let lost = seq - expected;
                for t in &rin.targets {
                    shared.plan.nodes[t.node].shared.stats.inputs[t.slot]
                        .missing
                        .fetch_add(lost, Ordering::Relaxed);
                }
                tracing::warn!(
                    from = %format!("{}/{}", rin.id.source_node, rin.id.source_port),
                    "{lost} pack(s) missing before seq {seq}"
                );
            }
            let pack = Pack {
                id: rin.id.clone(),
                header: wp.header,
                data: wp.data.as_ref().map(ForeignArray::from_host),
            };
            for &t in &rin.targets {
                if shared.deliver(t, pack.clone()).is_err() {
                    // Closing: the producer's side counted it as sent; say where it ended.
                    tracing::debug!(key = %rin.key, "frame arrived while closing");
                }
            }
        }
        Err(e) => {
            let mut total = 0;
            for t in &rin.targets {
                let st = &shared.plan.nodes[t.node].shared.stats.inputs[t.slot];
                total = st.rejected.fetch_add(1, Ordering::Relaxed) + 1;
            }
            // Log the first few and then every 1000th: a flood of garbage must not flood the log.
            if total <= 10 || total.is_multiple_of(1000) {
                tracing::warn!(
                    from = %format!("{}/{}", rin.id.source_node, rin.id.source_port),
                    "rejected a malformed frame from another process ({total} so far): {e}"
                );
            }
        }
    }
    rin.received.fetch_add(1, Ordering::SeqCst);
}

/// Runs `graph` (this process's part of it, with `part`) in real time until `pacer` ends it.
pub(crate) fn run(
    graph: &Graph,
    plan: Plan,
    part: Option<&Part>,
    mut pacer: Pacer<'_>,
    status: Option<&(StatusHook, Duration)>,
    controls: Option<&crate::Controls>,
) -> Result<Summary, RunError> {
    let nodes = plan
        .nodes
        .iter()
        .map(|p| RtNode {
            inbox: Inbox {
                state: Mutex::new(InboxState {
                    queues: p.make_queues(),
                    requests: Default::default(),
                    next_ticket: 0,
                    consumer_waiting: false,
                    producers_waiting: 0,
                    closed: false,
                }),
                ready: Condvar::new(),
                space: Condvar::new(),
                queued: AtomicUsize::new(0),
            },
            busy: Busy::default(),
        })
        .collect();
    let finished = plan
        .nodes
        .iter()
        .map(|p| AtomicBool::new(!p.local || !p.has_timers()))
        .collect();
    let shared = Arc::new(Shared {
        plan,
        nodes,
        clock: Clock::new(),
        pending: AtomicUsize::new(0),
        active_timers: AtomicUsize::new(0),
        timers_on: AtomicBool::new(true),
        timers_stopped: Mutex::new(None),
        finished,
    });
    crate::crash::register(shared.plan.nodes.iter().map(|p| {
        (
            p.shared.id.clone(),
            p.inputs.iter().map(|i| i.name.clone()).collect(),
            p.shared.library.spec.timers.iter().map(|t| t.name.clone()).collect(),
        )
    }));
    let instances = shared.plan.create_instances(graph, &*shared)?;
    match wire_up(&shared, part, &mut pacer) {
        Ok(receivers) => {
            if let Some(c) = controls {
                let live: Arc<dyn crate::controls::Live> = shared.clone();
                c.attach(Arc::downgrade(&live));
            }
            let result = start(graph, shared, instances, receivers, pacer, status);
            if let Some(c) = controls {
                c.detach();
            }
            result
        }
        Err(e) => {
            // Nothing ran: every created instance's `stop` runs before the error goes up.
            shared.plan.stop_unstarted(instances, &*shared);
            Err(e)
        }
    }
}

/// Opens the edges from and to other processes and waits until the run may start.
fn wire_up(
    shared: &Arc<Shared>,
    part: Option<&Part>,
    pacer: &mut Pacer<'_>,
) -> Result<Vec<Box<dyn crate::FrameReceiver>>, RunError> {
    // Frames from other processes.
    let mut receivers = Vec::new();
    if let Some(part) = part {
        for (ri, rin) in shared.plan.remote_inputs.iter().enumerate() {
            let s = shared.clone();
            let receiver = part
                .transport
                .receiver(&rin.key, Box::new(move |frame| on_frame(&s, ri, &frame)))
                .map_err(|e| {
                    RunError::Transport(format!("receiving {}/{}: {e}", rin.id.source_node, rin.id.source_port))
                })?;
            receivers.push(receiver);
        }
        // Nothing may be sent before the consuming processes listen: it would be lost.
        let waiting_since = Instant::now();
        loop {
            let unmatched: Vec<String> = shared
                .plan
                .nodes
                .iter()
                .flat_map(|n| n.shared.routes.iter().map(move |r| (n, r)))
                .flat_map(|(n, r)| r.remote.iter().map(move |t| (n, r, t)))
                .filter(|(_, _, t)| !t.sender.matched())
                .map(|(n, r, t)| format!("`{}/{}` -> process `{}`", n.shared.id, r.id.source_port, t.process))
                .collect();
            if unmatched.is_empty() {
                break;
            }
            if let Pacer::External(control) = pacer
                && let Some(why) = control.aborted()
            {
                return Err(RunError::Options(why));
            }
            if waiting_since.elapsed() > MATCH_TIMEOUT {
                return Err(RunError::Transport(format!(
                    "no process received {} within {MATCH_TIMEOUT:?}",
                    unmatched.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if let Pacer::External(control) = pacer {
        control.ready()?;
    }
    Ok(receivers)
}

fn start(
    graph: &Graph,
    shared: Arc<Shared>,
    instances: Vec<Option<Instance>>,
    receivers: Vec<Box<dyn crate::FrameReceiver>>,
    mut pacer: Pacer<'_>,
    status: Option<&(StatusHook, Duration)>,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    if let Pacer::Local(l) = &mut pacer {
        l.started = started;
    }
    let mut handles = Vec::new();
    for (ni, instance) in instances.into_iter().enumerate() {
        let Some(instance) = instance else { continue };
        let s = shared.clone();
        let name = format!("q:{}", shared.plan.nodes[ni].shared.id);
        let handle = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || node_thread(&s, ni, instance))
            .map_err(|e| RunError::Thread {
                node: shared.plan.nodes[ni].shared.id.clone(),
                reason: e.to_string(),
            })?;
        handles.push((ni, handle));
    }

    let idle = |s: &Shared| s.pending.load(Ordering::SeqCst) == 0 && s.active_timers.load(Ordering::SeqCst) == 0;
    let mut next_status = started + status.map_or(Duration::MAX / 4, |(_, every)| *every);
    let mut end = None;
    let mut elapsed = Duration::ZERO;
    loop {
        std::thread::sleep(Duration::from_millis(2));
        if let Some((hook, every)) = status
            && Instant::now() >= next_status
        {
            next_status += *every;
            hook(&Summary {
                graph: shared.plan.name.clone(),
                stepped: false,
                elapsed: started.elapsed(),
                steps: None,
                end: EndReason::Running,
                nodes: shared.plan.summaries(graph),
                processes: Vec::new(),
            });
        }
        for (node, message) in watch_health(&shared) {
            if let Pacer::External(c) = &mut pacer {
                c.hung(&node, &message);
            }
        }
        let any_hung = shared.nodes.iter().any(|n| n.busy.hung.load(Ordering::Acquire));
        let mut st = PartStatus {
            // `pending` before the counts: a frame counted as received is already pending.
            // A hung node's messages never drain: the rest decides.
            idle: if any_hung {
                idle_but_hung(&shared)
            } else {
                idle(&shared)
            },
            finished: shared.finished.iter().all(|f| f.load(Ordering::SeqCst)),
            ..PartStatus::default()
        };
        shared.plan.key_counts(&mut st);
        let command = match &mut pacer {
            Pacer::Local(l) => l.poll(&st),
            Pacer::External(c) => c.poll(&st, &|| shared.plan.summaries(graph)),
        };
        match command {
            Command::Run => {}
            Command::StopTimers(reason) => {
                if end.is_none() {
                    end = Some(reason);
                    elapsed = started.elapsed();
                    *shared.timers_stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    shared.timers_on.store(false, Ordering::SeqCst);
                }
            }
            Command::Close => break,
        }
    }
    let end = end.unwrap_or(EndReason::Interrupted);
    if elapsed.is_zero() {
        elapsed = started.elapsed();
    }
    shared.timers_on.store(false, Ordering::SeqCst);
    // No more frames from other processes, then close the queues.
    drop(receivers);
    for n in &shared.nodes {
        n.inbox.close();
    }
    // Each node finishes what is queued and runs its `stop`; a thread that does not end
    // within its health timeout (a hung callback) is left behind, its `stop` skipped: the run
    // ends on time all the same, and the process exits with it.
    let mut instances = Vec::new();
    let closed_at = Instant::now();
    let mut pending_joins: Vec<(usize, std::thread::JoinHandle<Instance>)> = handles;
    loop {
        let mut still = Vec::new();
        for (ni, h) in pending_joins {
            if h.is_finished() {
                match h.join() {
                    Ok(inst) => instances.push(inst),
                    Err(_) => shared.plan.nodes[ni]
                        .shared
                        .stats
                        .record_error("the node's thread panicked (host bug)".into()),
                }
            } else {
                still.push((ni, h));
            }
        }
        pending_joins = still;
        watch_health(&shared);
        let (overdue, waiting): (Vec<_>, Vec<_>) = pending_joins.into_iter().partition(|(ni, _)| {
            shared.nodes[*ni].busy.hung.load(Ordering::Acquire)
                || closed_at.elapsed() > shared.plan.nodes[*ni].health_timeout
        });
        for (ni, h) in overdue {
            let planned = &shared.plan.nodes[ni];
            let what = callback_name(planned, shared.nodes[ni].busy.what.load(Ordering::Relaxed));
            let message = format!("left running in {what} when the run ended: its `stop` did not run");
            tracing::error!(node = %planned.shared.id, "{message}");
            planned.shared.stats.record_error(message);
            // Not joined (dropping the handle detaches the thread): it keeps its instance and,
            // through `shared`, its library, until the process exits.
            drop(h);
        }
        pending_joins = waiting;
        if pending_joins.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Destroy instances before anything else lets go of their libraries.
    drop(instances);
    let nodes = shared.plan.summaries(graph);
    Ok(Summary {
        graph: shared.plan.name.clone(),
        stepped: false,
        elapsed,
        steps: None,
        end,
        nodes,
        processes: Vec::new(),
    })
}
