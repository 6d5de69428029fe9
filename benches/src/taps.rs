//! The cost of watching an output (`quiver topic echo`): the 3-node chain's throughput and the
//! one-hop latency with no watcher and with one attached through the real control plane (a
//! `quiver-control` server in this process, a client subscribed over Zenoh on loopback, every
//! pack encoded, published and decoded). Runs alternate (none, watched, none, watched, ...) so
//! both see the same machine. `quiver-bench --taps [--quick]`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use quiver_runtime::{Controls, Mode, Registry, RunOptions};

/// Runs `yaml`; with `watch = Some(topic)`, a client watches `node/output` for the whole run.
/// Returns how many packs the watcher saw.
fn run_watched(registry: &Registry, dir: &Path, yaml: &str, watch: Option<(&str, &str)>) -> Result<u64> {
    let path = dir.join("taps.yaml");
    std::fs::write(&path, yaml)?;
    let graph = quiver_runtime::load_graph(&path, registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let controls = Controls::new();
    let run = format!("bench-taps-{}", std::process::id());
    let nodes = graph.nodes.iter().map(|n| n.id.clone()).collect();
    let server = quiver_control::Server::start(&run, &graph.name, "main", nodes, Default::default(), controls.clone())?;
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch.map(|(node, output)| {
        let (node, output, run, controls) = (node.to_string(), output.to_string(), run.clone(), controls.clone());
        let (seen, done) = (seen.clone(), done.clone());
        std::thread::spawn(move || -> Result<()> {
            while !controls.running() {
                std::thread::sleep(Duration::from_micros(200));
            }
            let client = quiver_control::Client::connect(quiver_control::runs::find(Some(&run))?)?;
            let w = client.watch(&node, &output)?;
            while !done.load(Ordering::Relaxed) {
                if let Some((_, Ok(_))) = w.next(Duration::from_millis(50)) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
    });
    let options = RunOptions {
        mode: Mode::RealTime {
            duration: Some(Duration::from_secs(600)),
        },
        controls: Some(controls),
        ..RunOptions::default()
    };
    let summary = quiver_runtime::run(&graph, registry, &options)?;
    done.store(true, Ordering::Relaxed);
    if let Some(w) = watcher {
        w.join().map_err(|_| anyhow::anyhow!("the watcher panicked"))??;
    }
    drop(server);
    if !summary.failed_nodes().is_empty() || summary.total_dropped() > 0 {
        bail!("benchmark graph failed:\n{summary}");
    }
    Ok(seen.load(Ordering::Relaxed))
}

/// (watched, chain messages/s, hop p50 µs, hop p99 µs, packs the watcher saw).
type Row = (bool, f64, f64, f64, u64);

pub fn run(registry: &Registry, dir: &Path, quick: bool) -> Result<()> {
    let rounds = if quick { 1 } else { 8 };
    let count = if quick { 20_000 } else { 1_000_000 };
    let samples = if quick { 50 } else { 2000 };
    let out = dir.join("taps-throughput.txt");
    let chain = format!(
        "name: taps-throughput
nodes:
  - id: source
    operator: bench-source
    params: {{ size: 8, count: {count}, burst: {count} }}
    inputs: {{ tick: {{ timer: 1ms }} }}
    outputs: [out]
  - id: relay
    operator: bench-sink
    params: {{ forward: true, latencies: false }}
    inputs: {{ in: {{ from: source/out, queue: {{ depth: 1024 }} }} }}
    outputs: [out]
  - id: sink
    operator: bench-sink
    params: {{ path: {}, latencies: false }}
    inputs: {{ in: {{ from: relay/out, queue: {{ depth: 1024 }} }} }}
",
        out.display()
    );
    let lat_out = dir.join("taps-latency.txt");
    let hop = format!(
        "name: taps-latency
nodes:
  - id: source
    operator: bench-source
    params: {{ size: 8, count: {} }}
    inputs: {{ tick: {{ timer: 1ms }} }}
    outputs: [out]
  - id: sink
    operator: bench-sink
    params: {{ path: {} }}
    inputs: {{ in: source/out }}
",
        samples + crate::WARMUP,
        lat_out.display()
    );
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..rounds * 2 {
        let watched = round % 2 == 1;
        let topic = watched.then_some(("relay", "out"));
        let seen_t = run_watched(registry, dir, &chain, topic)?;
        let s = crate::read_sink(&out)?;
        if s.count != count as u64 {
            bail!("sink saw {} of {count}", s.count);
        }
        let rate = (s.count - 1) as f64 / ((s.last - s.first) as f64 / 1e9);
        run_watched(registry, dir, &hop, watched.then_some(("source", "out")))?;
        let mut l = crate::read_sink(&lat_out)?.latencies.split_off(crate::WARMUP);
        l.sort_unstable();
        rows.push((
            watched,
            rate,
            crate::percentile(&l, 0.5),
            crate::percentile(&l, 0.99),
            seen_t,
        ));
    }
    println!(
        "\nThe cost of a watcher (`quiver topic echo` through the control plane) on the 3-node chain ({count} x 8 B, back to back) and on one hop (8 B, one every 1 ms, {samples} samples); runs alternate:\n"
    );
    println!("| watcher | chain messages/s | watcher saw (chain) | one hop p50 (µs) | one hop p99 (µs) |");
    println!("|---|---:|---:|---:|---:|");
    for (watched, rate, p50, p99, seen) in &rows {
        println!(
            "| {} | {rate:.0} | {} | {p50:.1} | {p99:.1} |",
            if *watched { "one" } else { "none" },
            if *watched { seen.to_string() } else { "-".into() }
        );
    }
    let median = |watched: bool, f: &dyn Fn(&Row) -> f64| {
        let mut v: Vec<f64> = rows.iter().filter(|r| r.0 == watched).map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t0, t1) = (median(false, &|r| r.1), median(true, &|r| r.1));
    let (l0, l1) = (median(false, &|r| r.2), median(true, &|r| r.2));
    println!(
        "\nMedians: chain {t0:.0} -> {t1:.0} messages/s ({:+.1}%), one hop p50 {l0:.1} -> {l1:.1} µs ({:+.1}%).",
        (t1 / t0 - 1.0) * 100.0,
        (l1 / l0 - 1.0) * 100.0
    );
    Ok(())
}
