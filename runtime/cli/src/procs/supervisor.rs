//! `quiver run` for a graph split over processes: starts one worker per process, runs the main
//! process's nodes itself, paces everyone (start together, stop timers together, close once no
//! message is in flight anywhere), restarts workers that die when the graph asks for it, and
//! merges every process's figures into one summary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use quiver_graph::{Graph, MAIN_PROCESS, Restart};
use quiver_runtime::{
    Command, Control, EndReason, NodeSummary, Part, PartStatus, ProcessSummary, Registry, RunError, RunOptions, Summary,
};

use super::protocol::{Order, Report, encode, parse_report};

/// How long a worker may take to load, connect and report ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing waits for a worker's final report and exit.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the supervisor knows of one worker incarnation, updated by its stdout reader.
#[derive(Default)]
struct Seen {
    ready: bool,
    /// Status reports so far (freshness for the termination check).
    reports: u64,
    status: Option<PartStatus>,
    nodes: Option<Vec<NodeSummary>>,
    done: Option<Vec<NodeSummary>>,
    failed: Option<String>,
    /// The stdout pipe closed.
    eof: bool,
    /// Shared-memory files it reported.
    segments: Vec<String>,
}

struct Incarnation {
    child: Child,
    stdin: Option<ChildStdin>,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

struct Worker {
    name: String,
    nodes: Vec<String>,
    restart: Restart,
    args: Vec<String>,
    now: Option<Incarnation>,
    restarts: u32,
    failures: Vec<String>,
    /// Figures of incarnations that died (added to the final ones).
    dead_figures: Vec<Vec<NodeSummary>>,
    /// Has died at least once (its keys are left out of the in-flight count).
    ever_died: bool,
    /// Was told to start (a restarted worker is started once it is ready).
    started: bool,
}

/// Describes how a process ended.
fn describe(status: std::process::ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let name = match sig {
            4 => " (SIGILL)",
            6 => " (SIGABRT)",
            7 => " (SIGBUS)",
            8 => " (SIGFPE)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            15 => " (SIGTERM)",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        match status.code() {
            Some(0) => "exited cleanly".into(),
            Some(c) => format!("exited with status {c}"),
            None => "ended".into(),
        }
    }
}

impl Worker {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("finding the quiver executable")?;
        let mut child = std::process::Command::new(exe)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a terminal's Ctrl-C reaches the supervisor only, which
            // stops the workers in order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting process `{}`", self.name))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe"))?;
        let seen: Arc<(Mutex<Seen>, Condvar)> = Arc::default();
        let s = seen.clone();
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("q-sup:{}", self.name).chars().take(15).collect())
            .spawn(move || read_reports(&name, stdout, &s))
            .context("starting a reader thread")?;
        self.now = Some(Incarnation { child, stdin, seen });
        self.started = false;
        Ok(())
    }

    fn order(&mut self, order: &Order) {
        if let Some(inc) = &mut self.now
            && let Some(stdin) = &mut inc.stdin
        {
            let line = format!("{}\n", encode(order));
            if stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()).is_err() {
                tracing::debug!("process `{}` no longer takes orders", self.name);
            }
        }
    }

    fn seen(&self) -> Option<std::sync::MutexGuard<'_, Seen>> {
        self.now
            .as_ref()
            .map(|i| i.seen.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn read_reports(name: &str, stdout: std::process::ChildStdout, seen: &(Mutex<Seen>, Condvar)) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = line.trim_end_matches('\n');
        match parse_report(text) {
            None => println!("{text}"),
            Some(Err(e)) => tracing::error!("process `{name}`: {e}"),
            Some(Ok(report)) => {
                let mut s = seen.0.lock().unwrap_or_else(|p| p.into_inner());
                match report {
                    Report::Ready { segments } => {
                        s.ready = true;
                        s.segments.extend(segments);
                    }
                    Report::Status {
                        status,
                        nodes,
                        segments,
                    } => {
                        s.reports += 1;
                        s.status = Some(status);
                        if nodes.is_some() {
                            s.nodes = nodes;
                        }
                        for seg in segments.unwrap_or_default() {
                            if !s.segments.contains(&seg) {
                                s.segments.push(seg);
                            }
                        }
                    }
                    Report::Done { nodes, segments } => {
                        s.done = Some(nodes);
                        s.segments.extend(segments);
                    }
                    Report::Failed { message } => s.failed = Some(message),
                }
                drop(s);
                seen.1.notify_all();
            }
        }
    }
    seen.0.lock().unwrap_or_else(|p| p.into_inner()).eof = true;
    seen.1.notify_all();
}

