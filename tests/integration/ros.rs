//! quiver against independent ROS 2 implementations:
//! - CDR (quiver-msgs::cdr) against rosbags: it decodes our bytes to the values we meant, and its
//!   own encoding of those values is byte for byte ours (both zero their padding) and decodes back
//!   to our array;
//! - DDS (ros2-bridge's RustDDS layer) against a real rclpy node (Fast DDS), inside a private
//!   network namespace (`unshare --net`): messages both ways, every field compared.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quiver_msgs::cdr;
use quiver_msgs::{
    Classification, Header, Image, Int64, LaserScan, Message, Point, Pose, Quaternion, Registry, StringMsg, Time,
    Twist, Vector3,
};
use serde_json::{Value, json};

use crate::support::{build, quiver, record, ros_python, stderr, stdout, temp_dir, workspace, write};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

fn header() -> Header {
    Header {
        stamp: Time {
            sec: 1_700_000_123,
            nanosec: 999_999_999,
        },
        frame_id: "base_scan".into(),
    }
}

/// One message of every shipped type, and the sizes that matter (a 640x480 image).
fn samples() -> Vec<(&'static str, ArrayRef)> {
    let scan = LaserScan {
        header: header(),
        angle_min: -3.1,
        angle_max: 3.1,
        angle_increment: 0.0175,
        time_increment: 1e-5,
        scan_time: 0.1,
        range_min: 0.12,
        range_max: 3.5,
        ranges: (0..360).map(|i| 0.12 + i as f32 * 0.0097).collect(),
        intensities: (0..360).map(|i| (i % 7) as f32).collect(),
    };
    vec![
        (
            "geometry_msgs/msg/Twist",
            Twist {
                linear: Vector3 {
                    x: 0.22,
                    y: 0.0,
                    z: 0.0,
                },
                angular: Vector3 {
                    x: 0.0,
                    y: 0.0,
                    z: -2.84,
                },
            }
            .to_arrow()
            .unwrap(),
        ),
        ("sensor_msgs/msg/LaserScan", scan.to_arrow().unwrap()),
        (
            "sensor_msgs/msg/Image",
            Image::rgb8(header(), 5, 3, (0..45).collect()).to_arrow().unwrap(),
        ),
        (
            "sensor_msgs/msg/Image",
            Image::rgb8(
                header(),
                640,
                480,
                (0..640 * 480 * 3).map(|i| (i * 7 % 256) as u8).collect(),
            )
            .to_arrow()
            .unwrap(),
        ),
        (
            "std_msgs/msg/String",
            StringMsg {
                data: "obstacle ahead — ünïcode".into(),
            }
            .to_arrow()
            .unwrap(),
        ),
        (
            "std_msgs/msg/String",
            StringMsg { data: String::new() }.to_arrow().unwrap(),
        ),
        ("std_msgs/msg/Int64", Int64 { data: i64::MIN + 1 }.to_arrow().unwrap()),
        ("std_msgs/msg/Header", header().to_arrow().unwrap()),
        (
            "builtin_interfaces/msg/Time",
            Time { sec: -1, nanosec: 5 }.to_arrow().unwrap(),
        ),
        (
            "geometry_msgs/msg/Pose",
            Pose {
                position: Point {
                    x: -1.5,
                    y: 2.25,
                    z: 0.0,
                },
                orientation: Quaternion::from_yaw(-0.3),
            }
            .to_arrow()
            .unwrap(),
        ),
        (
            "quiver_msgs/msg/Classification",
            Classification {
                header: header(),
                class_id: 1,
                label: "obstacle_left".into(),
                confidence: 0.75,
                probabilities: vec![0.125, 0.75, 0.125],
            }
            .to_arrow()
            .unwrap(),
        ),
    ]
}

