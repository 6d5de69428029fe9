//! The `ros2-bridge` operator: each port the graph declares for the node is one ROS 2 topic.
//! An input port is published on its topic (every message of every pack it receives); an output
//! port emits what ROS nodes publish on its topic, drained on every `poll` tick.

use std::collections::HashSet;

use quiver_msgs::{Registry, cdr};
use quiver_operator::GraphPort;
use quiver_operator::prelude::*;
use rustdds::RTPSEntity;
use rustdds::no_key::{DataWriter, SimpleDataReader};

use crate::dds::{self, Gaps, Participant, Passthrough, Placement, Qos, RawCdr, dds_topic_name};
use crate::graph;

/// A graph input published on a ROS topic.
struct ToRos {
    port: String,
    ros_type: String,
    topic: String,
    writer: DataWriter<RawCdr, Passthrough>,
}

/// A ROS topic emitted on a graph output.
struct FromRos {
    port: String,
    ros_type: String,
    topic: String,
    reader: SimpleDataReader<RawCdr, Passthrough>,
    gaps: Gaps,
}

pub struct Ros2Bridge {
    // Endpoints before the participant: they are dropped first.
    to_ros: Vec<ToRos>,
    from_ros: Vec<FromRos>,
    /// Keeps the bridge listed as a ROS node (answers ROS nodes that start later).
    _announcement: DataWriter<RawCdr, Passthrough>,
    _participant: Participant,
    published: u64,
    received: u64,
    rejected: u64,
    /// Messages ROS publishers sent that never reached the bridge (sequence gaps).
    lost: u64,
    gap_events: u64,
    /// Incompatibility reports already logged (each once).
    said: HashSet<String>,
}

/// The types a port may have: every msg-defs type the CDR codec carries.
fn carried_types() -> Vec<String> {
    let registry = Registry::builtin();
    registry
        .names()
        .filter(|t| cdr::check_supported(registry, t).is_ok())
        .map(String::from)
        .collect()
}

/// A port's QoS from its settings: `qos: default | sensor_data`, then `reliability`,
/// `durability` and `depth` override single policies.
fn port_qos(port: &GraphPort) -> Result<Qos> {
    let bad = |key: &str, value: &str, allowed: &str| {
        Error::msg(format!(
            "port `{}`: `{key}: {value}` is not one of {allowed}",
            port.name
        ))
    };
    let mut qos = match port.setting("qos").unwrap_or("default") {
        "default" => Qos::DEFAULT,
        "sensor_data" => Qos::SENSOR_DATA,
        other => return Err(bad("qos", other, "default, sensor_data")),
    };
    if let Some(v) = port.setting("reliability") {
        qos.reliable = match v {
            "reliable" => true,
            "best_effort" => false,
            other => return Err(bad("reliability", other, "reliable, best_effort")),
        };
    }
    if let Some(v) = port.setting("durability") {
        qos.transient_local = match v {
            "volatile" => false,
            "transient_local" => true,
            other => return Err(bad("durability", other, "volatile, transient_local")),
        };
    }
    if let Some(v) = port.setting("depth") {
        qos.depth = v
            .parse::<i32>()
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| bad("depth", v, "a whole number >= 1"))?;
    }
    Ok(qos)
}

impl Ros2Bridge {
    fn log_news(&mut self, ctx: &mut Context<'_>, news: Vec<String>) {
        for line in news {
            if self.said.insert(line.clone()) {
                ctx.warn(&line);
                ctx.report("qos_incompatible", self.said.len());
            }
        }
    }
}

impl Operator for Ros2Bridge {
    fn manifest() -> Manifest {
        Manifest::new(
            "ros2-bridge",
            env!("CARGO_PKG_VERSION"),
            "ROS 2 topics as graph ports over DDS (pure Rust, no ROS installation)",
        )
        .timer(
            "poll",
            "takes what ROS nodes published and emits it; outputs receive nothing unless it is bound",
        )
        .param(
            ParamSpec::int("domain", -1)
                .range_int(-1, 232)
                .doc("DDS domain; -1: ROS_DOMAIN_ID, else 0"),
        )
        .param(ParamSpec::string("namespace", "/").doc("ROS namespace of the node and of relative topic names"))
        .param(
            ParamSpec::string("node_name", "")
                .doc("ROS node name (`ros2 node list`); empty: the graph node's id, - as _"),
        )
        .graph_ports("one per topic: an input is published on `topic`, an output receives what ROS nodes publish there")
        .port_setting("topic", "ROS topic name, e.g. /cmd_vel (default: / + the port name)")
        .port_setting(
            "qos",
            "default (reliable, volatile, keep last 10) or sensor_data (best effort, keep last 5)",
        )
        .port_setting("reliability", "reliable or best_effort (overrides `qos`)")
        .port_setting("durability", "volatile or transient_local (overrides `qos`)")
        .port_setting("depth", "history depth, keep last N (overrides `qos`)")
        .port_types(carried_types())
    }

