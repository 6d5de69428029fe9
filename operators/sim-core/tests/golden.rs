//! The camera renderer against a committed golden frame (64 x 48 of graphs/maps/room.yaml from
//! its start pose). Regenerate after a deliberate change with:
//! `cargo run -p sim-core --example render -- graphs/maps/room.yaml 1.0 1.0 0.6 64 48 operators/sim-core/tests/golden/room-64x48.ppm`

use std::path::Path;

use sim_core::render::{Camera, from_ppm, render};
use sim_core::{Map, Pose2};

#[test]
fn the_room_looks_as_it_did() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = Map::load(&root.join("../../graphs/maps/room.yaml")).expect("map");
    let frame = render(
        &map,
        Pose2 {
            x: 1.0,
            y: 1.0,
            theta: 0.6,
        },
        &Camera::new(64, 48),
    );
    let golden = std::fs::read(root.join("tests/golden/room-64x48.ppm")).expect("golden file");
    let (w, h, want) = from_ppm(&golden).expect("a P6 file");
    assert_eq!((w, h), (64, 48));
    // Allow a rounding step of difference per channel (libm differences between machines).
    let off = frame.iter().zip(&want).filter(|(a, b)| a.abs_diff(**b) > 1).count();
    assert!(
        off * 200 < frame.len(),
        "{off} of {} channel values differ from the golden frame",
        frame.len()
    );
    // And it is a real picture: floor, walls, and both obstacle colours in view.
    let red = frame
        .chunks(3)
        .filter(|p| p[0] as i32 > p[1] as i32 + 60 && p[0] as i32 > p[2] as i32 + 60)
        .count();
    let blue = frame
        .chunks(3)
        .filter(|p| p[2] as i32 > p[0] as i32 + 40 && p[2] as i32 > p[1] as i32 + 20)
        .count();
    assert!(red > 20, "a red box in view ({red} pixels)");
    assert!(blue > 5, "a blue cylinder in view ({blue} pixels)");
}
