//! Operating a running graph from outside (issue "Operate"): `quiver param list/get/set/dump`
//! and `quiver topic list/echo/hz` against a real `quiver run`, in one process and split over
//! processes; `run --params`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{build, record, stderr, stdout, target_dir, temp_dir, values, write};

fn graph(dir: &Path, name: &str, deploy: &str) {
    write(
        dir,
        "g.yaml",
        &format!(
            "name: {name}
nodes:
  - id: ticker
    operator: counter
    inputs: {{ tick: {{ timer: 5ms }} }}
    outputs: [count]
  - id: triple
    operator: scale
    params: {{ factor: 3 }}
    inputs: {{ value: ticker/count }}
    outputs: [value]
{deploy}  - id: sink
    operator: recorder
    params: {{ path: rec.txt }}
    inputs: {{ in: {{ from: triple/value, queue: {{ depth: 64, policy: block }} }} }}
"
        ),
    );
}

/// `quiver ARGS` in `dir` with the test's own registry of runs, killed after 60 s (a command
/// waiting for packs that never come must fail the test, not hang it).
fn quiver_cmd(dir: &Path, args: &[&str]) -> Command {
    build();
    let mut c = Command::new("timeout");
    c.args(["-s", "KILL", "60"]).arg(target_dir().join("quiver"));
    c.current_dir(dir)
        .env("QUIVER_OPERATOR_PATH", target_dir())
        .env("QUIVER_RUNS_DIR", dir.join("runs"))
        .env_remove("RUST_LOG")
        .args(args);
    c
}

fn q(dir: &Path, args: &[&str]) -> Output {
    quiver_cmd(dir, args).output().expect("running quiver")
}

/// A `quiver run` in the background, killed if the test fails before it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, args: &[&str]) -> Running {
    build();
    let child = Command::new(target_dir().join("quiver"))
        .current_dir(dir)
        .env("QUIVER_OPERATOR_PATH", target_dir())
        .env("QUIVER_RUNS_DIR", dir.join("runs"))
        .env_remove("RUST_LOG")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting quiver run");
    Running(child)
}

/// Stops the run as Ctrl-C does and returns its output (bounded).
fn interrupt(mut run: Running) -> (Option<i32>, String, String) {
    let pid = run.0.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if run.0.try_wait().expect("waiting").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not stop within 30 s of SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let child = std::mem::replace(&mut run.0, Command::new("true").spawn().expect("a placeholder process"));
    let o = child.wait_with_output().expect("its output");
    (o.status.code(), stdout(&o), stderr(&o))
}

