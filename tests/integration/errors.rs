//! Every error `quiver check` reports, snapshot-tested: message, location and source line.
//! Paths are normalised: `<target>` is the build output folder.

use crate::support::{quiver, stderr, target_dir, temp_dir, workspace, write};

/// A valid start most cases build on: a counter ticking every 10 ms.
const BASE: &str = r#"name: t
nodes:
  - id: ticker
    operator: counter
    inputs:
      tick: { timer: 10ms }
    outputs: [count]
"#;

/// Runs `quiver check` on `yaml` and returns its normalised stderr; the exit code must be 2.
fn check_fails(name: &str, yaml: &str) -> String {
    let dir = temp_dir(&format!("errors-{name}"));
    let target = target_dir().display().to_string();
    write(&dir, "g.yaml", &yaml.replace("<target>", &target));
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert_eq!(o.status.code(), Some(2), "exit code; stderr:\n{}", stderr(&o));
    stderr(&o).replace(&target, "<target>")
}

#[test]
fn malformed_yaml() {
    let yaml = r#"nodes: [ {id: a, operator: counter"#;
    let expected = r#"error: malformed YAML: while parsing a flow mapping, did not find expected ',' or '}'
  --> g.yaml:2:1
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("malformed_yaml", yaml), expected);
}

#[test]
fn unknown_top_level_key() {
    let yaml = r#"nodez: []"#;
    let expected = r#"error: unknown key `nodez` in the graph (allowed: name, description, nodes)
  --> g.yaml:1:1
  |
1 | nodez: []
  | ^
error: missing key `nodes` in the graph
  --> g.yaml:1:1
  |
1 | nodez: []
  | ^
2 error(s) in g.yaml
"#;
    assert_eq!(check_fails("unknown_top_level_key", yaml), expected);
}

#[test]
fn unknown_node_key() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operater: recorder
"#,
    ]
    .concat();
    let expected = r#"error: node `s`: missing `operator:` (a name found on the operator path) or `path:` (a library file)
  --> g.yaml:8:9
  |
8 |   - id: s
  |         ^
error: node `s`: unknown key `operater` in a node (allowed: id, description, operator, path, params, inputs, outputs, deploy, isolate, restart, health, ports)
  --> g.yaml:9:5
  |
9 |     operater: recorder
  |     ^
2 error(s) in g.yaml
"#;
    assert_eq!(check_fails("unknown_node_key", yaml), expected);
}

#[test]
fn unknown_key_in_long_form_input() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: recorder
    inputs:
      in: { from: ticker/count, qeueu: { depth: 4 } }
"#,
    ]
    .concat();
    let expected = r#"error: node `s`: unknown key `qeueu` in input `in` (allowed: from, timer, queue, passing, timeout)
  --> g.yaml:11:33
   |
11 |       in: { from: ticker/count, qeueu: { depth: 4 } }
   |                                 ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("unknown_key_in_long_form_input", yaml), expected);
}

#[test]
fn unknown_key_in_queue() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: recorder
    inputs:
      in: { from: ticker/count, queue: { depth: 4, polcy: latest } }
"#,
    ]
    .concat();
    let expected = r#"error: node `s`: unknown key `polcy` in the queue of input `in` (allowed: depth, policy)
  --> g.yaml:11:52
   |
11 |       in: { from: ticker/count, queue: { depth: 4, polcy: latest } }
   |                                                    ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("unknown_key_in_queue", yaml), expected);
}

#[test]
fn duplicate_node_ids() {
    let yaml = &[
        BASE,
        r#"  - id: ticker
    operator: recorder
"#,
    ]
    .concat();
    let expected = r#"error: node id `ticker` is used twice (first at line 3)
  --> g.yaml:8:9
  |
8 |   - id: ticker
  |         ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("duplicate_node_ids", yaml), expected);
}

#[test]
fn unknown_node_in_from() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: recorder
    inputs:
      in: tickr/count
"#,
    ]
    .concat();
    let expected = r#"error: node `s`, port `in`: unknown node `tickr` (nodes: ticker, s)
  --> g.yaml:11:11
   |
11 |       in: tickr/count
   |           ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("unknown_node_in_from", yaml), expected);
}