/// Row `row` of `array` as JSON, the way the oracle prints rosbags' messages (floats by their
/// bits, uint8 arrays as hex).
fn to_json(array: &dyn Array, row: usize) -> Value {
    match array.data_type() {
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), to_json(c.as_ref(), row)))
                    .collect(),
            )
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            if item.data_type() == &DataType::UInt8 {
                let bytes = values.as_primitive::<arrow_array::types::UInt8Type>().values();
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                return json!({ "u8hex": hex });
            }
            Value::Array((0..values.len()).map(|i| to_json(values.as_ref(), i)).collect())
        }
        DataType::Utf8 => json!(array.as_string::<i32>().value(row)),
        DataType::Boolean => json!(array.as_boolean().value(row)),
        DataType::Float32 => {
            json!({ "f64bits": (array.as_primitive::<arrow_array::types::Float32Type>().value(row) as f64).to_bits() })
        }
        DataType::Float64 => {
            json!({ "f64bits": array.as_primitive::<arrow_array::types::Float64Type>().value(row).to_bits() })
        }
        DataType::Int32 => json!(array.as_primitive::<arrow_array::types::Int32Type>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<arrow_array::types::Int64Type>().value(row)),
        DataType::UInt8 => json!(array.as_primitive::<arrow_array::types::UInt8Type>().value(row)),
        DataType::UInt32 => json!(array.as_primitive::<arrow_array::types::UInt32Type>().value(row)),
        other => panic!("no JSON for {other} in this test"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn cdr_agrees_with_rosbags_for_every_shipped_type() {
    let registry = Registry::builtin();
    let dir = temp_dir("ros-cdr-oracle");
    let samples = samples();
    let cases: Vec<Value> = samples
        .iter()
        .map(|(ty, array)| json!({ "type": ty, "cdr": hex(&cdr::encode(registry, ty, array.as_ref(), 0).unwrap()) }))
        .collect();
    let cases_file = dir.join("cases.json");
    std::fs::write(&cases_file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = Command::new(ros_python())
        .arg(workspace().join("tests/ros/cdr_oracle.py"))
        .arg(&cases_file)
        .arg(workspace().join("msg-defs/msg"))
        .output()
        .expect("running the rosbags oracle");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the oracle's JSON");
    assert_eq!(answers.len(), samples.len());
    for ((ty, array), (case, answer)) in samples.iter().zip(cases.iter().zip(&answers)) {
        // rosbags reads our bytes as the values we encoded...
        assert_eq!(
            answer["values"],
            to_json(array.as_ref(), 0),
            "{ty}: rosbags decoded other values"
        );
        // ...writes the same bytes for them...
        assert_eq!(answer["cdr"], case["cdr"], "{ty}: rosbags encodes differently");
        // ...and we read its bytes back to our array.
        let theirs = unhex(answer["cdr"].as_str().unwrap());
        assert_eq!(&cdr::decode(registry, ty, &theirs).unwrap(), array, "{ty}");
    }
}

/// Runs the `#[ignore]`d test `test` of this binary inside a private network namespace with only
/// loopback up, so no discovery packet leaves the machine.
fn in_netns(test: &str) {
    ros_python(); // installed outside the namespace (pip needs the network)
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" --exact \"$1\" --include-ignored --nocapture --test-threads 1",
        ])
        .arg(exe)
        .arg(test)
        .env("QUIVER_IN_NETNS", "1")
        .output()
        .expect("running unshare --net (needs root or user namespaces)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{test} in a network namespace failed:\n{text}");
    assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
}

/// The inner half of an `in_netns` test refuses to run outside the namespace (it would talk DDS
/// on the machine's network); `outer` names the test that runs it.
fn only_in_netns(outer: &str) {
    assert!(std::env::var_os("QUIVER_IN_NETNS").is_some(), "run through {outer}");
}

