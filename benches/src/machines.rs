//! Between machines, on the private hosts `benches/machines/run.sh` builds (network namespaces
//! joined by a bridge; this binary runs on host `near`, daemons on `far` and `third`):
//! - one hop from a source where `quiver run` is to a sink on `far`'s daemon, and the same
//!   payloads over raw Zenoh between the same two hosts (its subscriber started on `far` with
//!   `ip netns exec`), both with the tuning of a run across machines;
//! - the time from `quiver run` to every process on every machine started, for a 30-node graph
//!   over three hosts;
//! - the time from a daemon's SIGKILL, and from a cut link, to `quiver run` reporting the loss.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::procs::{period, publish, session_at};
use crate::{SIZES, WARMUP, exe_dir, percentile, read_sink};

/// What run.sh tells us about the hosts.
pub struct Hosts {
    pub near_ip: String,
    pub far_ns: String,
    pub far_ip: String,
    pub third_ns: String,
    pub third_ip: String,
    /// The bridge namespace and `far`'s port on it (to cut the link).
    pub bridge_ns: String,
    pub far_port: String,
}

impl Hosts {
    pub fn from_env() -> Result<Hosts> {
        let v = |k: &str| std::env::var(k).with_context(|| format!("{k} (set by benches/machines/run.sh)"));
        Ok(Hosts {
            near_ip: v("NEAR_IP")?,
            far_ns: v("FAR_NS")?,
            far_ip: v("FAR_IP")?,
            third_ns: v("THIRD_NS")?,
            third_ip: v("THIRD_IP")?,
            bridge_ns: v("BRIDGE_NS")?,
            far_port: v("FAR_PORT")?,
        })
    }
}

/// A command on another host, in a mount namespace with its own /dev/shm.
fn on_host(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "sh", "-c"])
        .arg(r#"mount -t tmpfs tmpfs /dev/shm && exec "$0" "$@""#)
        .args(args);
    c
}

/// A daemon on another host, killed when dropped (on every way out of the benchmark).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(ns: &str, name: &str, ip: &str, labels: &str, connect: Option<&str>, dir: &Path) -> Result<Daemon> {
    let quiver = exe_dir()?.join("quiver");
    let listen = format!("tcp/{ip}:7450");
    let cache = dir.join(format!("cache-{name}"));
    let mut args = vec![
        quiver.to_str().context("utf-8")?,
        "daemon",
        "--name",
        name,
        "--labels",
        labels,
        "--listen",
        &listen,
        "--cache",
        cache.to_str().context("utf-8")?,
    ];
    if let Some(c) = connect {
        args.extend(["--connect", c]);
    }
    let child = on_host(ns, &args)
        .env_remove("QUIVER_OPERATOR_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Daemon(child))
}

fn control(ip: &str) -> String {
    format!("tcp/{ip}:7450")
}

