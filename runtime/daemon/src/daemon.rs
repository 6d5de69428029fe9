//! `quiver daemon`: serves one machine. A Zenoh router on the control plane; for every
//! prepared process it fetches what the run ships (libraries, the graph, path parameters) into
//! its cache, stages them, starts a `quiver worker` and relays the worker's lines. A worker
//! whose run vanished (its liveliness token gone: laptop closed, `quiver run` killed) has its
//! stdin closed at once and is killed if it has not exited 5 s later.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zenoh::Wait;
use zenoh::pubsub::Subscriber;
use zenoh::qos::{CongestionControl, Reliability};
use zenoh::query::Query;
use zenoh::sample::SampleKind;

use crate::cache::{Cache, Stage, is_sha256};
use crate::detached::Detached;
use crate::proto::{
    DaemonInfo, Down, Prepare, Reply, Reserve, RunInfo, ShippedFile, ShippedLibrary, Up, VERSION, decode, encode,
};
use crate::{ControlError, is_safe_name, keys, session};

/// How long a worker may take to exit after its stdin closed before it is killed.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// How long fetching one file may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Called with a run's id once no process of it is left on this machine.
pub type AfterRun = Arc<dyn Fn(&str) + Send + Sync>;

/// How a daemon is set up (`quiver daemon` flags).
#[derive(Clone)]
pub struct DaemonConfig {
    pub name: String,
    pub labels: Vec<String>,
    pub listen: Vec<String>,
    pub connect: Vec<String>,
    /// The address its runs' processes listen on (default: the host of the first `listen`
    /// endpoint, or the first non-loopback address Zenoh reports for an unspecified one).
    pub host: Option<String>,
    pub cache_dir: PathBuf,
    /// Refuse shipped libraries: operators come from this machine's operator path only.
    pub no_fetch: bool,
    /// The `quiver` executable started as `quiver worker`.
    pub worker_exe: PathBuf,
    /// Passed to workers (`-v` count).
    pub verbose: u8,
    /// Called once a run has no process here any more (the CLI sweeps shared memory).
    pub after_run: Option<AfterRun>,
    /// TLS with mutual certificates on the control plane and for its workers' data links.
    pub tls: Option<quiver_zenoh::Tls>,
}

impl std::fmt::Debug for DaemonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonConfig")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("listen", &self.listen)
            .field("connect", &self.connect)
            .field("no_fetch", &self.no_fetch)
            .field("tls", &self.tls)
            .finish()
    }
}

/// One worker this daemon started.
struct Worker {
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    /// When its stdin was closed (it is killed `KILL_AFTER` later).
    closed_at: Arc<Mutex<Option<Instant>>>,
    exited: Arc<AtomicBool>,
    /// Kill it at once (it is being replaced).
    kill_now: Arc<AtomicBool>,
    _down: Subscriber<()>,
}

impl Worker {
    fn close(&self) {
        drop(self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take());
        let mut at = self.closed_at.lock().unwrap_or_else(|p| p.into_inner());
        if at.is_none() {
            *at = Some(Instant::now());
        }
    }
}

struct RunState {
    graph: String,
    workers: HashMap<String, Worker>,
    _alive: Option<Subscriber<()>>,
    /// Its liveliness token vanished: `quiver run` is gone.
    gone: bool,
}

pub(crate) struct Shared {
    pub(crate) config: DaemonConfig,
    pub(crate) session: zenoh::Session,
    pub(crate) cache: Cache,
    host: String,
    runs: Mutex<HashMap<String, RunState>>,
    /// Runs handed to this daemon (`quiver run --detach`).
    pub(crate) detached: Mutex<HashMap<String, Detached>>,
    cpu: Mutex<CpuSample>,
    fetching: Mutex<()>,
}

#[derive(Default)]
struct CpuSample {
    busy: u64,
    total: u64,
}

