//! quiver's benchmark binary: in-process one-way latency per payload size and back-to-back
//! throughput through a 3-node chain, each measured beside a plain crossbeam channel between
//! threads (the floor) in the same run. Prints a Markdown table for benches/RESULTS.md.
//!
//! `cargo run --release -p quiver-benches` (add `-- --quick` for a smoke run).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use quiver_runtime::{Mode, Registry, RunOptions, SearchPath};

mod machines;
mod plot;
mod procs;
mod ros;
mod taps;

const SIZES: &[(usize, &str)] = &[
    (8, "8 B"),
    (64 << 10, "64 KiB"),
    (1 << 20, "1 MiB"),
    (4 << 20, "4 MiB"),
    (40 << 20, "40 MiB"),
];
const WARMUP: usize = 50;
const PERIOD: Duration = Duration::from_millis(1);

fn exe_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("binary has a folder")?.to_path_buf())
}

/// Builds the benchmark plugins with the profile this binary was built with.
fn build_plugins() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "bench-source",
        "-p",
        "bench-sink",
        "-p",
        "quiver",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    if !cmd.status()?.success() {
        bail!("building the benchmark plugins failed");
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub(crate) struct SinkFile {
    count: u64,
    first: u64,
    last: u64,
    latencies: Vec<u64>,
}

fn read_sink(path: &Path) -> Result<SinkFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let head: Vec<u64> = lines
        .next()
        .context("empty results")?
        .split(' ')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let latencies = lines.map(str::parse).collect::<Result<Vec<u64>, _>>()?;
    Ok(SinkFile {
        count: head[0],
        first: head[1],
        last: head[2],
        latencies,
    })
}

