//! Graphs run end to end through the CLI: the example graphs, delivery, zero copy, panic and
//! error containment, rendering, operator listing.

use crate::support::{field, quiver, quiver_env, record, stderr, stdout, temp_dir, values, workspace, write};

#[test]
fn every_example_graph_checks_and_runs() {
    let dir = workspace().join("graphs");
    let mut graphs: Vec<_> = std::fs::read_dir(&dir)
        .expect("graphs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    graphs.sort();
    assert!(!graphs.is_empty(), "no graphs in {}", dir.display());
    // The ROS 2 graphs' DDS stays on this machine.
    let env = [("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")];
    for g in graphs {
        let path = g.display().to_string();
        let o = quiver(&workspace(), &["check", &path]);
        assert!(o.status.success(), "check {path}: {}", stderr(&o));
        // A graph across machines runs against two daemons on loopback (the namespace tests
        // in machines.rs run it on private hosts).
        let text = std::fs::read_to_string(&g).unwrap();
        let _daemons;
        let mut args = vec!["run", &path, "--for", "3s"];
        let endpoint;
        if text.contains("machine:") || text.contains("labels:") {
            let d = LoopbackDaemons::start();
            endpoint = d.endpoint.clone();
            args.extend(["--connect", &endpoint]);
            _daemons = Some(d);
        }
        let o = quiver_env(&workspace(), &args, &env);
        assert!(o.status.success(), "run {path}: {}{}", stdout(&o), stderr(&o));
        let o = quiver_env(&workspace(), &["run", &path, "--stepped", "--for", "3s"], &env);
        assert!(o.status.success(), "stepped run {path}: {}{}", stdout(&o), stderr(&o));
    }
}

/// `quiver daemon`s named `robot` (labels `arm`) and `gpu-box` (labels `gpu`) on loopback, each
/// with its own cache; killed when dropped.
struct LoopbackDaemons {
    endpoint: String,
    children: Vec<std::process::Child>,
}

impl LoopbackDaemons {
    fn start() -> LoopbackDaemons {
        let dir = temp_dir("loopback-daemons");
        let ports: Vec<u16> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let endpoint = format!("tcp/127.0.0.1:{}", ports[0]);
        let mut children = Vec::new();
        for (name, labels, port, connect) in [
            ("robot", "arm", ports[0], None),
            ("gpu-box", "gpu", ports[1], Some(endpoint.clone())),
        ] {
            let mut c = std::process::Command::new(crate::support::target_dir().join("quiver"));
            c.current_dir(&dir)
                .env_remove("QUIVER_OPERATOR_PATH")
                .args(["daemon", "--name", name, "--labels", labels])
                .args(["--listen", &format!("tcp/127.0.0.1:{port}")])
                .args(["--cache", &dir.join(name).display().to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            if let Some(e) = connect {
                c.args(["--connect", &e]);
            }
            children.push(c.spawn().expect("starting a daemon"));
        }
        // Ready when both answer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let o = quiver(&dir, &["machines", "--connect", &endpoint, "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            if v.as_array().is_some_and(|a| a.len() == 2) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemons did not answer: {}",
                stderr(&o)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        LoopbackDaemons { endpoint, children }
    }
}

impl Drop for LoopbackDaemons {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn ports_declared_in_the_graph_carry_data_and_settings() {
    let dir = temp_dir("graph-ports");
    write(
        &dir,
        "g.yaml",
        "name: graph-ports
nodes:
  - id: ticker
    operator: counter
    params: { limit: 10 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: relay
    operator: probe
    ports:
      nums: { type: std_msgs/Int64, to: plus, add: 100 }
      plus: { type: std_msgs/Int64 }
    inputs: { nums: ticker/count }
    outputs: [plus]
  - id: sink
    operator: recorder
    params: { path: rec.txt }
    inputs: { in: relay/plus }
",
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = record(&dir.join("rec.txt"));
    assert_eq!(lines.len(), 10);
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with("relay/plus "), "{line}");
        assert_eq!(
            values(line),
            vec![i as i64 + 100],
            "the port's `add: 100` reached the operator"
        );
    }
    // The operator's manifest says it takes ports from the graph, and which settings.
    let o = quiver(&dir, &["operators", "probe"]);
    let out = stdout(&o);
    assert!(
        out.contains("ports declared in the graph (`ports:`): test ports"),
        "{out}"
    );
    assert!(
        out.contains("    add              (inputs) the number added, default 0"),
        "{out}"
    );
}

#[test]
fn a_pipeline_delivers_every_value_in_order() {
    let dir = temp_dir("pipeline");
    write(
        &dir,
        "g.yaml",
        "name: pipeline
nodes:
  - id: ticker
    operator: counter
    params: { limit: 20 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: triple
    operator: scale
    params: { factor: 3, offset: 1 }
    inputs: { value: ticker/count }
    outputs: [value]
  - id: sink
    operator: recorder
    params: { path: rec.txt }
    inputs: { in: triple/value }
",
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("(all sources finished)"), "{out}");
    assert!(
        out.contains("node `ticker`: sent 20\n"),
        "reported figures in the summary: {out}"
    );
    let lines = record(&dir.join("rec.txt"));
    assert_eq!(lines.len(), 20);
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with("triple/value "), "{line}");
        assert_eq!(field(line, "seq"), i.to_string());
        assert_eq!(values(line), vec![3 * i as i64 + 1]);
        assert_eq!(field(line, "updated"), "true");
    }
}

/// probe `a` forwards the very array it received; a by-reference consumer sees the producer's
/// buffer, a by-value consumer its own copy.
#[test]
fn by_reference_shares_buffers_and_by_value_copies() {
    let dir = temp_dir("zero-copy");
    write(
        &dir,
        "g.yaml",
        "name: zero-copy
nodes:
  - id: ticker
    operator: counter
    params: { limit: 10 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: first
    operator: probe
    inputs: { a: ticker/count }
    outputs: [out, addr]
  - id: by_ref
    operator: probe
    inputs: { a: first/out }
    outputs: [addr]
  - id: by_val
    operator: probe
    inputs: { a: { from: first/out, passing: by_value } }
    outputs: [addr]
  - id: rec_first
    operator: recorder
    params: { path: first.txt }
    inputs: { in: first/addr }
  - id: rec_ref
    operator: recorder
    params: { path: ref.txt }
    inputs: { in: by_ref/addr }
  - id: rec_val
    operator: recorder
    params: { path: val.txt }
    inputs: { in: by_val/addr }
",
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = record(&dir.join("first.txt"));
    let by_ref = record(&dir.join("ref.txt"));
    let by_val = record(&dir.join("val.txt"));
    assert_eq!(first.len(), 10);
    for i in 0..10 {
        let a = values(&first[i]);
        assert_eq!(values(&by_ref[i]), a, "by reference: same buffer across plugins");
        assert_ne!(values(&by_val[i]), a, "by value: a copy");
    }
}

#[test]
fn a_panicking_operator_is_reported_and_the_rest_keeps_running() {
    let dir = temp_dir("panic");
    write(
        &dir,
        "g.yaml",
        "name: panics
nodes:
  - id: ticker
    operator: counter
    params: { limit: 10 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: fragile
    operator: probe
    params: { panic_on: 4 }
    inputs: { a: ticker/count }
    outputs: [out]
  - id: after_fragile
    operator: recorder
    params: { path: after.txt }
    inputs: { in: fragile/out }
  - id: bystander
    operator: recorder
    params: { path: bystander.txt }
    inputs: { in: ticker/count }
",
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "error: node `fragile` reported 1 error(s); first: input `a`: panicked: probe asked to panic on 4"
        ),
        "{err}"
    );
    let after: Vec<i64> = record(&dir.join("after.txt")).iter().flat_map(|l| values(l)).collect();
    assert_eq!(after, vec![0, 1, 2, 3, 5, 6, 7, 8, 9]);
    assert_eq!(record(&dir.join("bystander.txt")).len(), 10);
}

#[test]
fn an_operator_error_names_the_node_and_exits_non_zero() {
    let dir = temp_dir("op-error");
    write(
        &dir,
        "g.yaml",
        "nodes:
  - id: ticker
    operator: counter
    params: { limit: 5 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: picky
    operator: probe
    params: { error_on: 2 }
    inputs: { a: ticker/count }
",
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("node `picky` reported 1 error(s); first: input `a`: probe asked to fail on 2"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("picky"), "summary printed");
}

#[test]
fn an_operator_that_fails_to_start_stops_the_run_with_its_reason() {
    let dir = temp_dir("create-error");
    write(
        &dir,
        "g.yaml",
        "nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: broken
    operator: probe
    params: { fail_create: true }
    inputs: { a: ticker/count }
",
    );
    let o = quiver(&dir, &["run", "g.yaml", "--for", "5s"]);
    // The run did not start: exit 2, as README says and as for a node in a worker process.
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: node `broken`: asked to fail (fail_create: true)"
    );
}

#[test]
fn graphs_render_as_dot_and_mermaid() {
    let g = workspace().join("graphs/counter.yaml").display().to_string();
    let o = quiver(&workspace(), &["graph", &g, "--format", "dot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph \"counter-demo\" {"), "{dot}");
    assert!(
        dot.contains("\"ticker\" -> \"triple\" [label=\"count -> value\\nstd_msgs/Int64\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"triple\" -> \"sink\" [label=\"value -> in\\nstd_msgs/Int64 [block 8]\"];"),
        "{dot}"
    );
    let o = quiver(&workspace(), &["graph", &g, "--format", "mermaid"]);
    let mermaid = stdout(&o);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("n0[\"ticker<br/>(counter)\"]"), "{mermaid}");
    assert!(
        mermaid.contains("n0 -- \"count -> value: std_msgs/Int64\" --> n1"),
        "{mermaid}"
    );
    assert!(mermaid.contains("n0_t0((\"20ms\")) -. \"tick\" .-> n0"), "{mermaid}");

    // Ids from the file are escaped: a quote does not break DOT, and ids that differ only in
    // punctuation stay distinct nodes in Mermaid.
    let dir = temp_dir("render-escapes");
    write(
        &dir,
        "g.yaml",
        r#"name: 'say "hi"'
nodes:
  - id: 'a"b'
    operator: counter
    inputs: { tick: { timer: 10ms } }
    outputs: [count]
  - id: a-b
    operator: scale
    inputs: { value: 'a"b/count' }
    outputs: [value]
  - id: a_b
    operator: recorder
    inputs: { in: a-b/value }
"#,
    );
    let o = quiver(&dir, &["graph", "g.yaml", "--format", "dot"]);
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph \"say \\\"hi\\\"\" {"), "{dot}");
    assert!(dot.contains("\"a\\\"b\" -> \"a-b\""), "{dot}");
    let o = quiver(&dir, &["graph", "g.yaml", "--format", "mermaid"]);
    let mermaid = stdout(&o);
    for (i, label) in ["a#quot;b", "a-b", "a_b"].iter().enumerate() {
        assert!(mermaid.contains(&format!("n{i}[\"{label}<br/>")), "{mermaid}");
    }
    assert!(
        mermaid.contains("n0 -- ") && mermaid.contains("--> n1") && mermaid.contains("--> n2"),
        "{mermaid}"
    );
}

#[test]
fn operators_are_listed_and_their_manifests_shown() {
    let dir = temp_dir("operators");
    let o = quiver(&dir, &["operators"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&o);
    for name in ["counter", "scale", "recorder", "probe"] {
        assert!(
            list.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{list}"
        );
    }
    assert!(
        !list.contains("wrong_abi") || list.contains("host ABI 6, plugin ABI 999"),
        "{list}"
    );
    let o = quiver(&dir, &["operators", "counter"]);
    let m = stdout(&o);
    assert!(m.starts_with("counter 0.1.0: Counts on every tick"), "{m}");
    assert!(
        m.contains("    count            std_msgs/Int64           the numbers, one per DataPack"),
        "{m}"
    );
    assert!(
        m.contains("    burst            int       default 1          range [1, 1000000]"),
        "{m}"
    );
    let o = quiver(&dir, &["operators", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("operator `nope` not found: looked for libnope.so in"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn data_that_does_not_match_the_declared_message_type_is_refused() {
    let dir = temp_dir("layout-mismatch");
    write(
        &dir,
        "g.yaml",
        "nodes:
  - id: ticker
    operator: counter
    params: { limit: 3 }
    inputs: { tick: { timer: 1ms } }
    outputs: [count]
  - id: sloppy
    operator: probe
    params: { raw_addr: true }
    inputs: { a: ticker/count }
    outputs: [addr]
  - id: sink
    operator: recorder
    inputs: { in: sloppy/addr }
",
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "error: node `sloppy` reported 3 error(s); first: input `a`: output `addr` not sent: declared as \
             std_msgs/Int64 but the data is Int64; build it with quiver_msgs::Int64 (layout Struct("
        ),
        "{err}"
    );
    assert!(
        stdout(&o).contains("out=3 addr=0"),
        "no `addr` pack was sent:\n{}",
        stdout(&o)
    );
}

/// A daemon of another quiver version (played by eclipse-zenoh from PyPI) is refused by
/// `check --connect` and `run`, with both versions and the node's line.
#[test]
fn a_daemon_of_another_version_is_refused() {
    let python = crate::support::zenoh_python();
    let dir = temp_dir("old-daemon");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let mut old = std::process::Command::new(&python)
        .arg(workspace().join("tests/machines/old_daemon.py"))
        .args([&endpoint, "oldbox"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting the old daemon");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(old.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    write(
        &dir,
        "g.yaml",
        "name: old
nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 10ms } }
    outputs: [count]
    deploy: { machine: oldbox }
",
    );
    let o = quiver(&dir, &["check", "g.yaml", "--connect", &endpoint]);
    let err = stderr(&o);
    let _ = old.kill();
    let _ = old.wait();
    assert_eq!(o.status.code(), Some(2), "{err}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        err.contains(&format!(
            "machine `oldbox` runs quiver 0.0.1 (ABI 1), this is quiver {version} (ABI"
        )) && err.contains("g.yaml:7:24"),
        "{err}"
    );
}

/// README's operator example is the crate `tests/readme-example` byte for byte, so the code a
/// reader copies builds, and its unit test runs (`cargo test --workspace`).
#[test]
fn the_readme_operator_example_is_the_tested_crate() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let at = readme.find("## Writing an operator").expect("the section");
    let start = readme[at..].find("```rust\n").expect("its Rust block") + at + "```rust\n".len();
    let end = readme[start..].find("```").expect("the block's end") + start;
    let crate_src = std::fs::read_to_string(workspace().join("tests/readme-example/src/lib.rs")).unwrap();
    assert_eq!(
        &readme[start..end],
        crate_src,
        "README.md and tests/readme-example/src/lib.rs differ"
    );
}
