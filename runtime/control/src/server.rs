//! Serving a process's nodes: a Zenoh session of its own (listening on loopback, a port the
//! system picks), queryables for `params` and `set`, and the process's entry in the registry.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiver_runtime::{Controls, SET_PARAM_WAIT};
use zenoh::Wait;
use zenoh::query::{Query, Queryable};

use crate::ControlError;
use crate::proto::{self, NodeParams, Param, SetParam, SetReply};
use crate::runs::{self, Entry, Registered};

/// Serves until dropped (the entry is removed, the session closed).
pub struct Server {
    session: zenoh::Session,
    _params: Queryable<()>,
    _set: Queryable<()>,
    _entry: Registered,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

/// A session on loopback only, no scouting: reached through the registry's endpoints.
pub(crate) fn config(listen: &[String], connect: &[String]) -> Result<zenoh::Config, ControlError> {
    let mut c = zenoh::Config::default();
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    for (k, v) in [
        ("mode", r#""peer""#.to_string()),
        ("listen/endpoints", list(listen)),
        ("connect/endpoints", list(connect)),
        ("scouting/multicast/enabled", "false".into()),
        ("scouting/gossip/enabled", "false".into()),
        // Control traffic only: no shared memory, no timestamps needed.
        ("transport/shared_memory/enabled", "false".into()),
    ] {
        c.insert_json5(k, &v)
            .map_err(|e| ControlError::Open(format!("{k}: {e}")))?;
    }
    Ok(c)
}

impl Server {
    /// Serves `controls` as process `process` of run `run` (graph `graph`); `nodes` are the
    /// ids it hosts (for the registry).
    pub fn start(
        run: &str,
        graph: &str,
        process: &str,
        nodes: Vec<String>,
        controls: Controls,
    ) -> Result<Server, ControlError> {
        let session = zenoh::open(config(&["tcp/127.0.0.1:0".into()], &[])?)
            .wait()
            .map_err(|e| ControlError::Open(e.to_string()))?;
        let endpoints: Vec<String> = session
            .info()
            .locators()
            .wait()
            .into_iter()
            .map(|l| l.to_string())
            .collect();
        let process_name = process.to_string();
        let c = controls.clone();
        let params = session
            .declare_queryable(proto::params_key(run, process))
            .callback(move |q: Query| answer_params(&c, &process_name, q))
            .wait()
            .map_err(|e| ControlError::Open(e.to_string()))?;
        let c = Arc::new(controls);
        let set = session
            .declare_queryable(proto::set_key(run, process))
            .callback(move |q: Query| {
                // Setting waits for the node's thread (up to SET_PARAM_WAIT): not on Zenoh's.
                let c = c.clone();
                let spawned = std::thread::Builder::new()
                    .name("q:param".into())
                    .spawn(move || answer_set(&c, q));
                if let Err(e) = spawned {
                    tracing::warn!("cannot answer a parameter change: {e}");
                }
            })
            .wait()
            .map_err(|e| ControlError::Open(e.to_string()))?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let entry = runs::register(&Entry {
            run: run.into(),
            graph: graph.into(),
            process: process.into(),
            pid: std::process::id(),
            endpoints,
            started,
            nodes,
        })?;
        Ok(Server {
            session,
            _params: params,
            _set: set,
            _entry: entry,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.session.close().wait() {
            tracing::debug!("closing the control session: {e}");
        }
    }
}

fn reply_json<T: serde::Serialize>(q: &Query, value: &T) {
    let body = serde_json::to_vec(value).unwrap_or_default();
    if let Err(e) = q.reply(q.key_expr().clone(), body).wait() {
        tracing::debug!("replying to {}: {e}", q.key_expr());
    }
}

fn answer_params(c: &Controls, process: &str, q: Query) {
    let nodes: Vec<NodeParams> = match c.nodes() {
        Ok(n) => n
            .into_iter()
            .map(|n| NodeParams {
                node: n.node,
                operator: n.operator,
                process: process.into(),
                params: n
                    .params
                    .into_iter()
                    .map(|p| Param {
                        name: p.name,
                        kind: p.kind.to_string(),
                        value: proto::value_text(&p.value),
                        default: p.default.as_ref().map(proto::value_text),
                        range: p.range,
                        doc: p.doc,
                    })
                    .collect(),
            })
            .collect(),
        // Not started yet or ended: nothing to show.
        Err(_) => Vec::new(),
    };
    reply_json(&q, &nodes);
}

fn answer_set(c: &Controls, q: Query) {
    let req: Result<SetParam, String> = match q.payload() {
        Some(p) => serde_json::from_slice(&p.to_bytes()).map_err(|e| e.to_string()),
        None => Err("no request".into()),
    };
    let reply = match req {
        Err(e) => SetReply {
            value: None,
            error: Some(format!("a malformed request: {e}")),
        },
        Ok(r) => match c
            .parse_value(&r.node, &r.name, &r.value)
            .and_then(|v| c.set_param(&r.node, &r.name, v.clone(), SET_PARAM_WAIT).map(|()| v))
        {
            Ok(v) => SetReply {
                value: Some(proto::value_text(&v)),
                error: None,
            },
            Err(e) => SetReply {
                value: None,
                error: Some(e.to_string()),
            },
        },
    };
    reply_json(&q, &reply);
}
