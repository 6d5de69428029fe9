//! Serving a process's nodes: a Zenoh session of its own (listening on loopback, a port the
//! system picks), queryables for `params` and `set`, and the process's entry in the registry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiver_runtime::{Controls, SET_PARAM_WAIT};
use zenoh::Wait;
use zenoh::query::{Query, Queryable};

use crate::ControlError;
use crate::proto::{self, NodeParams, Param, SetParam, SetReply, TapReply, TapRequest, TapStats, Topic};
use crate::runs::{self, Entry, Registered};

/// Serves until dropped (the entry is removed, the session closed).
pub struct Server {
    session: zenoh::Session,
    _params: Queryable<()>,
    _set: Queryable<()>,
    _topics: Queryable<()>,
    _tap: Queryable<()>,
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
    /// ids it hosts (for the registry), `consumers` each `node/output`'s `node/input`s.
    pub fn start(
        run: &str,
        graph: &str,
        process: &str,
        nodes: Vec<String>,
        consumers: HashMap<String, Vec<String>>,
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
        let started = std::time::Instant::now();
        let c = controls.clone();
        let process_name = process.to_string();
        let topics = session
            .declare_queryable(proto::topics_key(run, process))
            .callback(move |q: Query| {
                let list: Vec<Topic> = c
                    .outputs()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| {
                        let topic = format!("{}/{}", o.node, o.output);
                        Topic {
                            consumers: consumers.get(&topic).cloned().unwrap_or_default(),
                            topic,
                            msg_type: o.msg_type,
                            process: process_name.clone(),
                            sent: o.sent,
                            uptime_ns: started.elapsed().as_nanos() as u64,
                        }
                    })
                    .collect();
                reply_json(&q, &list);
            })
            .wait()
            .map_err(|e| ControlError::Open(e.to_string()))?;
        let taps = Arc::new(Forwarders {
            session: session.clone(),
            controls: controls.clone(),
            run: run.into(),
            process: process.into(),
            running: Mutex::new(HashMap::new()),
        });
        let tap = session
            .declare_queryable(proto::tap_key(run, process))
            .callback(move |q: Query| {
                let req: Result<TapRequest, String> = match q.payload() {
                    Some(p) => serde_json::from_slice(&p.to_bytes()).map_err(|e| e.to_string()),
                    None => Err("no request".into()),
                };
                let reply = match req
                    .map_err(|e| format!("a malformed request: {e}"))
                    .and_then(|r| taps.start(&r))
                {
                    Ok(key) => TapReply {
                        key: Some(key),
                        error: None,
                    },
                    Err(e) => TapReply {
                        key: None,
                        error: Some(e),
                    },
                };
                reply_json(&q, &reply);
            })
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
            _topics: topics,
            _tap: tap,
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

/// How many packs' headers a tap holds for its forwarder (drained every millisecond or so)
/// before it loses some (for the statistics).
const TAP_CAPACITY: usize = 4096;
/// A forwarder with nobody subscribed for this long stops (its tap removed).
const IDLE_STOP: Duration = Duration::from_secs(3);

/// The taps being forwarded, by `node/output`: one per output, shared by every watcher.
struct Forwarders {
    session: zenoh::Session,
    controls: Controls,
    run: String,
    process: String,
    running: Mutex<HashMap<String, String>>,
}

impl Forwarders {
    /// Starts forwarding `node/output` (once) and returns the key it is published on.
    fn start(self: &Arc<Self>, r: &TapRequest) -> Result<String, String> {
        let topic = format!("{}/{}", r.node, r.output);
        let key = proto::tap_data_key(&self.run, &self.process, &r.node, &r.output);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains_key(&topic) {
            return Ok(key);
        }
        let tap = self
            .controls
            .tap(&r.node, &r.output, TAP_CAPACITY)
            .map_err(|e| e.to_string())?;
        let publisher = self
            .session
            .declare_publisher(key.clone())
            // A watcher that cannot keep up loses packs; it never slows the run.
            .congestion_control(zenoh::qos::CongestionControl::Drop)
            .wait()
            .map_err(|e| e.to_string())?;
        running.insert(topic.clone(), key.clone());
        let stats_publisher = self
            .session
            .declare_publisher(proto::tap_stats_key(&self.run, &self.process, &r.node, &r.output))
            .congestion_control(zenoh::qos::CongestionControl::Drop)
            .wait()
            .map_err(|e| e.to_string())?;
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("q:tap".into()).spawn(move || {
            forward(&tap, &publisher, &stats_publisher);
            me.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&topic);
        });
        if let Err(e) = spawned {
            running.remove(&format!("{}/{}", r.node, r.output));
            return Err(format!("cannot start the tap: {e}"));
        }
        Ok(key)
    }
}