/// Starts `tests/ros/SCRIPT` (a real rclpy node) with `args`, on Fast DDS with big buffers.
fn rclpy(script: &str, args: &[&str]) -> std::process::Child {
    Command::new(ros_python())
        .arg(workspace().join("tests/ros").join(script))
        .args(args)
        .env("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
        .env("ROS_DOMAIN_ID", "0")
        .env(
            "FASTDDS_DEFAULT_PROFILES_FILE",
            workspace().join("tests/ros/fastdds-bigbuf.xml"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting an rclpy node")
}

fn peer(args: &[&str]) -> std::process::Child {
    rclpy("peer.py", args)
}

/// Waits for the peer to print `line` on stdout.
fn wait_line(child: &mut std::process::Child, line: &str) {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("peer stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut got = String::new();
    reader.read_line(&mut got).expect("reading the peer");
    assert_eq!(got.trim(), line, "the rclpy peer did not say `{line}`");
}

/// What the rclpy tests carry, with the topic each travels on: Twist, LaserScan (with +inf), a
/// small and a 640x480 Image, a non-ASCII String.
fn rclpy_cases() -> Vec<(&'static str, &'static str, ArrayRef)> {
    vec![
        (
            "geometry_msgs/msg/Twist",
            "/cmd_vel",
            Twist {
                linear: Vector3 {
                    x: 0.26,
                    y: 0.0,
                    z: 0.0,
                },
                angular: Vector3 {
                    x: 0.0,
                    y: 0.0,
                    z: 1.82,
                },
            }
            .to_arrow()
            .unwrap(),
        ),
        (
            "sensor_msgs/msg/LaserScan",
            "/scan",
            LaserScan {
                header: header(),
                angle_min: -2.35,
                angle_max: 2.35,
                angle_increment: 0.0175,
                time_increment: 0.0,
                scan_time: 0.1,
                range_min: 0.12,
                range_max: 3.5,
                ranges: (0..270)
                    .map(|i| 0.2 + (i % 50) as f32 * 0.05)
                    .chain([f32::INFINITY])
                    .collect(),
                intensities: vec![],
            }
            .to_arrow()
            .unwrap(),
        ),
        (
            "sensor_msgs/msg/Image",
            "/camera/image_small",
            Image::rgb8(header(), 4, 3, (0..36).collect()).to_arrow().unwrap(),
        ),
        (
            "sensor_msgs/msg/Image",
            "/camera/image_raw",
            Image::rgb8(
                header(),
                640,
                480,
                (0..640 * 480 * 3).map(|i| (i * 31 % 256) as u8).collect(),
            )
            .to_arrow()
            .unwrap(),
        ),
        (
            "std_msgs/msg/String",
            "/chatter",
            StringMsg {
                data: "hello from quiver — ünïcode".into(),
            }
            .to_arrow()
            .unwrap(),
        ),
    ]
}

#[test]
fn dds_messages_cross_to_and_from_rclpy() {
    in_netns("ros::netns_dds_with_rclpy");
}

#[test]
#[ignore = "runs inside a network namespace, started by dds_messages_cross_to_and_from_rclpy"]
fn netns_dds_with_rclpy() {
    use ros2_bridge::dds::{Participant, Qos, RawCdr, dds_topic_name};
    only_in_netns("dds_messages_cross_to_and_from_rclpy");
    let registry = Registry::builtin();
    let dir = temp_dir("ros-dds-rclpy");
    let participant = Participant::new(0, true).expect("a DDS participant");
    let cases = rclpy_cases();
    for (ty, topic, array) in &cases {
        let want = to_json(array.as_ref(), 0);

        // quiver -> rclpy: publish until the rclpy listener has its 3 messages.
        let out = dir.join(format!(
            "{}.heard.json",
            topic.trim_start_matches('/').replace('/', "_")
        ));
        let mut listener = peer(&["listen", ty, topic, "3", out.to_str().unwrap()]);
        wait_line(&mut listener, "ready");
        let writer = participant
            .writer(&dds_topic_name(topic, "/"), ty, Qos::DEFAULT)
            .expect("a writer");
        let body = quiver_msgs::cdr::encode_body(registry, ty, array.as_ref(), 0).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while listener.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{ty}: rclpy never heard 3 messages");
            writer
                .write(
                    RawCdr {
                        big_endian: false,
                        body: body.clone(),
                    },
                    None,
                )
                .expect("write");
            std::thread::sleep(Duration::from_millis(100));
        }
        let heard: Vec<Value> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(heard.len(), 3, "{ty}");
        for m in &heard {
            assert_eq!(m, &want, "{ty}: rclpy received other values");
        }

        // rclpy -> quiver: the same values published by rclpy arrive here, decoded.
        let reader = participant
            .reader(&dds_topic_name(topic, "/"), ty, Qos::DEFAULT)
            .expect("a reader");
        let value_file = dir.join(format!("{}.say.json", topic.trim_start_matches('/').replace('/', "_")));
        std::fs::write(&value_file, serde_json::to_vec(&want).unwrap()).unwrap();
        let mut talker = peer(&["talk", ty, topic, value_file.to_str().unwrap(), "300"]);
        wait_line(&mut talker, "matched");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 5 && Instant::now() < deadline {
            match reader.try_take_one().expect("take") {
                Some(sample) => {
                    let RawCdr { big_endian, body } = sample.sample;
                    got.push(quiver_msgs::cdr::decode_body(registry, ty, &body, big_endian).expect("decode"));
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = talker.kill();
        let _ = talker.wait();
        assert_eq!(got.len(), 5, "{ty}: received {} of 5 rclpy messages", got.len());
        for g in &got {
            assert_eq!(g, array, "{ty}: decoded other values than rclpy sent");
        }
    }

    // Incompatible QoS is reported, naming the topic, the policy and both values.
    let ty = "geometry_msgs/msg/Twist";
    let out = dir.join("qos.heard.json");
    let mut listener = peer(&["listen", ty, "/qos_a", "1", out.to_str().unwrap()]); // reliable
    wait_line(&mut listener, "ready");
    let writer = participant
        .writer(&dds_topic_name("/qos_a", "/"), ty, Qos::SENSOR_DATA)
        .expect("a writer");
    let said = wait_news(|| ros2_bridge::dds::writer_news("/qos_a", &writer));
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(
        said,
        "topic /qos_a: incompatible QoS with a ROS subscriber: reliability: it requests reliable, this bridge offers best effort; nothing is delivered to it until one side changes (topic `qos:`)"
    );
    let reader = participant
        .reader(&dds_topic_name("/qos_b", "/"), ty, Qos::DEFAULT)
        .expect("a reader");
    let value_file = dir.join("qos.say.json");
    std::fs::write(
        &value_file,
        serde_json::to_vec(&to_json(cases[0].2.as_ref(), 0)).unwrap(),
    )
    .unwrap();
    let mut talker = peer(&["talk", ty, "/qos_b", value_file.to_str().unwrap(), "300", "best_effort"]);
    let said = wait_news(|| ros2_bridge::dds::reader_news("/qos_b", &reader));
    let _ = talker.kill();
    let _ = talker.wait();
    assert_eq!(
        said,
        "topic /qos_b: incompatible QoS with a ROS publisher: reliability: it offers best effort, this bridge requests reliable; nothing is received from it until one side changes (topic `qos:`)"
    );
}

/// The first incompatibility `poll` reports within 30 s.
fn wait_news(mut poll: impl FnMut() -> Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(first) = poll().into_iter().next() {
            return first;
        }
        assert!(Instant::now() < deadline, "no incompatible-QoS report within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_bridge_operator_carries_graph_ports_to_and_from_rclpy() {
    build();
    in_netns("ros::netns_bridge_operator");
}

#[test]
#[ignore = "runs inside a network namespace, started by the_bridge_operator_carries_graph_ports_to_and_from_rclpy"]
fn netns_bridge_operator() {
    only_in_netns("the_bridge_operator_...");
    let dir = temp_dir("ros-bridge-operator");
    write(
        &dir,
        "g.yaml",
        "name: ros-bridge
nodes:
  - id: ticker
    operator: counter
    params: { limit: 100000 }
    inputs: { tick: { timer: 20ms } }
    outputs: [count]
  - id: ros
    operator: ros2-bridge
    ports:
      ticks: { type: std_msgs/msg/Int64, topic: /ticks }
      teleop: { type: geometry_msgs/msg/Twist, topic: /cmd_vel, qos: default }
    inputs: { ticks: ticker/count, poll: { timer: 5ms } }
    outputs: [teleop]
  - id: rec
    operator: recorder
    params: { path: rec.txt }
    inputs: { in: ros/teleop }
",
    );
    // A ROS subscriber of /ticks and a ROS publisher of /cmd_vel, started before the graph.
    let heard = dir.join("ticks.json");
    let mut listener = peer(&["listen", "std_msgs/msg/Int64", "/ticks", "5", heard.to_str().unwrap()]);
    wait_line(&mut listener, "ready");
    // And rclpy's graph API (what `ros2 node info` prints), asked about the bridge's node.
    let seen = dir.join("graph.json");
    let mut graph = peer(&["graph", "ros", seen.to_str().unwrap()]);
    wait_line(&mut graph, "ready");
    let twist = Twist {
        linear: Vector3 { x: 0.5, y: 0.0, z: 0.0 },
        angular: Vector3 {
            x: 0.0,
            y: 0.0,
            z: -0.25,
        },
    };
    let say = dir.join("twist.json");
    std::fs::write(
        &say,
        serde_json::to_vec(&to_json(twist.clone().to_arrow().unwrap().as_ref(), 0)).unwrap(),
    )
    .unwrap();
    let mut talker = peer(&[
        "talk",
        "geometry_msgs/msg/Twist",
        "/cmd_vel",
        say.to_str().unwrap(),
        "300",
    ]);

    let o = quiver(&dir, &["run", "g.yaml", "--for", "6s"]);
    let _ = talker.kill();
    let _ = talker.wait();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let status = listener.wait().unwrap();
    assert!(status.success(), "the rclpy listener did not hear 5 ticks");

    // Graph -> ROS: consecutive counter values, as the graph sent them.
    let ticks: Vec<Value> = serde_json::from_slice(&std::fs::read(&heard).unwrap()).unwrap();
    let values: Vec<i64> = ticks.iter().map(|t| t["data"].as_i64().unwrap()).collect();
    assert_eq!(values.len(), 5);
    assert!(values.windows(2).all(|w| w[1] == w[0] + 1), "{values:?}");
    // ROS -> graph: the Twist rclpy published, decoded, on the bridge's output.
    let lines = record(&dir.join("rec.txt"));
    assert!(
        lines.len() >= 5,
        "{} Twist messages reached the recorder: {lines:?}",
        lines.len()
    );
    for line in &lines {
        assert!(line.starts_with("ros/teleop "), "{line}");
        assert!(line.ends_with(" 0.5 0 0 0 0 -0.25"), "{line}");
    }
    let out = stdout(&o);
    assert!(out.contains("node `ros`: published "), "{out}");

    // The bridge is a ROS node named after the graph node, with its topics.
    assert!(graph.wait().unwrap().success());
    let seen: Value = serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
    assert!(
        seen["nodes"]
            .as_array()
            .is_some_and(|n| n.contains(&json!(["ros", "/"]))),
        "rclpy does not list the bridge as a node: {seen}"
    );
    assert_eq!(
        seen["publishers"],
        json!([["/ticks", ["std_msgs/msg/Int64"]]]),
        "{seen}"
    );
    assert_eq!(
        seen["subscribers"],
        json!([["/cmd_vel", ["geometry_msgs/msg/Twist"]]]),
        "{seen}"
    );
}

#[test]
fn every_type_crosses_a_graph_from_rclpy_and_back() {
    build();
    in_netns("ros::netns_types_through_a_graph");
}

#[test]
#[ignore = "runs inside a network namespace, started by every_type_crosses_a_graph_from_rclpy_and_back"]
fn netns_types_through_a_graph() {
    only_in_netns("every_type_crosses_a_graph_from_rclpy_and_back");
    // rclpy publishes each case on /loop/N/to; bridge `from_ros` emits it into the graph, bridge
    // `to_ros` publishes what it receives on /loop/N/back, where rclpy checks every field.
    let dir = temp_dir("ros-types-graph");
    let cases = rclpy_cases();
    let mut from_ports = String::new();
    let mut to_ports = String::new();
    let mut edges = Vec::new();
    let mut peer_cases = Vec::new();
    for (i, (ty, _, array)) in cases.iter().enumerate() {
        from_ports.push_str(&format!("      m{i}: {{ type: {ty}, topic: /loop/m{i}/to }}\n"));
        to_ports.push_str(&format!("      m{i}: {{ type: {ty}, topic: /loop/m{i}/back }}\n"));
        edges.push(format!("m{i}: from_ros/m{i}"));
        peer_cases.push(json!({
            "type": ty,
            "to": format!("/loop/m{i}/to"),
            "back": format!("/loop/m{i}/back"),
            "value": to_json(array.as_ref(), 0),
        }));
    }
    let outputs: Vec<String> = (0..cases.len()).map(|i| format!("m{i}")).collect();
    write(
        &dir,
        "g.yaml",
        &format!(
            "name: ros-types
nodes:
  - id: from_ros
    operator: ros2-bridge
    ports:
{from_ports}    inputs: {{ poll: {{ timer: 5ms }} }}
    outputs: [{}]
  - id: to_ros
    operator: ros2-bridge
    ports:
{to_ports}    inputs: {{ {} }}
",
            outputs.join(", "),
            edges.join(", ")
        ),
    );
    let cases_file = dir.join("cases.json");
    std::fs::write(&cases_file, serde_json::to_vec(&peer_cases).unwrap()).unwrap();
    let back = dir.join("back.json");
    let mut peer = peer(&["loop", cases_file.to_str().unwrap(), back.to_str().unwrap()]);
    wait_line(&mut peer, "ready");
    let o = quiver(&dir, &["run", "g.yaml", "--for", "15s"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(peer.wait().unwrap().success());
    let got: Value = serde_json::from_slice(&std::fs::read(&back).unwrap()).unwrap();
    for (case, (ty, _, _)) in peer_cases.iter().zip(&cases) {
        let heard = got[case["back"].as_str().unwrap()].as_array().unwrap();
        assert!(
            heard.len() >= 3,
            "{ty}: {} of 3 came back through the graph",
            heard.len()
        );
        for m in heard {
            assert_eq!(m, &case["value"], "{ty}: other values came back through the graph");
        }
    }
    let out = stdout(&o);
    assert!(out.contains("node `from_ros`: received "), "{out}");
    assert!(!out.contains("rejected"), "{out}");
}

#[test]
fn an_rclpy_node_drives_the_simulated_robot_through_the_bridge() {
    build();
    in_netns("ros::netns_closed_loop");
}

#[test]
#[ignore = "runs inside a network namespace, started by an_rclpy_node_drives_the_simulated_robot_through_the_bridge"]
fn netns_closed_loop() {
    only_in_netns("an_rclpy_node_drives_...");
    let dir = temp_dir("ros-closed-loop");
    let map = workspace().join("graphs/maps/room.yaml");
    write(
        &dir,
        "g.yaml",
        &format!(
            "name: ros-loop
nodes:
  - id: world
    operator: sim-world
    params: {{ map: {} }}
    inputs:
      tick: {{ timer: 20ms }}
      cmd_vel: {{ from: ros/cmd_vel, queue: {{ policy: latest }} }}
    outputs: [scan, pose]
  - id: ros
    operator: ros2-bridge
    ports:
      scan: {{ type: sensor_msgs/msg/LaserScan, topic: /scan, qos: sensor_data }}
      cmd_vel: {{ type: geometry_msgs/msg/Twist, topic: /cmd_vel }}
    inputs: {{ scan: world/scan, poll: {{ timer: 5ms }} }}
    outputs: [cmd_vel]
",
            map.display()
        ),
    );
    // The ROS node: the seed's laser logic, in rclpy.
    let mut avoider = rclpy("avoider.py", &[]);
    wait_line(&mut avoider, "ready");
    let json = dir.join("summary.json");
    let o = quiver(
        &dir,
        &[
            "run",
            "g.yaml",
            "--for",
            "20s",
            "--summary-json",
            json.to_str().unwrap(),
        ],
    );
    let _ = avoider.kill();
    let _ = avoider.wait();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let summary: quiver_runtime::Summary = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let world = summary.node("world").expect("world");
    let ros = summary.node("ros").expect("ros");
    let figure = |n: &quiver_runtime::NodeSummary, k: &str| n.report(k).unwrap_or("none").to_string();
    let distance: f64 = figure(world, "distance").trim_end_matches(" m").parse().unwrap_or(0.0);
    // Commands from ROS drove the robot (the world alone never moves it), it kept clear of the
    // walls and boxes the scans it sent to ROS showed, and the scans went out.
    assert!(distance >= 2.0, "the robot moved {distance} m: {world:?} {ros:?}");
    assert_eq!(figure(world, "collisions"), "0", "{world:?}");
    let received: u64 = figure(ros, "received").parse().unwrap_or(0);
    let published: u64 = figure(ros, "published").parse().unwrap_or(0);
    assert!(received >= 50, "{received} commands came from ROS: {ros:?}");
    assert!(published >= 50, "{published} scans went to ROS: {ros:?}");
}