/// Free loopback ports (bound, read, released: a worker binds its port right after).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("finding free loopback ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<Result<_, std::io::Error>>()
        .context("finding free loopback ports")
}

fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

enum Phase {
    Running,
    Draining { since: Instant },
}

struct Supervisor<'a> {
    graph: &'a Graph,
    workers: Vec<Worker>,
    stop: Option<Arc<AtomicBool>>,
    duration: Option<Duration>,
    drain_timeout: Duration,
    started: Instant,
    phase: Phase,
    end: Option<EndReason>,
    /// The previous termination check, when it passed.
    last_quiet: Option<Quiet>,
    failed: Arc<AtomicBool>,
    /// Shared-memory files of every incarnation of every worker.
    segments: Vec<String>,
    /// The workers' latest figures, for the live status line (refreshed every `LIVE_EVERY`).
    live: Arc<Mutex<Vec<NodeSummary>>>,
    live_at: Instant,
}

const LIVE_EVERY: Duration = Duration::from_millis(100);

/// A passed termination check: (key, sent, received) and each worker's report count.
#[derive(PartialEq)]
struct Quiet {
    counts: Vec<(String, u64, u64)>,
    reports: Vec<u64>,
}

impl Supervisor<'_> {
    /// The process consuming a key's frames, and the one producing them.
    fn key_ends<'k>(&self, key: &'k str) -> Option<(&str, &'k str)> {
        let mut parts = key.rsplit('/');
        let consumer = parts.next()?;
        let _output = parts.next()?;
        let node: usize = parts.next()?.parse().ok()?;
        (node < self.graph.nodes.len()).then(|| (self.graph.process_of(node), consumer))
    }

    fn died(&self, process: &str) -> bool {
        self.workers.iter().any(|w| w.name == process && w.ever_died)
    }

    /// No message queued, handled or in flight anywhere: every live process idle and every
    /// key's sent count equal to its received count, twice in a row with the same counts and
    /// fresh reports from every worker in between (a message in flight changes a count).
    fn quiet(&mut self, main: &PartStatus, need_finished: bool) -> bool {
        let mut parts: Vec<PartStatus> = vec![main.clone()];
        let mut reports = Vec::new();
        for w in &self.workers {
            let Some(seen) = w.seen() else { continue };
            if seen.eof {
                continue;
            }
            match &seen.status {
                Some(s) => parts.push(s.clone()),
                None => return false,
            }
            reports.push(seen.reports);
        }
        if parts.iter().any(|p| !p.idle || (need_finished && !p.finished)) {
            self.last_quiet = None;
            return false;
        }
        let mut counts: HashMap<String, (u64, u64)> = HashMap::new();
        for p in &parts {
            for k in &p.sent {
                counts.entry(k.key.clone()).or_default().0 += k.frames;
            }
            for k in &p.received {
                counts.entry(k.key.clone()).or_default().1 += k.frames;
            }
        }
        let mut keyed: Vec<(String, u64, u64)> = counts
            .into_iter()
            .filter(|(k, _)| {
                // Frames to or from a process that died cannot be balanced: skip them.
                self.key_ends(k)
                    .is_some_and(|(from, to)| !self.died(from) && !self.died(to))
            })
            .map(|(k, (s, r))| (k, s, r))
            .collect();
        keyed.sort();
        if keyed.iter().any(|(_, s, r)| s != r) {
            self.last_quiet = None;
            return false;
        }
        let confirmed = self.last_quiet.as_ref().is_some_and(|prev| {
            prev.counts == keyed
                && reports.len() == prev.reports.len()
                && reports.iter().zip(&prev.reports).all(|(a, b)| a > b)
        });
        if !confirmed {
            self.last_quiet = Some(Quiet { counts: keyed, reports });
        }
        confirmed
    }

    /// Notices dead workers; restarts them if the graph says so; starts restarted ones.
    fn watch(&mut self) {
        let stopping = !matches!(self.phase, Phase::Running);
        for w in &mut self.workers {
            let Some(inc) = &mut w.now else { continue };
            match inc.child.try_wait() {
                Ok(Some(status)) => {
                    let how = describe(status);
                    // This incarnation is over: take what it reported.
                    let (last, failed, segments) = {
                        let mut seen = inc.seen.0.lock().unwrap_or_else(|p| p.into_inner());
                        (
                            seen.nodes.take(),
                            seen.failed.take(),
                            std::mem::take(&mut seen.segments),
                        )
                    };
                    self.segments.extend(segments);
                    let msg = match failed {
                        Some(m) => format!("{how}: {m}"),
                        None => how,
                    };
                    tracing::error!(
                        "process `{}` (node{} {}) died: {msg}",
                        w.name,
                        if w.nodes.len() > 1 { "s" } else { "" },
                        w.nodes.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    );
                    w.failures.push(format!("died: {msg}"));
                    w.ever_died = true;
                    self.failed.store(true, Ordering::SeqCst);
                    if let Some(nodes) = last {
                        w.dead_figures.push(nodes);
                    }
                    w.now = None;
                    let may = match w.restart {
                        Restart::OnFailure { max } => w.restarts < max,
                        Restart::Never => false,
                    };
                    if may && !stopping {
                        w.restarts += 1;
                        tracing::warn!(
                            "restarting process `{}` ({} of at most {})",
                            w.name,
                            w.restarts,
                            match w.restart {
                                Restart::OnFailure { max } => max,
                                Restart::Never => 0,
                            }
                        );
                        if let Err(e) = w.spawn() {
                            tracing::error!("{e:#}");
                        }
                    }
                }
                Ok(None) => {
                    if !w.started && inc.seen.0.lock().unwrap_or_else(|p| p.into_inner()).ready {
                        w.started = true;
                        w.order(&Order::Start);
                        if let Some(end) = self.end {
                            w.order(&Order::StopTimers(end));
                        }
                    }
                }
                Err(e) => tracing::error!("watching process `{}`: {e}", w.name),
            }
        }
    }

    fn order_all(&mut self, order: &Order) {
        for w in &mut self.workers {
            w.order(order);
        }
    }
}