#[test]
fn unlisted_output_in_from() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: recorder
    inputs:
      in: ticker/cnt
"#,
    ]
    .concat();
    let expected = r#"error: node `s`, port `in`: node `ticker` does not list output `cnt` in its `outputs:` (it lists: count)
  --> g.yaml:11:18
   |
11 |       in: ticker/cnt
   |                  ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("unlisted_output_in_from", yaml), expected);
}

#[test]
fn output_not_declared_by_operator() {
    let yaml = r#"name: t
nodes:
  - id: ticker
    operator: counter
    inputs:
      tick: { timer: 10ms }
    outputs: [count, total]
"#;
    let expected = r#"error: node `ticker`, port `total`: operator `counter` has no output `total` (its outputs: count)
  --> g.yaml:7:22
  |
7 |     outputs: [count, total]
  |                      ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("output_not_declared_by_operator", yaml), expected);
}

#[test]
fn missing_operator_library() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: nope
"#,
    ]
    .concat();
    let expected = r#"error: node `s`: operator `nope` not found: looked for libnope.so in <target>, . (set QUIVER_OPERATOR_PATH, build the operator, or give `path:`)
  --> g.yaml:9:15
  |
9 |     operator: nope
  |               ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("missing_operator_library", yaml), expected);
}

#[test]
fn abi_mismatch() {
    let yaml = &[
        BASE,
        r#"  - id: s
    path: <target>/libwrong_abi.so
"#,
    ]
    .concat();
    let expected = r#"error: node `s`: host ABI 6, plugin ABI 999: <target>/libwrong_abi.so (rebuild the operator with a quiver-operator of ABI 6)
  --> g.yaml:9:11
  |
9 |     path: <target>/libwrong_abi.so
  |           ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("abi_mismatch", yaml), expected);
}

#[test]
fn type_mismatch_names_both_ends() {
    let yaml = &[
        BASE,
        r#"  - id: p
    operator: probe
    inputs:
      s: ticker/count
"#,
    ]
    .concat();
    let expected = r#"error: node `p`, port `s`: type mismatch: `ticker/count` sends std_msgs/Int64 but `p/s` expects std_msgs/String
  --> g.yaml:11:7
   |
11 |       s: ticker/count
   |       ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("type_mismatch_names_both_ends", yaml), expected);
}

#[test]
fn bad_parameters() {
    let yaml = r#"name: t
nodes:
  - id: ticker
    operator: counter
    params: { limit: ten, burst: 0, speed: 3, start: 2.5 }
    inputs:
      tick: { timer: 10ms }
    outputs: [count]
"#;
    let expected = r#"error: node `ticker`: parameter `limit`: expected an int, got `ten`
  --> g.yaml:5:22
  |
5 |     params: { limit: ten, burst: 0, speed: 3, start: 2.5 }
  |                      ^
error: node `ticker`: parameter `burst`: 0 is out of range [1, 1000000]
  --> g.yaml:5:34
  |
5 |     params: { limit: ten, burst: 0, speed: 3, start: 2.5 }
  |                                  ^
error: node `ticker`: operator `counter` has no parameter `speed` (its parameters: start (int), step (int), limit (int), burst (int))
  --> g.yaml:5:37
  |
5 |     params: { limit: ten, burst: 0, speed: 3, start: 2.5 }
  |                                     ^
error: node `ticker`: parameter `start`: expected an int, got `2.5`
  --> g.yaml:5:54
  |
5 |     params: { limit: ten, burst: 0, speed: 3, start: 2.5 }
  |                                                      ^
4 error(s) in g.yaml
"#;
    assert_eq!(check_fails("bad_parameters", yaml), expected);
}

