//! The client side of the control plane (`quiver run`, `quiver check --connect`, `quiver
//! machines`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zenoh::Wait;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::{CongestionControl, Reliability};
use zenoh::query::QueryTarget;
use zenoh::sample::SampleKind;

use crate::proto::{
    DaemonInfo, Detach, DetachedInfo, Down, OutLine, Prepare, Reply, Reserve, RunRef, Up, decode, encode,
};
use crate::{ControlError, keys, session};

fn zerr(what: &str) -> impl Fn(zenoh::Error) -> ControlError + '_ {
    move |e| ControlError::Zenoh(format!("{what}: {e}"))
}

/// A control-plane session to the daemons.
pub struct Client {
    session: zenoh::Session,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("endpoints", &self.endpoints).finish()
    }
}

/// Keeps a run visible to the daemons (its liveliness token) and serves its files.
pub struct RunHandle {
    _token: LivelinessToken,
    files: Arc<Mutex<HashMap<String, PathBuf>>>,
}

impl RunHandle {
    /// Offers one more file (by its SHA-256) to the daemons.
    pub fn offer(&self, sha256: &str, path: PathBuf) {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256.to_string(), path);
    }
}

/// Talks to one remote worker through its daemon.
pub struct Remote {
    down: Publisher<'static>,
    _up: Subscriber<()>,
}

impl Remote {
    pub fn send(&self, msg: &Down) -> Result<(), ControlError> {
        self.down
            .put(encode(msg))
            .wait()
            .map_err(zerr("sending to a remote worker"))
    }
}

/// Follows a detached run's live output (until dropped).
pub struct Follow {
    _sub: Subscriber<()>,
}

/// Watches daemons come and go (until dropped).
pub struct Watch {
    _sub: Subscriber<()>,
}

impl Client {
    /// Connects to the first daemon of `endpoints` that answers (over TLS with `tls`).
    pub fn connect(endpoints: &[String], tls: Option<&quiver_zenoh::Tls>) -> Result<Client, ControlError> {
        let config = session::client_config(endpoints, tls)?;
        let session = zenoh::open(config).wait().map_err(|e| ControlError::Open {
            endpoints: endpoints.join(", "),
            reason: crate::plain(&e.to_string()),
        })?;
        Ok(Client {
            session,
            endpoints: endpoints.to_vec(),
        })
    }

