//! quiver's CDR (quiver-msgs::cdr) against an independent ROS 2 implementation: rosbags decodes
//! our bytes to the values we meant, and its own encoding of those values is byte for byte ours
//! (both zero their padding) and decodes back to our array.

use std::process::Command;

use quiver_msgs::cdr;
use quiver_msgs::{
    Classification, Header, Image, Int64, LaserScan, Message, Point, Pose, Quaternion, Registry, StringMsg, Time,
    Twist, Vector3,
};
use serde_json::{Value, json};

use crate::support::{ros_python, temp_dir, workspace};

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