#[test]
fn timer_and_data_inputs_swapped() {
    let yaml = r#"name: t
nodes:
  - id: ticker
    operator: counter
    inputs:
      tick: ticker/count
    outputs: [count]
  - id: x
    operator: scale
    inputs:
      value: { timer: 10ms }
"#;
    let expected = r#"error: node `ticker`, port `tick`: `tick` is a timer of operator `counter`: bind it as `{ timer: 100ms }`, not to `ticker/count`
  --> g.yaml:6:7
  |
6 |       tick: ticker/count
  |       ^
error: node `x`, port `value`: `value` is a data input of operator `scale` (type std_msgs/Int64): it cannot be a timer
  --> g.yaml:11:7
   |
11 |       value: { timer: 10ms }
   |       ^
2 error(s) in g.yaml
"#;
    assert_eq!(check_fails("timer_and_data_inputs_swapped", yaml), expected);
}

#[test]
fn latest_with_depth() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: recorder
    inputs:
      in: { from: ticker/count, queue: { depth: 3, policy: latest } }
"#,
    ]
    .concat();
    let expected = r#"error: node `s`, port `in`: policy `latest` keeps exactly one message, so its depth is 1 (got 3); use `drop_oldest` to keep 3
  --> g.yaml:11:49
   |
11 |       in: { from: ticker/count, queue: { depth: 3, policy: latest } }
   |                                                 ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("latest_with_depth", yaml), expected);
}

#[test]
fn timer_without_unit() {
    let yaml = r#"name: t
nodes:
  - id: ticker
    operator: counter
    inputs:
      tick: { timer: 10 }
"#;
    let expected = r#"error: node `ticker`, port `tick`: invalid value for `timer`: `10` needs a unit (ns, us, ms, s, min, h)
  --> g.yaml:6:22
  |
6 |       tick: { timer: 10 }
  |                      ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("timer_without_unit", yaml), expected);
}

#[test]
fn empty_file() {
    let yaml = r#""#;
    let expected = r#"error: the file is empty: a graph needs at least `nodes:`
  --> g.yaml:1:1
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("empty_file", yaml), expected);
}

#[test]
fn bad_queue_values() {
    let yaml = &[
        BASE,
        r#"  - id: s
    operator: recorder
    inputs:
      in: { from: ticker/count, queue: { depth: 0, policy: fastest } , passing: by_magic }
"#,
    ]
    .concat();
    let expected = r#"error: node `s`, port `in`: invalid value for `depth`: `0` is not a whole number of at least 1
  --> g.yaml:11:49
   |
11 |       in: { from: ticker/count, queue: { depth: 0, policy: fastest } , passing: by_magic }
   |                                                 ^
error: node `s`, port `in`: invalid value for `policy`: `fastest` is not one of block, drop_oldest, latest
  --> g.yaml:11:60
   |
11 |       in: { from: ticker/count, queue: { depth: 0, policy: fastest } , passing: by_magic }
   |                                                            ^
error: node `s`, port `in`: invalid value for `passing`: `by_magic` is not one of by_reference, by_value
  --> g.yaml:11:81
   |
11 |       in: { from: ticker/count, queue: { depth: 0, policy: fastest } , passing: by_magic }
   |                                                                                 ^
3 error(s) in g.yaml
"#;
    assert_eq!(check_fails("bad_queue_values", yaml), expected);
}

#[test]
fn a_cycle_of_block_queues_is_a_warning_not_an_error() {
    let dir = temp_dir("warning-block-cycle");
    let yaml = [
        BASE,
        r#"  - id: a
    operator: probe
    inputs:
      a: ticker/count
      b: c/value
    outputs: [out]
  - id: c
    operator: scale
    inputs: { value: a/out }
    outputs: [value]
"#,
    ]
    .concat();
    write(&dir, "g.yaml", &yaml);
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "warning: nodes a, c form a cycle of `block` queues: if every queue on it fills up, each node waits for the \
         next for ever; give one edge of the loop `queue: { policy: latest }` or `drop_oldest`\n  --> g.yaml:12:7\n"
    );
    // With one lossy edge the loop cannot wait on itself.
    write(
        &dir,
        "g.yaml",
        &yaml.replace("b: c/value", "b: { from: c/value, queue: { policy: latest } }"),
    );
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
}