/// Statistics of every pack a tap sees, over one window.
#[derive(Default)]
struct Window {
    stats: TapStats,
    /// The last pack seen (seq, stamp): periods chain across windows.
    last: Option<(u64, u64)>,
    /// The first pack seen in this window, and the last one of the window before.
    first_seq: Option<u64>,
    closed_seq: Option<u64>,
    sum: f64,
    sum_sq: f64,
    forwarded_bytes: u64,
}

impl Window {
    fn see(&mut self, seq: u64, stamp: u64) {
        let s = &mut self.stats;
        s.seen += 1;
        self.first_seq.get_or_insert(seq);
        if let Some((ps, pt)) = self.last
            && seq == ps + 1
        {
            let p = stamp.saturating_sub(pt);
            s.period_min_ns = if s.periods == 0 { p } else { s.period_min_ns.min(p) };
            s.period_max_ns = s.period_max_ns.max(p);
            s.periods += 1;
            self.sum += p as f64;
            self.sum_sq += (p as f64) * (p as f64);
        }
        self.last = Some((seq, stamp));
    }

    /// The window's figures.
    fn close(&mut self, window: Duration) -> TapStats {
        let mut s = std::mem::take(&mut self.stats);
        s.window_ns = window.as_nanos() as u64;
        let last_seq = self.last.map(|(seq, _)| seq);
        // Packs sent in the window, from their sequence numbers (seen or lost).
        s.packs = match (self.first_seq, last_seq, self.closed_seq) {
            (Some(_), Some(l), Some(c)) => l.saturating_sub(c),
            (Some(f), Some(l), None) => l - f + 1,
            _ => 0,
        };
        if s.periods > 0 {
            let n = s.periods as f64;
            s.period_mean_ns = self.sum / n;
            s.period_std_ns = (self.sum_sq / n - s.period_mean_ns.powi(2)).max(0.0).sqrt();
        }
        s.bytes = (self.forwarded_bytes * s.seen).checked_div(s.forwarded).unwrap_or(0);
        if self.first_seq.is_some() {
            self.closed_seq = last_seq;
        }
        self.first_seq = None;
        self.sum = 0.0;
        self.sum_sq = 0.0;
        self.forwarded_bytes = 0;
        s
    }
}

/// Forwards a tap's packs (at most FORWARD_MAX_PER_SECOND) and each second's statistics of all
/// of them, until nobody has listened for IDLE_STOP or the run ends.
fn forward(
    tap: &quiver_runtime::Tap,
    publisher: &zenoh::pubsub::Publisher<'_>,
    stats_publisher: &zenoh::pubsub::Publisher<'_>,
) {
    let mut last_match = std::time::Instant::now();
    let mut window_began = std::time::Instant::now();
    let mut w = Window::default();
    let listening = |p: &zenoh::pubsub::Publisher<'_>| p.matching_status().wait().is_ok_and(|m| m.matching());
    while tap.running() {
        // At most 64 packs held at a time (images are big), and FORWARD_MAX_PER_SECOND a second.
        tap.want(proto::FORWARD_MAX_PER_SECOND.saturating_sub(w.stats.forwarded).min(64) as usize);
        let packs = tap.drain(Duration::from_millis(50), |seq, stamp| w.see(seq, stamp));
        for t in packs {
            let p = t.open();
            let id = quiver_runtime::PackId {
                name: p.name,
                msg_type: p.msg_type,
                source_node: p.source_node,
                source_port: p.source_port,
            };
            match quiver_runtime::wire::encode(&id, &p.header, p.data.as_ref()) {
                Ok(frame) => {
                    let bytes = frame.to_vec();
                    w.forwarded_bytes += bytes.len() as u64;
                    w.stats.forwarded += 1;
                    if let Err(e) = publisher.put(bytes).wait() {
                        tracing::debug!("tap {}: {e}", publisher.key_expr());
                    }
                }
                Err(e) => tracing::warn!("tap of `{}/{}`: {e}", id.source_node, id.source_port),
            }
        }
        let elapsed = window_began.elapsed();
        if elapsed >= Duration::from_secs(1) {
            window_began = std::time::Instant::now();
            let stats = w.close(elapsed);
            if let Err(e) = stats_publisher
                .put(serde_json::to_vec(&stats).unwrap_or_default())
                .wait()
            {
                tracing::debug!("tap stats: {e}");
            }
            if listening(publisher) || listening(stats_publisher) {
                last_match = window_began;
            } else if last_match.elapsed() >= IDLE_STOP {
                return;
            }
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
