#![allow(clippy::unwrap_used)]
//! Every shipped definition round-trips through Arrow with its typed struct, and the big arrays
//! are neither copied on the way in nor on the way out.

use arrow_array::Array;
use quiver_msgs::*;

fn round_trip<M: Message + Clone + PartialEq + std::fmt::Debug>(m: M) -> Vec<String> {
    let array = m.clone().to_arrow().unwrap();
    assert_eq!(
        Some(array.data_type()),
        Registry::builtin().data_type(M::TYPE),
        "{}",
        M::TYPE
    );
    assert_eq!(array.len(), 1);
    assert_eq!(M::from_arrow(array.as_ref()).unwrap(), m, "{}", M::TYPE);
    vec![M::TYPE.to_string()]
}

fn header() -> Header {
    Header::at_ns(1_700_000_000_123_456_789, "base_link")
}

#[test]
fn every_shipped_type_round_trips() {
    let mut covered = Vec::new();
    covered.extend(round_trip(Time {
        sec: -3,
        nanosec: 999_999_999,
    }));
    covered.extend(round_trip(header()));
    covered.extend(round_trip(StringMsg { data: "héllo".into() }));
    covered.extend(round_trip(Int64 { data: i64::MIN }));
    covered.extend(round_trip(Vector3 {
        x: 1.0,
        y: -2.5,
        z: f64::MAX,
    }));
    covered.extend(round_trip(Point { x: 0.1, y: 0.2, z: 0.3 }));
    covered.extend(round_trip(Quaternion::from_yaw(0.7)));
    covered.extend(round_trip(Pose {
        position: Point { x: 1.0, y: 2.0, z: 0.0 },
        orientation: Quaternion::from_yaw(-1.0),
    }));
    covered.extend(round_trip(Twist {
        linear: Vector3 { x: 0.5, y: 0.0, z: 0.0 },
        angular: Vector3 {
            x: 0.0,
            y: 0.0,
            z: -0.3,
        },
    }));
    covered.extend(round_trip(LaserScan {
        header: header(),
        angle_min: -1.5,
        angle_max: 1.5,
        angle_increment: 0.01,
        time_increment: 0.0,
        scan_time: 0.1,
        range_min: 0.1,
        range_max: 10.0,
        ranges: vec![1.0, f32::INFINITY, 0.05, 3.0],
        intensities: vec![],
    }));
    covered.extend(round_trip(Image::rgb8(header(), 4, 2, (0..24).collect())));
    covered.extend(round_trip(Classification {
        header: header(),
        class_id: 2,
        label: "obstacle_right".into(),
        confidence: 0.9,
        probabilities: vec![0.05, 0.05, 0.9],
    }));
    covered.sort();
    let known: Vec<String> = Registry::builtin().names().map(str::to_string).collect();
    assert_eq!(
        covered, known,
        "every shipped definition has a typed struct and is round-tripped"
    );
}

#[test]
fn large_arrays_move_in_and_are_read_in_place() {
    let pixels: Vec<u8> = vec![7; 640 * 480 * 3];
    let before = pixels.as_ptr();
    let array = Image::rgb8(header(), 640, 480, pixels).to_arrow().unwrap();
    let view = ImageView::new(array.as_ref()).unwrap();
    assert_eq!(
        view.data.as_ptr(),
        before,
        "the Vec became the Arrow buffer: no copy in, no copy out"
    );
    assert_eq!(view.data.len(), 640 * 480 * 3);
    assert_eq!(view.scalars.step, 640 * 3);

    let ranges = vec![2.0f32; 360];
    let before = ranges.as_ptr();
    let array = LaserScan {
        ranges,
        ..LaserScan::default()
    }
    .to_arrow()
    .unwrap();
    let view = LaserScanView::new(array.as_ref()).unwrap();
    assert_eq!(view.ranges.as_ptr(), before);
    assert_eq!(view.ranges.len(), 360);
}

#[test]
fn reading_the_wrong_type_is_an_error() {
    let twist = Twist::default().to_arrow().unwrap();
    let e = LaserScan::from_arrow(twist.as_ref()).unwrap_err();
    assert_eq!(e.to_string(), "sensor_msgs/LaserScan: no field `header`");
    let two = arrow_array::Int64Array::from(vec![1, 2]);
    assert_eq!(
        Int64::from_arrow(&two).unwrap_err().to_string(),
        "std_msgs/Int64: expected a struct array, found Int64"
    );
    let short = Image {
        height: 10,
        width: 10,
        step: 30,
        data: vec![0; 5],
        ..Image::default()
    }
    .to_arrow()
    .unwrap();
    assert_eq!(
        ImageView::new(short.as_ref()).unwrap_err().to_string(),
        "sensor_msgs/Image: 5 bytes of data for step 30 x height 10"
    );
}
