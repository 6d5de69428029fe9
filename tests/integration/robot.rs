//! The robot in closed loop, in stepped mode (simulated time, so CI load cannot change the
//! outcome): on every map it drives five simulated minutes without touching anything and moves
//! most of the time.

use std::time::Duration;

use quiver_runtime::{Mode, RunOptions, Summary};

use crate::support::{run_file, temp_dir, workspace, write};

const MAPS: &[&str] = &["room", "corridor", "warehouse"];

fn stepped(secs: u64) -> RunOptions {
    RunOptions {
        mode: Mode::Stepped {
            steps: None,
            duration: Some(Duration::from_secs(secs)),
            step: None,
        },
        ..RunOptions::default()
    }
}

/// A graph file of the repo with its map replaced and its relative paths made absolute.
fn with_map(graph: &str, map: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace().join("graphs").join(graph)).expect("graph");
    let dir = temp_dir(&format!("robot-{graph}-{map}"));
    let maps = workspace().join("graphs/maps");
    let text = text
        .replace(
            "maps/room.yaml",
            &maps.join(format!("{map}.yaml")).display().to_string(),
        )
        .replace("../operators/", &format!("{}/operators/", workspace().display()));
    write(&dir, graph, &text)
}

fn figure(summary: &Summary, node: &str, key: &str) -> f64 {
    let v = summary
        .node(node)
        .and_then(|n| n.report(key))
        .unwrap_or_else(|| panic!("{node} reports no {key}:\n{summary}"));
    v.trim_end_matches(['%', 'm', ' '])
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {v}"))
}

#[test]
fn laser_avoidance_drives_five_minutes_on_every_map_without_collisions() {
    for map in MAPS {
        let summary = run_file(&with_map("laser-avoidance.yaml", map), &stepped(300));
        assert_eq!(summary.steps, Some(15_000), "{summary}");
        assert_eq!(figure(&summary, "world", "collisions"), 0.0, "map {map}:\n{summary}");
        assert!(figure(&summary, "world", "moving") >= 80.0, "map {map}:\n{summary}");
        assert!(
            figure(&summary, "world", "distance") >= 20.0,
            "map {map}: it must drive, not spin:\n{summary}"
        );
        assert!(summary.failed_nodes().is_empty(), "{summary}");
    }
}

#[test]
fn obstacle_avoidance_with_camera_and_cnn_drives_five_minutes_on_every_map_without_collisions() {
    for map in MAPS {
        let summary = run_file(&with_map("obstacle-avoidance.yaml", map), &stepped(300));
        assert_eq!(figure(&summary, "world", "collisions"), 0.0, "map {map}:\n{summary}");
        assert!(figure(&summary, "world", "moving") >= 80.0, "map {map}:\n{summary}");
        assert!(
            figure(&summary, "world", "distance") >= 20.0,
            "map {map}: it must drive, not spin:\n{summary}"
        );
        assert!(
            figure(&summary, "camera", "frames") >= 2900.0,
            "10 fps for 300 s:\n{summary}"
        );
        assert!(summary.failed_nodes().is_empty(), "{summary}");
        // The CNN sees obstacles on both sides somewhere along the way.
        let classes = summary
            .node("cnn")
            .and_then(|n| n.report("classes"))
            .unwrap_or_default()
            .to_string();
        assert!(
            !classes.contains("left=0") && !classes.contains("right=0"),
            "map {map}: {classes}"
        );
    }
}

#[test]
fn the_closed_loop_is_deterministic_in_stepped_mode() {
    let a = run_file(&with_map("obstacle-avoidance.yaml", "corridor"), &stepped(60));
    let b = run_file(&with_map("obstacle-avoidance.yaml", "corridor"), &stepped(60));
    assert_eq!(a.to_string(), b.to_string());
}
