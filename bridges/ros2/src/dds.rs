//! DDS, the way ROS 2 uses it, in pure Rust (RustDDS): a participant on a ROS domain, and
//! writers/readers of topics whose payload is CDR made by `quiver_msgs::cdr` (so any type the
//! registry knows, without a Rust struct per type).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::graph;
use rustdds::no_key::{DataWriter, Decode, DefaultDecoder, DeserializerAdapter, SerializerAdapter, SimpleDataReader};
use rustdds::policy::{Durability, History, Reliability};
use rustdds::qos::QosPolicyId;
use rustdds::{DataReaderStatus, DataWriterStatus, StatusEvented};
use rustdds::{DomainParticipant, DomainParticipantBuilder, QosPolicies, QosPolicyBuilder, RepresentationIdentifier};
use rustdds::{Duration, RTPSEntity, TopicKind};

/// A DDS failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DdsError(pub String);

/// One serialized message: the CDR body (after the 4-byte encapsulation header, which RustDDS
/// writes and reads itself) and its byte order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCdr {
    pub big_endian: bool,
    pub body: Vec<u8>,
}

/// Passes CDR bodies through RustDDS untouched (little-endian plain CDR out; plain CDR of either
/// byte order in).
#[derive(Clone, Copy, Debug)]
pub struct Passthrough;

impl SerializerAdapter<RawCdr> for Passthrough {
    type Error = std::io::Error;
    fn output_encoding() -> RepresentationIdentifier {
        RepresentationIdentifier::CDR_LE
    }
    fn to_bytes(value: &RawCdr) -> Result<rustdds::bytes::Bytes, Self::Error> {
        Ok(rustdds::bytes::Bytes::copy_from_slice(&value.body))
    }
}

impl DeserializerAdapter<RawCdr> for Passthrough {
    type Error = std::io::Error;
    type Decoded = RawCdr;
    fn supported_encodings() -> &'static [RepresentationIdentifier] {
        &[RepresentationIdentifier::CDR_LE, RepresentationIdentifier::CDR_BE]
    }
    fn transform_decoded(decoded: RawCdr) -> RawCdr {
        decoded
    }
}

impl<'de> Decode<'de, RawCdr> for Passthrough {
    type Error = std::io::Error;
    fn decode_bytes(self, input: &'de [u8], encoding: RepresentationIdentifier) -> Result<RawCdr, Self::Error> {
        Ok(RawCdr {
            big_endian: encoding == RepresentationIdentifier::CDR_BE,
            body: input.to_vec(),
        })
    }
}

impl DefaultDecoder<RawCdr> for Passthrough {
    type Decoder = Passthrough;
    const DECODER: Passthrough = Passthrough;
}

/// ROS QoS, as a topic's `qos:` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qos {
    pub reliable: bool,
    pub transient_local: bool,
    /// `KeepLast(depth)`.
    pub depth: i32,
}

impl Qos {
    /// rclpy's default profile (`qos_profile_default` / a plain depth): reliable, volatile, keep
    /// last 10.
    pub const DEFAULT: Qos = Qos {
        reliable: true,
        transient_local: false,
        depth: 10,
    };
    /// `qos_profile_sensor_data`: best effort, volatile, keep last 5.
    pub const SENSOR_DATA: Qos = Qos {
        reliable: false,
        transient_local: false,
        depth: 5,
    };

    pub fn policies(&self) -> QosPolicies {
        QosPolicyBuilder::new()
            .reliability(if self.reliable {
                Reliability::Reliable {
                    max_blocking_time: Duration::from_millis(100),
                }
            } else {
                Reliability::BestEffort
            })
            .durability(if self.transient_local {
                Durability::TransientLocal
            } else {
                Durability::Volatile
            })
            .history(History::KeepLast { depth: self.depth })
            .build()
    }
}

fn reliability_name(q: &QosPolicies) -> &'static str {
    match q.reliability() {
        Some(Reliability::Reliable { .. }) => "reliable",
        Some(Reliability::BestEffort) => "best effort",
        None => "unspecified (best effort)",
    }
}

