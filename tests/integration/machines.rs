//! Graphs across machines, on private hosts: network namespaces joined by a bridge that lives in
//! a namespace of its own (veth pairs, addresses 10.254.0.x that exist only there), each host
//! with its own `/dev/shm` (a tmpfs mounted in the host's mount namespace), `quiver daemon` on
//! some hosts and `quiver run` on another. Every wait is bounded; the lab removes its processes
//! and namespaces when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{build, target_dir, temp_dir, workspace};

/// Lines a process printed, each with when it arrived.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

fn collect(from: impl std::io::Read + Send + 'static, into: Lines, echo: &'static str) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if std::env::var_os("QUIVER_TEST_ECHO").is_some() {
                eprintln!("{echo}{line}");
            }
            into.lock().unwrap().push((Instant::now(), line));
        }
    });
}

/// A process started in the lab, with what it printed.
struct Proc {
    child: Child,
    out: Lines,
    err: Lines,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for (_, l) in self.out.lock().unwrap().iter().chain(self.err.lock().unwrap().iter()) {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// When a line containing `needle` first appeared on stderr, waiting at most `limit`.
    fn wait_line(&self, needle: &str, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((at, _)) = self.err.lock().unwrap().iter().find(|(_, l)| l.contains(needle)) {
                return Some(*at);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([sig, &self.pid().to_string()]).status();
    }
}

struct Lab {
    tag: String,
    hosts: usize,
    procs: Vec<Proc>,
    dir: PathBuf,
}

const CONTROL_PORT: u16 = 7450;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {} (these tests build private hosts in network namespaces and need root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// `hosts` private hosts on one bridge: host i has address 10.254.0.(i+1).
    fn new(tag: &str, hosts: usize) -> Lab {
        build();
        let tag = format!("q{tag}{}", std::process::id() % 10_000);
        let lab = Lab {
            dir: temp_dir(&format!("machines-{tag}")),
            tag,
            hosts,
            procs: Vec::new(),
        };
        let br = lab.bridge_ns();
        ip(&["netns", "add", &br]);
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for i in 0..hosts {
            let ns = lab.ns(i);
            let (a, b) = (format!("{}h{i}", lab.tag), lab.port(i));
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
            ip(&["link", "set", &a, "netns", &ns]);
            ip(&["link", "set", &b, "netns", &br]);
            ip(&["-n", &ns, "link", "set", &a, "name", "eth0"]);
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", lab.addr(i)), "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &br, "link", "set", &b, "master", "br0"]);
            ip(&["-n", &br, "link", "set", &b, "up"]);
        }
        lab
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.tag)
    }

    fn ns(&self, i: usize) -> String {
        format!("{}-h{i}", self.tag)
    }

    /// Host i's end of its veth pair, in the bridge's namespace.
    fn port(&self, i: usize) -> String {
        format!("{}b{i}", self.tag)
    }

    fn addr(&self, i: usize) -> String {
        format!("10.254.0.{}", i + 1)
    }

    fn control(&self, i: usize) -> String {
        format!("tcp/{}:{CONTROL_PORT}", self.addr(i))
    }

    /// A command on host i, in a mount namespace with its own `/dev/shm`.
    fn command(&self, i: usize, exe: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(i), "sh", "-c"])
            .arg(r#"mount -t tmpfs -o size=2g tmpfs /dev/shm && exec "$0" "$@""#)
            .arg(exe)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("QUIVER_CONNECT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn start(&mut self, mut c: Command, name: &'static str) -> usize {
        let mut child = c.spawn().expect("starting a lab process");
        let (out, err): (Lines, Lines) = (Arc::default(), Arc::default());
        collect(child.stdout.take().unwrap(), out.clone(), name);
        collect(child.stderr.take().unwrap(), err.clone(), name);
        self.procs.push(Proc { child, out, err });
        self.procs.len() - 1
    }

    /// `quiver daemon` on host i.
    fn daemon(&mut self, i: usize, name: &str, extra: &[&str]) -> usize {
        self.daemon_with(i, &target_dir().join("quiver"), name, extra)
    }

    fn daemon_with(&mut self, i: usize, exe: &Path, name: &str, extra: &[&str]) -> usize {
        let cache = self.dir.join(format!("cache-{name}"));
        let listen = self.control(i);
        let mut args = vec![
            "daemon",
            "--name",
            name,
            "--listen",
            &listen,
            "--cache",
            cache.to_str().unwrap(),
            "-v",
        ];
        args.extend_from_slice(extra);
        let mut c = self.command(i, exe, &args);
        // Its own folder as working directory, and no operator path: what it runs is shipped.
        c.current_dir(&self.dir).env_remove("QUIVER_OPERATOR_PATH");
        self.start(c, "[daemon] ")
    }

    /// `quiver ARGS` on host i with the build output as operator path, to completion.
    fn quiver(&self, i: usize, args: &[&str], limit: Duration) -> Output {
        let mut c = self.command(i, &target_dir().join("quiver"), args);
        c.current_dir(workspace()).env("QUIVER_OPERATOR_PATH", target_dir());
        let mut child = c.spawn().expect("running quiver in the lab");
        let deadline = Instant::now() + limit;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("quiver's output")
    }

    /// `quiver run ARGS` on host i, in the background.
    fn run(&mut self, i: usize, args: &[&str]) -> usize {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let mut c = self.command(i, &target_dir().join("quiver"), &all);
        c.current_dir(workspace()).env("QUIVER_OPERATOR_PATH", target_dir());
        self.start(c, "[run] ")
    }

    /// The daemons `quiver machines` lists from host i, waiting until `want` answer.
    fn machines(&self, i: usize, via: usize, want: usize) -> serde_json::Value {
        self.machines_with(i, via, want, &[])
    }

    fn machines_with(&self, i: usize, via: usize, want: usize, extra: &[&str]) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let control = self.control(via);
            let mut args = vec!["machines", "--connect", &control, "--json"];
            args.extend_from_slice(extra);
            let o = self.quiver(i, &args, Duration::from_secs(15));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
            if v.as_array().is_some_and(|a| a.len() >= want) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Host i's link to the bridge, down or up.
    fn link(&self, i: usize, up: bool) {
        ip(&[
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &self.port(i),
            if up { "up" } else { "down" },
        ]);
    }

    /// The files in the `/dev/shm` of the host process `pid` runs on.
    fn shm_files(&self, pid: u32) -> Vec<String> {
        let o = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "ls", "-A", "/dev/shm"])
            .output()
            .expect("nsenter");
        assert!(o.status.success(), "nsenter: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        // Anything a killed daemon left (its workers stop by themselves within 5 s, but the
        // namespace goes now).
        let _ = Command::new("pkill")
            .args(["-9", "-f", &self.dir.display().to_string()])
            .status();
        for i in 0..self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(i)]).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.bridge_ns()]).status();
    }
}