#[test]
fn a_node_nothing_calls_is_a_warning() {
    let dir = temp_dir("warning-never-called");
    // `quiet` binds neither its timer nor an input: it would sit silent for the whole run.
    let yaml = [
        BASE,
        r#"  - id: quiet
    operator: counter
    outputs: [count]
  - id: s
    operator: scale
    inputs: { value: quiet/count }
    outputs: [value]
"#,
    ]
    .concat();
    write(&dir, "g.yaml", &yaml);
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "warning: node `quiet` has no bound input or timer, so it is never called and sends nothing: bind timer \
         `tick` (each tick sends `burst` numbers), e.g. `inputs: { tick: { timer: 10ms } }`\n  --> g.yaml:8:5\n"
    );
    write(
        &dir,
        "g.yaml",
        &yaml.replace(
            "id: quiet\n    operator: counter\n",
            "id: quiet\n    operator: counter\n    inputs: { tick: { timer: 5ms } }\n",
        ),
    );
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
}

/// A manifest marks inputs it cannot work without (`Manifest::required_input`): a node that
/// leaves one unbound is a located warning from `check` and from `run`, not a refusal.
#[test]
fn a_required_input_left_unbound_is_a_warning() {
    let dir = temp_dir("warning-required");
    // The controller ticks (so it is called) but its laser input, which it requires, is unbound.
    let yaml = r#"name: t
nodes:
  - id: ctl
    operator: twist-controller
    inputs:
      tick: { timer: 10ms }
    outputs: [cmd_vel]
"#;
    write(&dir, "g.yaml", yaml);
    let warning = "warning: node `ctl`: operator `twist-controller` requires input `scan` \
                   (sensor_msgs/LaserScan, cleaned laser scans) and it is not bound, so the node cannot \
                   do its job: bind it, e.g. `inputs: { scan: { from: NODE/OUTPUT } }`\n  --> g.yaml:3:5\n";
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), warning);
    let o = quiver(&dir, &["run", "g.yaml", "--for", "100ms"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).starts_with(warning), "{}", stderr(&o));
    // `quiver operators` says which inputs are required.
    let o = quiver(&dir, &["operators", "twist-controller"]);
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        listing.contains("cleaned laser scans (required)") && !listing.contains("(optional) (required)"),
        "{listing}"
    );
    // Bound, it is quiet.
    let map = workspace().join("graphs/maps/room.yaml");
    let bound = format!(
        "{}  - id: world\n    operator: sim-world\n    params: {{ map: {} }}\n    \
         inputs: {{ tick: {{ timer: 20ms }} }}\n    outputs: [scan]\n",
        yaml.replace(
            "tick: { timer: 10ms }\n",
            "tick: { timer: 10ms }\n      scan: world/scan\n"
        ),
        map.display()
    );
    write(&dir, "g.yaml", &bound);
    let o = quiver(&dir, &["check", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn bad_graph_ports() {
    let yaml = &[
        BASE,
        r#"  - id: b
    operator: recorder
    ports: { extra: { type: std_msgs/Int64 } }
    inputs: { in: ticker/count }
  - id: p
    operator: probe
    ports:
      nums: { type: std_msgs/Int64, topic: /x }
      a: { type: std_msgs/Int64 }
      idle: { type: std_msgs/Int64 }
      both: { type: std_msgs/Int64 }
    inputs: { nums: ticker/count, both: ticker/count }
    outputs: [both]
"#,
    ]
    .concat();
    let got = check_fails("graph-ports", yaml);
    let expected = r#"error: node `b`: operator `recorder` declares its own ports: `ports` is for operators whose ports the graph declares (such as ros2-bridge)
  --> g.yaml:10:12
   |
10 |     ports: { extra: { type: std_msgs/Int64 } }
   |            ^
error: node `p`, port `nums`: `topic` is not a setting of operator `probe`'s ports (settings: to, add)
  --> g.yaml:15:37
   |
15 |       nums: { type: std_msgs/Int64, topic: /x }
   |                                     ^
error: node `p`, port `a`: port `a` is already declared by operator `probe`
  --> g.yaml:16:7
   |
16 |       a: { type: std_msgs/Int64 }
   |       ^
error: node `p`, port `idle`: port `idle` is declared in `ports` but neither listed in `outputs` nor bound in `inputs`
  --> g.yaml:17:7
   |
17 |       idle: { type: std_msgs/Int64 }
   |       ^
error: node `p`, port `both`: port `both` is both listed in `outputs` and bound in `inputs`: a port is one or the other
  --> g.yaml:18:7
   |
18 |       both: { type: std_msgs/Int64 }
   |       ^
"#;
    assert!(got.starts_with(expected), "got:\n{got}");

    // A port without a type is refused when the file is read.
    let yaml = &[
        BASE,
        r#"  - id: p
    operator: probe
    ports: { untyped: { to: x } }
    inputs: { untyped: ticker/count }
"#,
    ]
    .concat();
    let expected = r#"error: node `p`, port `untyped`: missing key `type` in port `untyped`
  --> g.yaml:10:14
   |
10 |     ports: { untyped: { to: x } }
   |              ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("graph-ports-untyped", yaml), expected);

    // A type msg-defs does not know cannot go to ROS: refused by `check`, listing the known ones.
    let yaml = &[
        BASE,
        r#"  - id: ros
    operator: ros2-bridge
    ports: { odom: { type: nav_msgs/msg/Odometry, topic: /odom } }
    outputs: [odom]
"#,
    ]
    .concat();
    let expected = r#"error: node `ros`, port `odom`: operator `ros2-bridge` cannot carry message type nav_msgs/msg/Odometry (known types: builtin_interfaces/Time, geometry_msgs/Point, geometry_msgs/Pose, geometry_msgs/Quaternion, geometry_msgs/Twist, geometry_msgs/Vector3, quiver_msgs/Classification, sensor_msgs/Image, sensor_msgs/LaserScan, std_msgs/Header, std_msgs/Int64, std_msgs/String)
  --> g.yaml:10:28
   |
10 |     ports: { odom: { type: nav_msgs/msg/Odometry, topic: /odom } }
   |                            ^
1 error(s) in g.yaml
"#;
    assert_eq!(check_fails("graph-ports-bridge-type", yaml), expected);
}

#[test]
fn bad_process_keys() {
    let yaml = &[
        BASE,
        r#"  - id: b
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { process: "no spaces", host: robot }
  - id: d
    operator: recorder
    inputs: { in: ticker/count }
    isolate: yes please
    restart: { policy: always }
  - id: e
    operator: recorder
    inputs: { in: ticker/count }
    restart: { policy: never, max: 2 }
"#,
    ]
    .concat();
    let expected = r#"error: node `b`: invalid value for `process`: `no spaces` is not a process name (letters, digits, `_` and `-`)
  --> g.yaml:11:24
   |
11 |     deploy: { process: "no spaces", host: robot }
   |                        ^
error: node `b`: unknown key `host` in `deploy` (allowed: process, machine, labels)
  --> g.yaml:11:37
   |
11 |     deploy: { process: "no spaces", host: robot }
   |                                     ^
error: node `d`: invalid value for `isolate`: `yes please` is not true or false
  --> g.yaml:15:14
   |
15 |     isolate: yes please
   |              ^
error: node `d`: invalid value for `restart`: `always` is not one of never, on-failure
  --> g.yaml:16:24
   |
16 |     restart: { policy: always }
   |                        ^
error: node `e`: invalid value for `restart`: `max`, `delay`, `max_delay` and `window` only apply to `policy: on-failure`
  --> g.yaml:20:36
   |
20 |     restart: { policy: never, max: 2 }
   |                                    ^
5 error(s) in g.yaml
"#;
    assert_eq!(check_fails("bad_process_keys", yaml), expected);
}

#[test]
fn bad_machine_keys() {
    let yaml = &[
        BASE,
        r#"  - id: a
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { machine: robot, labels: [gpu] }
  - id: b
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { labels: [] }
  - id: c
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { machine: "my robot", labels: gpu }
  - id: f
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { labels: [gpu, "a b"], process: vision }
"#,
    ]
    .concat();
    let expected = r#"error: node `a`: invalid value for `labels`: `machine` already names the daemon; give `machine` or `labels`, not both
  --> g.yaml:11:39
   |
11 |     deploy: { machine: robot, labels: [gpu] }
   |                                       ^
error: node `b`: invalid value for `labels`: the list is empty: name at least one label, or leave `labels` out
  --> g.yaml:15:23
   |
15 |     deploy: { labels: [] }
   |                       ^
error: node `c`: invalid value for `machine`: `my robot` is not a machine name (letters, digits, `_` and `-`)
  --> g.yaml:19:24
   |
19 |     deploy: { machine: "my robot", labels: gpu }
   |                        ^
error: node `c`: expected a list of labels for `labels`, found a scalar
  --> g.yaml:19:44
   |
19 |     deploy: { machine: "my robot", labels: gpu }
   |                                            ^
error: node `f`: invalid value for a label: `a b` is not a label (letters, digits, `_` and `-`)
  --> g.yaml:23:29
   |
23 |     deploy: { labels: [gpu, "a b"], process: vision }
   |                             ^
5 error(s) in g.yaml
"#;
    assert_eq!(check_fails("bad_machine_keys", yaml), expected);
}

#[test]
fn conflicting_machine_placement() {
    let yaml = &[
        BASE,
        r#"  - id: d
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { machine: robot, process: main }
  - id: e
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { machine: robot, process: vision }
  - id: f
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { labels: [gpu], process: vision }
  - id: g
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { machine: robot }
  - id: h
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { process: robot }
"#,
    ]
    .concat();
    let expected = r#"error: node `d`: invalid value for `process`: `main` is the process `quiver run` is: it cannot run on machine `robot`
  --> g.yaml:11:40
   |
11 |     deploy: { machine: robot, process: main }
   |                                        ^
error: node `f`: invalid value for `deploy`: process `vision` runs on machine `robot` (node `e`), this node puts it on a machine labelled gpu; a process runs on one machine: name another process
  --> g.yaml:19:23
   |
19 |     deploy: { labels: [gpu], process: vision }
   |                       ^
error: node `h`: invalid value for `deploy`: process `robot` runs on machine `robot` (node `g`), this node puts it on this machine; a process runs on one machine: name another process
  --> g.yaml:27:24
   |
27 |     deploy: { process: robot }
   |                        ^
3 error(s) in g.yaml
"#;
    assert_eq!(check_fails("conflicting_machine_placement", yaml), expected);
}

#[test]
fn conflicting_process_placement() {
    let yaml = &[
        BASE,
        r#"  - id: a
    operator: recorder
    inputs: { in: ticker/count }
    isolate: true
    deploy: { process: vision }
  - id: c
    operator: recorder
    inputs: { in: ticker/count }
    restart: on-failure
  - id: e
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { process: vision }
    restart: { policy: on-failure, max: 2 }
  - id: f
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { process: vision }
    restart: never
  - id: g
    operator: recorder
    inputs: { in: ticker/count }
    isolate: true
  - id: h
    operator: recorder
    inputs: { in: ticker/count }
    deploy: { process: g }
"#,
    ]
    .concat();
    let expected = r#"error: node `a`: invalid value for `isolate`: the node is already placed in process `vision` by `deploy`; give one of the two
  --> g.yaml:11:14
   |
11 |     isolate: true
   |              ^
error: node `c`: invalid value for `restart`: only a node in a worker process can be restarted: add `isolate: true` or `deploy: { process: NAME }`
  --> g.yaml:16:14
   |
16 |     restart: on-failure
   |              ^
error: node `f`: invalid value for `restart`: node `e` in the same process `vision` asks for another restart policy; a process restarts as a whole
  --> g.yaml:26:14
   |
26 |     restart: never
   |              ^
error: node `h`: invalid value for `process`: process `g` belongs to node `g` alone (`isolate: true`)
  --> g.yaml:34:24
   |
34 |     deploy: { process: g }
   |                        ^
4 error(s) in g.yaml
"#;
    assert_eq!(check_fails("conflicting_process_placement", yaml), expected);
}

/// Runs `quiver check` on a file of `bytes`; its exit code and normalised stderr.
fn check_bytes(name: &str, bytes: &[u8]) -> (Option<i32>, String) {
    let dir = temp_dir(&format!("errors-{name}"));
    std::fs::write(dir.join("g.yaml"), bytes).unwrap();
    let o = quiver(&dir, &["check", "g.yaml"]);
    (o.status.code(), stderr(&o))
}

/// Hostile YAML is refused where it is, quickly, with a bounded message: aliases of aliases
/// (a "billion laughs" file of 529 bytes), a NUL byte, a second document, invalid UTF-8, a
/// line 40,000 characters long. A byte-order mark is accepted and a lone CR ends a line.
#[test]
fn hostile_yaml() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    bomb.push_str("name: t\nnodes: []\n");
    let (code, err) = check_bytes("bomb", bomb.as_bytes());
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        "error: malformed YAML: aliases expand this file to more than 100000 values (aliases of aliases?)
  --> g.yaml:5:45
  |
5 | a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
  |                                             ^
1 error(s) in g.yaml
"
    );

    let nul = BASE.replace("    operator: counter", "    operator: coun\0ter");
    let (code, err) = check_bytes("nul", nul.as_bytes());
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        r#"error: malformed YAML: a NUL byte: this is not a text file (or it is damaged)
  --> g.yaml:4:19
  |
