//! `quiver param`: list, get, set and dump the parameters of a running graph, through the
//! control plane (quiver-control); and serving a process's nodes to it.

use std::process::ExitCode;

use clap::Subcommand;
use quiver_control::proto::NodeParams;
use quiver_control::{Client, Server, runs};

#[derive(Subcommand)]
pub enum ParamCommand {
    /// Every node's parameters (or one node's): value, kind, range, default, doc.
    List {
        /// The run: its graph's name or its id (`quiver param list` with one run: that one).
        run: Option<String>,
        node: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One parameter's value.
    Get { run: String, node: String, name: String },
    /// Sets a parameter: checked against the operator's manifest (kind, range), then passed to
    /// its `on_param`, which may refuse it with a reason (the old value stays).
    Set {
        run: String,
        node: String,
        name: String,
        /// As a graph file writes it: 0.5, -2, 20ms, true, "text".
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Every node's parameters as a parameter file (`quiver run --params FILE` reads it).
    Dump { run: Option<String> },
}

/// Serves this process's nodes to `quiver param` while the returned server lives; a failure
/// is a warning (the run goes on without it).
pub fn serve(
    run: &str,
    graph: &quiver_graph::Graph,
    process: &str,
    controls: &quiver_runtime::Controls,
) -> Option<Server> {
    let nodes: Vec<String> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| graph.process_of(*i) == process)
        .map(|(_, n)| n.id.clone())
        .collect();
    let mut consumers: std::collections::HashMap<String, Vec<String>> = Default::default();
    for n in &graph.nodes {
        for i in &n.inputs {
            if let quiver_graph::Source::Edge(e) = &i.source {
                consumers
                    .entry(format!("{}/{}", graph.nodes[e.node].id, e.port))
                    .or_default()
                    .push(format!("{}/{}", n.id, i.name));
            }
        }
    }
    match Server::start(run, &graph.name, process, nodes, consumers, controls.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("`quiver param` cannot reach this run: {e}");
            None
        }
    }
}

pub fn connect(run: Option<&str>) -> Result<Client, String> {
    let procs = runs::find(run).map_err(|e| e.to_string())?;
    Client::connect(procs).map_err(|e| e.to_string())
}

fn fetch(client: &Client, node: Option<&str>) -> Result<Vec<NodeParams>, String> {
    let nodes = client.params().map_err(|e| e.to_string())?;
    match node {
        None => Ok(nodes),
        Some(id) => {
            let known: Vec<String> = nodes.iter().map(|n| n.node.clone()).collect();
            let one: Vec<NodeParams> = nodes.into_iter().filter(|n| n.node == id).collect();
            if one.is_empty() {
                Err(format!(
                    "run {} ({}) has no node `{id}` (its nodes: {})",
                    client.run(),
                    client.graph(),
                    known.join(", ")
                ))
            } else {
                Ok(one)
            }
        }
    }
}

