//! Round trip through ROS 2: `bench-ros` sends a Twist or a 640x480 Image through a
//! `ros2-bridge` node to a real rclpy echo node (`benches/ros/echo.py`) and back through the same
//! bridge; the latency is `arrival - send time`, both on the run clock (the send time travels in
//! the message). Run by `benches/ros/run.sh` inside a private network namespace.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::{exe_dir, percentile, read_sink};

/// What one run counted: the sink's results, how many messages the echo node received (graph ->
/// ROS), and how many the bridge emitted back into the graph (ROS -> graph).
struct Run {
    sink: crate::SinkFile,
    echo_received: u64,
    bridge_received: u64,
    /// What the bridge counted as never arrived from the echo node (sequence gaps).
    bridge_lost: u64,
}

/// Figure `key` of node `ros` in `quiver run`'s summary (`node `ros`: published 3, received 2`).
fn figure(summary: &str, key: &str) -> u64 {
    summary
        .lines()
        .filter(|l| l.starts_with("node `ros`:"))
        .find_map(|l| l.split(&format!("{key} ")).nth(1))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One run: `count` messages of `kind`, `burst` per tick of `period_ms`, with ROS QoS `qos`
/// (`default` or `sensor_data`) on both sides.
fn run(dir: &Path, python: &Path, kind: &str, qos: &str, count: usize, burst: usize, period_ms: u64) -> Result<Run> {
    let (ty, port) = match kind {
        "twist" => ("geometry_msgs/msg/Twist", "twist"),
        _ => ("sensor_msgs/msg/Image", "image"),
    };
    let stats = dir.join(format!("ros-{kind}-echo.txt"));
    let _ = std::fs::remove_file(&stats);
    let mut echo = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("ros/echo.py"))
        .args([ty, "/rtt_out", "/rtt_back"])
        .arg(&stats)
        .arg(qos)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the rclpy echo node")?;
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(echo.stdout.take().context("echo stdout")?).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("the echo node said `{}`", line.trim());
        }
    }
    // Sends start after ~3 s: the echo node and the bridge have matched by then.
    let warmup = 3000 / period_ms.max(1);
    let out = dir.join(format!("ros-{kind}.txt"));
    let _ = std::fs::remove_file(&out);
    let yaml = format!(
        "name: ros-rtt
nodes:
  - id: rtt
    operator: bench-ros
    params: {{ kind: {kind}, count: {count}, burst: {burst}, warmup: {warmup}, path: {} }}
    inputs:
      tick: {{ timer: {period_ms}ms }}
      {port}_in: ros/back
    outputs: [{port}_out]
  - id: ros
    operator: ros2-bridge
    ports:
      out: {{ type: {ty}, topic: /rtt_out, qos: {qos} }}
      back: {{ type: {ty}, topic: /rtt_back, qos: {qos} }}
    inputs:
      out: rtt/{port}_out
      poll: {{ timer: 1ms }}
    outputs: [back]
",
        out.display()
    );
    let graph = dir.join("ros-rtt.yaml");
    std::fs::write(&graph, yaml)?;
    let seconds = 3 + (count * period_ms as usize / burst.max(1)) / 1000 + 10;
    let o = Command::new(exe_dir()?.join("quiver"))
        .args(["run", graph.to_str().context("utf-8")?, "--for", &format!("{seconds}s")])
        .env("QUIVER_OPERATOR_PATH", exe_dir()?)
        .output()
        .context("running quiver")?;
    let _ = echo.kill();
    let _ = echo.wait();
    if !o.status.success() {
        bail!(
            "quiver run failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    let echo_received = std::fs::read_to_string(&stats)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    Ok(Run {
        sink: read_sink(&out)?,
        echo_received,
        bridge_received: figure(&stdout, "received"),
        bridge_lost: figure(&stdout, "lost"),
    })
}

pub fn round_trips(dir: &Path, quick: bool) -> Result<()> {
    let python = std::env::var_os("QUIVER_ROS_PYTHON").context("QUIVER_ROS_PYTHON (run benches/ros/run.sh)")?;
    let python = Path::new(&python);
    let samples = if quick { 30 } else { 300 };
    println!(
        "Round trip graph -> ros2-bridge -> rclpy echo node -> ros2-bridge -> graph (DDS on loopback, {samples} messages, one every 50 ms, after 3 s for discovery):\n"
    );
    println!(
        "| message | QoS | p50 (µs) | p99 (µs) | arrived | reached rclpy | came back to the bridge | lost (bridge's count) |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    let series = [
        ("twist", "Twist", "default"),
        ("image", "Image 640x480 rgb8", "default"),
        ("image", "Image 640x480 rgb8", "sensor_data"),
    ];
    for (kind, label, qos) in series {
        let r = run(dir, python, kind, qos, samples, 1, 50)?;
        let mut l = r.sink.latencies.clone();
        l.sort_unstable();
        println!(
            "| {label} | {qos} | {:.0} | {:.0} | {} of {samples} | {} | {} | {} |",
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            r.sink.count,
            r.echo_received,
            r.bridge_received,
            r.bridge_lost,
        );
    }
    println!(
        "\nThroughput: offered 1000 Twists/s or 100 Images/s for 3 s (10 ms ticks; the same QoS on both sides):\n"
    );
    println!(
        "| message | QoS | sent | arrived | reached rclpy | came back to the bridge | lost (bridge's count) | round trips/s |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for (kind, label, qos) in series {
        let (count, burst) = if kind == "twist" { (3000, 10) } else { (300, 1) };
        let r = run(dir, python, kind, qos, count, burst, 10)?;
        let s = &r.sink;
        let rate = s.count as f64 / ((s.last.saturating_sub(s.first)) as f64 / 1e9);
        println!(
            "| {label} | {qos} | {count} | {} | {} | {} | {} | {rate:.0} |",
            s.count, r.echo_received, r.bridge_received, r.bridge_lost
        );
    }
    Ok(())
}
