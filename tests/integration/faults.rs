//! Faults a robot must survive (issue 11): operators that hang, stall or fail on every call,
//! and runs ended on purpose. The fault-injection operator is `tests/operators/probe`
//! (`hang_on`, `sleep_on`/`sleep_ms`, `slow_ms`, `error_all`, `abort_on`, `segv_on`). Every run
//! is bounded: a test that waits for a hung run must not hang itself.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{build, target_dir, temp_dir, write};

/// What a bounded `quiver` run left.
struct Ran {
    /// None: it had to be killed.
    code: Option<i32>,
    out: String,
    err: String,
    took: Duration,
}

/// `quiver ARGS` in `dir`, killed after `limit`.
fn quiver_bounded(dir: &Path, args: &[&str], limit: Duration) -> Ran {
    build();
    let started = Instant::now();
    let mut child = Command::new(target_dir().join("quiver"))
        .current_dir(dir)
        .env("QUIVER_OPERATOR_PATH", target_dir())
        .env_remove("RUST_LOG")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running quiver");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            // Its workers, if any, are in its process group only when it made them so: the
            // test's own cleanup is the run's job; a killed run is already a failure here.
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    Ran {
        code,
        out: o.join().unwrap_or_default(),
        err: e.join().unwrap_or_default(),
        took,
    }
}

/// `quiver run g.yaml --for FOR --summary-json summary.json` in `dir`, killed after `limit_s`.
fn run_graph(dir: &Path, run_for: &str, limit_s: u64) -> Ran {
    quiver_bounded(
        dir,
        &["run", "g.yaml", "--for", run_for, "--summary-json", "summary.json"],
        Duration::from_secs(limit_s),
    )
}

/// A process of the summary, by name.
fn process<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["processes"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("process `{name}` in {s}"))
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("the summary JSON");
    serde_json::from_str(&text).expect("summary JSON")
}

fn node<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("node `{id}` in {s}"))
}

/// A ticker feeding a probe with `probe_params`; `extra` goes under the probe's node.
fn graph(dir: &Path, probe_params: &str, extra: &str) {
    write(
        dir,
        "g.yaml",
        &format!(
            "name: faults
nodes:
  - id: ticker
    operator: counter
    inputs: {{ tick: {{ timer: 10ms }} }}
    outputs: [count]
  - id: p
    operator: probe
    params: {{ {probe_params} }}
    inputs: {{ a: ticker/count }}
    outputs: [out]
{extra}"
        ),
    );
}

/// A callback that never returns, in the main process: the watchdog names the node, the
/// callback and how long it has run; `--for` still ends the run (before: never), its `stop`
/// is skipped, exit 1, and the innocent producer is not blamed.
#[test]
fn a_hung_callback_is_named_and_the_run_ends_on_time() {
    let dir = temp_dir("faults-hang");
    graph(
        &dir,
        "hang_on: 20, stop_marker: stops.txt",
        "    health: { timeout: 1s }\n",
    );
    let r = run_graph(&dir, "3s", 40);
    println!("a hung node: the 3 s run ended after {:?}", r.took);
    assert_eq!(r.code, Some(1), "the run ends (exit 1):\n{}\n{}", r.out, r.err);
    assert!(
        r.err.contains("input `a` has not returned after 1.")
            && r.err.contains("(health timeout 1s): the node is hung"),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains("left running in input `a` when the run ended: its `stop` did not run"),
        "{}",
        r.err
    );
    assert!(
        !r.err.contains("graph is stopping"),
        "no error blames the producer:\n{}",
        r.err
    );
    let s = summary(&dir);
    assert_eq!(node(&s, "ticker")["errors"], 0, "{s}");
    assert!(node(&s, "p")["errors"].as_u64().unwrap() >= 1, "{s}");
    assert!(!dir.join("stops.txt").exists(), "the hung node's `stop` did not run");
}