/// Runs `quiver run` here with `args`, waits for it; its stderr lines with arrival times.
fn quiver_run(args: &[&str], on_line: &mut dyn FnMut(Instant, &str, &mut Child)) -> Result<()> {
    let mut child = Command::new(exe_dir()?.join("quiver"))
        .arg("run")
        .args(args)
        .env("QUIVER_OPERATOR_PATH", exe_dir()?)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let err = child.stderr.take().context("stderr")?;
    let mut text = String::new();
    for line in BufReader::new(err).lines() {
        let line = line?;
        on_line(Instant::now(), &line, &mut child);
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait()?;
    if !status.success() && status.code() != Some(1) {
        bail!("quiver run failed ({status}):\n{text}");
    }
    Ok(())
}

fn wait_for_daemons(connect: &str, want: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = Command::new(exe_dir()?.join("quiver"))
            .args(["machines", "--connect", connect, "--json"])
            .output()?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v.as_array().is_some_and(|a| a.len() >= want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the daemons did not answer: {}", String::from_utf8_lossy(&o.stderr));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn quiver_latency(dir: &Path, connect: &str, size: usize, samples: usize, in_place: bool) -> Result<Vec<u64>> {
    let out = dir.join("latency-machines.txt");
    let _ = std::fs::remove_file(&out);
    let yaml = crate::procs::latency_graph(size, samples, in_place, &out, "deploy: { machine: far }");
    let path = dir.join("bench-machines.yaml");
    std::fs::write(&path, yaml)?;
    quiver_run(
        &[path.to_str().context("utf-8")?, "--connect", connect, "--for", "600s"],
        &mut |_, _, _| {},
    )?;
    let mut l = read_sink(&out)?.latencies.split_off(WARMUP);
    l.sort_unstable();
    Ok(l)
}

fn zenoh_latency(h: &Hosts, size: usize, samples: usize) -> Result<Vec<u64>> {
    let dir = exe_dir()?.join("bench-tmp");
    let out = dir.join("raw-zenoh-machines.txt");
    let _ = std::fs::remove_file(&out);
    let listen = format!("tcp/{}:7460", h.far_ip);
    let me = std::env::current_exe()?;
    let count = samples + WARMUP;
    let mut child = on_host(
        &h.far_ns,
        &[
            me.to_str().context("utf-8")?,
            "zenoh-sub-net",
            &listen,
            out.to_str().context("utf-8")?,
            &count.to_string(),
        ],
    )
    .stdout(Stdio::piped())
    .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let tuning = quiver_zenoh::network_tuning(quiver_zenoh::Tuning::from_env());
    let s = session_at(None, Some(listen), &tuning)?;
    let sent = publish(&s, size, count, Some(period(size)), false)?;
    if !child.wait()?.success() {
        bail!("the raw Zenoh subscriber failed");
    }
    drop(sent);
    drop(s);
    let mut l = read_sink(&out)?.latencies.split_off(WARMUP);
    l.sort_unstable();
    Ok(l)
}

/// The child on `far`: the raw subscriber listening on the host's address.
pub fn zenoh_sub_net(listen: &str, out: &Path, count: usize) -> Result<()> {
    let tuning = quiver_zenoh::network_tuning(quiver_zenoh::Tuning::from_env());
    let s = session_at(Some(listen.to_string()), None, &tuning)?;
    crate::procs::zenoh_sub_on(s, out, count, true)
}

/// 30 nodes over three hosts: ten chains counter (far) -> scale (third, by label) -> recorder
/// (here). Time from spawning `quiver run` to its "every process is ready" line.
fn startup(dir: &Path, connect: &str, runs: usize) -> Result<Vec<Duration>> {
    let mut yaml = String::from("name: thirty\nnodes:\n");
    for i in 0..10 {
        yaml.push_str(&format!(
            "  - id: c{i}
    operator: counter
    inputs: {{ tick: {{ timer: 100ms }} }}
    outputs: [count]
    deploy: {{ machine: far }}
  - id: s{i}
    operator: scale
    inputs: {{ value: c{i}/count }}
    outputs: [value]
    deploy: {{ labels: [gpu] }}
  - id: r{i}
    operator: recorder
    params: {{ path: {} }}
    inputs: {{ in: s{i}/value }}
",
            dir.join(format!("thirty-{i}.txt")).display()
        ));
    }
    let path = dir.join("thirty.yaml");
    std::fs::write(&path, yaml)?;
    let mut out = Vec::new();
    // The first run fetches the libraries into the daemons' caches; it is reported apart.
    for _ in 0..=runs {
        let start = Instant::now();
        let mut ready = None;
        quiver_run(
            &[
                path.to_str().context("utf-8")?,
                "--connect",
                connect,
                "--for",
                "1s",
                "-v",
            ],
            &mut |at, line, _| {
                if ready.is_none() && line.contains("every process is ready") {
                    ready = Some(at.duration_since(start));
                }
            },
        )?;
        out.push(ready.context("no `every process is ready` line")?);
    }
    Ok(out)
}

/// Time from `lose` to `quiver run` printing that machine `far` is lost.
fn detection(dir: &Path, connect: &str, lose: &mut dyn FnMut() -> Result<()>) -> Result<Duration> {
    let yaml = "name: loss
nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 10ms } }
    outputs: [count]
    deploy: { machine: far }
  - id: sink
    operator: recorder
    inputs: { in: ticker/count }
";
    let path = dir.join("loss.yaml");
    std::fs::write(&path, yaml)?;
    let mut cut: Option<Instant> = None;
    let mut found = None;
    let mut lose_err = None;
    quiver_run(
        &[
            path.to_str().context("utf-8")?,
            "--connect",
            connect,
            "--for",
            "8s",
            "-v",
        ],
        &mut |at, line, _| {
            if cut.is_none() && line.contains("every process is ready") {
                std::thread::sleep(Duration::from_secs(1));
                cut = Some(Instant::now());
                if let Err(e) = lose() {
                    lose_err = Some(e);
                }
            }
            if found.is_none() && line.contains("machine `far` lost") {
                found = cut.map(|c| at.duration_since(c));
            }
        },
    )?;
    if let Some(e) = lose_err {
        return Err(e);
    }
    found.context("the loss was not reported")
}