fn durability_name(q: &QosPolicies) -> &'static str {
    match q.durability() {
        Some(Durability::Volatile) | None => "volatile",
        Some(Durability::TransientLocal) => "transient local",
        Some(Durability::Transient) => "transient",
        Some(Durability::Persistent) => "persistent",
    }
}

/// One line a person can act on, for a QoS policy that keeps this bridge's endpoint and a ROS
/// node's apart: which policy and both values. `we_write`: the bridge publishes (it offers, the
/// ROS subscriber requests); else the ROS publisher offers and the bridge requests.
pub fn incompatibility(
    topic: &str,
    policy: QosPolicyId,
    requested: &QosPolicies,
    offered: &QosPolicies,
    we_write: bool,
) -> String {
    let (policy_name, req, off) = match policy {
        QosPolicyId::Reliability => ("reliability", reliability_name(requested), reliability_name(offered)),
        QosPolicyId::Durability => ("durability", durability_name(requested), durability_name(offered)),
        other => {
            let name = format!("{other:?}").to_lowercase();
            return format!(
                "topic {topic}: incompatible QoS with a ROS {}: policy {name} (requested {requested:?}, offered {offered:?})",
                if we_write { "subscriber" } else { "publisher" }
            );
        }
    };
    if we_write {
        format!(
            "topic {topic}: incompatible QoS with a ROS subscriber: {policy_name}: it requests {req}, this bridge offers {off}; nothing is delivered to it until one side changes (topic `qos:`)"
        )
    } else {
        format!(
            "topic {topic}: incompatible QoS with a ROS publisher: {policy_name}: it offers {off}, this bridge requests {req}; nothing is received from it until one side changes (topic `qos:`)"
        )
    }
}

/// Drains a writer's status events: the incompatibilities they report, as messages (see
/// [`incompatibility`]).
pub fn writer_news(topic: &str, writer: &DataWriter<RawCdr, Passthrough>) -> Vec<String> {
    std::iter::from_fn(|| writer.try_recv_status())
        .filter_map(|event| match event {
            DataWriterStatus::OfferedIncompatibleQos {
                last_policy_id,
                requested_qos,
                offered_qos,
                ..
            } => Some(incompatibility(
                topic,
                last_policy_id,
                &requested_qos,
                &offered_qos,
                true,
            )),
            _ => None,
        })
        .collect()
}

/// Drains a reader's status events: the incompatibilities they report.
pub fn reader_news(topic: &str, reader: &SimpleDataReader<RawCdr, Passthrough>) -> Vec<String> {
    std::iter::from_fn(|| reader.try_recv_status())
        .filter_map(|event| match event {
            DataReaderStatus::RequestedIncompatibleQos {
                last_policy_id,
                requested_qos,
                offered_qos,
                ..
            } => Some(incompatibility(
                topic,
                last_policy_id,
                &requested_qos,
                &offered_qos,
                false,
            )),
            _ => None,
        })
        .collect()
}

/// Counts samples that never arrived from each ROS publisher: gaps in its sequence numbers after
/// the first sample seen from it (a late joiner misses earlier ones by design). RustDDS does not
/// report `SampleLost`; this is how the bridge counts what a keep-last history or the network
/// lost on the way in.
#[derive(Default)]
pub struct Gaps {
    last: HashMap<[u8; 16], i64>,
}

impl Gaps {
    /// Records sample `seq` of `writer`; returns how many were skipped since the previous one.
    pub fn see(&mut self, writer: [u8; 16], seq: i64) -> u64 {
        let skipped = match self.last.get(&writer) {
            Some(&prev) if seq > prev + 1 => (seq - prev - 1) as u64,
            _ => 0,
        };
        let last = self.last.entry(writer).or_insert(seq);
        *last = (*last).max(seq);
        skipped
    }
}

/// `/cmd_vel` (or `cmd_vel`, relative to `namespace`) -> the DDS topic `rt/cmd_vel`.
pub fn dds_topic_name(ros_name: &str, namespace: &str) -> String {
    let name = if ros_name.starts_with('/') {
        ros_name.to_string()
    } else {
        format!("{}/{ros_name}", namespace.trim_end_matches('/'))
    };
    format!(
        "rt{}",
        if name.starts_with('/') {
            name
        } else {
            format!("/{name}")
        }
    )
}