impl Control for Supervisor<'_> {
    fn ready(&mut self) -> Result<(), RunError> {
        let deadline = Instant::now() + START_TIMEOUT;
        for w in &mut self.workers {
            let Some(inc) = &mut w.now else { continue };
            let (lock, cv) = &*inc.seen;
            let mut seen = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !seen.ready {
                if let Some(m) = &seen.failed {
                    return Err(RunError::Options(format!("process `{}`: {m}", w.name)));
                }
                if seen.eof {
                    drop(seen);
                    let status = inc.child.wait().map(describe).unwrap_or_else(|e| e.to_string());
                    return Err(RunError::Options(format!(
                        "process `{}` {status} while starting",
                        w.name
                    )));
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(RunError::Options(format!(
                        "process `{}` was not ready within {START_TIMEOUT:?}",
                        w.name
                    )));
                }
                seen = cv
                    .wait_timeout(seen, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        for w in &mut self.workers {
            w.started = true;
            w.order(&Order::Start);
        }
        self.started = Instant::now();
        Ok(())
    }

    fn poll(&mut self, status: &PartStatus, _nodes: &dyn Fn() -> Vec<NodeSummary>) -> Command {
        self.watch();
        if self.live_at.elapsed() >= LIVE_EVERY {
            self.live_at = Instant::now();
            let nodes: Vec<NodeSummary> = self
                .workers
                .iter()
                .filter_map(|w| w.seen().and_then(|s| s.nodes.clone()))
                .flatten()
                .collect();
            *self.live.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
        }
        match self.phase {
            Phase::Running => {
                let end = if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                    Some(EndReason::Interrupted)
                } else if self.duration.is_some_and(|d| self.started.elapsed() >= d) {
                    Some(EndReason::Duration)
                } else if self.quiet(status, true) {
                    Some(EndReason::Finished)
                } else {
                    None
                };
                match end {
                    Some(reason) => {
                        self.end = Some(reason);
                        self.phase = Phase::Draining { since: Instant::now() };
                        self.last_quiet = None;
                        self.order_all(&Order::StopTimers(reason));
                        Command::StopTimers(reason)
                    }
                    None => Command::Run,
                }
            }
            Phase::Draining { since } => {
                let drained = self.quiet(status, false);
                if drained || since.elapsed() > self.drain_timeout {
                    if !drained {
                        tracing::warn!("queues did not drain within {:?}; stopping anyway", self.drain_timeout);
                    }
                    self.order_all(&Order::Close);
                    Command::Close
                } else {
                    Command::Run
                }
            }
        }
    }
}

/// Adds `b`'s counters into `a` (figures of a process's earlier incarnations).
fn add_figures(a: &mut NodeSummary, b: &NodeSummary) {
    a.timer_fires += b.timer_fires;
    a.timer_missed += b.timer_missed;
    a.errors += b.errors;
    a.undelivered += b.undelivered;
    a.unrouted += b.unrouted;
    a.sent_in_place += b.sent_in_place;
    a.sent_copied += b.sent_copied;
    if a.first_error.is_none() {
        a.first_error.clone_from(&b.first_error);
    }
    for (o, c) in &mut a.outputs {
        if let Some((_, bc)) = b.outputs.iter().find(|(bo, _)| bo == o) {
            *c += bc;
        }
    }
    for i in &mut a.inputs {
        if let Some(bi) = b.inputs.iter().find(|bi| bi.name == i.name) {
            i.received += bi.received;
            i.handled += bi.handled;
            i.dropped += bi.dropped;
            i.rejected += bi.rejected;
            i.missing += bi.missing;
            i.max_queued = i.max_queued.max(bi.max_queued);
        }
    }
}

/// Runs a graph whose nodes are placed in worker processes. Returns the merged summary and
/// whether any process failed.
pub fn run(
    graph: &Graph,
    registry: &Registry,
    graph_path: &Path,
    options: &RunOptions,
    verbose: u8,
) -> anyhow::Result<(Summary, bool)> {
    let duration = match options.mode {
        quiver_runtime::Mode::RealTime { duration } => duration,
        quiver_runtime::Mode::Stepped { .. } => return Err(anyhow!("a stepped run is one process")),
    };
    let processes = graph.processes();
    let ports = free_ports(processes.len() + 1)?;
    let all: Vec<String> = ports.iter().map(|p| endpoint(*p)).collect();
    let prefix = format!(
        "quiver/{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    );
    let mut workers = Vec::new();
    for (k, name) in processes.iter().enumerate() {
        let nodes: Vec<&quiver_graph::Node> = graph
            .nodes
            .iter()
            .filter(|n| n.process.as_deref() == Some(name))
            .collect();
        let restart = nodes
            .iter()
            .map(|n| n.restart)
            .find(|r| *r != Restart::Never)
            .unwrap_or(Restart::Never);
        let mut args = vec![
            "worker".to_string(),
            graph_path.display().to_string(),
            "--process".into(),
            (*name).into(),
            "--prefix".into(),
            prefix.clone(),
            "--listen".into(),
            all[k + 1].clone(),
        ];
        // Every process connects to the ones before it (the main process first): a full mesh
        // on loopback, no scouting.
        for e in &all[..=k] {
            args.push("--connect".into());
            args.push(e.clone());
        }
        if verbose > 0 {
            args.push(format!("-{}", "v".repeat(verbose as usize)));
        }
        workers.push(Worker {
            name: (*name).into(),
            nodes: nodes.iter().map(|n| n.id.clone()).collect(),
            restart,
            args,
            now: None,
            restarts: 0,
            failures: Vec::new(),
            dead_figures: Vec::new(),
            ever_died: false,
            started: false,
        });
    }
    let transport = quiver_zenoh::ZenohTransport::open(&quiver_zenoh::Endpoints {
        listen: vec![all[0].clone()],
        connect: Vec::new(),
    })
    .context("opening the main process's Zenoh session")?;
    for w in &mut workers {
        w.spawn()?;
    }
    let failed = Arc::new(AtomicBool::new(false));
    let mut supervisor = Supervisor {
        graph,
        workers,
        stop: options.stop.clone(),
        duration,
        drain_timeout: options.drain_timeout,
        started: Instant::now(),
        phase: Phase::Running,
        end: None,
        last_quiet: None,
        failed: failed.clone(),
        segments: Vec::new(),
        live: Arc::default(),
        live_at: Instant::now(),
    };
    // The live status line shows every process's nodes, in graph order.
    let status = options.status.clone().map(|(hook, every)| {
        let live = supervisor.live.clone();
        let order: Vec<String> = graph.nodes.iter().map(|n| n.id.clone()).collect();
        let merged: quiver_runtime::StatusHook = Arc::new(move |s: &Summary| {
            let mut s = s.clone();
            s.nodes
                .extend(live.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
            s.nodes.sort_by_key(|n| order.iter().position(|id| *id == n.id));
            hook(&s);
        });
        (merged, every)
    });
    let main_options = RunOptions {
        part: Some(Part {
            process: MAIN_PROCESS.into(),
            transport: transport.clone(),
            prefix,
        }),
        status,
        ..options.clone()
    };
    let result = quiver_runtime::run_part(graph, registry, &main_options, &mut supervisor);
    let summary = finish(&mut supervisor, graph, result);
    drop(main_options);
    transport.close();
    drop(transport);
    // Every worker has exited and our session is closed: unlink the run's segments that no
    // process maps any more (see quiver_zenoh::sweep_segments).
    let mut segments: Vec<std::path::PathBuf> = supervisor.segments.iter().map(Into::into).collect();
    segments.extend(quiver_zenoh::mapped_segments());
    let swept = quiver_zenoh::sweep_segments(&segments);
    if !swept.is_empty() {
        tracing::debug!("unlinked {} shared-memory segment(s) left by the run", swept.len());
    }
    let summary = summary?;
    Ok((summary, failed.load(Ordering::SeqCst)))
}

/// Collects the workers' final figures (killing any that do not stop) and merges them.
fn finish(sup: &mut Supervisor<'_>, graph: &Graph, result: Result<Summary, RunError>) -> anyhow::Result<Summary> {
    // Whatever happened, every worker is told to close.
    sup.order_all(&Order::Close);
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut processes = Vec::new();
    let mut worker_nodes: Vec<NodeSummary> = Vec::new();
    for w in &mut sup.workers {
        let mut end = String::from("dead");
        if let Some(mut inc) = w.now.take() {
            // Closing stdin after the Close order: a worker that missed it still stops.
            drop(inc.stdin.take());
            let status = loop {
                match inc.child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    Ok(None) => {
                        tracing::error!("process `{}` did not stop within {CLOSE_TIMEOUT:?}: killing it", w.name);
                        let _ = inc.child.kill();
                        break inc.child.wait().ok();
                    }
                    Err(_) => break None,
                }
            };
            // The reader thread sees EOF once the process is gone.
            let (lock, cv) = &*inc.seen;
            let mut seen = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !seen.eof {
                seen = cv
                    .wait_timeout(seen, Duration::from_secs(1))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                if Instant::now() > deadline + Duration::from_secs(2) {
                    break;
                }
            }
            let figures = seen.done.clone().or_else(|| seen.nodes.clone());
            sup.segments.extend(seen.segments.iter().cloned());
            if let Some(m) = &seen.failed {
                w.failures.push(m.clone());
                sup.failed.store(true, Ordering::SeqCst);
            }
            end = status.map_or_else(|| "unknown end".into(), describe);
            if seen.done.is_none() && status.is_some_and(|s| !s.success()) {
                sup.failed.store(true, Ordering::SeqCst);
            }
            if let Some(f) = figures {
                w.dead_figures.insert(0, f);
            }
        } else if w.ever_died {
            end = format!("dead ({})", w.failures.last().map_or("", String::as_str));
        }
        // Merge incarnations: the first entry is the latest.
        let mut merged: Option<Vec<NodeSummary>> = None;
        for figures in w.dead_figures.drain(..) {
            match &mut merged {
                None => merged = Some(figures),
                Some(m) => {
                    for n in m.iter_mut() {
                        if let Some(b) = figures.iter().find(|b| b.id == n.id) {
                            add_figures(n, b);
                        }
                    }
                }
            }
        }
        worker_nodes.extend(merged.unwrap_or_default());
        processes.push(ProcessSummary {
            name: w.name.clone(),
            nodes: w.nodes.clone(),
            restarts: w.restarts,
            failures: std::mem::take(&mut w.failures),
            end,
        });
    }
    let mut summary = result?;
    let mut nodes = Vec::new();
    for gn in &graph.nodes {
        if let Some(n) = summary.nodes.iter().find(|n| n.id == gn.id) {
            nodes.push(n.clone());
        } else if let Some(n) = worker_nodes.iter().find(|n| n.id == gn.id) {
            nodes.push(n.clone());
        }
    }
    summary.nodes = nodes;
    summary.processes = processes;
    Ok(summary)
}
