//! The stepped executor: the same graph on a simulated clock, one thread, a fixed order.
//!
//! Step `t` runs at simulated time `t * dt`. Nodes run in `Graph::schedule_order` (producers
//! first). At its turn a node handles every message that arrived before its turn began, then
//! fires its due timers. A message sent along a forward edge is seen in the same step; one sent
//! back to a node that already ran (a cycle) is seen at step `t + 1`. A full `block` queue grows
//! instead of waiting (nobody else could run to empty it); nothing is lost.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use quiver_graph::Graph;

use crate::StatusHook;
use crate::error::RunError;
use crate::host::{CallCtx, CallFailure, Closed, Engine, Target};
use crate::pack::Pack;
use crate::plan::Plan;
use crate::queue::{Item, Offer, Queue, oldest};
use crate::stats::{EndReason, Summary};

struct Stepped {
    plan: Plan,
    queues: Vec<RefCell<Vec<Queue>>>,
    now_ns: Cell<u64>,
    step: Cell<u64>,
    next_ticket: Cell<u64>,
}

impl Engine for Stepped {
    fn deliver(&self, target: Target, pack: Pack) -> Result<(), Closed> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let stats = &self.plan.nodes[target.node].shared.stats.inputs[target.slot];
        let mut queues = self.queues[target.node].borrow_mut();
        let q = &mut queues[target.slot];
        match q.offer(
            Item {
                ticket,
                step: self.step.get(),
                pack,
            },
            true,
        ) {
            Offer::Queued => {}
            Offer::QueuedDropping => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Offer::Full(_) => unreachable!("a growing queue is never full"),
        }
        stats.received.fetch_add(1, Ordering::Relaxed);
        stats.saw_queue_len(q.items.len());
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The step size: `step` if given, else the greatest common divisor of the timer periods (1 ms
/// without timers).
pub(crate) fn step_size(graph: &Graph, step: Option<Duration>) -> Duration {
    if let Some(s) = step {
        return s;
    }
    let g = graph
        .nodes
        .iter()
        .flat_map(|n| n.timers())
        .map(|(_, p)| p.as_nanos())
        .fold(0, gcd);
    if g == 0 {
        Duration::from_millis(1)
    } else {
        Duration::from_nanos(g as u64)
    }
}

/// At most this many steps in a run (a 1 ns timer over 2 s would be 2 billion).
pub(crate) const MAX_STEPS: u64 = 100_000_000;
/// At most this many ticks of one timer in one step (a step far longer than a period fires
/// every tick it spans at once).
pub(crate) const MAX_TICKS_PER_STEP: u128 = 1000;

/// Refuses a stepped run that would not end in reasonable time or memory, saying what to set.
pub(crate) fn check_bounds(graph: &Graph, dt: Duration, steps: Option<u64>) -> Result<(), RunError> {
    let shown = quiver_graph::format_duration;
    if let Some(n) = steps
        && n > MAX_STEPS
    {
        return Err(RunError::Options(format!(
            "{n} steps of {}: more than {MAX_STEPS}; set a coarser --step, a shorter --for or fewer --steps (a timer period sets the default step)",
            shown(dt)
        )));
    }
    for n in &graph.nodes {
        for (input, period) in n.timers() {
            let per_step = dt.as_nanos() / period.as_nanos().max(1);
            if per_step > MAX_TICKS_PER_STEP {
                return Err(RunError::Options(format!(
                    "--step {} is {per_step} periods of timer `{}` of node `{}` ({}): at most {MAX_TICKS_PER_STEP} ticks fire in one step; use --step {} or less",
                    shown(dt),
                    input.name,
                    n.id,
                    shown(period),
                    shown(period * MAX_TICKS_PER_STEP as u32)
                )));
            }
        }
    }
    Ok(())
}

fn report(plan: &Plan, node: usize, what: &str, failure: CallFailure) {
    let id = &plan.nodes[node].shared.id;
    let message = crate::stats::bounded(format!("{what}: {failure}"));
    tracing::error!(node = %id, "{message}");
    plan.nodes[node].shared.stats.record_error(message);
}

/// Runs `steps` steps of `dt` (or until nothing can happen any more, or `stop`).
pub(crate) fn run(
    graph: &Graph,
    plan: Plan,
    dt: Duration,
    steps: Option<u64>,
    stop: Option<&AtomicBool>,
    status: Option<&(StatusHook, Duration)>,
) -> Result<Summary, RunError> {
    if dt.is_zero() {
        return Err(RunError::Options("the step size must be greater than zero".into()));
    }
    let queues = plan.nodes.iter().map(|p| RefCell::new(p.make_queues())).collect();
    let engine = Stepped {
        plan,
        queues,
        now_ns: Cell::new(0),
        step: Cell::new(0),
        next_ticket: Cell::new(0),
    };
    // A stepped run is one process: every node is local (see `run`).
    let mut instances: Vec<crate::host::Instance> = engine
        .plan
        .create_instances(graph, &engine)?
        .into_iter()
        .flatten()
        .collect();
    let order = graph.schedule_order();
    let dt_ns = dt.as_nanos() as u64;
    let mut deadlines: Vec<Vec<u64>> = engine
        .plan
        .nodes
        .iter()
        .map(|p| p.timers.iter().map(|(_, period)| period.as_nanos() as u64).collect())
        .collect();
    let mut finished: Vec<bool> = engine.plan.nodes.iter().map(|p| !p.has_timers()).collect();
    let mut sent_types: Vec<Vec<Option<arrow_schema::DataType>>> =
        engine.plan.nodes.iter().map(|p| vec![None; p.inputs.len()]).collect();

    let mut step = 0u64;
    let wall = std::time::Instant::now();
    let mut next_status = wall + status.map_or(Duration::MAX / 4, |(_, every)| *every);
    let end = loop {
        if steps.is_some_and(|s| step >= s) {
            break EndReason::Duration;
        }
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            break EndReason::Interrupted;
        }
        if let Some((hook, every)) = status
            && std::time::Instant::now() >= next_status
        {
            next_status += *every;
            hook(&Summary {
                graph: engine.plan.name.clone(),
                stepped: true,
                elapsed: Duration::from_nanos(step * dt_ns),
                steps: Some(step),
                end: EndReason::Running,
                nodes: engine.plan.summaries(graph),
                processes: Vec::new(),
            });
        }
        let now = step * dt_ns;
        engine.step.set(step);
        engine.now_ns.set(now);
        for &ni in &order {
            let planned = &engine.plan.nodes[ni];
            let node = &planned.shared;
            // Only what arrived before this turn: a node's own outputs to itself wait a step.
            let limit = engine.next_ticket.get();
            loop {
                let next = {
                    let mut qs = engine.queues[ni].borrow_mut();
                    oldest(&qs, limit).and_then(|slot| qs[slot].items.pop_front().map(|it| (slot, it)))
                };
                let Some((slot, item)) = next else { break };
                let input = &planned.inputs[slot];
                let mut cx = CallCtx::new(node, &engine);
                let result = instances[ni].on_input(
                    &mut cx,
                    input.manifest_port,
                    &item.pack,
                    input.passing,
                    item.step == step,
                    &mut sent_types[ni][slot],
                );
                node.stats.inputs[slot].handled.fetch_add(1, Ordering::Relaxed);
                if let Err(f) = result {
                    report(&engine.plan, ni, &format!("input `{}`", input.name), f);
                }
                if cx.finish_requested {
                    finished[ni] = true;
                }
            }
            for (t, &(index, period)) in planned.timers.iter().enumerate() {
                while !finished[ni] && deadlines[ni][t] <= now {
                    deadlines[ni][t] += period.as_nanos() as u64;
                    let mut cx = CallCtx::new(node, &engine);
                    node.stats.timer_fires.fetch_add(1, Ordering::Relaxed);
                    if let Err(f) = instances[ni].on_timer(&mut cx, index) {
                        report(
                            &engine.plan,
                            ni,
                            &format!("timer `{}`", node.library.spec.timers[index as usize].name),
                            f,
                        );
                    }
                    if cx.finish_requested {
                        finished[ni] = true;
                    }
                }
            }
        }
        step += 1;
        let idle = engine
            .queues
            .iter()
            .all(|qs| qs.borrow().iter().all(|q| q.items.is_empty()));
        if idle && finished.iter().all(|f| *f) {
            break EndReason::Finished;
        }
    };
    for &ni in &order {
        let mut cx = CallCtx::new(&engine.plan.nodes[ni].shared, &engine);
        if let Err(f) = instances[ni].stop(&mut cx) {
            report(&engine.plan, ni, "stop", f);
        }
    }
    drop(instances);
    let nodes = engine.plan.summaries(graph);
    Ok(Summary {
        graph: engine.plan.name.clone(),
        stepped: true,
        elapsed: Duration::from_nanos(step * dt_ns),
        steps: Some(step),
        end,
        nodes,
        processes: Vec::new(),
    })
}
