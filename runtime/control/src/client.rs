//! Asking a run's processes: connect to the endpoints in their registry entries, query.

use std::time::Duration;

use zenoh::Wait;

use crate::ControlError;
use crate::proto::{self, NodeParams, SetParam, SetReply, TapReply, TapRequest, TapStats, Topic};
use crate::runs::Entry;

/// How long one question waits for its answer (a `set` waits for the node's thread too).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// A session connected to every process of one run.
pub struct Client {
    session: zenoh::Session,
    procs: Vec<Entry>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("procs", &self.procs)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the processes of one run (from [`crate::runs::find`]).
    pub fn connect(procs: Vec<Entry>) -> Result<Client, ControlError> {
        let endpoints: Vec<String> = procs.iter().flat_map(|e| e.endpoints.iter().cloned()).collect();
        let session = zenoh::open(crate::server::config(&[], &endpoints)?)
            .wait()
            .map_err(|e| ControlError::Open(e.to_string()))?;
        Ok(Client { session, procs })
    }

    pub fn run(&self) -> &str {
        self.procs.first().map_or("", |e| e.run.as_str())
    }

    pub fn graph(&self) -> &str {
        self.procs.first().map_or("", |e| e.graph.as_str())
    }

    fn ask(&self, key: &str, payload: Option<Vec<u8>>) -> Result<Vec<u8>, ControlError> {
        let err = |reason: String| ControlError::Query {
            what: key.into(),
            reason,
        };
        // The connection to a process is made in the background: retry until it answers.
        let deadline = std::time::Instant::now() + ASK_TIMEOUT;
        loop {
            let mut get = self.session.get(key).timeout(ASK_TIMEOUT);
            if let Some(p) = &payload {
                get = get.payload(p.clone());
            }
            let replies = get.wait().map_err(|e| err(e.to_string()))?;
            if let Ok(reply) = replies.recv() {
                return match reply.result() {
                    Ok(sample) => Ok(sample.payload().to_bytes().to_vec()),
                    Err(e) => Err(err(String::from_utf8_lossy(&e.payload().to_bytes()).into_owned())),
                };
            }
            if std::time::Instant::now() >= deadline {
                return Err(err(format!("no answer within {ASK_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks process `e` on `key` and reads its JSON answer.
    fn ask_json<T: serde::de::DeserializeOwned>(
        &self,
        e: &Entry,
        key: &str,
        payload: Option<Vec<u8>>,
    ) -> Result<T, ControlError> {
        let body = self.ask(key, payload)?;
        serde_json::from_slice(&body).map_err(|err| ControlError::Query {
            what: format!("process `{}`", e.process),
            reason: format!("its answer does not read: {err}"),
        })
    }

    /// Every node of the run with its parameters, in process then graph order.
    pub fn params(&self) -> Result<Vec<NodeParams>, ControlError> {
        let mut out = Vec::new();
        for e in &self.procs {
            let nodes: Vec<NodeParams> = self.ask_json(e, &proto::params_key(&e.run, &e.process), None)?;
            out.extend(nodes);
        }
        Ok(out)
    }

    /// Sets `node`'s parameter `name` to `value` (written as in a graph file); the value in
    /// force after it.
    pub fn set(&self, node: &str, name: &str, value: &str) -> Result<String, ControlError> {
        let e = self.process_of(node)?;
        let req = SetParam {
            node: node.into(),
            name: name.into(),
            value: value.into(),
        };
        let reply: SetReply = self.ask_json(
            e,
            &proto::set_key(&e.run, &e.process),
            Some(serde_json::to_vec(&req).unwrap_or_default()),
        )?;
        match (reply.value, reply.error) {
            (_, Some(e)) => Err(ControlError::Refused(e)),
            (Some(v), None) => Ok(v),
            (None, None) => Err(ControlError::Refused("no answer".into())),
        }
    }
}

/// Packs of a tapped output, as they arrive (until dropped).
pub struct Watch {
    _sub: zenoh::pubsub::Subscriber<()>,
    rx: std::sync::mpsc::Receiver<(usize, Result<quiver_runtime::wire::WirePack, String>)>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// The next pack (its frame's size in bytes, and the decoded pack or why it did not
    /// decode), waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> Option<(usize, Result<quiver_runtime::wire::WirePack, String>)> {
        self.rx.recv_timeout(wait).ok()
    }
}

/// Statistics of a tapped output, one a second (until dropped).
pub struct StatsWatch {
    _sub: zenoh::pubsub::Subscriber<()>,
    rx: std::sync::mpsc::Receiver<TapStats>,
}

impl std::fmt::Debug for StatsWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsWatch").finish_non_exhaustive()
    }
}

impl StatsWatch {
    pub fn next(&self, wait: Duration) -> Option<TapStats> {
        self.rx.recv_timeout(wait).ok()
    }
}

impl Client {
    /// Every output of the run: type, packs sent, consumers.
    pub fn topics(&self) -> Result<Vec<Topic>, ControlError> {
        let mut out = Vec::new();
        for e in &self.procs {
            let topics: Vec<Topic> = self.ask_json(e, &proto::topics_key(&e.run, &e.process), None)?;
            out.extend(topics);
        }
        Ok(out)
    }

    /// Watches output `node/output`: every pack it sends from now on, while the watcher keeps
    /// up (a watcher that falls behind loses packs, the run never waits).
    pub fn watch(&self, node: &str, output: &str) -> Result<Watch, ControlError> {
        let e = self.process_of(node)?;
        // Subscribe first, then ask: nothing sent after the answer is missed.
        let key = proto::tap_data_key(&e.run, &e.process, node, output);
        let (tx, rx) = std::sync::mpsc::sync_channel(1024);
        let sub = self
            .session
            .declare_subscriber(key)
            .callback(move |sample| {
                let bytes = sample.payload().to_bytes();
                let frame = arrow_buffer::Buffer::from(bytes.to_vec());
                let decoded = quiver_runtime::wire::decode(&frame).map_err(|e| e.to_string());
                let _ = tx.try_send((bytes.len(), decoded));
            })
            .wait()
            .map_err(|err| ControlError::Open(err.to_string()))?;
        self.start_tap(e, node, output)?;
        Ok(Watch { _sub: sub, rx })
    }

    /// Each second's statistics of output `node/output`, computed where it runs on every pack.
    pub fn watch_stats(&self, node: &str, output: &str) -> Result<StatsWatch, ControlError> {
        let e = self.process_of(node)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let sub = self
            .session
            .declare_subscriber(proto::tap_stats_key(&e.run, &e.process, node, output))
            .callback(move |sample| {
                if let Ok(s) = serde_json::from_slice::<TapStats>(&sample.payload().to_bytes()) {
                    let _ = tx.try_send(s);
                }
            })
            .wait()
            .map_err(|err| ControlError::Open(err.to_string()))?;
        self.start_tap(e, node, output)?;
        Ok(StatsWatch { _sub: sub, rx })
    }

    fn process_of(&self, node: &str) -> Result<&Entry, ControlError> {
        self.procs
            .iter()
            .find(|e| e.nodes.iter().any(|n| n == node))
            .ok_or_else(|| {
                let all: Vec<&str> = self
                    .procs
                    .iter()
                    .flat_map(|e| e.nodes.iter().map(String::as_str))
                    .collect();
                ControlError::Refused(format!(
                    "run {} has no node `{node}` (its nodes: {})",
                    self.run(),
                    all.join(", ")
                ))
            })
    }

    fn start_tap(&self, e: &Entry, node: &str, output: &str) -> Result<(), ControlError> {
        let req = TapRequest {
            node: node.into(),
            output: output.into(),
        };
        let reply: TapReply = self.ask_json(
            e,
            &proto::tap_key(&e.run, &e.process),
            Some(serde_json::to_vec(&req).unwrap_or_default()),
        )?;
        if let Some(err) = reply.error {
            return Err(ControlError::Refused(err));
        }
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.session.close().wait();
    }
}