/// Runs the daemon until `stop` is set; then stops every worker and returns.
pub fn serve(config: DaemonConfig, stop: &AtomicBool) -> Result<(), ControlError> {
    for l in &config.labels {
        if !is_safe_name(l) {
            return Err(ControlError::Zenoh(format!(
                "`{l}` is not a label (letters, digits, `_`, `-`)"
            )));
        }
    }
    if !is_safe_name(&config.name) {
        return Err(ControlError::Zenoh(format!(
            "`{}` is not a machine name (letters, digits, `_`, `-`)",
            config.name
        )));
    }
    let cache = Cache::open(&config.cache_dir).map_err(|e| ControlError::Cache {
        path: config.cache_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let zconfig = session::daemon_config(&config.listen, &config.connect, config.tls.as_ref())?;
    let session = zenoh::open(zconfig).wait().map_err(|e| ControlError::Open {
        endpoints: config.listen.join(", "),
        reason: e.to_string(),
    })?;
    let host = config
        .host
        .clone()
        .unwrap_or_else(|| data_host(&config.listen, &session));
    // Another daemon of the same name would take this one's queries.
    let taken = session
        .liveliness()
        .get(keys::daemon_alive(&config.name))
        .timeout(Duration::from_millis(500))
        .wait()
        .map_err(|e| ControlError::Zenoh(e.to_string()))?;
    if taken.recv().is_ok() {
        let _ = session.close().wait();
        return Err(ControlError::Zenoh(format!(
            "a daemon named `{}` already serves this cluster",
            config.name
        )));
    }
    let shared = Arc::new(Shared {
        config: config.clone(),
        session: session.clone(),
        cache,
        host,
        runs: Mutex::new(HashMap::new()),
        detached: Mutex::new(HashMap::new()),
        cpu: Mutex::new(CpuSample::default()),
        fetching: Mutex::new(()),
    });
    let zerr = |e: zenoh::Error| ControlError::Zenoh(e.to_string());
    let info_q = session
        .declare_queryable(keys::daemon_info(&config.name))
        .wait()
        .map_err(zerr)?;
    let reserve_q = session
        .declare_queryable(keys::daemon_reserve(&config.name))
        .wait()
        .map_err(zerr)?;
    let prepare_q = session
        .declare_queryable(keys::daemon_prepare(&config.name))
        .wait()
        .map_err(zerr)?;
    let detach_q = session
        .declare_queryable(keys::daemon_detach(&config.name))
        .wait()
        .map_err(zerr)?;
    let attach_q = session
        .declare_queryable(keys::daemon_attach(&config.name))
        .wait()
        .map_err(zerr)?;
    let stop_q = session
        .declare_queryable(keys::daemon_stop(&config.name))
        .wait()
        .map_err(zerr)?;
    let _token = session
        .liveliness()
        .declare_token(keys::daemon_alive(&config.name))
        .wait()
        .map_err(zerr)?;
    tracing::info!(
        "daemon `{}` (labels: {}) listening on {}; runs' processes listen on {}",
        config.name,
        if config.labels.is_empty() {
            "none".into()
        } else {
            config.labels.join(", ")
        },
        config.listen.join(", "),
        shared.host
    );
    let s = shared.clone();
    spawn("q-info", move || {
        while let Ok(q) = info_q.recv() {
            let info = s.info();
            reply(&q, &info);
        }
    });
    let s = shared.clone();
    spawn("q-reserve", move || {
        while let Ok(q) = reserve_q.recv() {
            let r = s.reserve(&q);
            reply(&q, &r);
        }
    });
    let s = shared.clone();
    spawn("q-prepare", move || {
        while let Ok(q) = prepare_q.recv() {
            let s = s.clone();
            // Fetching can take a while: one thread per request.
            spawn("q-prep", move || {
                let r = s.prepare(&q);
                if let Reply::Refused { message } = &r {
                    tracing::error!("prepare refused: {message}");
                }
                reply(&q, &r);
            });
        }
    });
    let s = shared.clone();
    spawn("q-detach", move || {
        while let Ok(q) = detach_q.recv() {
            let s = s.clone();
            spawn("q-detach1", move || {
                let r = s.detach(&q);
                if let Reply::Refused { message } = &r {
                    tracing::error!("detached run refused: {message}");
                }
                reply(&q, &r);
            });
        }
    });
    let s = shared.clone();
    spawn("q-attach", move || {
        while let Ok(q) = attach_q.recv() {
            let r = s.attach(&q);
            reply(&q, &r);
        }
    });
    let s = shared.clone();
    spawn("q-stop", move || {
        while let Ok(q) = stop_q.recv() {
            let s = s.clone();
            // Stopping waits for the run to drain: one thread per request.
            spawn("q-stop1", move || {
                let r = s.stop_detached(&q);
                reply(&q, &r);
            });
        }
    });
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("daemon `{}` stopping", config.name);
    // The runs it supervises first (they stop their processes here and elsewhere in order),
    // then whatever workers are left.
    shared.stop_all_detached();
    shared.stop_all();
    let _ = session.close().wait();
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(f) {
        tracing::error!("cannot start a thread: {e}");
    }
}

/// A query's request, or why it cannot be read.
pub(crate) fn request<T: for<'de> serde::Deserialize<'de>>(q: &Query) -> Result<T, String> {
    match q.payload().map(|p| decode(&p.to_bytes())) {
        Some(r) => r,
        None => Err("no request".into()),
    }
}

/// Refuses a run of another quiver version or ABI, naming both.
pub(crate) fn same_version(version: &str, abi: u32) -> Result<(), String> {
    if version != VERSION || abi != quiver_abi::ABI_VERSION {
        return Err(format!(
            "this daemon is quiver {VERSION} (ABI {}), the run is quiver {version} (ABI {abi}): run the same version everywhere",
            quiver_abi::ABI_VERSION
        ));
    }
    Ok(())
}

fn reply<T: serde::Serialize>(q: &Query, msg: &T) {
    if let Err(e) = q.reply(q.key_expr().clone(), encode(msg)).wait() {
        tracing::warn!("answering {}: {e}", q.key_expr());
    }
}

/// The host part of `tcp/HOST:PORT`.
fn endpoint_host(e: &str) -> Option<&str> {
    let rest = e.split_once('/')?.1;
    let rest = rest.split('#').next()?;
    let (host, _port) = rest.rsplit_once(':')?;
    Some(host)
}

fn data_host(listen: &[String], session: &zenoh::Session) -> String {
    let first = listen.first().and_then(|e| endpoint_host(e)).unwrap_or("127.0.0.1");
    if first != "0.0.0.0" && first != "[::]" {
        return first.to_string();
    }
    session
        .info()
        .locators()
        .wait()
        .iter()
        .filter_map(|l| endpoint_host(l.as_str()).map(str::to_string))
        .find(|h| !h.starts_with("127.") && !h.starts_with('['))
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn read_u64_after(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

impl Shared {
    fn info(&self) -> DaemonInfo {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0.0);
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<RunInfo> = runs
            .iter()
            .map(|(run, r)| {
                let mut processes: Vec<String> = r.workers.keys().cloned().collect();
                processes.sort();
                RunInfo {
                    run: run.clone(),
                    graph: r.graph.clone(),
                    processes,
                }
            })
            .collect();
        list.sort_by(|a, b| a.run.cmp(&b.run));
        DaemonInfo {
            name: self.config.name.clone(),
            labels: self.config.labels.clone(),
            version: VERSION.into(),
            abi: quiver_abi::ABI_VERSION,
            listen: self.config.listen.clone(),
            host: self.host.clone(),
            no_fetch: self.config.no_fetch,
            tls: self.config.tls.is_some(),
            runs: list,
            detached: self.detached_list(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load,
            mem_total_mb: read_u64_after(&meminfo, "MemTotal:").unwrap_or(0) / 1024,
            mem_available_mb: read_u64_after(&meminfo, "MemAvailable:").unwrap_or(0) / 1024,
            cpu_percent: None,
        }
        .with_cpu(&self.cpu)
    }

    fn reserve(&self, q: &Query) -> Reply {
        let req: Reserve = match request(q) {
            Ok(r) => r,
            Err(message) => return Reply::Refused { message },
        };
        if req.count > 64 {
            return Reply::Refused {
                message: format!("{} processes on one machine is too many", req.count),
            };
        }
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let listeners: Result<Vec<std::net::TcpListener>, _> =
            (0..req.count).map(|_| std::net::TcpListener::bind((host, 0))).collect();
        match listeners.and_then(|ls| ls.iter().map(|l| l.local_addr().map(|a| a.port())).collect()) {
            Ok(ports) => {
                let ports: Vec<u16> = ports;
                let scheme = if self.config.tls.is_some() { "tls" } else { "tcp" };
                Reply::Reserved {
                    endpoints: ports.iter().map(|p| format!("{scheme}/{}:{p}", self.host)).collect(),
                }
            }
            Err(e) => Reply::Refused {
                message: format!("machine `{}`: no free port on {}: {e}", self.config.name, self.host),
            },
        }
    }

    pub(crate) fn fetch(&self, run: &str, f: &ShippedFile) -> Result<PathBuf, String> {
        let sha = &f.blob.sha256;
        if !is_sha256(sha) {
            return Err(format!("`{sha}` is not a SHA-256"));
        }
        // One fetch at a time: two processes of a run need the same files.
        let _one = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if !self.cache.has(sha) {
            let started = Instant::now();
            let replies = self
                .session
                .get(keys::run_blob(run, sha))
                .timeout(FETCH_TIMEOUT)
                .wait()
                .map_err(|e| format!("fetching {}: {e}", f.path))?;
            let bytes = match replies.recv() {
                Ok(reply) => match reply.result() {
                    Ok(sample) => sample.payload().to_bytes().into_owned(),
                    Err(e) => {
                        return Err(format!(
                            "fetching {}: {}",
                            f.path,
                            String::from_utf8_lossy(&e.payload().to_bytes())
                        ));
                    }
                },
                Err(_) => return Err(format!("fetching {}: no answer within {FETCH_TIMEOUT:?}", f.path)),
            };
            self.cache
                .store(sha, &bytes)
                .map_err(|e| format!("fetching {}: {e}", f.path))?;
            tracing::info!(
                "fetched {} ({} bytes, sha256 {}) in {:?}",
                f.path,
                bytes.len(),
                &sha[..12],
                started.elapsed()
            );
        }
        Ok(self.cache.blob_path(sha))
    }

    fn prepare(self: &Arc<Self>, q: &Query) -> Reply {
        let req: Prepare = match request(q) {
            Ok(r) => r,
            Err(message) => return Reply::Refused { message },
        };
        match self.start(req) {
            Ok(()) => Reply::Started,
            Err(message) => Reply::Refused {
                message: format!("machine `{}`: {message}", self.config.name),
            },
        }
    }

    fn start(self: &Arc<Self>, req: Prepare) -> Result<(), String> {
        same_version(&req.version, req.abi)?;
        if !is_safe_name(&req.run) || !is_safe_name(&req.process) {
            return Err("a run id or process name that is not a plain name".into());
        }
        // Watch the run's token first, then check it is there: a run that vanishes at any time
        // after this is noticed (`close_run` marks it gone, and a worker started later is
        // closed at once).
        self.watch_run(&req.run, &req.graph_name);
        let run = req.run.clone();
        let started = self.start_watched(req);
        if started.is_err() {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            if runs.get(&run).is_some_and(|r| r.workers.is_empty()) {
                runs.remove(&run);
            }
        }
        started
    }

    fn start_watched(self: &Arc<Self>, req: Prepare) -> Result<(), String> {
        // The run must still be there (a prepare may arrive after `quiver run` gave up).
        let alive = self
            .session
            .liveliness()
            .get(keys::run_alive(&req.run))
            .timeout(Duration::from_secs(2))
            .wait()
            .map_err(|e| e.to_string())?;
        if alive.recv().is_err() {
            return Err(format!("run {} is gone", req.run));
        }
        // A process prepared again replaces its earlier worker: the run has given that one up
        // (its machine was cut off, say) even if it has not noticed yet.
        let old = {
            let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            runs.get(&req.run)
                .and_then(|r| r.workers.get(&req.process))
                .filter(|w| !w.exited.load(Ordering::SeqCst))
                .map(|w| {
                    w.close();
                    w.kill_now.store(true, Ordering::SeqCst);
                    w.exited.clone()
                })
        };
        if let Some(exited) = old {
            tracing::warn!(
                "run {}: process `{}` prepared again: its earlier worker is killed",
                req.run,
                req.process
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while !exited.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    return Err(format!("the earlier worker of process `{}` does not exit", req.process));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let stage = self
            .cache
            .stage(&req.run, &req.process)
            .map_err(|e| format!("staging in {}: {e}", self.cache.root().display()))?;
        let graph_file = self.stage_shipment(
            &req.run,
            &format!("run {} process `{}`", req.run, req.process),
            &stage,
            &req.graph,
            &req.files,
            &req.libraries,
        )?;
        self.spawn_worker(&req, &graph_file, &stage.dir)
    }

    /// Fetches (or finds in the cache) what a run ships from `from` (`quiver/run/<from>/blob/*`)
    /// and places it in `stage`: the graph and the path parameters where they were on the run's
    /// machine, the libraries in `lib/` (unless `--no-fetch`). Returns the staged graph file.
    pub(crate) fn stage_shipment(
        &self,
        from: &str,
        what: &str,
        stage: &Stage,
        graph: &ShippedFile,
        files: &[ShippedFile],
        libraries: &[ShippedLibrary],
    ) -> Result<PathBuf, String> {
        let place = |f: &ShippedFile, target: &Path| -> Result<(), String> {
            let blob = self.fetch(from, f)?;
            stage
                .place(&blob, target)
                .map_err(|e| format!("placing {} at {}: {e}", f.path, target.display()))
        };
        let graph_file = stage.mirror(&graph.path)?;
        place(graph, &graph_file)?;
        for f in files {
            place(f, &stage.mirror(&f.path)?)?;
        }
        if self.config.no_fetch {
            tracing::info!("{what}: --no-fetch, operators from this machine's operator path");
        } else {
            for lib in libraries {
                let target = if lib.by_path {
                    stage.mirror(&lib.path)?
                } else {
                    let name = Path::new(&lib.path)
                        .file_name()
                        .ok_or_else(|| format!("library `{}` has no file name", lib.path))?;
                    stage.lib_dir().join(name)
                };
                let f = ShippedFile {
                    path: lib.path.clone(),
                    blob: lib.blob.clone(),
                };
                place(&f, &target)?;
            }
        }
        Ok(graph_file)
    }

    /// The operator path of a process started from `stage`: shipped libraries first, the
    /// machine's own operator path after them (only the machine's own with `--no-fetch`).
    pub(crate) fn operator_path(&self, stage: &Path) -> Option<std::ffi::OsString> {
        if self.config.no_fetch {
            return None;
        }
        let mut path = std::ffi::OsString::from(stage.join("lib"));
        if let Some(own) = std::env::var_os("QUIVER_OPERATOR_PATH") {
            path.push(":");
            path.push(own);
        }
        Some(path)
    }

    fn spawn_worker(self: &Arc<Self>, req: &Prepare, graph_file: &Path, stage: &Path) -> Result<(), String> {
        let mut cmd = std::process::Command::new(&self.config.worker_exe);
        cmd.arg("worker")
            .arg(graph_file)
            .args(&req.worker_args)
            .current_dir(stage)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Not in the daemon's process group: a terminal's Ctrl-C reaches the daemon, which
            // stops its workers in order.
            .process_group(0);
        if self.config.verbose > 0 {
            cmd.arg(format!("-{}", "v".repeat(self.config.verbose as usize)));
        }
        if let Some(t) = &self.config.tls {
            // This machine's certificates, not the run's.
            cmd.arg("--tls").arg(t.dir());
        }
        if let Some(path) = self.operator_path(stage) {
            cmd.env("QUIVER_OPERATOR_PATH", path);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.config.worker_exe.display()))?;
        let publisher = self
            .session
            .declare_publisher(keys::run_up(&req.run, &req.process, req.incarnation))
            .reliability(Reliability::Reliable)
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(|e| e.to_string())?;
        let publisher = Arc::new(publisher);
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let closed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let exited = Arc::new(AtomicBool::new(false));
        let kill_now = Arc::new(AtomicBool::new(false));
        // Orders from the run.
        let (st, ca) = (stdin.clone(), closed_at.clone());
        let down = self
            .session
            .declare_subscriber(keys::run_down(&req.run, &req.process, req.incarnation))
            .callback(move |sample| match decode::<Down>(&sample.payload().to_bytes()) {
                Ok(Down::Line(line)) => {
                    let mut guard = st.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(stdin) = guard.as_mut() {
                        let _ = stdin
                            .write_all(line.as_bytes())
                            .and_then(|()| stdin.write_all(b"\n"))
                            .and_then(|()| stdin.flush());
                    }
                }
                Ok(Down::Close) => {
                    drop(st.lock().unwrap_or_else(|p| p.into_inner()).take());
                    let mut at = ca.lock().unwrap_or_else(|p| p.into_inner());
                    if at.is_none() {
                        *at = Some(Instant::now());
                    }
                }
                Err(e) => tracing::error!("{e}"),
            })
            .wait()
            .map_err(|e| e.to_string())?;
        // Its lines, up.
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let p = publisher.clone();
            readers.push(relay_lines(out, Up::Line, p));
        }
        if let Some(err) = child.stderr.take() {
            let p = publisher.clone();
            readers.push(relay_lines(err, Up::Log, p));
        }
        let unwatched = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            let run = runs.entry(req.run.clone()).or_insert_with(|| RunState {
                graph: req.graph_name.clone(),
                workers: HashMap::new(),
                _alive: None,
                gone: false,
            });
            let worker = Worker {
                stdin,
                closed_at: closed_at.clone(),
                exited: exited.clone(),
                kill_now: kill_now.clone(),
                _down: down,
            };
            if run.gone {
                worker.close();
            }
            run.workers.insert(req.process.clone(), worker);
            run._alive.is_none()
        };
        if unwatched {
            // Another prepare of this run failed and cleared its state meanwhile.
            self.watch_run(&req.run, &req.graph_name);
        }
        tracing::info!(
            "run {} ({}): process `{}` started (pid {})",
            req.run,
            req.graph_name,
            req.process,
            child.id()
        );
        let shared = self.clone();
        let (run, process) = (req.run.clone(), req.process.clone());
        spawn("q-wait", move || {
            let status = wait_or_kill(&mut child, &closed_at, &kill_now);
            for r in readers {
                let _ = r.join();
            }
            let (how, success) = match status {
                Some(s) => (describe(s), s.success()),
                None => ("lost (cannot wait for it)".to_string(), false),
            };
            tracing::info!("run {run}: process `{process}` {how}");
            exited.store(true, Ordering::SeqCst);
            if let Err(e) = publisher.put(encode(&Up::Exited { how, success })).wait() {
                tracing::debug!("telling the run: {e}");
            }
            shared.worker_ended(&run, &process);
        });
        Ok(())
    }

    /// Stops the run's workers when its liveliness token vanishes.
    fn watch_run(self: &Arc<Self>, run: &str, graph: &str) {
        {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            let state = runs.entry(run.to_string()).or_insert_with(|| RunState {
                graph: graph.to_string(),
                workers: HashMap::new(),
                _alive: None,
                gone: false,
            });
            if state._alive.is_some() {
                return;
            }
        }
        // Declared without our lock held: its callback takes that lock.
        let weak = Arc::downgrade(self);
        let id = run.to_string();
        let sub = self
            .session
            .liveliness()
            .declare_subscriber(keys::run_alive(run))
            .callback(move |sample| {
                if sample.kind() == SampleKind::Delete
                    && let Some(s) = weak.upgrade()
                {
                    tracing::warn!("run {id} vanished (its `quiver run` is gone): stopping its processes here");
                    s.close_run(&id);
                }
            })
            .wait();
        match sub {
            Ok(sub) => {
                let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(state) = runs.get_mut(run)
                    && state._alive.is_none()
                {
                    state._alive = Some(sub);
                }
            }
            Err(e) => tracing::error!("watching run {run}: {e}"),
        }
    }

    fn close_run(&self, run: &str) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = runs.get_mut(run) {
            r.gone = true;
            for w in r.workers.values() {
                w.close();
            }
        }
    }

    fn worker_ended(&self, run: &str, process: &str) {
        let empty = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            let Some(r) = runs.get_mut(run) else { return };
            // A restarted worker may have replaced this one already.
            if r.workers.get(process).is_some_and(|w| w.exited.load(Ordering::SeqCst)) {
                r.workers.remove(process);
            }
            let empty = r.workers.is_empty();
            if empty {
                runs.remove(run);
            }
            empty
        };
        if empty {
            self.cache.forget_run(run);
            if let Some(after) = &self.config.after_run {
                after(run);
            }
        }
    }

    /// Closes every worker and waits (bounded) for them to exit.
    fn stop_all(&self) {
        let flags: Vec<Arc<AtomicBool>> = {
            let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            runs.values()
                .flat_map(|r| r.workers.values())
                .map(|w| {
                    w.close();
                    w.exited.clone()
                })
                .collect()
        };
        let deadline = Instant::now() + KILL_AFTER + Duration::from_secs(2);
        while flags.iter().any(|f| !f.load(Ordering::SeqCst)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl DaemonInfo {
    fn with_cpu(mut self, last: &Mutex<CpuSample>) -> DaemonInfo {
        // CPU use since the previous query, from /proc/stat; shown as load when unknown.
        if let Some((busy, total)) = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            let line = s.lines().next()?.strip_prefix("cpu ")?.to_string();
            let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            let total: u64 = v.iter().sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            Some((total - idle, total))
        }) {
            let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
            if total > l.total {
                // All CPUs together, 0..100 (since the previous query; since boot the first time).
                self.cpu_percent = Some(busy.saturating_sub(l.busy) as f32 * 100.0 / (total - l.total) as f32);
            }
            *l = CpuSample { busy, total };
        }
        self
    }
}

/// Calls `f` with every line `from` gives (without its newline) until it ends or `f` says stop.
pub(crate) fn for_each_line(from: impl std::io::Read, mut f: impl FnMut(String) -> bool) {
    let mut reader = BufReader::new(from);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if !f(line.trim_end_matches('\n').to_string()) {
                    break;
                }
            }
        }
    }
}