    /// Every daemon that answers within `timeout`, by name.
    pub fn machines(&self, timeout: Duration) -> Result<Vec<DaemonInfo>, ControlError> {
        let replies = self
            .session
            .get(keys::DAEMON_INFO_ALL)
            .target(QueryTarget::All)
            .consolidation(zenoh::query::ConsolidationMode::None)
            .timeout(timeout)
            .wait()
            .map_err(zerr("asking the daemons"))?;
        let mut out: Vec<DaemonInfo> = Vec::new();
        while let Ok(reply) = replies.recv() {
            match reply.result() {
                Ok(sample) => match decode::<DaemonInfo>(&sample.payload().to_bytes()) {
                    Ok(info) => {
                        if !out.iter().any(|d| d.name == info.name) {
                            out.push(info);
                        }
                    }
                    Err(e) => tracing::warn!("a daemon at {}: {e}", sample.key_expr()),
                },
                Err(e) => tracing::warn!(
                    "a daemon refused `info`: {}",
                    String::from_utf8_lossy(&e.payload().to_bytes())
                ),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn ask(&self, key: &str, payload: Vec<u8>, timeout: Duration) -> Result<Reply, String> {
        let replies = self
            .session
            .get(key)
            .payload(payload)
            .timeout(timeout)
            .wait()
            .map_err(|e| format!("querying {key}: {e}"))?;
        match replies.recv() {
            Ok(reply) => match reply.result() {
                Ok(sample) => decode::<Reply>(&sample.payload().to_bytes()),
                Err(e) => Err(String::from_utf8_lossy(&e.payload().to_bytes()).into_owned()),
            },
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// `count` data-plane endpoints on daemon `name`'s host.
    pub fn reserve(&self, name: &str, run: &str, count: usize) -> Result<Vec<String>, String> {
        let req = Reserve { run: run.into(), count };
        match self.ask(&keys::daemon_reserve(name), encode(&req), Duration::from_secs(5))? {
            Reply::Reserved { endpoints } if endpoints.len() == count => Ok(endpoints),
            Reply::Refused { message } => Err(message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// Prepares a process on daemon `name`: Ok once its worker runs (its readiness comes as a
    /// report on the run's `up` key).
    pub fn prepare(&self, name: &str, req: &Prepare, timeout: Duration) -> Result<(), String> {
        match self.ask(&keys::daemon_prepare(name), encode(req), timeout)? {
            Reply::Started => Ok(()),
            Reply::Refused { message } => Err(message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// Hands a whole run to daemon `name` (`quiver run --detach`): Ok once it runs there.
    pub fn detach(&self, name: &str, req: &Detach, timeout: Duration) -> Result<(), String> {
        match self.ask(&keys::daemon_detach(name), encode(req), timeout)? {
            Reply::Detached => Ok(()),
            Reply::Refused { message } => Err(message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// A detached run's output so far (lines numbered below `next`) and state.
    pub fn backlog(&self, name: &str, run: &str) -> Result<(DetachedInfo, Vec<OutLine>, u64), String> {
        let req = RunRef { run: run.into() };
        match self.ask(&keys::daemon_attach(name), encode(&req), Duration::from_secs(10))? {
            Reply::Backlog { info, lines, next } => Ok((info, lines, next)),
            Reply::Refused { message } => Err(message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// Stops a detached run (it drains first) and answers how it ended.
    pub fn stop_detached(&self, name: &str, run: &str, timeout: Duration) -> Result<DetachedInfo, String> {
        let req = RunRef { run: run.into() };
        match self.ask(&keys::daemon_stop(name), encode(&req), timeout)? {
            Reply::Stopped { info } => Ok(info),
            Reply::Refused { message } => Err(message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// Calls `on` with every line a detached run prints from now on (on a Zenoh thread).
    pub fn follow(&self, run: &str, on: impl Fn(OutLine) + Send + Sync + 'static) -> Result<Follow, ControlError> {
        let sub = self
            .session
            .declare_subscriber(keys::detached_out(run))
            .callback(move |sample| match decode::<OutLine>(&sample.payload().to_bytes()) {
                Ok(line) => on(line),
                Err(e) => tracing::error!("from a detached run: {e}"),
            })
            .wait()
            .map_err(zerr("following a detached run"))?;
        Ok(Follow { _sub: sub })
    }

    /// Declares the run (its liveliness token) and serves the files it offers by SHA-256.
    pub fn open_run(&self, run: &str) -> Result<RunHandle, ControlError> {
        let token = self
            .session
            .liveliness()
            .declare_token(keys::run_alive(run))
            .wait()
            .map_err(zerr("declaring the run"))?;
        let files: Arc<Mutex<HashMap<String, PathBuf>>> = Arc::default();
        let queryable = self
            .session
            .declare_queryable(format!("quiver/run/{run}/blob/*"))
            .wait()
            .map_err(zerr("offering the run's files"))?;
        let served = files.clone();
        // Files are read on a thread of ours, not on Zenoh's.
        std::thread::Builder::new()
            .name("q-blobs".into())
            .spawn(move || {
                while let Ok(query) = queryable.recv() {
                    let sha = keys::last(query.key_expr().as_str()).to_string();
                    let path = served.lock().unwrap_or_else(|p| p.into_inner()).get(&sha).cloned();
                    let result = match path {
                        Some(p) => std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display())),
                        None => Err(format!("this run offers no file {sha}")),
                    };
                    let sent = match result {
                        Ok(bytes) => query.reply(query.key_expr().clone(), bytes).wait(),
                        Err(e) => query.reply_err(e).wait(),
                    };
                    if let Err(e) = sent {
                        tracing::warn!("answering a file query: {e}");
                    }
                }
            })
            .map_err(|e| ControlError::Zenoh(format!("starting the file server: {e}")))?;
        Ok(RunHandle { _token: token, files })
    }

    /// The channel to one remote worker: what it says reaches `on_up` (on a Zenoh thread).
    pub fn remote(
        &self,
        run: &str,
        process: &str,
        incarnation: u32,
        on_up: impl Fn(Up) + Send + Sync + 'static,
    ) -> Result<Remote, ControlError> {
        let up = self
            .session
            .declare_subscriber(keys::run_up(run, process, incarnation))
            .callback(move |sample| match decode::<Up>(&sample.payload().to_bytes()) {
                Ok(msg) => on_up(msg),
                Err(e) => tracing::error!("from a remote worker: {e}"),
            })
            .wait()
            .map_err(zerr("listening to a remote worker"))?;
        let down = self
            .session
            .declare_publisher(keys::run_down(run, process, incarnation))
            .reliability(Reliability::Reliable)
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(zerr("talking to a remote worker"))?;
        Ok(Remote { down, _up: up })
    }

    /// Calls `on(name, alive)` for every daemon seen now (alive) and every later change.
    pub fn watch_daemons(&self, on: impl Fn(&str, bool) + Send + Sync + 'static) -> Result<Watch, ControlError> {
        let sub = self
            .session
            .liveliness()
            .declare_subscriber(keys::DAEMON_ALIVE_ALL)
            .history(true)
            .callback(move |sample| on(keys::last(sample.key_expr().as_str()), sample.kind() == SampleKind::Put))
            .wait()
            .map_err(zerr("watching the daemons"))?;
        Ok(Watch { _sub: sub })
    }

    pub fn close(&self) {
        let _ = self.session.close().wait();
    }
}
