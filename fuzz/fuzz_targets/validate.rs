//! Graph files through the whole check: parsed, then validated against operator manifests
//! (ports, types, timers, every parameter kind and range, graph-declared ports, deploy, health,
//! restart and queue keys), then warned about and rendered (DOT and Mermaid), as `quiver check`
//! and `quiver graph` do. The manifests are built here, like the shipped operators': no plugin
//! is loaded.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use quiver_graph::{Format, OperatorRef, OperatorSpec, ParamKind, ParamSpec};

fn manifests() -> &'static Vec<Arc<OperatorSpec>> {
    static M: OnceLock<Vec<Arc<OperatorSpec>>> = OnceLock::new();
    M.get_or_init(|| {
        vec![
            Arc::new(
                OperatorSpec::new("counter", "1", "counts")
                    .timer("tick", "each tick sends `burst` numbers")
                    .output("count", "std_msgs/Int64", "numbers")
                    .param(ParamSpec::int("burst", 1).range_int(1, 1000))
                    .param(ParamSpec::int("limit", 0)),
            ),
            Arc::new(
                OperatorSpec::new("scale", "1", "scales")
                    .required_input("value", "std_msgs/Int64", "in")
                    .output("value", "std_msgs/Int64", "out")
                    .param(ParamSpec::float("factor", 2.0).range(-10.0, 10.0))
                    .param(ParamSpec::bool("verbose", false))
                    .param(ParamSpec::string("label", "x"))
                    .param(ParamSpec::duration("every", Duration::from_millis(10)).range_duration(
                        Duration::from_millis(1),
                        Duration::from_secs(10),
                    ))
                    .param(ParamSpec::required("gain", ParamKind::Int)),
            ),
            Arc::new(
                OperatorSpec::new("recorder", "1", "records")
                    .input("in", "any", "packs of any type")
                    .input("scan", "sensor_msgs/LaserScan", "scans"),
            ),
            Arc::new(
                OperatorSpec::new("bridge", "1", "ports in the graph")
                    .graph_ports("one port per topic")
                    .port_setting("topic", "the topic")
                    .port_setting("qos", "reliable or best_effort")
                    .port_types(["std_msgs/Int64", "sensor_msgs/LaserScan", "geometry_msgs/Twist"])
                    .timer("poll", "polls"),
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(raw) = quiver_graph::parse(std::path::Path::new("fuzz.yaml"), text) else {
        return;
    };
    let specs = manifests();
    let mut resolve = |r: &OperatorRef| match r {
        OperatorRef::Name(name) => specs
            .iter()
            .find(|m| &m.name == name)
            .cloned()
            .ok_or_else(|| format!("no operator `{name}`")),
        OperatorRef::Path(p) => Err(format!("no library at {}", p.display())),
    };
    if let Ok(graph) = quiver_graph::validate(&raw, &mut resolve) {
        let _ = quiver_graph::warnings(&graph);
        let _ = quiver_graph::render(&graph, Format::Dot);
        let _ = quiver_graph::render(&graph, Format::Mermaid);
    }
});
