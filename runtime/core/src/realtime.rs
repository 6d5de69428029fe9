//! The real-time executor: one thread per node, bounded queues per input with their QoS policy,
//! timers on the monotonic clock.
//!
//! Shutdown: timers stop, queues drain (every queued message is handled), then every operator's
//! `stop` runs on its own thread. "Nothing can happen any more" (every timer-driven node has
//! finished and no message is queued or being handled) also ends the run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quiver_graph::Graph;

use crate::StatusHook;
use crate::error::RunError;
use crate::host::{CallCtx, CallFailure, Closed, Engine, Instance, Target};
use crate::pack::Pack;
use crate::plan::Plan;
use crate::queue::{Item, Offer, Queue, oldest};
use crate::stats::{EndReason, Summary};

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

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.space.notify_all();
    }
}

struct RtNode {
    inbox: Inbox,
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
                    st = node.inbox.space.wait(st).unwrap_or_else(|p| p.into_inner());
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
}

fn report(shared: &Shared, node: usize, what: &str, failure: CallFailure) {
    let id = &shared.plan.nodes[node].shared.id;
    let message = format!("{what}: {failure}");
    tracing::error!(node = %id, "{message}");
    shared.plan.nodes[node].shared.stats.record_error(message);
}

fn node_thread(shared: &Shared, ni: usize, mut instance: Instance) -> Instance {
    let planned = &shared.plan.nodes[ni];
    let node = &planned.shared;
    let inbox = &shared.nodes[ni].inbox;
    let start = Instant::now();
    let mut deadlines: Vec<Instant> = planned.timers.iter().map(|(_, p)| start + *p).collect();
    let mut finished = planned.timers.is_empty();
    let mut sent_types = vec![None; planned.inputs.len()];
    loop {
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
                if let Err(f) = instance.on_timer(&mut cx, index) {
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
                    // The callback overran one or more periods: skip the missed ticks.
                    let behind = (now - deadlines[t]).as_nanos() / period.as_nanos().max(1) + 1;
                    node.stats.timer_missed.fetch_add(behind as u64, Ordering::Relaxed);
                    deadlines[t] += period * behind as u32;
                }
            }
        }
        let deadline = if !finished && shared.timers_on.load(Ordering::SeqCst) {
            deadlines.iter().min().copied()
        } else {
            None
        };
        match inbox.pop(deadline) {
            Next::Item(slot, item) => {
                let input = &planned.inputs[slot];
                let mut cx = CallCtx::new(node, shared);
                let result = instance.on_input(
                    &mut cx,
                    input.manifest_port,
                    &item.pack,
                    input.passing,
                    true,
                    &mut sent_types[slot],
                );
                drop(item);
                node.stats.inputs[slot].handled.fetch_add(1, Ordering::Relaxed);
                if let Err(f) = result {
                    report(shared, ni, &format!("input `{}`", input.name), f);
                }
                if cx.finish_requested && !finished {
                    finished = true;
                    shared.finished[ni].store(true, Ordering::SeqCst);
                }
                shared.pending.fetch_sub(1, Ordering::SeqCst);
            }
            Next::Timeout => {}
            Next::Closed => break,
        }
    }
    let mut cx = CallCtx::new(node, shared);
    if let Err(f) = instance.stop(&mut cx) {
        report(shared, ni, "stop", f);
    }
    instance
}

/// Runs `graph` in real time until `duration`, `stop` or the end of all work.
pub(crate) fn run(
    graph: &Graph,
    plan: Plan,
    duration: Option<Duration>,
    stop: Option<&AtomicBool>,
    drain_timeout: Duration,
    status: Option<&(StatusHook, Duration)>,
) -> Result<Summary, RunError> {
    let nodes = plan
        .nodes
        .iter()
        .map(|p| RtNode {
            inbox: Inbox {
                state: Mutex::new(InboxState {
                    queues: p.make_queues(),
                    next_ticket: 0,
                    consumer_waiting: false,
                    producers_waiting: 0,
                    closed: false,
                }),
                ready: Condvar::new(),
                space: Condvar::new(),
                queued: AtomicUsize::new(0),
            },
        })
        .collect();
    let finished = plan.nodes.iter().map(|p| AtomicBool::new(!p.has_timers())).collect();
    let shared = Arc::new(Shared {
        plan,
        nodes,
        clock: Clock::new(),
        pending: AtomicUsize::new(0),
        active_timers: AtomicUsize::new(0),
        timers_on: AtomicBool::new(true),
        finished,
    });
    let instances = shared.plan.create_instances(graph, &*shared)?;
    let started = Instant::now();
    let mut handles = Vec::new();
    for (ni, instance) in instances.into_iter().enumerate() {
        let s = shared.clone();
        let name = format!("q:{}", shared.plan.nodes[ni].shared.id);
        let handle = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || node_thread(&s, ni, instance))
            .map_err(|e| RunError::Thread {
                node: shared.plan.nodes[ni].shared.id.clone(),
                reason: e.to_string(),
            })?;
        handles.push(handle);
    }

    let idle = |s: &Shared| s.pending.load(Ordering::SeqCst) == 0 && s.active_timers.load(Ordering::SeqCst) == 0;
    let mut next_status = started + status.map_or(Duration::MAX / 4, |(_, every)| *every);
    let end = loop {
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
                nodes: shared.plan.summaries(),
            });
        }
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            break EndReason::Interrupted;
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break EndReason::Duration;
        }
        if shared.finished.iter().all(|f| f.load(Ordering::SeqCst)) && idle(&shared) {
            break EndReason::Finished;
        }
    };
    let elapsed = started.elapsed();
    shared.timers_on.store(false, Ordering::SeqCst);
    let drain_start = Instant::now();
    while !idle(&shared) {
        if drain_start.elapsed() > drain_timeout {
            tracing::warn!(
                pending = shared.pending.load(Ordering::SeqCst),
                "queues did not drain within {drain_timeout:?}; stopping anyway"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for n in &shared.nodes {
        n.inbox.close();
    }
    let mut instances = Vec::new();
    for (ni, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(inst) => instances.push(inst),
            Err(_) => shared.plan.nodes[ni]
                .shared
                .stats
                .record_error("the node's thread panicked (host bug)".into()),
        }
    }
    // Destroy instances before anything else lets go of their libraries.
    drop(instances);
    let nodes = shared.plan.summaries();
    Ok(Summary {
        graph: shared.plan.name.clone(),
        stepped: false,
        elapsed,
        steps: None,
        end,
        nodes,
    })
}