fn relay_lines(
    from: impl std::io::Read + Send + 'static,
    wrap: impl Fn(String) -> Up + Send + 'static,
    publisher: Arc<zenoh::pubsub::Publisher<'static>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || for_each_line(from, |text| publisher.put(encode(&wrap(text))).wait().is_ok()))
}

/// Waits for the worker; kills it `KILL_AFTER` after its stdin was closed.
fn wait_or_kill(
    child: &mut Child,
    closed_at: &Mutex<Option<Instant>>,
    kill_now: &AtomicBool,
) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if kill_now.load(Ordering::SeqCst) {
            let _ = child.kill();
            return child.wait().ok();
        }
        let overdue = closed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() > KILL_AFTER);
        if overdue {
            tracing::error!("a worker did not exit within {KILL_AFTER:?} of being stopped: killing it");
            let _ = child.kill();
            return child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a process ended (`killed by signal 11 (SIGSEGV)`).
pub fn describe(status: std::process::ExitStatus) -> String {
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

#[cfg(test)]
mod tests {
    use super::endpoint_host;

    #[test]
    fn endpoint_hosts() {
        assert_eq!(endpoint_host("tcp/10.0.0.2:7450"), Some("10.0.0.2"));
        assert_eq!(endpoint_host("tcp/[::1]:7450"), Some("[::1]"));
        assert_eq!(endpoint_host("tcp/0.0.0.0:7450#iface=eth0"), Some("0.0.0.0"));
        assert_eq!(endpoint_host("nonsense"), None);
    }
}
