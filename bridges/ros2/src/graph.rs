//! The ROS graph: how the bridge shows up as a ROS node (`ros2 node list`, `ros2 node info`,
//! rclpy's `get_node_names_and_namespaces`). Every ROS 2 rmw announces its nodes on the DDS topic
//! `ros_discovery_info` (reliable, transient local, keep last 1) with one
//! `rmw_dds_common/ParticipantEntitiesInfo`: the participant's GID and, per node, its name,
//! namespace and the GIDs of its readers and writers. A GID is the 16-byte DDS GUID
//! (`Gid.msg`: `char[16] data`). The bridge is one node per participant.

/// DDS topic (no `rt/` prefix: it is not a ROS topic) and ROS type of the announcement.
pub const DISCOVERY_TOPIC: &str = "ros_discovery_info";
pub const DISCOVERY_TYPE: &str = "rmw_dds_common/ParticipantEntitiesInfo";

/// A ROS node name from a graph node id: characters ROS does not allow become `_`.
pub fn node_name_from_id(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

/// ROS's rule for a node name: letters, digits and `_`, not starting with a digit, at most 255
/// characters (the message bounds it to 256 with the terminating NUL).
pub fn check_node_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a ROS node name (letters, digits and _, not starting with a digit, at most 255)"
        ))
    }
}

/// ROS's rule for a namespace: `/`, or `/` then names as for nodes, separated by `/`.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    let ok =
        ns == "/" || (ns.starts_with('/') && ns.len() <= 255 && ns[1..].split('/').all(|t| check_node_name(t).is_ok()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{ns}` is not a ROS namespace (`/`, or `/` then names of letters, digits and _ separated by /, e.g. /robot1)"
        ))
    }
}

/// The CDR body (little endian, after the 4-byte encapsulation header) of a
/// `ParticipantEntitiesInfo` that lists one node.
pub fn participant_entities_info(
    participant: [u8; 16],
    namespace: &str,
    name: &str,
    readers: &[[u8; 16]],
    writers: &[[u8; 16]],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + 16 * (readers.len() + writers.len()));
    out.extend_from_slice(&participant);
    put_u32(&mut out, 1); // node_entities_info_seq: one node
    for s in [namespace, name] {
        put_u32(&mut out, s.len() as u32 + 1);
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    for gids in [readers, writers] {
        put_u32(&mut out, gids.len() as u32);
        for g in gids {
            out.extend_from_slice(g);
        }
    }
    out
}

/// A u32 at the next multiple of 4 (CDR alignment, from the start of the body).
fn put_u32(out: &mut Vec<u8>, v: u32) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_msgs::{Registry, cdr};
    use quiver_operator::external::arrow_array::{Array, ListArray, StructArray, cast::AsArray};

    /// rmw_dds_common's definitions, as the Kilted wheels ship them.
    fn registry() -> Registry {
        let mut r = Registry::builtin().clone();
        r.add("rmw_dds_common/Gid", "Gid.msg", "char[16] data\n").unwrap();
        r.add(
            "rmw_dds_common/NodeEntitiesInfo",
            "NodeEntitiesInfo.msg",
            "string<=256 node_namespace\nstring<=256 node_name\nGid[] reader_gid_seq\nGid[] writer_gid_seq\n",
        )
        .unwrap();
        r.add(
            "rmw_dds_common/ParticipantEntitiesInfo",
            "ParticipantEntitiesInfo.msg",
            "Gid gid\nNodeEntitiesInfo[] node_entities_info_seq\n",
        )
        .unwrap();
        r
    }

    #[test]
    fn the_announcement_is_the_cdr_of_rmw_dds_common_types() {
        let gid = |b: u8| [b; 16];
        // Lengths that exercise the padding after each string.
        for (ns, name) in [("/", "ros"), ("/robot1", "bridge_x"), ("/", "abc")] {
            let body = participant_entities_info(gid(1), ns, name, &[gid(2), gid(3)], &[gid(4)]);
            let r = registry();
            // The generic codec reads every byte back and writes the same bytes again.
            let decoded = cdr::decode_body(&r, DISCOVERY_TYPE, &body, false).unwrap();
            assert_eq!(cdr::encode_body(&r, DISCOVERY_TYPE, decoded.as_ref(), 0).unwrap(), body);
            let info = decoded.as_any().downcast_ref::<StructArray>().unwrap();
            let nodes = info.column_by_name("node_entities_info_seq").unwrap();
            let nodes = nodes.as_any().downcast_ref::<ListArray>().unwrap().value(0);
            let nodes = nodes.as_struct();
            assert_eq!(nodes.len(), 1);
            let text = |field: &str| {
                nodes
                    .column_by_name(field)
                    .unwrap()
                    .as_string::<i32>()
                    .value(0)
                    .to_string()
            };
            assert_eq!(text("node_namespace"), ns);
            assert_eq!(text("node_name"), name);
            let count = |field: &str| {
                let l = nodes.column_by_name(field).unwrap();
                l.as_any().downcast_ref::<ListArray>().unwrap().value(0).len()
            };
            assert_eq!((count("reader_gid_seq"), count("writer_gid_seq")), (2, 1));
        }
    }

    #[test]
    fn node_names() {
        assert_eq!(node_name_from_id("ros-bridge"), "ros_bridge");
        assert!(check_node_name("ros_bridge").is_ok());
        assert_eq!(
            check_node_name("1cam").unwrap_err(),
            "`1cam` is not a ROS node name (letters, digits and _, not starting with a digit, at most 255)"
        );
        assert!(check_node_name("a.b").is_err());
        assert!(check_node_name("").is_err());
        for ok in ["/", "/robot1", "/a/b_2"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "robot1", "/robot1/", "//a", "/a-b", "/1a"] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }
}