4 |     operator: coun\u{0}ter
  |                   ^
1 error(s) in g.yaml
"#
    );

    let two = format!("{BASE}---\nname: other\nnodes: []\n");
    let (code, err) = check_bytes("two-documents", two.as_bytes());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("a second YAML document") && err.contains("--> g.yaml:8:1"),
        "{err}"
    );

    let mut bad = BASE.as_bytes().to_vec();
    let at = BASE.find("outputs").unwrap();
    bad.insert(at, 0xff);
    let (code, err) = check_bytes("utf8", &bad);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("not UTF-8 text: byte 0xff at offset {at}")) && err.contains("--> g.yaml:7:5"),
        "the bad byte is located:\n{err}"
    );

    let (code, err) = check_bytes("bom", format!("\u{feff}{BASE}").as_bytes());
    assert_eq!(code, Some(0), "a byte-order mark is fine: {err}");

    // A lone CR ends a line: the excerpt is the line the error is on.
    let cr = "name: t\rnodes:\r  - id: a\r    operater: counter\r";
    let (_, err) = check_bytes("cr", cr.as_bytes());
    assert!(
        err.contains("  --> g.yaml:4:5\n  |\n4 |     operater: counter\n  |     ^"),
        "{err}"
    );

    // A very long line is cut around the caret.
    let long = format!(
        "name: t\nnodes: [{}{{id: a, operater: x}}]\n",
        "{id: z, operator: counter}, ".repeat(1500)
    );
    let (_, err) = check_bytes("long-line", long.as_bytes());
    assert!(
        err.lines().all(|l| l.chars().count() < 200),
        "excerpts are cut:\n{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.contains("..."), "{}", &err[..err.len().min(2000)]);
}

