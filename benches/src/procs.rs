//! Between processes: one hop from a source in `quiver run`'s own process to a sink in an
//! isolated worker (over quiver-zenoh), and the same payloads over raw Zenoh pub/sub between
//! this binary and a child of it (same Zenoh version and tuning, the payload written into a
//! shared-memory buffer by the publisher, the timestamp in its first 8 bytes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use quiver_zenoh::external::zenoh::shm::{
    AllocAlignment, BlockOn, GarbageCollect, PosixShmProviderBackend, ShmProviderBuilder,
};
use quiver_zenoh::external::zenoh::{self, Wait};

use crate::{WARMUP, exe_dir, read_sink};

/// The pace for a payload size: the receiver must be idle when the next one is sent.
pub fn period(size: usize) -> Duration {
    match size {
        s if s <= 64 << 10 => Duration::from_millis(1),
        s if s <= 1 << 20 => Duration::from_millis(5),
        s if s <= 4 << 20 => Duration::from_millis(10),
        _ => Duration::from_millis(50),
    }
}

fn run_cli(dir: &Path, yaml: &str) -> Result<()> {
    let path = dir.join("bench-procs.yaml");
    std::fs::write(&path, yaml)?;
    let out = Command::new(exe_dir()?.join("quiver"))
        .args(["run", path.to_str().context("utf-8 path")?, "--for", "600s"])
        .env("QUIVER_OPERATOR_PATH", exe_dir()?)
        .output()
        .context("running quiver")?;
    if !out.status.success() {
        bail!(
            "quiver run failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// One hop between processes; the receiver idles between packs. `in_place`: the source writes
/// each pack into the shared-memory buffer the host lends it (else the host copies its array
/// into one).
pub fn quiver_latency(dir: &Path, size: usize, samples: usize, in_place: bool) -> Result<Vec<u64>> {
    let out = dir.join("latency-procs.txt");
    let yaml = latency_graph(size, samples, in_place, &out, "isolate: true");
    run_cli(dir, &yaml)?;
    let mut l = read_sink(&out)?.latencies.split_off(WARMUP);
    l.sort_unstable();
    Ok(l)
}

/// A source paced for `size` sending `samples` (+ warm-up) packs to a sink placed by
/// `placement` (a node key: `isolate: true`, `deploy: { machine: far }`) that writes `out`.
pub fn latency_graph(size: usize, samples: usize, in_place: bool, out: &Path, placement: &str) -> String {
    format!(
        "name: latency
nodes:
  - id: source
    operator: bench-source
    params: {{ size: {size}, count: {}, in_place: {in_place} }}
    inputs: {{ tick: {{ timer: {}us }} }}
    outputs: [out]
  - id: sink
    operator: bench-sink
    params: {{ path: {} }}
    inputs: {{ in: source/out }}
    {placement}
",
        samples + WARMUP,
        period(size).as_micros(),
        out.display()
    )
}

/// Back-to-back 8 B packs from the main process to an isolated sink (`block` queue of 1024).
pub fn quiver_throughput(dir: &Path, count: usize) -> Result<f64> {
    let out = dir.join("throughput-procs.txt");
    let yaml = format!(
        "name: throughput-procs
nodes:
  - id: source
    operator: bench-source
    params: {{ size: 8, count: {count}, burst: {count} }}
    inputs: {{ tick: {{ timer: 1ms }} }}
    outputs: [out]
  - id: sink
    operator: bench-sink
    params: {{ path: {}, latencies: false }}
    inputs: {{ in: {{ from: source/out, queue: {{ depth: 1024, policy: block }} }} }}
    isolate: true
",
        out.display()
    );
    run_cli(dir, &yaml)?;
    let s = read_sink(&out)?;
    if s.count != count as u64 {
        bail!("sent {count}, received {}", s.count);
    }
    Ok(s.count as f64 / ((s.last - s.first) as f64 / 1e9))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn session(listen: Option<u16>, connect: Option<u16>) -> Result<zenoh::Session> {
    session_at(
        listen.map(|p| format!("tcp/127.0.0.1:{p}")),
        connect.map(|p| format!("tcp/127.0.0.1:{p}")),
        &quiver_zenoh::Tuning::from_env(),
    )
}

/// A raw Zenoh session on explicit endpoints with quiver's configuration for `tuning`.
pub fn session_at(
    listen: Option<String>,
    connect: Option<String>,
    tuning: &quiver_zenoh::Tuning,
) -> Result<zenoh::Session> {
    let endpoints = quiver_zenoh::Endpoints {
        listen: listen.into_iter().collect(),
        connect: connect.into_iter().collect(),
    };
    let config = quiver_zenoh::session_config(&endpoints, tuning)?;
    zenoh::open(config).wait().map_err(|e| anyhow::anyhow!("{e}"))
}

const KEY: &str = "quiver-bench/raw";

/// The child: subscribes, records `now - timestamp` per sample (or just arrival times), writes
/// the sink file format when `count` samples have arrived.
pub fn zenoh_sub(port: u16, out: &Path, count: usize, latencies: bool) -> Result<()> {
    zenoh_sub_on(session(Some(port), None)?, out, count, latencies)
}

/// [`zenoh_sub`] on a given session (between machines: listening on the host's address).
pub fn zenoh_sub_on(s: zenoh::Session, out: &Path, count: usize, latencies: bool) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, u64)>(1024);
    let _sub = s
        .declare_subscriber(KEY)
        .callback(move |sample| {
            let now = now_ns();
            let payload = sample.payload();
            let sent = match payload.as_shm() {
                Some(shm) => stamp(shm),
                None => stamp(&payload.to_bytes()),
            };
            let _ = tx.send((now, sent));
        })
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("ready");
    let mut lat = Vec::with_capacity(if latencies { count } else { 0 });
    let (mut first, mut last) = (0, 0);
    for i in 0..count {
        let (now, sent) = rx.recv().context("the subscriber stopped")?;
        if i == 0 {
            first = now;
        }
        last = now;
        if latencies {
            lat.push(now.saturating_sub(sent));
        }
    }
    let mut text = format!("{count} {first} {last}\n");
    for l in lat {
        text.push_str(&format!("{l}\n"));
    }
    std::fs::write(out, text)?;
    Ok(())
}

fn stamp(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Raw Zenoh between this process and a child: `count` samples of `size` bytes, one per
/// `period` (None: back to back), each written into a fresh shared-memory buffer (or sent as a
/// plain put with `shm: false`).
fn zenoh_run(size: usize, count: usize, period: Option<Duration>, shm: bool) -> Result<PathBuf> {
    let dir = exe_dir()?.join("bench-tmp");
    let out = dir.join("raw-zenoh.txt");
    let _ = std::fs::remove_file(&out);
    let port = free_port()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "zenoh-sub",
            &port.to_string(),
            out.to_str().context("utf-8")?,
            &count.to_string(),
            if period.is_some() { "latencies" } else { "arrivals" },
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
    }
    let s = session(None, Some(port))?;
    let sent = publish(&s, size, count, period, shm)?;
    let status = child.wait()?;
    drop(sent);
    if !status.success() {
        bail!("the raw Zenoh subscriber failed: {status}");
    }
    let _ = s.close().wait();
    Ok(out)
}

/// Waits for the subscriber, then puts `count` timestamped payloads of `size` bytes. The
/// returned guard holds the publisher and the shared-memory provider: keep it until the
/// subscriber has read everything (the last buffers live in that provider's segment).
pub fn publish(
    s: &zenoh::Session,
    size: usize,
    count: usize,
    period: Option<Duration>,
    shm: bool,
) -> Result<Box<dyn std::any::Any>> {
    let publisher = s
        .declare_publisher(KEY)
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .express(!quiver_zenoh::Tuning::from_env().batching)
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !publisher
        .matching_status()
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .matching()
    {
        if Instant::now() > deadline {
            bail!("the raw Zenoh subscriber never matched");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let pool = (size.max(64) * 4).max(4 << 20).div_ceil(64) * 64;
    let align = AllocAlignment::new(6).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let backend = PosixShmProviderBackend::builder((pool, align))
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let provider = ShmProviderBuilder::backend(backend).wait();
    let payload = vec![7u8; size.max(8)];
    let mut next = Instant::now();
    for _ in 0..count {
        if let Some(p) = period {
            next += p;
            while Instant::now() < next {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        if shm {
            let mut buf = provider
                .alloc(size.max(8))
                .with_policy::<BlockOn<GarbageCollect>>()
                .wait()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            buf[8..].copy_from_slice(&payload[8..]);
            buf[..8].copy_from_slice(&now_ns().to_le_bytes());
            publisher.put(buf).wait().map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            let mut p = payload.clone();
            p[..8].copy_from_slice(&now_ns().to_le_bytes());
            publisher.put(p).wait().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(Box::new((publisher, provider)))
}

/// Raw Zenoh one-way latency (the payload filled, then the timestamp written, then put).
pub fn zenoh_latency(size: usize, samples: usize, shm: bool) -> Result<Vec<u64>> {
    let out = zenoh_run(size, samples + WARMUP, Some(period(size)), shm)?;
    let mut l = read_sink(&out)?.latencies.split_off(WARMUP);
    l.sort_unstable();
    Ok(l)
}

/// Raw Zenoh back-to-back 8 B messages.
pub fn zenoh_throughput(count: usize, shm: bool) -> Result<f64> {
    let out = zenoh_run(8, count, None, shm)?;
    let s = read_sink(&out)?;
    Ok(s.count as f64 / ((s.last - s.first) as f64 / 1e9))
}