pub fn run(quick: bool) -> Result<()> {
    let h = Hosts::from_env()?;
    let dir = exe_dir()?.join("bench-tmp");
    std::fs::create_dir_all(&dir)?;
    let connect = control(&h.far_ip);
    // Empty caches: the first startup run below fetches what it needs.
    for name in ["far", "third"] {
        let _ = std::fs::remove_dir_all(dir.join(format!("cache-{name}")));
    }
    let mut far = daemon(&h.far_ns, "far", &h.far_ip, "arm", None, &dir)?;
    let third = daemon(&h.third_ns, "third", &h.third_ip, "gpu", Some(&connect), &dir)?;
    wait_for_daemons(&connect, 2)?;
    let samples = if quick { 50 } else { 1000 };
    println!(
        "One hop between two private hosts (veth + bridge; `quiver run` on {}, the sink on daemon `far` at {}), receiver idle between packs ({samples} samples per size):\n",
        h.near_ip, h.far_ip
    );
    println!(
        "| payload | quiver in place p50 / p99 (µs) | quiver copied p50 / p99 (µs) | raw Zenoh p50 / p99 (µs) | p50 ratio in place / copied |"
    );
    println!("|---|---:|---:|---:|---:|");
    for &(size, label) in SIZES.iter().filter(|(s, _)| *s <= 4 << 20) {
        let placed = quiver_latency(&dir, &connect, size, samples, true)?;
        let copied = quiver_latency(&dir, &connect, size, samples, false)?;
        let raw = zenoh_latency(&h, size, samples)?;
        let p50 = |l: &[u64]| percentile(l, 0.5);
        println!(
            "| {label} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} |",
            p50(&placed),
            percentile(&placed, 0.99),
            p50(&copied),
            percentile(&copied, 0.99),
            p50(&raw),
            percentile(&raw, 0.99),
            p50(&placed) / p50(&raw),
            p50(&copied) / p50(&raw)
        );
    }
    let runs = if quick { 2 } else { 5 };
    let mut times = startup(&dir, &connect, runs)?;
    let first = times.remove(0);
    times.sort();
    println!(
        "\n30 nodes over three hosts (10 x counter on `far` -> scale on the `gpu` daemon -> recorder here), time from `quiver run` to every process ready: first run (fetching the libraries) {first:?}; then {runs} runs (cached): min {:?}, median {:?}, max {:?}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let killed = detection(&dir, &connect, &mut || {
        let _ = far.0.kill();
        let _ = far.0.wait();
        Ok(())
    });
    // The daemon comes back for the next measurement.
    far = daemon(&h.far_ns, "far", &h.far_ip, "arm", None, &dir)?;
    wait_for_daemons(&connect, 2)?;
    let (bridge, port) = (h.bridge_ns.clone(), h.far_port.clone());
    let cut = detection(&dir, &connect, &mut || {
        let s = Command::new("ip")
            .args(["-n", &bridge, "link", "set", &port, "down"])
            .status()?;
        if !s.success() {
            bail!("cutting the link failed");
        }
        Ok(())
    });
    let _ = Command::new("ip")
        .args(["-n", &h.bridge_ns, "link", "set", &h.far_port, "up"])
        .status();
    println!(
        "\nLoss of machine `far` reported by `quiver run`: daemon SIGKILLed after {:?}, link cut after {:?} (control-plane lease 1 s)",
        killed?, cut?
    );
    drop((far, third));
    Ok(())
}