/// A callback that sleeps 2.5 s with a 1 s health timeout: reported against that node when it
/// returns; the producer's missed ticks stay within the ticks the run had.
#[test]
fn a_slow_callback_is_reported_against_its_node() {
    let dir = temp_dir("faults-slow");
    graph(&dir, "sleep_on: 30, sleep_ms: 2500", "    health: { timeout: 1s }\n");
    let r = run_graph(&dir, "5s", 40);
    assert_eq!(r.code, Some(1), "{}\n{}", r.out, r.err);
    assert!(
        r.err.contains("has not returned after 1."),
        "named while it runs:\n{}",
        r.err
    );
    assert!(
        r.err.contains("input `a` returned after 2."),
        "and when it returns:\n{}",
        r.err
    );
    let s = summary(&dir);
    let ticker = node(&s, "ticker");
    let ticks = ticker["timer_fires"].as_u64().unwrap() + ticker["timer_missed"].as_u64().unwrap();
    assert!(
        ticks <= 5000 / 10 + 5,
        "{ticks} ticks counted in a 5 s run of a 10 ms timer: {ticker}"
    );
    assert_eq!(ticker["errors"], 0, "{ticker}");
}

/// A hung node in its own process: the worker ends itself when the watchdog fires, the
/// supervisor reports why and restarts it (`restart: on-failure`).
#[test]
fn an_isolated_hung_node_is_restarted() {
    let dir = temp_dir("faults-isolated-hang");
    graph(
        &dir,
        "hang_on: 20",
        "    isolate: true\n    restart: on-failure\n    health: { timeout: 1s }\n",
    );
    let r = run_graph(&dir, "6s", 60);
    assert_eq!(r.code, Some(1), "{}\n{}", r.out, r.err);
    assert!(
        r.err.contains("process `p` (node `p`) died") && r.err.contains("input `a` has not returned after 1."),
        "the death says why:\n{}",
        r.err
    );
    assert!(r.err.contains("restarting process `p`"), "{}", r.err);
    let s = summary(&dir);
    let p = process(&s, "p");
    assert_eq!(p["restarts"], 1, "{s}");
    assert_eq!(p["end"], "exited cleanly", "the second incarnation ran on: {s}");
    assert!(node(&s, "p")["inputs"][0]["handled"].as_u64().unwrap() > 100, "{s}");
}

/// Ending a run on purpose while a slow node still has a full queue is not an error: exit 0,
/// what it could not pass on is counted as undelivered (before: exit 1, "output not sent: the
/// graph is stopping" errors), and `--drain` bounds the wait.
#[test]
fn stopping_with_queues_full_is_not_an_error() {
    let dir = temp_dir("faults-drain");
    write(
        &dir,
        "g.yaml",
        "name: drain
nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: p
    operator: probe
    params: { slow_ms: 20 }
    inputs: { a: { from: ticker/count, queue: { depth: 64, policy: block } } }
    outputs: [out]
  - id: sink
    operator: probe
    inputs: { a: p/out }
",
    );
    let r = quiver_bounded(
        &dir,
        &[
            "run",
            "g.yaml",
            "--for",
            "2s",
            "--drain",
            "300ms",
            "--summary-json",
            "summary.json",
        ],
        Duration::from_secs(40),
    );
    println!("stopped with a full queue after {:?}", r.took);
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    assert!(!r.err.contains("error"), "{}", r.err);
    assert!(
        r.out.contains("outputs not delivered because the graph was stopping"),
        "{}",
        r.out
    );
    let s = summary(&dir);
    assert_eq!(node(&s, "p")["errors"], 0);
    assert!(node(&s, "p")["undelivered"].as_u64().unwrap() >= 1, "{s}");
}

