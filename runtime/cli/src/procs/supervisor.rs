//! `quiver run` for a graph split over processes: starts one worker per process, runs the main
//! process's nodes itself, paces everyone (start together, stop timers together, close once no
//! message is in flight anywhere), restarts workers that die when the graph asks for it, and
//! merges every process's figures into one summary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
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
/// How long a daemon may take to fetch what a process needs and start its worker.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(180);

/// The run failed while preparing (loading, creating instances, opening edges, on any
/// machine): everything was rolled back; `quiver run` exits 2.
#[derive(Debug)]
pub struct PrepareFailed(pub String);

impl std::fmt::Display for PrepareFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrepareFailed {}

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

/// How an incarnation ended.
#[derive(Clone, Debug)]
struct Ended {
    how: String,
    success: bool,
}

/// A worker process: a child of this process, or one a daemon started on another machine.
enum Handle {
    Local {
        child: Child,
        stdin: Option<ChildStdin>,
    },
    Remote {
        link: quiver_daemon::Remote,
        /// Set by its daemon's `Exited`, or when the machine is lost.
        ended: Arc<Mutex<Option<Ended>>>,
        /// When it was prepared (a machine lost before then is not its loss).
        since: Instant,
    },
}

struct Incarnation {
    handle: Handle,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

impl Incarnation {
    /// Sends one order line; false when the worker no longer takes orders.
    fn send(&mut self, line: &str) -> bool {
        match &mut self.handle {
            Handle::Local { stdin, .. } => match stdin {
                Some(stdin) => stdin
                    .write_all(line.as_bytes())
                    .and_then(|()| stdin.write_all(b"\n"))
                    .and_then(|()| stdin.flush())
                    .is_ok(),
                None => false,
            },
            Handle::Remote { link, .. } => link.send(&quiver_daemon::Down::Line(line.to_string())).is_ok(),
        }
    }

    /// Closes its input: a worker that missed the Close order stops all the same.
    fn close_input(&mut self) {
        match &mut self.handle {
            Handle::Local { stdin, .. } => drop(stdin.take()),
            Handle::Remote { link, .. } => {
                let _ = link.send(&quiver_daemon::Down::Close);
            }
        }
    }