/// Waits until `quiver param list RUN` answers with every node (the run is up).
fn wait_listed(dir: &Path, run: &str, nodes: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = q(dir, &["param", "list", run]);
        let out = stdout(&o);
        if o.status.success() && out.lines().filter(|l| !l.starts_with(' ')).count() == nodes {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "the run never answered `param list`: {} {}",
            out,
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn set(dir: &Path, run: &str, node: &str, name: &str, value: &str) -> Output {
    q(dir, &["param", "set", run, node, name, value])
}

#[test]
fn parameters_and_topics_of_a_running_graph() {
    for (variant, deploy) in [("one", ""), ("split", "    deploy: { process: w }\n")] {
        let dir = temp_dir(&format!("operate-params-{variant}"));
        let name = format!("operate-{variant}");
        graph(&dir, &name, deploy);
        let run = start(&dir, &["run", "g.yaml"]);
        let listed = wait_listed(&dir, &name, 3);
        // `quiver ps`: the run, its graph and its processes.
        let o = q(&dir, &["ps", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let ps: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("ps --json is JSON");
        assert_eq!(ps.as_array().map(Vec::len), Some(1), "{ps:#}");
        assert_eq!(ps[0]["graph"], name.as_str());
        assert_eq!(ps[0]["nodes"], 3);
        let procs: Vec<&str> = ps[0]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let want: &[&str] = if variant == "split" { &["main", "w"] } else { &["main"] };
        assert_eq!(procs, want, "{ps:#}");
        let place = if variant == "split" { ", process `w`" } else { "" };
        assert!(listed.contains(&format!("triple (scale{place}):")), "{listed}");
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>() == ["factor", "3", "int"]),
            "{listed}"
        );

        // Refused by the operator: its reason, the old value kept.
        let o = set(&dir, &name, "triple", "factor", "0");
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(&o),
            "error: node `triple` refused `factor` = 0: factor 0 would erase the signal (it keeps 3)\n"
        );
        // Refused by the manifest before the operator sees it.
        for (value, says) in [
            ("5000000", "node `triple`: parameter `factor`: "),
            // A negative value is a value, not a flag.
            (
                "-5000000",
                "node `triple`: parameter `factor`: -5000000 is out of range",
            ),
            ("abc", "node `triple`: parameter `factor`: expected an int, got `abc`"),
        ] {
            let o = set(&dir, &name, "triple", "factor", value);
            assert_eq!(o.status.code(), Some(1), "{value}");
            assert!(
                stderr(&o).starts_with(&format!("error: {says}")),
                "{value}: {}",
                stderr(&o)
            );
        }
        let o = set(&dir, &name, "triple", "gain", "2");
        assert!(
            stderr(&o).contains("node `triple` has no parameter `gain` (its parameters: `factor`, `offset`)"),
            "{}",
            stderr(&o)
        );
        let o = set(&dir, &name, "ghost", "factor", "2");
        assert!(stderr(&o).contains("has no node `ghost`"), "{}", stderr(&o));
        assert_eq!(stdout(&q(&dir, &["param", "get", &name, "triple", "factor"])), "3\n");

        // Accepted: in force at once, in the data too.
        let o = set(&dir, &name, "triple", "factor", "7");
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o), "quiver: triple.factor = 7\n");
        assert_eq!(stdout(&q(&dir, &["param", "get", &name, "triple", "factor"])), "7\n");
        let o = q(&dir, &["param", "dump", &name]);
        assert!(o.status.success(), "{}", stderr(&o));
        let dump = stdout(&o);
        assert!(dump.contains("triple:\n  factor: 7\n  offset: 0\n"), "{dump}");
        std::fs::write(dir.join("params.yaml"), &dump).unwrap();

        // Topics: every output, its type and consumers; echo decodes packs through msg-defs.
        let o = q(&dir, &["topic", "list", &name]);
        assert!(o.status.success(), "{}", stderr(&o));
        let table = stdout(&o);
        let row = table
            .lines()
            .find(|l| l.starts_with("triple/value "))
            .unwrap_or_else(|| panic!("{table}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cols[1], cols[4]), ("std_msgs/Int64", "sink/in"), "{table}");
        let rate: f64 = cols[2].parse().unwrap();
        assert!(rate > 10.0, "a 5 ms timer's chain runs at {rate} Hz: {table}");
        let o = q(
            &dir,
            &["topic", "echo", &name, "triple/value", "--count", "3", "--json"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let packs: Vec<serde_json::Value> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(packs.len(), 3, "{packs:?}");
        for p in &packs {
            // factor is 7 now: data = 7 x seq (the counter starts at 0, one value per pack).
            let seq = p["seq"].as_i64().unwrap();
            assert_eq!(p["data"], serde_json::json!({"data": 7 * seq}), "{p}");
            assert_eq!(p["type"], "std_msgs/Int64");
        }
        let o = q(&dir, &["topic", "echo", &name, "triple/value", "--once"]);
        let text = stdout(&o);
        assert!(
            text.starts_with("--- triple/value (std_msgs/Int64) seq=") && text.contains("\ndata: "),
            "{text}"
        );
        let o = q(&dir, &["topic", "hz", &name, "ticker/count", "--for", "1500ms"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).lines().all(|l| l.starts_with("ticker/count: rate ")),
            "{}",
            stdout(&o)
        );
        let o = q(&dir, &["topic", "echo", &name, "triple/nope", "--once"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("node `triple` has no output `nope` (its outputs: `value`)"),
            "{}",
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(300));

        let (code, _, err) = interrupt(run);
        assert_eq!(code, Some(0), "{err}");
        // Every value is count x 3 until the change, count x 7 after it.
        let got: Vec<i64> = record(&dir.join("rec.txt")).iter().flat_map(|l| values(l)).collect();
        let switch = got
            .iter()
            .enumerate()
            .position(|(n, &v)| v != 3 * n as i64)
            .expect("a value after the change");
        assert!(switch > 0, "values before the change: {got:?}");
        for (n, &v) in got.iter().enumerate().skip(switch) {
            assert_eq!(v, 7 * n as i64, "value {n} after the change at {switch}: {got:?}");
        }
        assert!(
            got.len() > switch + 10,
            "{} values after the change",
            got.len() - switch
        );
        // The run's entries are gone with it.
        let o = q(&dir, &["param", "list"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("no graph is running on this machine"),
            "{}",
            stderr(&o)
        );

        // The dump, read back: the next run starts with factor 7.
        let o = q(&dir, &["run", "g.yaml", "--for", "300ms", "--params", "params.yaml"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got: Vec<i64> = record(&dir.join("rec.txt")).iter().flat_map(|l| values(l)).collect();
        assert!(!got.is_empty());
        for (n, &v) in got.iter().enumerate() {
            assert_eq!(v, 7 * n as i64, "{got:?}");
        }
    }
}

#[test]
fn bad_parameter_files_are_located() {
    let dir = temp_dir("operate-params-file");
    graph(&dir, "operate-file", "");
    for (text, says, at) in [
        (
            "ghost: { factor: 2 }\n",
            "error: unknown node `ghost` (nodes: ticker, triple, sink)",
            "1:1",
        ),
        (
            "triple: { factor: 0.5 }\n",
            "error: node `triple`: invalid value for parameter `factor`: expected an int, got `0.5`",
            "1:19",
        ),
        (
            "triple:\n  gain: 2\n",
            "error: node `triple`: invalid value for parameter `gain`: operator `scale` has no such parameter (its parameters: factor, offset)",
            "2:3",
        ),
        (
            "- 1\n",
            "error: expected a mapping for a parameter file (node: { param: value }), found a list",
            "1:1",
        ),
        (
            "triple: { factor: 2, factor: 3 }\n",
            "error: node `triple`: key `factor` appears twice in node `triple`'s parameters",
            "1:22",
        ),
        (
            "triple: { factor: 2 }\ntriple: { offset: 1 }\n",
            "error: key `triple` appears twice in the parameter file",
            "2:1",
        ),
    ] {
        std::fs::write(dir.join("params.yaml"), text).unwrap();
        let o = q(&dir, &["run", "g.yaml", "--for", "100ms", "--params", "params.yaml"]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("{says}\n  --> params.yaml:{at}\n")),
            "{text}: {err}"
        );
    }
}
