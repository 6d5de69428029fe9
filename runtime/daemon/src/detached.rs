//! Runs handed to a daemon (`quiver run --detach`), for a robot that must keep going when the
//! laptop leaves. The daemon fetches the graph, its libraries and files like a prepared
//! process's, then runs `quiver run` itself (a child in its own process group, cwd the staging
//! folder): that child is the run's supervisor, a client of this daemon, and reaches every other
//! machine as a laptop's `quiver run` would. Its stdout and stderr are numbered, kept (a
//! backlog, and `log.txt` in `<cache>/detached/<run>/`) and published live for `quiver attach`;
//! `quiver stop` sends it SIGINT (it drains as on Ctrl-C) and answers with its summary.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use zenoh::Wait;
use zenoh::pubsub::Publisher;
use zenoh::qos::{CongestionControl, Reliability};
use zenoh::query::Query;

use crate::daemon::{Shared, describe, for_each_line, request, same_version};
use crate::proto::{Detach, DetachedEnd, DetachedInfo, Out, OutLine, Reply, RunRef, STATUS_PREFIX, encode};
use crate::{is_safe_name, keys};

/// Lines of output kept for `attach` (the whole log is in `log.txt`).
const BACKLOG: usize = 2000;
/// `error:` lines kept for `stop` and `ps`.
const ERRORS: usize = 50;
/// Ended runs kept (listed by `ps`, collected by `stop`), the oldest forgotten first.
const KEEP_ENDED: usize = 20;
/// How long a detached run may take to prepare every machine and start.
const START_WAIT: Duration = Duration::from_secs(200);
/// How long `stop` waits for a run to drain and exit before killing it.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// One run this daemon supervises.
pub(crate) struct Detached {
    graph: String,
    started: Instant,
    started_unix: u64,
    pid: u32,
    status: String,
    ended: Option<(DetachedEnd, Instant)>,
    backlog: VecDeque<OutLine>,
    next_seq: u64,
    errors: Vec<String>,
    dir: PathBuf,
    log: Option<std::fs::File>,
}

impl Detached {
    fn info(&self, run: &str, machine: &str) -> DetachedInfo {
        let until = self.ended.as_ref().map_or_else(Instant::now, |(_, at)| *at);
        DetachedInfo {
            run: run.to_string(),
            graph: self.graph.clone(),
            machine: machine.to_string(),
            started_unix: self.started_unix,
            uptime_s: until.duration_since(self.started).as_secs_f64(),
            status: self.status.clone(),
            ended: self.ended.as_ref().map(|(e, _)| e.clone()),
        }
    }
}

type Live = Arc<Mutex<Publisher<'static>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The endpoints a child on this machine reaches this daemon on.
fn own_endpoints(listen: &[String]) -> Vec<String> {
    listen
        .iter()
        .map(|e| e.replace("/0.0.0.0:", "/127.0.0.1:").replace("/[::]:", "/[::1]:"))
        .collect()
}

fn signal(pid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if let Err(e) = kill(Pid::from_raw(raw), sig) {
        tracing::debug!("signal {sig} to {pid}: {e}");
    }
}

impl Shared {
    fn emit(&self, run: &str, live: &Live, out: Out) {
        // The publisher's lock orders the lines as numbered; the table's is not held while
        // publishing.
        let publisher = lock(live);
        let line = {
            let mut table = lock(&self.detached);
            let Some(d) = table.get_mut(run) else { return };
            let seq = d.next_seq;
            d.next_seq += 1;
            match &out {
                Out::Status(s) => d.status.clone_from(s),
                Out::Line(l) | Out::Log(l) => {
                    if let Some(f) = &mut d.log {
                        let _ = writeln!(f, "{l}");
                    }
                    if let Out::Log(l) = &out
                        && l.starts_with("error:")
                        && d.errors.len() < ERRORS
                    {
                        d.errors.push(l.clone());
                    }
                }
                Out::Ended(_) => {}
            }
            let line = OutLine { seq, out };
            if !matches!(line.out, Out::Status(_)) {
                d.backlog.push_back(line.clone());
                if d.backlog.len() > BACKLOG {
                    d.backlog.pop_front();
                }
            }
            line
        };
        if let Err(e) = publisher.put(encode(&line)).wait() {
            tracing::debug!("publishing a detached run's output: {e}");
        }
    }