    fn try_ended(&mut self) -> Result<Option<Ended>, String> {
        match &mut self.handle {
            Handle::Local { child, .. } => match child.try_wait() {
                Ok(Some(s)) => Ok(Some(Ended {
                    how: quiver_daemon::describe(s),
                    success: s.success(),
                })),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
            Handle::Remote { ended, .. } => Ok(ended.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        }
    }

    /// Kills a local worker; a remote one is killed by its daemon once its input is closed.
    fn kill(&mut self) {
        match &mut self.handle {
            Handle::Local { child, .. } => {
                let _ = child.kill();
            }
            Handle::Remote { link, .. } => {
                let _ = link.send(&quiver_daemon::Down::Close);
            }
        }
    }

    /// Marks a remote worker lost with its machine (if it was prepared before `at`).
    fn lose(&mut self, at: Instant, machine: &str) -> bool {
        let Handle::Remote { ended, since, .. } = &mut self.handle else {
            return false;
        };
        if *since > at {
            return false;
        }
        let mut e = ended.lock().unwrap_or_else(|p| p.into_inner());
        if e.is_none() {
            *e = Some(Ended {
                how: format!("machine `{machine}` lost (its daemon stopped answering)"),
                success: false,
            });
        }
        drop(e);
        let mut seen = self.seen.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.eof = true;
        drop(seen);
        self.seen.1.notify_all();
        true
    }
}

/// Where a worker runs and how it is started there.
struct RemoteSpec {
    machine: String,
    client: Arc<quiver_daemon::Client>,
    run: String,
    prepare: quiver_daemon::Prepare,
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
    /// Set for a worker on another machine.
    remote: Option<RemoteSpec>,
    /// A restart waits for its machine to come back.
    restart_pending: bool,
    /// A restart is due then (the backoff of `restart: on-failure`).
    restart_at: Option<Instant>,
    /// Restarts in a row (reset once an incarnation has run for the restart window).
    streak: u32,
    /// When the current incarnation was started.
    spawned_at: Instant,
}

impl Worker {
    /// "process `x` on machine `m`" or "process `x`".
    fn label(&self) -> String {
        match &self.remote {
            Some(r) => format!("process `{}` on machine `{}`", self.name, r.machine),
            None => format!("process `{}`", self.name),
        }
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.spawned_at = Instant::now();
        if self.remote.is_some() {
            return self.spawn_remote();
        }
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
        self.now = Some(Incarnation {
            handle: Handle::Local { child, stdin },
            seen,
        });
        self.started = false;
        Ok(())
    }

    /// Asks the machine's daemon to prepare this process: it fetches what it lacks, starts a
    /// worker and relays its lines, which reach the same report handling as a local worker's.
    fn spawn_remote(&mut self) -> anyhow::Result<()> {
        let Some(spec) = &self.remote else {
            return Err(anyhow!("not a remote process"));
        };
        let seen: Arc<(Mutex<Seen>, Condvar)> = Arc::default();
        let ended: Arc<Mutex<Option<Ended>>> = Arc::default();
        let (s, e) = (seen.clone(), ended.clone());
        let name = self.name.clone();
        let machine = spec.machine.clone();
        let incarnation = self.restarts;
        let link = spec
            .client
            .remote(&spec.run, &self.name, incarnation, move |up| match up {
                quiver_daemon::Up::Line(line) => handle_line(&name, &line, &s),
                quiver_daemon::Up::Log(line) => eprintln!("[{machine}/{name}] {line}"),
                quiver_daemon::Up::Exited { how, success } => {
                    let mut ended = e.lock().unwrap_or_else(|p| p.into_inner());
                    if ended.is_none() {
                        *ended = Some(Ended { how, success });
                    }
                    drop(ended);
                    s.0.lock().unwrap_or_else(|p| p.into_inner()).eof = true;
                    s.1.notify_all();
                }
            })
            .map_err(|e| anyhow!("{}: {e}", self.label()))?;
        let since = Instant::now();
        let mut prepare = spec.prepare.clone();
        prepare.incarnation = incarnation;
        spec.client
            .prepare(&spec.machine, &prepare, PREPARE_TIMEOUT)
            .map_err(|m| anyhow::Error::new(PrepareFailed(format!("{}: {m}", self.label()))))?;
        self.now = Some(Incarnation {
            handle: Handle::Remote { link, ended, since },
            seen,
        });
        self.started = false;
        Ok(())
    }

    fn order(&mut self, order: &Order) {
        if let Some(inc) = &mut self.now
            && !inc.send(&encode(order))
        {
            tracing::debug!("process `{}` no longer takes orders", self.name);
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
        handle_line(name, line.trim_end_matches('\n'), seen);
    }
    seen.0.lock().unwrap_or_else(|p| p.into_inner()).eof = true;
    seen.1.notify_all();
}

/// One line a worker printed: a report updates what is seen of it; anything else (what an
/// operator printed) is passed through.
fn handle_line(name: &str, text: &str, seen: &(Mutex<Seen>, Condvar)) {
    match parse_report(text) {
        None => outln!("{text}"),
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
    /// `ready` passed: every process started.
    began: bool,
    /// When `quiver run` began preparing.
    created: Instant,
    /// Machines whose daemon vanished, and since when.
    machines: Arc<Mutex<MachineState>>,
}

#[derive(Default)]
struct MachineState {
    lost: HashMap<String, Instant>,
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

    /// Notices dead workers (and lost machines); restarts them if the graph says so (a
    /// process of a lost machine once that machine's daemon is back); starts restarted ones.
    fn watch(&mut self) {
        let stopping = !matches!(self.phase, Phase::Running);
        let lost: Vec<(String, Instant)> = self
            .machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lost
            .iter()
            .map(|(m, at)| (m.clone(), *at))
            .collect();
        for w in &mut self.workers {
            if let Some(at) = w.restart_at
                && !stopping
                && Instant::now() >= at
            {
                w.restart_at = None;
                let machine_lost = w
                    .remote
                    .as_ref()
                    .is_some_and(|r| lost.iter().any(|(m, _)| *m == r.machine));
                if machine_lost {
                    eprintln!("quiver: {} waits for its machine to come back", w.label());
                    w.restart_pending = true;
                } else if let Err(e) = w.spawn() {
                    eprintln!("quiver: {e:#}");
                    w.failures.push(format!("restart failed: {e:#}"));
                }
            }
            if w.restart_pending && !stopping {
                let machine = w.remote.as_ref().map(|r| r.machine.clone()).unwrap_or_default();
                if !lost.iter().any(|(m, _)| *m == machine) {
                    w.restart_pending = false;
                    eprintln!("quiver: machine `{machine}` is back: preparing {} again", w.label());
                    if let Err(e) = w.spawn() {
                        eprintln!("quiver: {e:#}");
                        w.failures.push(format!("restart failed: {e:#}"));
                    }
                }
            }
            let Some(inc) = &mut w.now else { continue };
            if let Some(r) = &w.remote
                && let Some((_, at)) = lost.iter().find(|(m, _)| *m == r.machine)
            {
                inc.lose(*at, &r.machine);
            }
            match inc.try_ended() {
                Ok(Some(ended)) => {
                    let how = ended.how;
                    // This incarnation is over: take what it reported.
                    let (last, failed, segments) = {
                        let mut seen = inc.seen.0.lock().unwrap_or_else(|p| p.into_inner());
                        (
                            seen.nodes.take(),
                            seen.failed.take(),
                            std::mem::take(&mut seen.segments),
                        )
                    };
                    if w.remote.is_none() {
                        self.segments.extend(segments);
                    }
                    let msg = match failed {
                        Some(m) => format!("{how}: {m}"),
                        None => how,
                    };
                    let label = w.label();
                    eprintln!(
                        "quiver: {label} (node{} {}) died: {msg}",
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
                    // A process that ran for the restart window starts a new row.
                    if let Restart::OnFailure { window, .. } = w.restart
                        && w.spawned_at.elapsed() >= window
                    {
                        w.streak = 0;
                    }
                    let max = match w.restart {
                        Restart::OnFailure { max, .. } => max,
                        Restart::Never => 0,
                    };
                    if w.streak < max && !stopping {
                        w.streak += 1;
                        w.restarts += 1;
                        let delay = w.restart.delay_before(w.streak);
                        eprintln!(
                            "quiver: restarting {label} in {} ({} of at most {max} in a row)",
                            quiver_graph::format_duration(delay),
                            w.streak
                        );
                        w.restart_at = Some(Instant::now() + delay);
                    } else if max > 0 && !stopping {
                        eprintln!("quiver: {label} is not restarted again: it died {max} time(s) in a row");
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
        // Every worker is watched at once: one that fails while another is still waiting for
        // it (its consumers) ends the wait.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(why) = self.aborted() {
                return Err(RunError::Options(why));
            }
            let waiting: Vec<String> = self
                .workers
                .iter()
                .filter(|w| w.seen().is_some_and(|s| !s.ready))
                .map(Worker::label)
                .collect();
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(RunError::Options(format!(
                    "{} not ready within {START_TIMEOUT:?}",
                    waiting.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for w in &mut self.workers {
            w.started = true;
            w.order(&Order::Start);
        }
        let machines: std::collections::BTreeSet<&str> = self
            .workers
            .iter()
            .filter_map(|w| w.remote.as_ref().map(|r| r.machine.as_str()))
            .collect();
        tracing::info!(
            "every process is ready ({} worker process(es), {} other machine(s)) {:?} after the run began: starting",
            self.workers.len(),
            machines.len(),
            self.created.elapsed()
        );
        self.started = Instant::now();
        self.began = true;
        Ok(())
    }

    fn aborted(&mut self) -> Option<String> {
        for w in &mut self.workers {
            let label = w.label();
            let Some(inc) = &mut w.now else { continue };
            let seen = inc.seen.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(m) = &seen.failed {
                return Some(format!("{label}: {m}"));
            }
            if seen.eof {
                drop(seen);
                let how = wait_end(inc, Duration::from_secs(5)).map_or_else(|| "ended".to_string(), |e| e.how);
                return Some(format!("{label} {how} while starting"));
            }
        }
        None
    }

    fn poll(&mut self, status: &PartStatus, _nodes: &dyn Fn() -> Vec<NodeSummary>) -> Command {
        self.watch();
        if self.live_at.elapsed() >= LIVE_EVERY {
            self.live_at = Instant::now();
            let mut nodes: Vec<NodeSummary> = Vec::new();
            for w in &self.workers {
                let Some(mut figures) = w.seen().and_then(|s| s.nodes.clone()) else {
                    continue;
                };
                if let Some(r) = &w.remote {
                    for n in &mut figures {
                        n.machine = Some(r.machine.clone());
                    }
                }
                nodes.extend(figures);
            }
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

/// Waits (at most `limit`) for an incarnation to end.
fn wait_end(inc: &mut Incarnation, limit: Duration) -> Option<Ended> {
    let deadline = Instant::now() + limit;
    loop {
        match inc.try_ended() {
            Ok(Some(e)) => return Some(e),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => return None,
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

/// Runs a graph whose nodes are placed in worker processes, here and (with `connect`, the
/// daemons' endpoints) on other machines. Returns the merged summary and whether any process
/// failed; a failure before the run started is a [`PrepareFailed`] (everything rolled back).
pub fn run(
    graph: &Graph,
    registry: &Registry,
    graph_path: &Path,
    options: &RunOptions,
    verbose: u8,
    cluster: &super::Cluster,
) -> anyhow::Result<(Summary, bool)> {
    let duration = match options.mode {
        quiver_runtime::Mode::RealTime { duration } => duration,
        quiver_runtime::Mode::Stepped { .. } => return Err(anyhow!("a stepped run is one process")),
    };
    let (connect, tls) = (&cluster.connect[..], cluster.tls.as_ref());
    let run_id = cluster.run_id.clone().unwrap_or_else(super::new_run_id);
    let prefix = format!("quiver/{run_id}");
    let network = graph.uses_machines();
    let params_file = cluster.params.clone();
    if network && params_file.is_some() {
        return Err(PrepareFailed(
            "`--params` with nodes on other machines is not supported yet: set their parameters in the graph file"
                .into(),
        )
        .into());
    }
    let prepare_began = Instant::now();

    // Machines: which daemon runs each remote process, what they are sent.
    let mut cluster = None;
    let mut placed: HashMap<String, String> = HashMap::new();
    if network {
        let (client, p) =
            super::machines::connect_and_place(graph, connect, tls).map_err(|e| PrepareFailed(e.to_string()))?;
        let client = Arc::new(client);
        let shipment = super::machines::shipment(graph, registry, graph_path).map_err(PrepareFailed)?;
        let handle = client.open_run(&run_id).map_err(|e| PrepareFailed(e.to_string()))?;
        for (sha, path) in &shipment.by_hash {
            handle.offer(sha, path.clone());
        }
        placed = p;
        cluster = Some((client, handle, shipment));
    }

    // Data-plane endpoints. Remote processes listen on their machine's host (ports reserved by
    // its daemon), the main process and local workers on loopback. Each process connects to
    // every one before it in this order: remote ones first, so that no machine ever needs to
    // reach this one (a laptop behind NAT works), then main, then the local workers.
    let processes = graph.processes();
    let (remote_procs, local_procs): (Vec<&str>, Vec<&str>) = processes.iter().partition(|p| placed.contains_key(**p));
    let mut endpoints: HashMap<&str, String> = HashMap::new();
    if let Some((client, _, _)) = &cluster {
        let mut by_daemon: Vec<(&str, Vec<&str>)> = Vec::new();
        for p in &remote_procs {
            let d = placed[*p].as_str();
            match by_daemon.iter_mut().find(|(name, _)| *name == d) {
                Some((_, ps)) => ps.push(p),
                None => by_daemon.push((d, vec![p])),
            }
        }
        for (daemon, ps) in by_daemon {
            let eps = client
                .reserve(daemon, &run_id, ps.len())
                .map_err(|m| PrepareFailed(format!("machine `{daemon}`: reserving ports: {m}")))?;
            for (p, e) in ps.into_iter().zip(eps) {
                endpoints.insert(p, e);
            }
        }
    }
    let ports = free_ports(local_procs.len() + 1)?;
    let main_endpoint = endpoint(ports[0]);
    for (p, port) in local_procs.iter().zip(&ports[1..]) {
        endpoints.insert(p, endpoint(*port));
    }
    let order: Vec<&str> = remote_procs
        .iter()
        .copied()
        .chain(std::iter::once(MAIN_PROCESS))
        .chain(local_procs.iter().copied())
        .collect();
    let endpoint_of = |p: &str| -> String {
        if p == MAIN_PROCESS {
            main_endpoint.clone()
        } else {
            endpoints[p].clone()
        }
    };

    let mut workers = Vec::new();
    for name in &processes {
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
            "--process".into(),
            (*name).into(),
            "--prefix".into(),
            prefix.clone(),
            "--listen".into(),
            endpoint_of(name),
        ];
        let position = order.iter().position(|p| p == name).unwrap_or(0);
        for earlier in &order[..position] {
            args.push("--connect".into());
            args.push(endpoint_of(earlier));
        }
        if network {
            args.push("--network".into());
        }
        let remote = match (placed.get(*name), &cluster) {
            (Some(machine), Some((client, _, shipment))) => Some(RemoteSpec {
                machine: machine.clone(),
                client: client.clone(),
                run: run_id.clone(),
                prepare: quiver_daemon::Prepare {
                    run: run_id.clone(),
                    version: quiver_daemon::VERSION.into(),
                    abi: quiver_abi::ABI_VERSION,
                    graph_name: graph.name.clone(),
                    process: (*name).into(),
                    incarnation: 0,
                    graph: shipment.graph.clone(),
                    libraries: shipment.libraries.clone(),
                    files: shipment.files.clone(),
                    worker_args: args.clone(),
                },
            }),
            _ => {
                let mut local = vec!["worker".to_string(), graph_path.display().to_string()];
                local.append(&mut args);
                if let Some(file) = &params_file {
                    local.push("--params".into());
                    local.push(file.display().to_string());
                }
                if let Some(t) = tls {
                    local.push("--tls".into());
                    local.push(t.dir().display().to_string());
                }
                if verbose > 0 {
                    local.push(format!("-{}", "v".repeat(verbose as usize)));
                }
                args = local;
                None
            }
        };
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
            remote,
            restart_pending: false,
            restart_at: None,
            streak: 0,
            spawned_at: Instant::now(),
        });
    }
    // The low-latency transport does not fragment: a network link needs the default one, and
    // every process of a run uses the same.
    let mut tuning = if network {
        quiver_zenoh::network_tuning(quiver_zenoh::Tuning::from_env())
    } else {
        quiver_zenoh::Tuning::from_env()
    };
    tuning.tls = tls.cloned();
    let main_connect: Vec<String> = remote_procs.iter().map(|p| endpoint_of(p)).collect();
    let transport = quiver_zenoh::ZenohTransport::open_tuned(
        &quiver_zenoh::Endpoints {
            listen: vec![main_endpoint.clone()],
            connect: main_connect,
        },
        &tuning,
    )
    .context("opening the main process's Zenoh session")?;

    // Machines lost and back, for the whole run.
    let machines: Arc<Mutex<MachineState>> = Arc::default();
    let _watch = match &cluster {
        Some((client, _, _)) => {
            let m = machines.clone();
            let used: Vec<String> = placed.values().cloned().collect();
            let who: HashMap<String, Vec<String>> = workers
                .iter()
                .filter_map(|w| w.remote.as_ref().map(|r| (r.machine.clone(), w)))
                .fold(HashMap::new(), |mut acc, (machine, w)| {
                    acc.entry(machine)
                        .or_insert_with(Vec::new)
                        .extend(w.nodes.iter().cloned());
                    acc
                });
            Some(
                client
                    .watch_daemons(move |name, alive| {
                        if !used.iter().any(|u| u == name) {
                            return;
                        }
                        let mut state = m.lock().unwrap_or_else(|p| p.into_inner());
                        if alive {
                            if state.lost.remove(name).is_some() {
                                eprintln!("quiver: machine `{name}` is back");
                            }
                        } else if !state.lost.contains_key(name) {
                            state.lost.insert(name.to_string(), Instant::now());
                            let nodes = who.get(name).map(|n| n.join(", ")).unwrap_or_default();
                            eprintln!(
                                "quiver: machine `{name}` lost (its daemon stopped answering); its nodes: {nodes}"
                            );
                        }
                    })
                    .map_err(|e| PrepareFailed(e.to_string()))?,
            )
        }
        None => None,
    };

    // Prepare every process: local workers are started here, remote ones by their daemons
    // (in parallel: each may be fetching files). Any failure rolls everything back.
    let mut errors: Vec<String> = Vec::new();
    for w in workers.iter_mut().filter(|w| w.remote.is_none()) {
        if let Err(e) = w.spawn() {
            errors.push(format!("{e:#}"));
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter_mut()
            .filter(|w| w.remote.is_some())
            .map(|w| scope.spawn(move || w.spawn().map_err(|e| format!("{e:#}"))))
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("preparing a remote process panicked".into()),
            }
        }
    });
    if !errors.is_empty() {
        roll_back(&mut workers);
        transport.close();
        return Err(PrepareFailed(errors.join("\n")).into());
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
        began: false,
        created: prepare_began,
        machines,
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
    if !supervisor.began
        && let Err(e) = &summary
    {
        return Err(PrepareFailed(format!("{e:#}")).into());
    }
    let summary = summary?;
    Ok((summary, failed.load(Ordering::SeqCst)))
}

/// A failed prepare: every worker that was started is told to close (each runs its instances'
/// `stop`) and waited for; stragglers are killed.
fn roll_back(workers: &mut [Worker]) {
    for w in workers.iter_mut() {
        w.order(&Order::Close);
    }
    for w in workers.iter_mut() {
        if let Some(mut inc) = w.now.take() {
            inc.close_input();
            if wait_end(&mut inc, CLOSE_TIMEOUT).is_none() {
                tracing::error!("{} did not stop within {CLOSE_TIMEOUT:?}: killing it", w.label());
                inc.kill();
                let _ = wait_end(&mut inc, Duration::from_secs(7));
            }
        }
    }
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
        let remote = w.remote.is_some();
        if let Some(mut inc) = w.now.take() {
            // Closing its input after the Close order: a worker that missed it still stops.
            inc.close_input();
            let ended = wait_end(&mut inc, deadline.saturating_duration_since(Instant::now())).or_else(|| {
                tracing::error!("{} did not stop within {CLOSE_TIMEOUT:?}: killing it", w.label());
                inc.kill();
                wait_end(&mut inc, Duration::from_secs(7))
            });
            // The reader sees the end of its output once the process is gone.
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
            if !remote {
                sup.segments.extend(seen.segments.iter().cloned());
            }
            if let Some(m) = &seen.failed {
                w.failures.push(m.clone());
                sup.failed.store(true, Ordering::SeqCst);
            }
            end = ended.as_ref().map_or_else(|| "unknown end".into(), |e| e.how.clone());
            if seen.done.is_none() && ended.as_ref().is_some_and(|e| !e.success) {
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
        let machine = w.remote.as_ref().map(|r| r.machine.clone());
        if let Some(m) = &machine
            && let Some(nodes) = &mut merged
        {
            for n in nodes.iter_mut() {
                n.machine = Some(m.clone());
            }
        }
        worker_nodes.extend(merged.unwrap_or_default());
        processes.push(ProcessSummary {
            machine,
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
