//! Asking a run's processes: connect to the endpoints in their registry entries, query.

use std::time::Duration;

use zenoh::Wait;

use crate::ControlError;
use crate::proto::{self, NodeParams, SetParam, SetReply};
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

    /// Every node of the run with its parameters, in process then graph order.
    pub fn params(&self) -> Result<Vec<NodeParams>, ControlError> {
        let mut out = Vec::new();
        for e in &self.procs {
            let body = self.ask(&proto::params_key(&e.run, &e.process), None)?;
            let nodes: Vec<NodeParams> = serde_json::from_slice(&body).map_err(|err| ControlError::Query {
                what: format!("process `{}`", e.process),
                reason: format!("its answer does not read: {err}"),
            })?;
            out.extend(nodes);
        }
        Ok(out)
    }

    /// Sets `node`'s parameter `name` to `value` (written as in a graph file); the value in
    /// force after it.
    pub fn set(&self, node: &str, name: &str, value: &str) -> Result<String, ControlError> {
        let Some(e) = self.procs.iter().find(|e| e.nodes.iter().any(|n| n == node)) else {
            let all: Vec<&str> = self
                .procs
                .iter()
                .flat_map(|e| e.nodes.iter().map(String::as_str))
                .collect();
            return Err(ControlError::Refused(format!(
                "run {} has no node `{node}` (its nodes: {})",
                self.run(),
                all.join(", ")
            )));
        };
        let req = SetParam {
            node: node.into(),
            name: name.into(),
            value: value.into(),
        };
        let body = self.ask(
            &proto::set_key(&e.run, &e.process),
            Some(serde_json::to_vec(&req).unwrap_or_default()),
        )?;
        let reply: SetReply = serde_json::from_slice(&body).map_err(|err| ControlError::Query {
            what: format!("process `{}`", e.process),
            reason: format!("its answer does not read: {err}"),
        })?;
        match (reply.value, reply.error) {
            (_, Some(e)) => Err(ControlError::Refused(e)),
            (Some(v), None) => Ok(v),
            (None, None) => Err(ControlError::Refused("no answer".into())),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.session.close().wait();
    }
}