/// Where a participant joins, as ROS 2 decides it: the domain from the graph, else
/// `ROS_DOMAIN_ID`, else 0; loopback only when `ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST` (or the
/// older `ROS_LOCALHOST_ONLY=1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub domain: u16,
    pub localhost_only: bool,
}

impl Placement {
    /// From the graph's `domain` (if set) and the environment `env` (a variable's value by name).
    pub fn resolve(graph_domain: Option<u16>, env: impl Fn(&str) -> Option<String>) -> Result<Placement, DdsError> {
        let domain = match graph_domain {
            Some(d) => d,
            None => match env("ROS_DOMAIN_ID").filter(|v| !v.trim().is_empty()) {
                Some(v) => v
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|d| *d <= 232)
                    .ok_or_else(|| DdsError(format!("ROS_DOMAIN_ID={v} is not a DDS domain id (0 to 232)")))?,
                None => 0,
            },
        };
        let range = env("ROS_AUTOMATIC_DISCOVERY_RANGE").unwrap_or_default();
        let localhost_only = match range.trim().to_ascii_uppercase().as_str() {
            "LOCALHOST" => true,
            "" | "SUBNET" | "SYSTEM_DEFAULT" => env("ROS_LOCALHOST_ONLY").is_some_and(|v| v.trim() == "1"),
            "OFF" => {
                return Err(DdsError(
                    "ROS_AUTOMATIC_DISCOVERY_RANGE=OFF (no discovery) is not supported by the bridge".into(),
                ));
            }
            other => {
                return Err(DdsError(format!(
                    "ROS_AUTOMATIC_DISCOVERY_RANGE={other} is not one of LOCALHOST, SUBNET, OFF, SYSTEM_DEFAULT"
                )));
            }
        };
        Ok(Placement { domain, localhost_only })
    }
}

/// A DDS participant on a ROS domain.
pub struct Participant {
    dp: DomainParticipant,
    publisher: rustdds::Publisher,
    subscriber: rustdds::Subscriber,
}

impl Participant {
    /// Joins `domain`; `localhost_only` keeps discovery and data on 127.0.0.1
    /// (`ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`).
    pub fn new(domain: u16, localhost_only: bool) -> Result<Participant, DdsError> {
        let mut builder = DomainParticipantBuilder::new(domain);
        if localhost_only {
            builder = builder
                .with_only_networks([IpAddr::V4(Ipv4Addr::LOCALHOST)])
                .same_host_loopback(true);
        }
        let dp = builder
            .build()
            .map_err(|e| DdsError(format!("joining DDS domain {domain}: {e}")))?;
        let qos = QosPolicyBuilder::new().build();
        let publisher = dp
            .create_publisher(&qos)
            .map_err(|e| DdsError(format!("creating a DDS publisher: {e}")))?;
        let subscriber = dp
            .create_subscriber(&qos)
            .map_err(|e| DdsError(format!("creating a DDS subscriber: {e}")))?;
        Ok(Participant {
            dp,
            publisher,
            subscriber,
        })
    }

    fn topic(&self, dds_topic: &str, ros_type: &str, qos: &QosPolicies) -> Result<rustdds::Topic, DdsError> {
        self.dp
            .create_topic(
                dds_topic.to_string(),
                quiver_msgs::cdr::dds_type_name(ros_type),
                qos,
                TopicKind::NoKey,
            )
            .map_err(|e| DdsError(format!("creating topic {dds_topic}: {e}")))
    }

    /// A writer of `ros_type` on DDS topic `dds_topic` (`rt/cmd_vel`); its GUID is its ROS GID
    /// (`writer.guid().to_bytes()`).
    pub fn writer(
        &self,
        dds_topic: &str,
        ros_type: &str,
        qos: Qos,
    ) -> Result<DataWriter<RawCdr, Passthrough>, DdsError> {
        let policies = qos.policies();
        let topic = self.topic(dds_topic, ros_type, &policies)?;
        self.publisher
            .create_datawriter_no_key::<RawCdr, Passthrough>(&topic, Some(policies))
            .map_err(|e| DdsError(format!("creating a writer on {dds_topic}: {e}")))
    }