/// A node failing on every call: every error is counted, the log keeps a few and then every
/// 1000th (before: 41 MB of stderr in 2 s).
#[test]
fn repeated_errors_are_counted_not_flooded() {
    let dir = temp_dir("faults-flood");
    write(
        &dir,
        "g.yaml",
        "name: flood
nodes:
  - id: ticker
    operator: counter
    params: { burst: 50 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: p
    operator: probe
    params: { error_all: true }
    inputs: { a: { from: ticker/count, queue: { depth: 1024 } } }
    outputs: [out]
",
    );
    let r = run_graph(&dir, "2s", 40);
    assert_eq!(r.code, Some(1), "{}", r.err);
    let errors = node(&summary(&dir), "p")["errors"].as_u64().unwrap();
    let lines = r.err.lines().count();
    println!("{errors} errors, {lines} lines of stderr ({} bytes)", r.err.len());
    assert!(errors > 2000, "{errors}");
    // 10 errors, the notice, one line per 1000 errors, and the end of the run.
    assert!(
        lines < 20 + errors as usize / 1000,
        "{lines} lines for {errors} errors:\n{}",
        r.err
    );
    assert!(r.err.contains("from now on every 1000th is logged"), "{}", r.err);
}

/// A process that crashes every time it starts is restarted with a growing delay (`delay`,
/// doubled each time), at most `max` times in a row, then left dead; the rest runs on and the
/// summary adds up the incarnations' figures.
#[test]
fn restarts_back_off() {
    let dir = temp_dir("faults-backoff");
    graph(
        &dir,
        "abort_any: true",
        "    isolate: true\n    restart: { policy: on-failure, max: 3, delay: 200ms, max_delay: 500ms }\n",
    );
    let r = run_graph(&dir, "4s", 60);
    assert_eq!(r.code, Some(1), "{}\n{}", r.out, r.err);
    for (delay, n) in [("200ms", 1), ("400ms", 2), ("500ms", 3)] {
        assert!(
            r.err.contains(&format!(
                "restarting process `p` in {delay} ({n} of at most 3 in a row)"
            )),
            "restart {n} waits {delay}:\n{}",
            r.err
        );
    }
    assert!(
        r.err
            .contains("process `p` is not restarted again: it died 3 time(s) in a row"),
        "{}",
        r.err
    );
    assert_eq!(
        r.err.matches("(node `p`) died: killed by signal 6 (SIGABRT)").count(),
        4,
        "{}",
        r.err
    );
    let s = summary(&dir);
    let p = process(&s, "p");
    assert_eq!(p["restarts"], 3, "{s}");
    // The ticker ran on for the whole run (a 10 ms timer for 4 s).
    assert!(node(&s, "ticker")["timer_fires"].as_u64().unwrap() > 300, "{s}");
}

#[test]
fn bad_restart_keys_are_located() {
    let dir = temp_dir("faults-restart-keys");
    graph(
        &dir,
        "",
        "    isolate: true\n    restart: { policy: on-failure, delay: 2s, max_delay: 1s, window: soon }\n",
    );
    let r = quiver_bounded(&dir, &["check", "g.yaml"], Duration::from_secs(30));
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err.contains("invalid value for `window`") && r.err.contains("g.yaml:13:"),
        "{}",
        r.err
    );
}

/// A crash in the main process kills it (memory may be corrupt), but never silently: the
/// crash handler names the node and the callback, and says how to survive it; the signal
/// still ends the process (no exit 0 after a crash).
#[test]
fn a_crash_in_the_main_process_names_the_node() {
    use std::os::unix::process::ExitStatusExt;
    for (param, signal, name) in [("abort_on", 6, "SIGABRT"), ("overflow_on", 11, "SIGSEGV")] {
        let dir = temp_dir(&format!("faults-crash-{name}"));
        // The 150th pack, ~1.5 s in: after the first status refresh (every second), so there is
        // a summary to flush.
        graph(&dir, &format!("{param}: 150"), "");
        build();
        let o = Command::new(target_dir().join("quiver"))
            .current_dir(&dir)
            .env("QUIVER_OPERATOR_PATH", target_dir())
            .args(["run", "g.yaml", "--for", "5s", "--summary-json", "s.json"])
            .output()
            .expect("running quiver");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.signal(), Some(signal), "{}: {err}", o.status);
        assert!(
            err.contains(&format!(
                "quiver: the process crashed ({name}, signal {signal}) in node `p`, in its input `a` callback. Run operators that may crash with `isolate: true`"
            )),
            "{err}"
        );
        // The summary it could flush: the last status, as text and as the JSON file, which
        // says what crashed.
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("the process crashed (figures as of the last status"),
            "{out}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("s.json")).expect("the summary file"))
                .expect("the summary is JSON");
        assert_eq!(
            json["crash"],
            serde_json::json!({"signal": signal, "signal_name": name, "node": "p", "callback": "input a"}),
            "{json:#}"
        );
        assert_eq!(json["end"], "Crashed");
        let ticker = json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == "ticker")
            .unwrap();
        let sent = ticker["outputs"][0][1].as_u64().unwrap_or(0);
        assert!(
            (1..150).contains(&sent),
            "sent {sent} by the last status before the 150th: {json:#}"
        );
    }
    // A signal another process sends is said to be one, not blamed on a node.
    let dir = temp_dir("faults-crash-sent");
    graph(&dir, "segv_on: 30", "");
    let o = Command::new(target_dir().join("quiver"))
        .current_dir(&dir)
        .env("QUIVER_OPERATOR_PATH", target_dir())
        .args(["run", "g.yaml", "--for", "5s"])
        .output()
        .expect("running quiver");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.signal(), Some(11), "{}: {err}", o.status);
    assert!(
        err.contains("quiver: killed by SIGSEGV (signal 11) sent by process "),
        "{err}"
    );
}