/// Text from the file never reaches the terminal raw (an ANSI escape or a newline in a key
/// would fake output), and many errors print a bounded report.
#[test]
fn error_output_is_escaped_and_bounded() {
    let (code, err) = check_bytes(
        "escape",
        format!("{BASE}  - id: s\n    \"\\e[31mred\\nx\": 1\n").as_bytes(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains('\u{1b}'), "no raw escape: {err:?}");
    assert!(err.contains(r"unknown key `\u{1b}[31mred\nx`"), "{err}");

    let (code, err) = check_bytes(
        "control-id",
        "name: t\nnodes:\n  - id: \"a\\nb\"\n    operator: counter\n".as_bytes(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("without `/` or control characters"), "{err}");

    let mut many = String::from(BASE);
    for i in 0..10_000 {
        many.push_str(&format!(
            "  - id: n{i}\n    operator: recorder\n    inputs: {{ in: ghost{i}/out }}\n"
        ));
    }
    let started = std::time::Instant::now();
    let (code, err) = check_bytes("many", many.as_bytes());
    println!("10,000 errors checked and printed in {:?}", started.elapsed());
    assert_eq!(code, Some(2));
    assert!(err.len() < 100_000, "the report is bounded: {} bytes", err.len());
    assert!(
        err.contains("... and 9900 more error(s) not shown\n10000 error(s) in g.yaml"),
        "{}",
        &err[err.len().saturating_sub(500)..]
    );
    assert!(
        err.contains("(nodes: ticker, n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, and 9989 more)"),
        "{}",
        &err[..2000]
    );
}

/// Files that would crash or hang a loader are refused before they are opened: a truncated
/// library (mapping it killed `check` and `operators` with SIGBUS), a FIFO (blocked for ever) or
/// a device (`/dev/zero`, read to gigabytes) as a path parameter; operator names that climb.
#[test]
fn hostile_libraries_and_paths() {
    let dir = temp_dir("errors-hostile-files");
    let lib = std::fs::read(target_dir().join("libcounter.so")).unwrap();
    let ops = dir.join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    for (name, len) in [
        ("libhalf.so", lib.len() / 2),
        ("libtenth.so", lib.len() / 10),
        ("libtiny.so", 40),
    ] {
        std::fs::write(ops.join(name), &lib[..len]).unwrap();
    }
    for name in ["libhalf.so", "libtenth.so", "libtiny.so"] {
        write(
            &dir,
            "g.yaml",
            &format!("name: t\nnodes:\n  - id: a\n    path: ops/{name}\n    inputs: {{ tick: {{ timer: 10ms }} }}\n"),
        );
        let o = quiver(&dir, &["check", "g.yaml"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("cannot load {}", ops.join(name).display())),
            "{err}"
        );
        assert!(err.contains("truncated") || err.contains("too short"), "{name}: {err}");
    }
    // Found on the search path: listed with the error, the rest still listed.
    let o = crate::support::quiver_env(&dir, &["operators"], &[("QUIVER_OPERATOR_PATH", ops.to_str().unwrap())]);
    let out = crate::support::stdout(&o);
    assert!(o.status.code().is_some(), "no signal: {o:?}");
    assert!(out.contains("libtenth.so") && out.contains("truncated"), "{out}");

    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (what, path) in [
        ("a FIFO", fifo.display().to_string()),
        ("a device", "/dev/zero".to_string()),
    ] {
        let yaml = format!(
            "name: t\nnodes:\n  - id: w\n    operator: sim-world\n    params: {{ map: {path} }}\n    inputs: {{ tick: {{ timer: 10ms }} }}\n"
        );
        write(&dir, "g.yaml", &yaml);
        let o = quiver(&dir, &["check", "g.yaml"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(&format!("{path} is not a regular file or a folder")),
            "{what}: {err}"
        );
    }

    // An empty required path is refused here, not passed to the operator as "" (which then
    // failed with `: No such file or directory` and no name).
    let yaml = "name: t\nnodes:\n  - id: w\n    operator: sim-world\n    params: { map: \"\" }\n    inputs: { tick: { timer: 10ms } }\n";
    assert!(
        check_fails("empty-required-path", yaml).starts_with(
            "error: node `w`: parameter `map`: an empty path: this parameter is required, give a file or a folder\n  --> g.yaml:5:20\n"
        ),
        "{}",
        check_fails("empty-required-path", yaml)
    );

    let yaml = "name: t\nnodes:\n  - id: x\n    operator: ../../tmp/evil\n";
    assert_eq!(
        check_fails("climbing-operator", yaml),
        "error: node `x`: invalid value for `operator`: an operator name is letters, digits, `_` and `-` (give a library file with `path:`)
  --> g.yaml:4:15
  |
4 |     operator: ../../tmp/evil
  |               ^
1 error(s) in g.yaml
"
    );
}

#[test]
fn bad_health_keys() {
    let yaml = &[BASE, "    health: { timeout: 0s, grace: 1s }\n"].concat();
    let expected = r#"error: node `ticker`: invalid value for `timeout`: a health timeout must be greater than zero
  --> g.yaml:8:24
  |
8 |     health: { timeout: 0s, grace: 1s }
  |                        ^
error: node `ticker`: unknown key `grace` in `health` (allowed: timeout)
  --> g.yaml:8:28
  |
8 |     health: { timeout: 0s, grace: 1s }
  |                            ^
2 error(s) in g.yaml
"#;
    assert_eq!(check_fails("bad_health_keys", yaml), expected);
}