    pub(crate) fn detached_list(&self) -> Vec<DetachedInfo> {
        let table = lock(&self.detached);
        let mut list: Vec<DetachedInfo> = table.iter().map(|(run, d)| d.info(run, &self.config.name)).collect();
        list.sort_by(|a, b| a.started_unix.cmp(&b.started_unix).then_with(|| a.run.cmp(&b.run)));
        list
    }

    /// `quiver run --detach`: stage the run, start its `quiver run` here, answer once it runs
    /// (its first status line) or refuse with why it did not start.
    pub(crate) fn detach(self: &Arc<Self>, q: &Query) -> Reply {
        let req: Detach = match request(q) {
            Ok(r) => r,
            Err(message) => return Reply::Refused { message },
        };
        let name = self.config.name.clone();
        match self.start_detached(&req) {
            Ok(()) => {}
            Err(message) => {
                return Reply::Refused {
                    message: format!("machine `{name}`: {message}"),
                };
            }
        }
        // Until it runs, or ends.
        let deadline = Instant::now() + START_WAIT;
        loop {
            let state = {
                let table = lock(&self.detached);
                table
                    .get(&req.run)
                    .map(|d| (!d.status.is_empty(), d.ended.clone(), d.errors.clone()))
            };
            match state {
                Some((true, None, _)) => return Reply::Detached,
                Some((_, Some((end, _)), errors)) => {
                    lock(&self.detached).remove(&req.run);
                    let _ = std::fs::remove_dir_all(self.cache.root().join("detached").join(&req.run));
                    let why = if errors.is_empty() {
                        end.how.clone()
                    } else {
                        errors.join("\n")
                    };
                    return Reply::Refused {
                        message: format!("machine `{name}`: the detached run did not start ({}):\n{why}", end.how),
                    };
                }
                None => {
                    return Reply::Refused {
                        message: format!("machine `{name}`: the detached run vanished while starting"),
                    };
                }
                Some((false, None, _)) => {}
            }
            if Instant::now() > deadline {
                return Reply::Refused {
                    message: format!(
                        "machine `{name}`: the detached run did not start within {START_WAIT:?} (it is still trying: `quiver stop {}`)",
                        req.run
                    ),
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_detached(self: &Arc<Self>, req: &Detach) -> Result<(), String> {
        same_version(&req.version, req.abi)?;
        if !is_safe_name(&req.run) || !is_safe_name(&req.ship) {
            return Err("a run id that is not a plain name".into());
        }
        if lock(&self.detached).contains_key(&req.run) {
            return Err(format!("a detached run {} is here already", req.run));
        }
        let stage = self
            .cache
            .stage_detached(&req.run)
            .map_err(|e| format!("staging in {}: {e}", self.cache.root().display()))?;
        let graph_file = self.stage_shipment(
            &req.ship,
            &format!("detached run {}", req.run),
            &stage,
            &req.graph,
            &req.files,
            &req.libraries,
        )?;
        let live: Live = Arc::new(Mutex::new(
            self.session
                .declare_publisher(keys::detached_out(&req.run))
                .reliability(Reliability::Reliable)
                .congestion_control(CongestionControl::Block)
                .wait()
                .map_err(|e| e.to_string())?,
        ));
        let summary = stage.dir.join("summary.json");
        let mut cmd = std::process::Command::new(&self.config.worker_exe);
        cmd.arg("run")
            .arg(&graph_file)
            .arg("--run-id")
            .arg(&req.run)
            .arg("--status-lines")
            .arg("--supervised")
            .arg("--here")
            .arg(&self.config.name)
            .arg("--summary-json")
            .arg(&summary)
            .current_dir(&stage.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Not in the daemon's process group: a terminal's Ctrl-C reaches the daemon, which
            // stops its detached runs in order.
            .process_group(0);
        for e in own_endpoints(&self.config.listen) {
            cmd.arg("--connect").arg(e);
        }
        if let Some(ms) = req.duration_ms {
            cmd.arg("--for").arg(format!("{ms}ms"));
        }
        if let Some(ms) = req.drain_ms {
            cmd.arg("--drain").arg(format!("{ms}ms"));
        }
        if let Some(t) = &self.config.tls {
            cmd.arg("--tls").arg(t.dir());
        }
        if self.config.verbose > 0 {
            cmd.arg(format!("-{}", "v".repeat(self.config.verbose as usize)));
        }
        if let Some(path) = self.operator_path(&stage.dir) {
            cmd.env("QUIVER_OPERATOR_PATH", path);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.config.worker_exe.display()))?;
        let log = std::fs::File::create(stage.dir.join("log.txt")).ok();
        lock(&self.detached).insert(
            req.run.clone(),
            Detached {
                graph: req.graph_name.clone(),
                started: Instant::now(),
                started_unix: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                pid: child.id(),
                status: String::new(),
                ended: None,
                backlog: VecDeque::new(),
                next_seq: 0,
                errors: Vec::new(),
                dir: stage.dir.clone(),
                log,
            },
        );
        tracing::info!(
            "detached run {} ({}): supervised here (pid {}), files in {}",
            req.run,
            req.graph_name,
            child.id(),
            stage.dir.display()
        );
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(self.relay(&req.run, &live, out, false));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(self.relay(&req.run, &live, err, true));
        }
        let shared = self.clone();
        let run = req.run.clone();
        std::thread::Builder::new()
            .name("q-detached".into())
            .spawn(move || shared.wait_detached(&run, child, readers, &live, &summary))
            .map_err(|e| format!("starting a thread: {e}"))?;
        Ok(())
    }

    fn relay(
        self: &Arc<Self>,
        run: &str,
        live: &Live,
        from: impl std::io::Read + Send + 'static,
        stderr: bool,
    ) -> std::thread::JoinHandle<()> {
        let (shared, run, live) = (self.clone(), run.to_string(), live.clone());
        std::thread::spawn(move || {
            for_each_line(from, |text| {
                let out = match text.strip_prefix(STATUS_PREFIX) {
                    Some(status) if stderr => Out::Status(status.to_string()),
                    _ if stderr => Out::Log(text),
                    _ => Out::Line(text),
                };
                shared.emit(&run, &live, out);
                true
            })
        })
    }

    fn wait_detached(
        &self,
        run: &str,
        mut child: Child,
        readers: Vec<std::thread::JoinHandle<()>>,
        live: &Live,
        summary: &Path,
    ) {
        let status = child.wait();
        for r in readers {
            let _ = r.join();
        }
        let (how, code) = match status {
            Ok(s) => (describe(s), s.code()),
            Err(e) => (format!("lost (cannot wait for it: {e})"), None),
        };
        tracing::info!("detached run {run}: {how}");
        let errors = lock(&self.detached)
            .get(run)
            .map(|d| d.errors.clone())
            .unwrap_or_default();
        let end = DetachedEnd {
            how,
            code,
            summary: std::fs::read_to_string(summary).ok(),
            errors,
        };
        self.emit(run, live, Out::Ended(end.clone()));
        let forget: Vec<(String, PathBuf)> = {
            let mut table = lock(&self.detached);
            if let Some(d) = table.get_mut(run) {
                d.ended = Some((end, Instant::now()));
                d.log = None;
                // What it ran from is not needed any more; its log and summary stay.
                let _ = std::fs::remove_dir_all(d.dir.join("fs"));
                let _ = std::fs::remove_dir_all(d.dir.join("lib"));
            }
            let mut ended: Vec<(Instant, String)> = table
                .iter()
                .filter_map(|(r, d)| d.ended.as_ref().map(|(_, at)| (*at, r.clone())))
                .collect();
            ended.sort();
            let excess = ended.len().saturating_sub(KEEP_ENDED);
            ended
                .into_iter()
                .take(excess)
                .filter_map(|(_, r)| table.remove(&r).map(|d| (r, d.dir)))
                .collect()
        };
        for (r, dir) in forget {
            tracing::debug!("forgetting ended detached run {r}");
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// `quiver attach`: what the run printed so far, its status and whether it ended.
    pub(crate) fn attach(&self, q: &Query) -> Reply {
        let req: RunRef = match request(q) {
            Ok(r) => r,
            Err(message) => return Reply::Refused { message },
        };
        let table = lock(&self.detached);
        match table.get(&req.run) {
            Some(d) => Reply::Backlog {
                info: d.info(&req.run, &self.config.name),
                lines: d.backlog.iter().cloned().collect(),
                next: d.next_seq,
            },
            None => Reply::Refused {
                message: format!("machine `{}` supervises no run {}", self.config.name, req.run),
            },
        }
    }

    /// `quiver stop`: SIGINT (it drains and stops everywhere, as on Ctrl-C), wait, answer its
    /// end and summary; killed if it has not ended within `STOP_WAIT`. The run is forgotten.
    pub(crate) fn stop_detached(&self, q: &Query) -> Reply {
        let req: RunRef = match request(q) {
            Ok(r) => r,
            Err(message) => return Reply::Refused { message },
        };
        let pid = match lock(&self.detached).get(&req.run) {
            Some(d) => d.ended.is_none().then_some(d.pid),
            None => {
                return Reply::Refused {
                    message: format!("machine `{}` supervises no run {}", self.config.name, req.run),
                };
            }
        };
        if let Some(pid) = pid {
            tracing::info!("detached run {}: stopping (SIGINT to pid {pid})", req.run);
            signal(pid, Signal::SIGINT);
            if !self.wait_ended(&req.run, STOP_WAIT) {
                tracing::error!("detached run {} did not stop within {STOP_WAIT:?}: killing it", req.run);
                signal(pid, Signal::SIGKILL);
                self.wait_ended(&req.run, Duration::from_secs(10));
            }
        }
        let mut table = lock(&self.detached);
        match table.remove(&req.run) {
            Some(d) => {
                let info = d.info(&req.run, &self.config.name);
                let _ = std::fs::remove_dir_all(&d.dir);
                Reply::Stopped { info }
            }
            None => Reply::Refused {
                message: format!("run {} was stopped by someone else meanwhile", req.run),
            },
        }
    }

    fn wait_ended(&self, run: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match lock(&self.detached).get(run) {
                Some(d) if d.ended.is_none() => {}
                _ => return true,
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon is stopping: every detached run is stopped (SIGINT), killed if it has not
    /// ended within `STOP_WAIT`.
    pub(crate) fn stop_all_detached(&self) {
        let running: Vec<(String, u32)> = lock(&self.detached)
            .iter()
            .filter(|(_, d)| d.ended.is_none())
            .map(|(r, d)| (r.clone(), d.pid))
            .collect();
        for (run, pid) in &running {
            tracing::info!("detached run {run}: stopping with the daemon");
            signal(*pid, Signal::SIGINT);
        }
        for (run, pid) in &running {
            if !self.wait_ended(run, STOP_WAIT) {
                tracing::error!("detached run {run} did not stop within {STOP_WAIT:?}: killing it");
                signal(*pid, Signal::SIGKILL);
                self.wait_ended(run, Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::own_endpoints;

    #[test]
    fn a_child_reaches_its_daemon_on_loopback_when_it_listens_everywhere() {
        let got = own_endpoints(&[
            "tcp/0.0.0.0:7450".into(),
            "tcp/[::]:7451".into(),
            "tcp/10.0.0.2:7452".into(),
        ]);
        assert_eq!(got, ["tcp/127.0.0.1:7450", "tcp/[::1]:7451", "tcp/10.0.0.2:7452"]);
    }
}