    /// The participant's GUID: its ROS GID.
    pub fn gid(&self) -> [u8; 16] {
        self.dp.guid().to_bytes()
    }

    /// Announces one ROS node on `ros_discovery_info` (see [`crate::graph`]) with the GIDs of
    /// its readers and writers. The returned writer must live as long as the node: it answers
    /// ROS nodes that start later (transient local).
    pub fn announce_node(
        &self,
        namespace: &str,
        name: &str,
        readers: &[[u8; 16]],
        writers: &[[u8; 16]],
    ) -> Result<DataWriter<RawCdr, Passthrough>, DdsError> {
        let qos = Qos {
            reliable: true,
            transient_local: true,
            depth: 1,
        };
        let writer = self.writer(graph::DISCOVERY_TOPIC, graph::DISCOVERY_TYPE, qos)?;
        let body = graph::participant_entities_info(self.gid(), namespace, name, readers, writers);
        writer
            .write(
                RawCdr {
                    big_endian: false,
                    body,
                },
                None,
            )
            .map_err(|e| DdsError(format!("announcing node {name} on {}: {e}", graph::DISCOVERY_TOPIC)))?;
        Ok(writer)
    }

    /// A reader of `ros_type` on DDS topic `dds_topic`.
    pub fn reader(
        &self,
        dds_topic: &str,
        ros_type: &str,
        qos: Qos,
    ) -> Result<SimpleDataReader<RawCdr, Passthrough>, DdsError> {
        let policies = qos.policies();
        let topic = self.topic(dds_topic, ros_type, &policies)?;
        self.subscriber
            .create_simple_datareader_no_key::<RawCdr, Passthrough>(&topic, Some(policies))
            .map_err(|e| DdsError(format!("creating a reader on {dds_topic}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_and_discovery_range_follow_ros() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let p = |d, e| Placement::resolve(d, e);
        assert_eq!(
            p(None, env(&[])).unwrap(),
            Placement {
                domain: 0,
                localhost_only: false
            }
        );
        assert_eq!(p(None, env(&[("ROS_DOMAIN_ID", "42")])).unwrap().domain, 42);
        assert_eq!(p(Some(7), env(&[("ROS_DOMAIN_ID", "42")])).unwrap().domain, 7);
        assert!(
            p(None, env(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")]))
                .unwrap()
                .localhost_only
        );
        assert!(p(None, env(&[("ROS_LOCALHOST_ONLY", "1")])).unwrap().localhost_only);
        assert!(
            !p(
                None,
                env(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET"), ("ROS_LOCALHOST_ONLY", "0")])
            )
            .unwrap()
            .localhost_only
        );
        assert_eq!(
            p(None, env(&[("ROS_DOMAIN_ID", "300")])).unwrap_err().to_string(),
            "ROS_DOMAIN_ID=300 is not a DDS domain id (0 to 232)"
        );
        assert_eq!(
            p(None, env(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "LAN")]))
                .unwrap_err()
                .to_string(),
            "ROS_AUTOMATIC_DISCOVERY_RANGE=LAN is not one of LOCALHOST, SUBNET, OFF, SYSTEM_DEFAULT"
        );
    }

    #[test]
    fn gaps_in_sequence_numbers_are_counted_per_writer() {
        let (a, b) = ([1; 16], [2; 16]);
        let mut g = Gaps::default();
        assert_eq!(g.see(a, 57), 0, "what came before the first sample is not a loss");
        assert_eq!(g.see(a, 58), 0);
        assert_eq!(g.see(a, 61), 2);
        assert_eq!(g.see(b, 1), 0, "writers are counted apart");
        assert_eq!(g.see(b, 3), 1);
        assert_eq!(g.see(a, 60), 0, "a late one is not counted twice");
        assert_eq!(g.see(a, 62), 0);
    }

    #[test]
    fn topic_names() {
        assert_eq!(dds_topic_name("/cmd_vel", "/"), "rt/cmd_vel");
        assert_eq!(dds_topic_name("scan", "/"), "rt/scan");
        assert_eq!(dds_topic_name("scan", "/robot1"), "rt/robot1/scan");
        assert_eq!(dds_topic_name("/camera/image_raw", "/robot1"), "rt/camera/image_raw");
    }
}