pub fn main(cmd: ParamCommand) -> ExitCode {
    let result = match cmd {
        ParamCommand::List { run, node, json } => connect(run.as_deref()).and_then(|c| {
            let nodes = fetch(&c, node.as_deref())?;
            if json {
                let v: Vec<serde_json::Value> = nodes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "node": n.node, "operator": n.operator, "process": n.process,
                            "params": n.params.iter().map(|p| serde_json::json!({
                                "name": p.name, "kind": p.kind, "value": p.value,
                                "default": p.default, "range": p.range, "doc": p.doc,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for n in &nodes {
                    let place = if n.process == quiver_graph::MAIN_PROCESS {
                        String::new()
                    } else {
                        format!(", process `{}`", n.process)
                    };
                    outln!(
                        "{} ({}{place}):{}",
                        n.node,
                        n.operator,
                        if n.params.is_empty() { " no parameters" } else { "" }
                    );
                    for p in &n.params {
                        let default = p
                            .default
                            .as_deref()
                            .map_or("required".to_string(), |d| format!("default {d}"));
                        outln!(
                            "  {:<18} {:<14} {:<9} {:<18} range {:<14} {}",
                            p.name,
                            p.value,
                            p.kind,
                            default,
                            p.range,
                            p.doc
                        );
                    }
                }
            }
            Ok(())
        }),
        ParamCommand::Get { run, node, name } => connect(Some(&run)).and_then(|c| {
            let nodes = fetch(&c, Some(&node))?;
            let params = &nodes[0].params;
            match params.iter().find(|p| p.name == name) {
                Some(p) => {
                    outln!("{}", p.value);
                    Ok(())
                }
                None => Err(format!(
                    "node `{node}` has no parameter `{name}` (its parameters: {})",
                    params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                )),
            }
        }),
        ParamCommand::Set { run, node, name, value } => connect(Some(&run)).and_then(|c| {
            let now = c.set(&node, &name, &value).map_err(|e| e.to_string())?;
            eprintln!("quiver: {node}.{name} = {now}");
            Ok(())
        }),
        ParamCommand::Dump { run } => connect(run.as_deref()).and_then(|c| {
            let nodes = fetch(&c, None)?;
            outln!(
                "# Parameters of run {} (graph `{}`); `quiver run GRAPH --params FILE` reads this.",
                c.run(),
                c.graph()
            );
            for n in nodes.iter().filter(|n| !n.params.is_empty()) {
                outln!("{}:", n.node);
                for p in &n.params {
                    outln!("  {}: {}", p.name, yaml_value(&p.value, &p.kind));
                }
            }
            Ok(())
        }),
    };
    finish(result)
}

/// How a `param`/`topic` command ends: its error, or stdout's (a reader that closed the pipe,
/// `| head`, has what it wanted; a full disk is an error), as exit 1.
pub fn finish(result: Result<(), String>) -> ExitCode {
    let result = result.and_then(|()| match crate::stdout_status() {
        Ok(()) | Err(None) => Ok(()),
        Err(Some(e)) => Err(e),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// A value as YAML reads it back with the same kind (strings and paths always quoted).
fn yaml_value(text: &str, kind: &str) -> String {
    match kind {
        "string" => text.to_string(), // already quoted by the control plane
        "path" => serde_json::to_string(text).unwrap_or_default(),
        _ => text.to_string(),
    }
}

/// `quiver ps` without daemons: the runs on this machine, from the registry of runs.
pub fn ps_local(json: bool) -> ExitCode {
    let entries = runs::list();
    let mut ids: Vec<&str> = Vec::new();
    for e in &entries {
        if !ids.contains(&e.run.as_str()) {
            ids.push(&e.run);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rows: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let procs: Vec<&runs::Entry> = entries.iter().filter(|e| e.run == *id).collect();
            serde_json::json!({
                "run": id,
                "graph": procs[0].graph,
                "started": procs.iter().map(|p| p.started).min().unwrap_or(0),
                "uptime_s": now.saturating_sub(procs.iter().map(|p| p.started).min().unwrap_or(now)),
                "processes": procs.iter().map(|p| serde_json::json!({
                    "name": p.process, "pid": p.pid, "nodes": p.nodes,
                })).collect::<Vec<_>>(),
                "nodes": procs.iter().map(|p| p.nodes.len()).sum::<usize>(),
            })
        })
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if rows.is_empty() {
        outln!("no graph is running on this machine ({})", runs::dir().display());
        return ExitCode::SUCCESS;
    }
    outln!(
        "{:<28} {:<28} {:>8} {:>6}  processes (pid)",
        "run",
        "graph",
        "uptime",
        "nodes"
    );
    for r in &rows {
        let procs: Vec<String> = r["processes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| format!("{} ({})", p["name"].as_str().unwrap_or("?"), p["pid"]))
                    .collect()
            })
            .unwrap_or_default();
        outln!(
            "{:<28} {:<28} {:>8} {:>6}  {}",
            r["run"].as_str().unwrap_or("?"),
            r["graph"].as_str().unwrap_or("?"),
            format!("{}s", r["uptime_s"]),
            r["nodes"].to_string(),
            procs.join(", ")
        );
    }
    ExitCode::SUCCESS
}