/// A node whose `new` fails in a worker that receives data from another process is reported
/// at once with its error, and the run does not start (exit 2, nothing left running); before,
/// the run waited 20 s and blamed the edge.
#[test]
fn a_node_failing_to_start_in_a_worker_is_reported_at_once() {
    let dir = temp_dir("faults-start");
    graph(
        &dir,
        "fail_create: true",
        "    isolate: true\n    restart: on-failure\n",
    );
    let r = quiver_bounded(&dir, &["run", "g.yaml", "--for", "3s"], Duration::from_secs(30));
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err
            .contains("error: process `p`: node `p`: asked to fail (fail_create: true)")
            && r.err.contains("nothing is left running"),
        "{}",
        r.err
    );
    assert!(
        r.took < Duration::from_secs(20),
        "reported at once, not after the 20 s wait: {:?}",
        r.took
    );
}

/// An input with `timeout:` gets an empty DataPack (`is_empty()`, `is_updated()` false) each
/// time nothing arrived for that long, counted; when data comes back it flows again and the
/// log says so.
#[test]
fn input_timeouts_give_empty_packs_and_recover() {
    let dir = temp_dir("faults-input-timeout");
    write(
        &dir,
        "g.yaml",
        "name: timeouts
nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 10ms } }
    outputs: [count]
  - id: relay
    operator: probe
    params: { sleep_on: 20, sleep_ms: 1500 }
    inputs: { a: ticker/count }
    outputs: [out]
  - id: sink
    operator: recorder
    params: { path: rec.txt }
    inputs: { in: { from: relay/out, timeout: 300ms } }
",
    );
    let r = run_graph(&dir, "4s", 40);
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    assert!(
        r.err
            .contains("input `in`: nothing from `relay/out` for 300ms: empty packs until data is back"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains("input `in`: data from `relay/out` is back after"),
        "{}",
        r.err
    );
    let lines = crate::support::record(&dir.join("rec.txt"));
    let empty: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.ends_with("<empty>"))
        .map(|(i, _)| i)
        .collect();
    assert!(
        (3..=6).contains(&empty.len()),
        "{} empty packs in 1.5 s of silence:\n{}",
        empty.len(),
        lines.join("\n")
    );
    for i in &empty {
        assert!(lines[*i].contains("updated=false"), "{}", lines[*i]);
    }
    // Data before the silence, and after it again.
    assert!(
        empty[0] > 5 && *empty.last().unwrap() + 10 < lines.len(),
        "recovered:\n{}",
        lines.join("\n")
    );
    let s = summary(&dir);
    assert_eq!(
        node(&s, "sink")["inputs"][0]["timeouts"].as_u64(),
        Some(empty.len() as u64),
        "{s}"
    );
    assert!(
        r.out
            .contains(&format!("node `sink`, input `in`: {} timeouts", empty.len())),
        "{}",
        r.out
    );
}