/// `quiver worker` processes whose command line mentions `needle` (a run's staging folder or
/// graph), with their pids.
fn workers_with(needle: &str) -> Vec<String> {
    let o = Command::new("pgrep")
        .args(["-af", "quiver worker"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(needle) && !l.contains("pgrep"))
        .map(str::to_string)
        .collect()
}

fn summary_of(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary JSON")
}

fn node<'a>(summary: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    summary["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("node `{id}` in the summary: {summary}"))
}

fn report(n: &serde_json::Value, key: &str) -> String {
    n["reports"]
        .as_array()
        .and_then(|r| r.iter().find(|kv| kv[0] == key))
        .map(|kv| kv[1].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// The number before the first space (`"2.4 m"` -> 2.4).
fn leading_number(s: &str) -> f64 {
    s.split_whitespace()
        .next()
        .and_then(|v| v.trim_end_matches('%').parse().ok())
        .unwrap_or(-1.0)
}

/// The robot split over three hosts: world and controller on `robot` (host 0), camera and CNN
/// on the `gpu`-labelled `gpu-box` (host 1), the laser filter where `quiver run` is (host 2).
#[test]
fn robot_over_three_machines() {
    let mut lab = Lab::new("r", 3);
    let robot = lab.daemon(0, "robot", &["--labels", "arm"]);
    let gpu = lab.daemon(1, "gpu-box", &["--labels", "gpu", "--connect", &lab.control(0)]);
    let listed = lab.machines(2, 0, 2);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gpu-box", "robot"], "{listed}");
    assert_eq!(listed[0]["labels"], serde_json::json!(["gpu"]));
    assert_eq!(listed[0]["host"], "10.254.0.2");

    let check = lab.quiver(
        2,
        &[
            "check",
            "graphs/obstacle-avoidance-machines.yaml",
            "--connect",
            &lab.control(0),
        ],
        Duration::from_secs(30),
    );
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let summary = lab.dir.join("summary.json");
    let run = lab.run(
        2,
        &[
            "graphs/obstacle-avoidance-machines.yaml",
            "--connect",
            &lab.control(0),
            "--for",
            "15s",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    let status = lab.procs[run]
        .wait_exit(Duration::from_secs(120))
        .expect("the run ends");
    let text = lab.procs[run].text();
    assert!(status.success(), "quiver run failed:\n{text}");
    let s = summary_of(&summary);
    // Every node ran where the graph put it.
    for (id, machine) in [
        ("world", Some("robot")),
        ("controller", Some("robot")),
        ("camera", Some("gpu-box")),
        ("cnn", Some("gpu-box")),
        ("laser", None),
    ] {
        assert_eq!(node(&s, id)["machine"].as_str(), machine, "node {id}:\n{text}");
    }
    // It drives as in one process.
    let world = node(&s, "world");
    assert_eq!(report(world, "collisions"), "0", "{text}");
    let moved = leading_number(&report(world, "distance"));
    assert!(moved > 1.0, "the robot moved {moved} m:\n{text}");
    let cnn = node(&s, "cnn");
    assert!(
        cnn["inputs"][0]["handled"].as_u64().unwrap() > 20,
        "the CNN saw frames:\n{text}"
    );
    // No loss on the `block` edge world -> laser (across machines).
    let laser_in = &node(&s, "laser")["inputs"][0];
    assert_eq!(laser_in["policy"], "block");
    assert_eq!(laser_in["dropped"], 0);
    assert_eq!(laser_in["missing"], 0);
    assert_eq!(laser_in["received"], node(&s, "world")["outputs"][0][1], "{text}");
    // The libraries and files came by SHA-256 into the daemons' caches.
    let cached: Vec<String> = std::fs::read_dir(lab.dir.join("cache-gpu-box").join("blobs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let (cnn_sha, _) = sha256_of(&target_dir().join("libcnn.so"));
    let (model_sha, _) = sha256_of(&workspace().join("operators/cnn/model/obstacle.safetensors"));
    assert!(
        cached.contains(&cnn_sha) && cached.contains(&model_sha),
        "cache: {cached:?}"
    );
    // Nothing is left on any host: no worker, no shared-memory file, no run on a daemon.
    assert_nothing_left(&lab, &[robot, gpu]);
    let after = lab.machines(2, 0, 2);
    for d in after.as_array().unwrap() {
        assert_eq!(d["runs"], serde_json::json!([]), "{after}");
    }
    // A daemon exits cleanly on SIGTERM.
    lab.procs[gpu].signal("-TERM");
    let status = lab.procs[gpu]
        .wait_exit(Duration::from_secs(15))
        .expect("the daemon exits on SIGTERM");
    assert!(status.success(), "{status}: {}", lab.procs[gpu].text());
    assert!(lab.procs[gpu].text().contains("daemon `gpu-box` stopping"));
}

fn sha256_of(p: &Path) -> (String, u64) {
    let o = Command::new("sha256sum").arg(p).output().expect("sha256sum");
    let text = String::from_utf8_lossy(&o.stdout);
    (text.split_whitespace().next().unwrap_or_default().to_string(), 0)
}

/// Waits until no `quiver worker` of the lab runs and the daemons' `/dev/shm` are empty.
fn assert_nothing_left(lab: &Lab, daemons: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let workers = workers_with(lab.dir.to_str().unwrap());
        let shm: Vec<String> = daemons
            .iter()
            .flat_map(|p| lab.shm_files(lab.procs[*p].pid()))
            .collect();
        if workers.is_empty() && shm.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: workers {workers:?}, shared memory {shm:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A failure while preparing on one machine rolls back every machine: the run exits 2 naming
/// the machine, the node and the error; every instance created elsewhere had its `stop` run;
/// no process and no shared-memory file is left on any host.
#[test]
fn prepare_failure_rolls_back_every_machine() {
    let mut lab = Lab::new("p", 3);
    // A machine with quiver installed but no operators, refusing shipped code.
    let bin = lab.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(target_dir().join("quiver"), bin.join("quiver")).unwrap();
    let bare = lab.daemon_with(0, &bin.join("quiver"), "bare", &["--no-fetch"]);
    let robot = lab.daemon(1, "robot", &["--connect", &lab.control(0)]);
    lab.machines(2, 0, 2);
    let stops = lab.dir.join("stops.txt");
    let graph = |ticker_on: &str, fail: bool| {
        format!(
            r#"name: rollback
nodes:
  - id: ticker
    operator: counter
    inputs: {{ tick: {{ timer: 10ms }} }}
    outputs: [count]
    deploy: {{ machine: {ticker_on} }}
  - id: good
    operator: probe
    params: {{ stop_marker: {stops}, fail_create: {fail} }}
    inputs: {{ a: ticker/count }}
    outputs: [out]
    deploy: {{ machine: robot, process: {p} }}
  - id: local
    operator: probe
    params: {{ stop_marker: {stops} }}
    inputs: {{ a: good/out }}
    outputs: [out]
"#,
            stops = stops.display(),
            p = if fail { "failing" } else { "fine" }
        )
    };
    // Runs a graph that must fail to prepare (exit 2); its stderr.
    let fails = |name: &str, yaml: String| {
        let g = lab.dir.join(name);
        std::fs::write(&g, yaml).unwrap();
        let o = lab.quiver(
            2,
            &["run", g.to_str().unwrap(), "--connect", &lab.control(0), "--for", "5s"],
            Duration::from_secs(90),
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        err
    };
    // 1. A library the no-fetch machine does not have.
    let err = fails("nofetch.yaml", graph("bare", false));
    assert!(
        err.contains("machine `bare`") && err.contains("libcounter.so") && err.contains("nothing is left running"),
        "the error names the machine and the library:\n{err}"
    );
    let stopped = std::fs::read_to_string(&stops).unwrap_or_default();
    assert!(
        stopped.contains("stopped good") && stopped.contains("stopped local"),
        "every created instance was stopped: {stopped:?}\n{err}"
    );
    assert_nothing_left(&lab, &[bare, robot]);

    // 2. A node whose `new` fails on one machine, with the ticker created on another.
    std::fs::remove_file(&stops).ok();
    let err = fails("failing.yaml", graph("robot", true));
    assert!(
        err.contains("machine `robot`") && err.contains("`good`") && err.contains("asked to fail"),
        "the error names the machine, the node and the error:\n{err}"
    );
    let stopped = std::fs::read_to_string(&stops).unwrap_or_default();
    assert!(
        stopped.contains("stopped local"),
        "the local instance was stopped: {stopped:?}\n{err}"
    );
    assert_nothing_left(&lab, &[bare, robot]);
}

/// The machines graph with `gpu-box` lost mid-run (`lose` cuts it off, `restore` brings it
/// back): the loss is reported with the machine and its nodes, the rest keeps running, the
/// CNN's process is prepared again when the machine is back, and the run exits 1.
fn lose_a_machine(tag: &str, lose: impl Fn(&mut Lab, usize), restore: impl Fn(&mut Lab, usize)) {
    let mut lab = Lab::new(tag, 3);
    let _robot = lab.daemon(0, "robot", &[]);
    let gpu = lab.daemon(1, "gpu-box", &["--labels", "gpu", "--connect", &lab.control(0)]);
    lab.machines(2, 0, 2);
    let summary = lab.dir.join("summary.json");
    let run = lab.run(
        2,
        &[
            "graphs/obstacle-avoidance-machines.yaml",
            "--connect",
            &lab.control(0),
            "--for",
            "30s",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    // Running: the CNN's process reported ready and some time passed.
    std::thread::sleep(Duration::from_secs(8));
    let cut = Instant::now();
    lose(&mut lab, gpu);
    let seen = lab.procs[run].wait_line("machine `gpu-box` lost", Duration::from_secs(20));
    let text = lab.procs[run].text();
    let seen = seen.unwrap_or_else(|| panic!("the loss was not reported:\n{text}"));
    let detect = seen.duration_since(cut);
    println!("{tag}: machine loss reported after {} ms", detect.as_millis());
    assert!(text.contains("its nodes: camera, cnn"), "{text}");
    // Bounded generously: the lease is 1 s; this only proves it is not Zenoh's default 10 s.
    assert!(detect < Duration::from_secs(6), "loss noticed after {detect:?}");
    std::thread::sleep(Duration::from_secs(3));
    restore(&mut lab, gpu);
    let back = lab.procs[run].wait_line(
        "preparing process `gpu` on machine `gpu-box` again",
        Duration::from_secs(30),
    );
    let status = lab.procs[run]
        .wait_exit(Duration::from_secs(120))
        .expect("the run ends");
    let text = lab.procs[run].text();
    assert!(back.is_some(), "the CNN's process was not prepared again:\n{text}");
    assert_eq!(status.code(), Some(1), "a lost machine fails the run:\n{text}");
    let s = summary_of(&summary);
    let gpu_proc = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gpu")
        .unwrap_or_else(|| panic!("{s}"));
    assert_eq!(gpu_proc["restarts"], 1, "{text}");
    assert_eq!(
        gpu_proc["end"], "exited cleanly",
        "the second incarnation ran to the end:\n{text}"
    );
    // The rest kept running: the world ticked at 50 Hz through the loss.
    let fires = node(&s, "world")["timer_fires"].as_u64().unwrap();
    assert!(fires > 1000, "world ticked {fires} times in 30 s:\n{text}");
    assert_eq!(report(node(&s, "world"), "collisions"), "0", "{text}");
}

#[test]
fn daemon_killed_and_restarted() {
    lose_a_machine(
        "k",
        |lab, gpu| {
            lab.procs[gpu].signal("-KILL");
            lab.procs[gpu].wait_exit(Duration::from_secs(5)).expect("killed");
        },
        |lab, _| {
            lab.daemon(1, "gpu-box", &["--labels", "gpu", "--connect", &lab.control(0)]);
        },
    );
}

#[test]
fn link_down_and_up() {
    lose_a_machine("l", |lab, _| lab.link(1, false), |lab, _| lab.link(1, true));
}

/// `quiver run` killed: every daemon stops that graph's part within 5 s and frees everything.
#[test]
fn run_vanished() {
    let mut lab = Lab::new("v", 3);
    let robot = lab.daemon(0, "robot", &[]);
    let gpu = lab.daemon(1, "gpu-box", &["--labels", "gpu", "--connect", &lab.control(0)]);
    lab.machines(2, 0, 2);
    let run = lab.run(
        2,
        &["graphs/obstacle-avoidance-machines.yaml", "--connect", &lab.control(0)],
    );
    // Wait until both daemons run their part.
    let deadline = Instant::now() + Duration::from_secs(60);
    while workers_with(lab.dir.to_str().unwrap()).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the run did not start:\n{}",
            lab.procs[run].text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    lab.procs[run].signal("-KILL");
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(20);
    while !workers_with(lab.dir.to_str().unwrap()).is_empty() {
        assert!(Instant::now() < deadline, "workers outlived their run by 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = killed.elapsed();
    println!("run vanished: every remote worker gone after {} ms", gone.as_millis());
    assert!(gone < Duration::from_secs(8), "the part stopped after {gone:?}");
    assert_nothing_left(&lab, &[robot, gpu]);
    let after = lab.machines(2, 0, 2);
    for d in after.as_array().unwrap() {
        assert_eq!(d["runs"], serde_json::json!([]), "{after}");
    }
}

/// A CA and certificates for `names` (each in `dir/<name>/{ca,cert,key}.pem`), made with the
/// openssl command line: an independent implementation of what quiver reads.
fn make_certs(dir: &Path, ca_name: &str, names: &[&str]) {
    let sh = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("sh");
        assert!(o.status.success(), "{script}: {}", String::from_utf8_lossy(&o.stderr));
    };
    std::fs::create_dir_all(dir).unwrap();
    sh(&format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {ca_name}.key \
         -out {ca_name}.pem -days 2 -subj /CN={ca_name} \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null"
    ));
    for n in names {
        sh(&format!(
            "mkdir -p {n} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout {n}/key.pem -out {n}.csr -subj /CN={n} 2>/dev/null && \
             printf 'subjectAltName=DNS:{n}\\nextendedKeyUsage=serverAuth,clientAuth\\nbasicConstraints=CA:FALSE\\nkeyUsage=digitalSignature\\n' > {n}.ext && \
             openssl x509 -req -in {n}.csr -CA {ca_name}.pem -CAkey {ca_name}.key -CAcreateserial \
             -out {n}/cert.pem -days 2 -extfile {n}.ext 2>/dev/null && cp {ca_name}.pem {n}/ca.pem"
        ));
    }
}

/// TLS on: daemons, the run and every worker link need a certificate signed by the cluster's
/// CA. An outsider (eclipse-zenoh from PyPI) with no certificate, one from another CA, or plain
/// TCP can open no session to a daemon or a worker, so it can neither query a daemon nor
/// publish into or read the graph; the graph runs on unharmed. A trusted client gets in (the
/// control: the refusals are not an accident of the setup).
#[test]
fn tls_refuses_foreign_peers() {
    let t0 = Instant::now();
    let python = crate::support::zenoh_python();
    let mut lab = Lab::new("t", 3);
    let certs = lab.dir.join("certs");
    make_certs(&certs, "cluster-ca", &["robot", "laptop"]);
    make_certs(&certs.join("rogue"), "rogue-ca", &["intruder"]);
    eprintln!("tls: set up in {:?}", t0.elapsed());
    let robot_tls = certs.join("robot");
    let laptop_tls = certs.join("laptop");
    let robot = lab.daemon(0, "robot", &["--tls", robot_tls.to_str().unwrap()]);
    let listed = lab.machines_with(2, 0, 1, &["--tls", laptop_tls.to_str().unwrap()]);
    eprintln!("tls: daemon listed after {:?}", t0.elapsed());
    assert_eq!(listed[0]["tls"], true, "{listed}");
    // Without a certificate `quiver machines` itself cannot get in.
    let o = lab.quiver(2, &["machines", "--connect", &lab.control(0)], Duration::from_secs(20));
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let warned = lab.procs[robot].text();
    assert!(!warned.contains("without TLS"), "{warned}");

    let graph = lab.dir.join("tls.yaml");
    let rec = lab.dir.join("rec.txt");
    std::fs::write(
        &graph,
        format!(
            r#"name: tls
nodes:
  - id: ticker
    operator: counter
    inputs: {{ tick: {{ timer: 20ms }} }}
    outputs: [count]
    deploy: {{ machine: robot }}
  - id: sink
    operator: recorder
    params: {{ path: {} }}
    inputs: {{ in: ticker/count }}
"#,
            rec.display()
        ),
    )
    .unwrap();
    let summary = lab.dir.join("summary.json");
    let run = lab.run(
        2,
        &[
            graph.to_str().unwrap(),
            "--connect",
            &lab.control(0),
            "--tls",
            laptop_tls.to_str().unwrap(),
            "--for",
            "10s",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    // The remote worker's data endpoint, from its command line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let data = loop {
        let w = workers_with(lab.dir.to_str().unwrap());
        if let Some(l) = w.first()
            && let Some(ep) = l.split_whitespace().skip_while(|a| *a != "--listen").nth(1)
        {
            break ep.to_string();
        }
        assert!(Instant::now() < deadline, "no worker:\n{}", lab.procs[run].text());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(data.starts_with("tls/10.254.0.1:"), "the data plane is TLS too: {data}");
    let control = lab.control(0).replace("tcp/", "tls/");
    let rogue = certs.join("rogue/intruder");
    let file = |d: &Path, f: &str| d.join(f).display().to_string();
    // Every TLS attempt trusts the cluster's CA (its certificate is no secret); what differs is
    // the certificate it presents: none, one from another CA, or a real one.
    let cluster_ca = file(&laptop_tls, "ca.pem");
    let attempt = |name: &str, endpoint: &str, dir: Option<&Path>, ca_only: bool, probe: bool| {
        let mut a = serde_json::json!({ "name": name, "endpoint": endpoint, "probe_only": probe });
        if let Some(d) = dir {
            a["ca"] = cluster_ca.clone().into();
            if !ca_only {
                a["cert"] = file(d, "cert.pem").into();
                a["key"] = file(d, "key.pem").into();
            }
        }
        a
    };
    let spec = serde_json::json!([
        attempt("plain-control", &lab.control(0), None, false, false),
        attempt("rogue-control", &control, Some(&rogue), false, false),
        attempt("nocert-control", &control, Some(&laptop_tls), true, false),
        attempt("plain-data", &data.replace("tls/", "tcp/"), None, false, false),
        attempt("rogue-data", &data, Some(&rogue), false, false),
        attempt("trusted-control", &control, Some(&laptop_tls), false, true),
    ]);
    let mut c = lab.command(
        1,
        &python,
        &[workspace().join("tests/machines/foreign_peer.py").to_str().unwrap()],
    );
    c.arg(spec.to_string());
    let out = c.output().expect("running the foreign peer");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_str(text.trim()).expect("the peer's JSON");
    println!("foreign peer: {got}");
    for name in [
        "plain-control",
        "rogue-control",
        "nocert-control",
        "plain-data",
        "rogue-data",
    ] {
        assert_eq!(got[name]["opened"], false, "{name} got in: {got}");
    }
    // Refused and logged, by the daemon (control plane) and by the worker (data plane).
    let daemon_log = lab.procs[robot].text();
    for why in ["InvalidContentType", "peer sent no certificates", "UnknownIssuer"] {
        assert!(
            daemon_log.contains(why),
            "the daemon did not log `{why}`:\n{daemon_log}"
        );
    }
    assert_eq!(got["trusted-control"]["opened"], true, "{got}");
    assert_eq!(got["trusted-control"]["daemon_infos"], 1, "{got}");

    let status = lab.procs[run].wait_exit(Duration::from_secs(60)).expect("the run ends");
    let run_text = lab.procs[run].text();
    assert!(status.success(), "{run_text}");
    // Unharmed: every count from 0 up, none twice, nothing rejected.
    let lines = crate::support::record(&rec);
    assert!(lines.len() > 100, "{} packs:\n{run_text}", lines.len());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(crate::support::values(l), vec![i as i64], "{l}");
    }
    let s = summary_of(&summary);
    assert_eq!(node(&s, "sink")["inputs"][0]["rejected"], 0);
    assert_eq!(node(&s, "sink")["inputs"][0]["missing"], 0);
}

/// `quiver worker` and `quiver run` processes of the lab (by a path in their command line).
fn quiver_processes_with(needle: &str) -> Vec<String> {
    let o = Command::new("pgrep")
        .args(["-af", "quiver (worker|run) "])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(needle) && !l.contains("pgrep"))
        .map(str::to_string)
        .collect()
}

/// `quiver ps --json` from host i, through daemon `via`.
fn ps(lab: &Lab, i: usize, via: usize) -> serde_json::Value {
    let o = lab.quiver(
        i,
        &["ps", "--connect", &lab.control(via), "--json"],
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "ps: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("ps JSON")
}

/// A detached run keeps going when the laptop leaves: `run --detach` returns with the run's
/// id, the laptop's link is cut and restored, `ps` (from another daemon) lists it, `attach`
/// shows its log and live status and detaches on Ctrl-C, `stop` drains it and prints its
/// summary; nothing is left. A daemon stopped with SIGTERM stops the runs it supervises first.
/// Refusals: a run that fails to start is reported by `run --detach` (exit 2); a graph with no
/// machine needs `--supervisor`; an unknown id is named.
#[test]
fn detached_run_outlives_the_laptop() {
    let mut lab = Lab::new("d", 3);
    let robot = lab.daemon(0, "robot", &[]);
    let gpu = lab.daemon(1, "gpu-box", &["--labels", "gpu", "--connect", &lab.control(0)]);
    lab.machines(2, 0, 2);
    let graph = "graphs/obstacle-avoidance-machines.yaml";
    let detached_at = Instant::now();
    let o = lab.quiver(
        2,
        &["run", graph, "--connect", &lab.control(0), "--detach"],
        Duration::from_secs(120),
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "run --detach: {err}");
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        !id.is_empty() && err.contains(&format!("quiver stop {id}")),
        "{id:?}\n{err}"
    );
    // The laptop leaves: nothing of the run needs it.
    lab.link(2, false);
    std::thread::sleep(Duration::from_secs(4));
    lab.link(2, true);
    let runs = ps(&lab, 2, 1);
    let r = &runs[0];
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(
        (r["run"].as_str(), r["machine"].as_str()),
        (Some(id.as_str()), Some("robot")),
        "{runs}"
    );
    assert!(r["ended"].is_null(), "it runs: {runs}");
    assert!(
        r["status"].as_str().unwrap().contains("world@robot: distance="),
        "{runs}"
    );

    // Attach: the log since it began, then live status lines; Ctrl-C detaches.
    let mut c = lab.command(
        2,
        &target_dir().join("quiver"),
        &["attach", &id, "--connect", &lab.control(1)],
    );
    c.current_dir(workspace());
    let attach = lab.start(c, "[attach] ");
    let seen = lab.procs[attach].wait_line("status: t=", Duration::from_secs(20));
    let text = lab.procs[attach].text();
    assert!(seen.is_some(), "attach shows the live status:\n{text}");
    assert!(
        text.contains("every process is ready"),
        "attach shows the log since the start:\n{text}"
    );
    assert!(text.contains("cnn@gpu-box: classes="), "{text}");
    lab.procs[attach].signal("-INT");
    let status = lab.procs[attach]
        .wait_exit(Duration::from_secs(10))
        .expect("attach ends on Ctrl-C");
    let text = lab.procs[attach].text();
    assert!(
        status.success() && text.contains(&format!("detached from run {id}")),
        "{status}\n{text}"
    );
    assert_eq!(
        ps(&lab, 2, 0)[0]["ended"],
        serde_json::Value::Null,
        "attach left it running"
    );

    // Stop: it drains, and its summary says where every node ran.
    let summary = lab.dir.join("detached-summary.json");
    let o = lab.quiver(
        2,
        &[
            "stop",
            &id,
            "--connect",
            &lab.control(0),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "stop: {out}{err}");
    assert!(
        out.contains("ran ") && out.contains("(interrupted)"),
        "the summary: {out}"
    );
    let ran = detached_at.elapsed();
    let s = summary_of(&summary);
    for (id, machine) in [
        ("world", "robot"),
        ("controller", "robot"),
        ("cnn", "gpu-box"),
        ("laser", "robot"),
    ] {
        assert_eq!(node(&s, id)["machine"].as_str(), Some(machine), "node {id}: {s}");
    }
    assert_eq!(report(node(&s, "world"), "collisions"), "0", "{out}");
    assert!(leading_number(&report(node(&s, "world"), "distance")) > 1.0, "{out}");
    // It ran the whole time, the laptop's absence included (the world ticks at 50 Hz).
    let fires = node(&s, "world")["timer_fires"].as_f64().unwrap();
    let expected = (ran.as_secs_f64() - 6.0) * 50.0;
    assert!(fires > expected * 0.8, "world ticked {fires} times in {ran:?}: {out}");
    assert_eq!(ps(&lab, 2, 0), serde_json::json!([]), "a stopped run is forgotten");
    assert_nothing_left(&lab, &[robot, gpu]);
    assert!(quiver_processes_with(lab.dir.to_str().unwrap()).is_empty());

    // Refusals.
    let o = lab.quiver(
        2,
        &["attach", "no-such-run", "--connect", &lab.control(0)],
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no daemon supervises a run no-such-run"), "{err}");
    let o = lab.quiver(
        2,
        &[
            "run",
            "graphs/obstacle-avoidance.yaml",
            "--connect",
            &lab.control(0),
            "--detach",
        ],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--supervisor MACHINE"), "{err}");
    let failing = lab.dir.join("failing.yaml");
    std::fs::write(
        &failing,
        r#"name: failing
nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 10ms } }
    outputs: [count]
    deploy: { machine: gpu-box }
  - id: bad
    operator: probe
    params: { fail_create: true }
    inputs: { a: ticker/count }
    outputs: [out]
"#,
    )
    .unwrap();
    let o = lab.quiver(
        2,
        &[
            "run",
            failing.to_str().unwrap(),
            "--connect",
            &lab.control(0),
            "--detach",
            "--supervisor",
            "robot",
        ],
        Duration::from_secs(120),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("machine `robot`") && err.contains("did not start") && err.contains("asked to fail"),
        "the refusal names the supervisor and the error:\n{err}"
    );
    assert_eq!(ps(&lab, 2, 0), serde_json::json!([]));
    assert_nothing_left(&lab, &[robot, gpu]);

    // A daemon stopped with SIGTERM stops the run it supervises (everywhere) before it exits.
    let o = lab.quiver(
        2,
        &["run", graph, "--connect", &lab.control(0), "--detach"],
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_secs(2));
    lab.procs[robot].signal("-TERM");
    let status = lab.procs[robot]
        .wait_exit(Duration::from_secs(90))
        .expect("the daemon exits");
    let log = lab.procs[robot].text();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("stopping with the daemon") && log.contains("exited cleanly"),
        "{log}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !quiver_processes_with(lab.dir.to_str().unwrap()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            quiver_processes_with(lab.dir.to_str().unwrap())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lab.shm_files(lab.procs[gpu].pid()).is_empty());
}