    fn new(ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let node_name = match p.string("node_name")? {
            "" => {
                let name = graph::node_name_from_id(ctx.node_id());
                graph::check_node_name(&name)
                    .map_err(|e| Error::msg(format!("the ROS node name from the node's id: {e}; set `node_name`")))?;
                name
            }
            name => {
                graph::check_node_name(name).map_err(|e| Error::msg(format!("node_name: {e}")))?;
                name.to_string()
            }
        };
        let namespace = p.string("namespace")?.to_string();
        graph::check_namespace(&namespace).map_err(|e| Error::msg(format!("namespace: {e}")))?;
        let domain = match p.int("domain")? {
            -1 => None,
            d => Some(d as u16),
        };
        let placement = Placement::resolve(domain, |k| std::env::var(k).ok()).map_err(|e| Error::msg(e.to_string()))?;
        let participant =
            Participant::new(placement.domain, placement.localhost_only).map_err(|e| Error::msg(e.to_string()))?;
        let mut to_ros = Vec::new();
        let mut from_ros = Vec::new();
        for port in p.graph_ports() {
            let topic = match port.setting("topic") {
                Some(t) => t.to_string(),
                None => format!("/{}", port.name),
            };
            let dds_topic = dds_topic_name(&topic, &namespace);
            let qos = port_qos(port)?;
            let ros_type = port.msg_type.clone();
            cdr::check_supported(Registry::builtin(), &ros_type).map_err(|e| Error::msg(e.to_string()))?;
            if port.output {
                let reader = participant
                    .reader(&dds_topic, &ros_type, qos)
                    .map_err(|e| Error::msg(e.to_string()))?;
                from_ros.push(FromRos {
                    port: port.name.clone(),
                    ros_type,
                    topic,
                    reader,
                    gaps: Gaps::default(),
                });
            } else {
                let writer = participant
                    .writer(&dds_topic, &ros_type, qos)
                    .map_err(|e| Error::msg(e.to_string()))?;
                to_ros.push(ToRos {
                    port: port.name.clone(),
                    ros_type,
                    topic,
                    writer,
                });
            }
        }
        // Listed as a ROS node with these endpoints (`ros2 node info`).
        let readers: Vec<[u8; 16]> = from_ros.iter().map(|f| f.reader.guid().to_bytes()).collect();
        let writers: Vec<[u8; 16]> = to_ros.iter().map(|t| t.writer.guid().to_bytes()).collect();
        let announcement = participant
            .announce_node(&namespace, &node_name, &readers, &writers)
            .map_err(|e| Error::msg(e.to_string()))?;
        Ok(Ros2Bridge {
            to_ros,
            from_ros,
            _announcement: announcement,
            _participant: participant,
            published: 0,
            received: 0,
            rejected: 0,
            lost: 0,
            gap_events: 0,
            said: HashSet::new(),
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, input: &str, pack: DataPack) -> Result<()> {
        let Some(out) = self.to_ros.iter().find(|t| t.port == input) else {
            bail!("input `{input}` is not a topic of this bridge");
        };
        let data = pack.data()?;
        for row in 0..data.len() {
            let body = cdr::encode_body(Registry::builtin(), &out.ros_type, data.as_ref(), row)
                .map_err(|e| Error::msg(format!("topic {}: {e}", out.topic)))?;
            out.writer
                .write(
                    RawCdr {
                        big_endian: false,
                        body,
                    },
                    None,
                )
                .map_err(|e| Error::msg(format!("publishing on {}: {e}", out.topic)))?;
            self.published += 1;
        }
        ctx.report("published", self.published);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        let registry = Registry::builtin();
        let mut news = Vec::new();
        let mut arrived = Vec::new();
        let mut lost = Vec::new();
        for from in &mut self.from_ros {
            news.push(dds::reader_news(&from.topic, &from.reader));
            loop {
                match from.reader.try_take_one() {
                    Ok(Some(sample)) => {
                        let skipped = from
                            .gaps
                            .see(sample.writer_guid.to_bytes(), i64::from(sample.sequence_number));
                        if skipped > 0 {
                            lost.push((from.topic.clone(), skipped));
                        }
                        let RawCdr { big_endian, body } = sample.sample;
                        arrived.push((
                            from.port.clone(),
                            from.topic.clone(),
                            cdr::decode_body(registry, &from.ros_type, &body, big_endian),
                        ));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // A payload RustDDS could not take (e.g. an encoding we do not read).
                        arrived.push((
                            from.port.clone(),
                            from.topic.clone(),
                            Err(cdr::CdrError {
                                at: from.ros_type.clone(),
                                message: e.to_string(),
                            }),
                        ));
                        break;
                    }
                }
            }
        }
        for to in &self.to_ros {
            news.push(dds::writer_news(&to.topic, &to.writer));
        }
        for n in news {
            self.log_news(ctx, n);
        }
        for (topic, skipped) in lost {
            self.lost += skipped;
            // Each gap is logged (the first 10, then every 100th): a reliable topic that loses
            // messages needs attention (see README: big messages and `qos`).
            self.gap_events += 1;
            if self.gap_events <= 10 || self.gap_events.is_multiple_of(100) {
                ctx.warn(&format!(
                    "topic {topic}: {skipped} message(s) from a ROS publisher never arrived ({} so far)",
                    self.lost
                ));
            }
            ctx.report("lost", self.lost);
        }
        for (port, topic, decoded) in arrived {
            match decoded {
                Ok(array) => {
                    self.received += 1;
                    ctx.emit(&port, array)?;
                }
                Err(e) => {
                    // Bad data from the network: counted and logged, never a crash.
                    self.rejected += 1;
                    if self.rejected <= 10 || self.rejected.is_multiple_of(1000) {
                        ctx.warn(&format!(
                            "topic {topic}: rejected a malformed message ({} so far): {e}",
                            self.rejected
                        ));
                    }
                    ctx.report("rejected", self.rejected);
                }
            }
        }
        if self.received > 0 {
            ctx.report("received", self.received);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(settings: &[(&str, &str)]) -> GraphPort {
        GraphPort {
            name: "scan".into(),
            msg_type: "sensor_msgs/LaserScan".into(),
            output: false,
            settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn qos_settings() {
        assert_eq!(port_qos(&port(&[])).unwrap(), Qos::DEFAULT);
        assert_eq!(port_qos(&port(&[("qos", "sensor_data")])).unwrap(), Qos::SENSOR_DATA);
        let q = port_qos(&port(&[
            ("qos", "sensor_data"),
            ("reliability", "reliable"),
            ("durability", "transient_local"),
            ("depth", "3"),
        ]))
        .unwrap();
        assert_eq!(
            q,
            Qos {
                reliable: true,
                transient_local: true,
                depth: 3
            }
        );
        assert_eq!(
            port_qos(&port(&[("qos", "fast")])).unwrap_err().to_string(),
            "port `scan`: `qos: fast` is not one of default, sensor_data"
        );
        assert_eq!(
            port_qos(&port(&[("depth", "0")])).unwrap_err().to_string(),
            "port `scan`: `depth: 0` is not one of a whole number >= 1"
        );
    }

    #[test]
    fn a_bad_node_name_or_namespace_is_refused_before_joining_dds() {
        use quiver_operator::testing::Harness;
        let err = |params: &[(&str, ParamValue)]| Harness::<Ros2Bridge>::new(params).err().unwrap().to_string();
        assert_eq!(
            err(&[("node_name", ParamValue::String("front-cam".into()))]),
            "node_name: `front-cam` is not a ROS node name (letters, digits and _, not starting with a digit, at most 255)"
        );
        assert_eq!(
            err(&[("namespace", ParamValue::String("robot1".into()))]),
            "namespace: `robot1` is not a ROS namespace (`/`, or `/` then names of letters, digits and _ separated by /, e.g. /robot1)"
        );
    }

    #[test]
    fn the_manifest_lists_every_carried_type() {
        let m = Ros2Bridge::manifest();
        let g = m.graph_ports.expect("graph ports");
        assert!(g.types.contains(&"geometry_msgs/Twist".to_string()));
        assert!(g.types.contains(&"sensor_msgs/Image".to_string()));
        assert_eq!(g.types.len(), Registry::builtin().names().count());
    }
}