fn run_graph(registry: &Registry, dir: &Path, yaml: &str) -> Result<()> {
    let path = dir.join("bench.yaml");
    std::fs::write(&path, yaml)?;
    let graph = quiver_runtime::load_graph(&path, registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = RunOptions {
        mode: Mode::RealTime {
            duration: Some(Duration::from_secs(600)),
        },
        ..RunOptions::default()
    };
    let summary = quiver_runtime::run(&graph, registry, &options)?;
    if !summary.failed_nodes().is_empty() || summary.total_dropped() > 0 {
        bail!("benchmark graph failed:\n{summary}");
    }
    Ok(())
}

/// One hop between two operators in one process; the receiver idles between packs.
fn quiver_latency(registry: &Registry, dir: &Path, size: usize, samples: usize) -> Result<Vec<u64>> {
    let out = dir.join("latency.txt");
    let yaml = format!(
        "name: latency
nodes:
  - id: source
    operator: bench-source
    params: {{ size: {size}, count: {} }}
    inputs: {{ tick: {{ timer: 1ms }} }}
    outputs: [out]
  - id: sink
    operator: bench-sink
    params: {{ path: {} }}
    inputs: {{ in: source/out }}
",
        samples + WARMUP,
        out.display()
    );
    run_graph(registry, dir, &yaml)?;
    let mut l = read_sink(&out)?.latencies.split_off(WARMUP);
    l.sort_unstable();
    Ok(l)
}

/// The floor: a bounded crossbeam channel between two threads, same payload (shared), same pace.
fn crossbeam_latency(size: usize, samples: usize) -> Vec<u64> {
    let (tx, rx) = crossbeam_channel::bounded::<(Instant, Arc<Vec<u8>>)>(16);
    let payload = Arc::new(vec![0xA5u8; size]);
    let receiver = std::thread::spawn(move || {
        let mut out = Vec::with_capacity(samples + WARMUP);
        while let Ok((sent, _data)) = rx.recv() {
            out.push(sent.elapsed().as_nanos() as u64);
        }
        out
    });
    let start = Instant::now();
    for i in 0..samples + WARMUP {
        let due = start + PERIOD * (i as u32 + 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if tx.send((Instant::now(), payload.clone())).is_err() {
            break;
        }
    }
    drop(tx);
    let mut l = receiver.join().unwrap_or_default().split_off(WARMUP);
    l.sort_unstable();
    l
}

/// 8-byte packs back to back through source -> relay -> sink; messages per second at the sink.
fn quiver_throughput(registry: &Registry, dir: &Path, count: usize) -> Result<f64> {
    let out = dir.join("throughput.txt");
    let yaml = format!(
        "name: throughput
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
    run_graph(registry, dir, &yaml)?;
    let s = read_sink(&out)?;
    if s.count != count as u64 {
        bail!("sink saw {} of {count}", s.count);
    }
    Ok((s.count - 1) as f64 / ((s.last - s.first) as f64 / 1e9))
}

fn crossbeam_throughput(count: usize) -> f64 {
    let (tx1, rx1) = crossbeam_channel::bounded::<[u8; 8]>(1024);
    let (tx2, rx2) = crossbeam_channel::bounded::<[u8; 8]>(1024);
    let relay = std::thread::spawn(move || {
        while let Ok(m) = rx1.recv() {
            if tx2.send(m).is_err() {
                break;
            }
        }
    });
    let sink = std::thread::spawn(move || {
        let mut first = None;
        let mut n = 0u64;
        while rx2.recv().is_ok() {
            first.get_or_insert_with(Instant::now);
            n += 1;
        }
        (n, first.map(|f| f.elapsed()).unwrap_or_default())
    });
    for i in 0..count {
        if tx1.send((i as u64).to_le_bytes()).is_err() {
            break;
        }
    }
    drop(tx1);
    let _ = relay.join();
    let (n, elapsed) = sink.join().unwrap_or_default();
    (n.saturating_sub(1)) as f64 / elapsed.as_secs_f64()
}

/// CNN inference at batch 1 on a rendered frame of `width` x `height` (resize + network), in ms.
fn cnn_latency(width: u32, height: u32, samples: usize) -> Result<Vec<u64>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let classifier =
        cnn::Classifier::load(&root.join("operators/cnn/model/obstacle.safetensors")).map_err(anyhow::Error::msg)?;
    let map = sim_core::Map::load(&root.join("graphs/maps/room.yaml"))?;
    let frame = sim_core::render::render(&map, map.start, &sim_core::render::Camera::new(width, height));
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples + 20 {
        let t = Instant::now();
        let p = classifier.classify(&frame, width as usize, height as usize)?;
        std::hint::black_box(p);
        if i >= 20 {
            out.push(t.elapsed().as_nanos() as u64);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("zenoh-sub") {
        // The raw Zenoh baseline's subscriber (a child of this binary).
        let port = args.get(2).context("port")?.parse()?;
        let out = PathBuf::from(args.get(3).context("output")?);
        let count = args.get(4).context("count")?.parse()?;
        return procs::zenoh_sub(port, &out, count, args.get(5).map(String::as_str) == Some("latencies"));
    }
    if args.get(1).map(String::as_str) == Some("zenoh-sub-net") {
        // The raw Zenoh baseline's subscriber on another host (benches/machines/run.sh).
        let listen = args.get(2).context("endpoint")?;
        let out = PathBuf::from(args.get(3).context("output")?);
        let count = args.get(4).context("count")?.parse()?;
        return machines::zenoh_sub_net(listen, &out, count);
    }
    if std::env::args().any(|a| a == "--machines") {
        // On benches/machines/run.sh's private hosts; the binaries are built already.
        return machines::run(std::env::args().any(|a| a == "--quick"));
    }
    if let Some(i) = args.iter().position(|a| a == "--plot") {
        // Redraw the plot from saved series: `--plot OUT.svg CSV...`.
        let out = args.get(i + 1).context("--plot OUT.svg CSV...")?;
        let mut csv = String::from("system,bytes,p50_us,p99_us\n");
        for f in &args[i + 2..] {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?;
            csv.extend(text.lines().skip(1).map(|l| format!("{l}\n")));
        }
        std::fs::write(out, plot::latency_svg(&csv))?;
        return Ok(());
    }
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--ros") {
        // Inside benches/ros/run.sh's network namespace; the binaries are built already.
        let dir = exe_dir()?.join("bench-tmp");
        std::fs::create_dir_all(&dir)?;
        return ros::round_trips(&dir, quick);
    }
    if std::env::args().any(|a| a == "--taps") {
        build_plugins()?;
        let registry = Registry::new(SearchPath { dirs: vec![exe_dir()?] });
        let dir = exe_dir()?.join("bench-tmp");
        std::fs::create_dir_all(&dir)?;
        return taps::run(&registry, &dir, quick);
    }
    if std::env::args().any(|a| a == "--processes") {
        build_plugins()?;
        let dir = exe_dir()?.join("bench-tmp");
        std::fs::create_dir_all(&dir)?;
        return processes(&dir, quick);
    }
    let samples = if quick { 50 } else { 2000 };
    let count = if quick { 20_000 } else { 2_000_000 };
    let only_throughput = std::env::args().any(|a| a == "--throughput");
    build_plugins()?;
    let registry = Registry::new(SearchPath { dirs: vec![exe_dir()?] });
    let dir = exe_dir()?.join("bench-tmp");
    std::fs::create_dir_all(&dir)?;

    println!("One hop, one process, receiver idle between packs ({samples} samples per size, one every {PERIOD:?}):\n");
    println!("| payload | quiver p50 (µs) | quiver p99 (µs) | crossbeam p50 (µs) | crossbeam p99 (µs) |");
    println!("|---|---:|---:|---:|---:|");
    for &(size, label) in if only_throughput { &[][..] } else { SIZES } {
        let ours = quiver_latency(&registry, &dir, size, samples)?;
        let floor = crossbeam_latency(size, samples);
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.1} |",
            percentile(&ours, 0.5),
            percentile(&ours, 0.99),
            percentile(&floor, 0.5),
            percentile(&floor, 0.99)
        );
    }
    let ours = quiver_throughput(&registry, &dir, count)?;
    let floor = crossbeam_throughput(count);
    println!(
        "\nBack-to-back 8 B messages through a 3-node chain (source -> relay -> sink, queues of 1024, {count} messages):\n"
    );
    println!("| system | messages/s |\n|---|---:|");
    println!("| quiver | {:.0} |", ours);
    println!("| crossbeam (3 threads) | {:.0} |", floor);

    processes(&dir, quick)?;

    let samples = if quick { 20 } else { 500 };
    println!("\nCNN inference, batch 1, candle on the CPU ({samples} samples): resize to 64x48 + network\n");
    println!("| frame | p50 (ms) | p99 (ms) |\n|---|---:|---:|");
    for (w, h) in [(160, 120), (640, 480)] {
        let l = cnn_latency(w, h, samples)?;
        println!(
            "| {w}x{h} | {:.2} | {:.2} |",
            percentile(&l, 0.5) / 1000.0,
            percentile(&l, 0.99) / 1000.0
        );
    }
    Ok(())
}

/// Between processes: quiver (main process -> isolated worker) beside raw Zenoh with the same
/// payloads and tuning. Writes `bench-tmp/processes.csv` and the plot `bench-tmp/latency.svg`
/// (with dora's series when `benches/dora/results.csv` exists).
fn processes(dir: &Path, quick: bool) -> Result<()> {
    let samples = if quick { 50 } else { 1000 };
    let count = if quick { 20_000 } else { 200_000 };
    println!(
        "\nOne hop between processes (main -> isolated worker over Zenoh shared memory), receiver idle between packs ({samples} samples per size):\n"
    );
    println!(
        "| payload | period | quiver in place p50 (µs) | p99 (µs) | quiver copied p50 (µs) | p99 (µs) | raw zenoh SHM p50 (µs) | p99 (µs) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut csv = String::from("system,bytes,p50_us,p99_us\n");
    for &(size, label) in SIZES {
        let ours = procs::quiver_latency(dir, size, samples, true)?;
        let copied = procs::quiver_latency(dir, size, samples, false)?;
        let raw = procs::zenoh_latency(size, samples, true)?;
        println!(
            "| {label} | {:?} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            procs::period(size),
            percentile(&ours, 0.5),
            percentile(&ours, 0.99),
            percentile(&copied, 0.5),
            percentile(&copied, 0.99),
            percentile(&raw, 0.5),
            percentile(&raw, 0.99)
        );
        for (system, series) in [("quiver", &ours), ("quiver (copied)", &copied), ("raw zenoh", &raw)] {
            csv.push_str(&format!(
                "{system},{size},{:.1},{:.1}\n",
                percentile(series, 0.5),
                percentile(series, 0.99)
            ));
        }
    }
    let raw8 = procs::zenoh_latency(8, samples, false)?;
    println!(
        "\nRaw Zenoh plain put (no shared memory), 8 B: p50 {:.1} µs, p99 {:.1} µs",
        percentile(&raw8, 0.5),
        percentile(&raw8, 0.99)
    );
    println!("\nBack-to-back 8 B messages between two processes ({count} messages):\n");
    println!("| system | messages/s |\n|---|---:|");
    println!(
        "| quiver (block queue of 1024) | {:.0} |",
        procs::quiver_throughput(dir, count)?
    );
    println!(
        "| raw zenoh, SHM buffer per message | {:.0} |",
        procs::zenoh_throughput(count, true)?
    );
    println!(
        "| raw zenoh, plain put | {:.0} |",
        procs::zenoh_throughput(count, false)?
    );
    std::fs::write(dir.join("processes.csv"), &csv)?;
    let dora = Path::new(env!("CARGO_MANIFEST_DIR")).join("dora/results.csv");
    if let Ok(d) = std::fs::read_to_string(&dora) {
        csv.push_str(d.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>().as_str());
    }
    std::fs::write(dir.join("latency.svg"), plot::latency_svg(&csv))?;
    println!(
        "\n(series in {}, plot in {})",
        dir.join("processes.csv").display(),
        dir.join("latency.svg").display()
    );
    Ok(())
}
