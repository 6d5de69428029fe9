//! A run across machines, from `quiver run`'s side: which daemon runs each remote process,
//! and what is shipped to it (the graph, every operator library, every path parameter, by
//! SHA-256). The control plane itself is quiver-daemon's.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use quiver_daemon::{Blob, Client, DaemonInfo, ShippedFile, ShippedLibrary};
use quiver_graph::{Graph, ParamValue, Target};
use quiver_runtime::Registry;

/// How long `quiver run` and `check` wait for daemons to answer `info`.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// `--connect` endpoints: the flags, or `QUIVER_CONNECT` (comma- or space-separated).
pub fn endpoints(flags: &[String]) -> Vec<String> {
    let from_env;
    let items: Vec<&str> = if flags.is_empty() {
        from_env = std::env::var("QUIVER_CONNECT").unwrap_or_default();
        from_env.split([',', ' ']).collect()
    } else {
        flags.iter().flat_map(|f| f.split(',')).collect()
    };
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why a graph cannot be placed on the daemons.
#[derive(Debug)]
pub enum PlaceFailure {
    /// No daemon reached.
    Connect(String),
    /// Nodes no daemon can take, located in the graph file.
    Placement(quiver_graph::Errors),
}

impl std::fmt::Display for PlaceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceFailure::Connect(m) => f.write_str(m),
            PlaceFailure::Placement(e) => write!(f, "{e}"),
        }
    }
}

fn describe_daemons(daemons: &[DaemonInfo]) -> String {
    if daemons.is_empty() {
        return "no daemon answered".into();
    }
    let list: Vec<String> = daemons
        .iter()
        .map(|d| {
            if d.labels.is_empty() {
                d.name.clone()
            } else {
                format!("{} [{}]", d.name, d.labels.join(", "))
            }
        })
        .collect();
    format!("daemons: {}", list.join(", "))
}

/// The daemon of each remote process (`process -> daemon name`). Labels go to the daemon that
/// has all of them and the fewest of this run's processes so far (then by name). A daemon of
/// another version or ABI is refused with both.
pub fn place(graph: &Graph, daemons: &[DaemonInfo]) -> Result<HashMap<String, String>, quiver_graph::Errors> {
    let mut out: HashMap<String, String> = HashMap::new();
    let mut load: HashMap<&str, usize> = HashMap::new();
    let mut errors = Vec::new();
    for process in graph.processes() {
        let target = graph.process_target(process);
        let Some(node) = graph.nodes.iter().find(|n| n.process.as_deref() == Some(process)) else {
            continue;
        };
        let err = |message: String| quiver_graph::GraphError {
            file: graph.file.clone(),
            span: node.target_span,
            node: Some(node.id.clone()),
            port: None,
            kind: quiver_graph::ErrorKind::Operator(message),
        };
        let chosen = match target {
            Target::Here => continue,
            Target::Machine(m) => match daemons.iter().find(|d| d.name == *m) {
                Some(d) => d,
                None => {
                    errors.push(err(format!(
                        "no daemon serves machine `{m}` ({})",
                        describe_daemons(daemons)
                    )));
                    continue;
                }
            },
            Target::Labels(labels) => {
                let mut fit: Vec<&DaemonInfo> = daemons
                    .iter()
                    .filter(|d| labels.iter().all(|l| d.labels.contains(l)))
                    .collect();
                fit.sort_by_key(|d| (load.get(d.name.as_str()).copied().unwrap_or(0), d.name.clone()));
                match fit.first().copied() {
                    Some(d) => d,
                    None => {
                        errors.push(err(format!(
                            "no daemon has the label{} {} ({})",
                            if labels.len() > 1 { "s" } else { "" },
                            labels.join(", "),
                            describe_daemons(daemons)
                        )));
                        continue;
                    }
                }
            }
        };
        if chosen.version != quiver_daemon::VERSION || chosen.abi != quiver_abi_version() {
            errors.push(err(format!(
                "machine `{}` runs quiver {} (ABI {}), this is quiver {} (ABI {}): run the same version everywhere",
                chosen.name,
                chosen.version,
                chosen.abi,
                quiver_daemon::VERSION,
                quiver_abi_version()
            )));
            continue;
        }
        *load.entry(chosen.name.as_str()).or_default() += 1;
        out.insert(process.to_string(), chosen.name.clone());
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(quiver_graph::Errors(errors))
    }
}

fn quiver_abi_version() -> u32 {
    quiver_abi::ABI_VERSION
}

/// Connects to the daemons and places the remote processes; errors name the node and line.
pub fn connect_and_place(
    graph: &Graph,
    connect: &[String],
    tls: Option<&quiver_zenoh::Tls>,
) -> Result<(Client, HashMap<String, String>), PlaceFailure> {
    if connect.is_empty() {
        let n = graph.nodes.iter().find(|n| !n.target.is_here());
        return Err(PlaceFailure::Connect(match n {
            Some(n) => format!(
                "{}:{}:{}: node `{}` runs on {}: pass --connect ENDPOINT (or set QUIVER_CONNECT) to reach the daemons",
                graph.file.display(),
                n.target_span.line,
                n.target_span.col,
                n.id,
                n.target
            ),
            None => "no --connect endpoint".into(),
        }));
    }
    let client = Client::connect(connect, tls).map_err(|e| PlaceFailure::Connect(e.to_string()))?;
    let daemons = client
        .machines(ASK_TIMEOUT)
        .map_err(|e| PlaceFailure::Connect(e.to_string()))?;
    match place(graph, &daemons) {
        Ok(p) => Ok((client, p)),
        Err(errors) => {
            client.close();
            Err(PlaceFailure::Placement(errors))
        }
    }
}

/// `a/b/../c` -> `a/c`, without touching the file system (symlinks are not followed).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    Ok(normalize(&std::path::absolute(p)?))
}

/// What a remote process is sent: the graph, the libraries, the files of path parameters.
#[derive(Clone, Debug)]
pub struct Shipment {
    pub graph: ShippedFile,
    pub libraries: Vec<ShippedLibrary>,
    pub files: Vec<ShippedFile>,
    /// Every file by hash (what the run serves).
    pub by_hash: Vec<(String, PathBuf)>,
}

/// At most this many files under one folder parameter (an image folder) are shipped.
const MAX_FOLDER_FILES: usize = 10_000;

pub fn shipment(graph: &Graph, registry: &Registry, graph_path: &Path) -> Result<Shipment, String> {
    let mut by_hash: Vec<(String, PathBuf)> = Vec::new();
    let mut ship = |path: &Path| -> Result<ShippedFile, String> {
        let abs = absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (sha256, size) = quiver_daemon::sha256_file(&abs).map_err(|e| format!("reading {}: {e}", abs.display()))?;
        if !by_hash.iter().any(|(h, _)| *h == sha256) {
            by_hash.push((sha256.clone(), abs.clone()));
        }
        Ok(ShippedFile {
            path: abs.display().to_string(),
            blob: Blob { sha256, size },
        })
    };
    let graph_file = ship(graph_path)?;
    let mut libraries: Vec<ShippedLibrary> = Vec::new();
    let mut files: Vec<ShippedFile> = Vec::new();
    for n in &graph.nodes {
        let lib = registry
            .resolve(&n.operator)
            .map_err(|e| format!("node `{}`: {e}", n.id))?;
        if !libraries
            .iter()
            .any(|l| Path::new(&l.path) == absolute(&lib.path).unwrap_or_default())
        {
            let f = ship(&lib.path)?;
            libraries.push(ShippedLibrary {
                operator: lib.spec.name.clone(),
                path: f.path,
                by_path: matches!(n.operator, quiver_graph::OperatorRef::Path(_)),
                blob: f.blob,
            });
        }
        for (name, value) in &n.params {
            let ParamValue::Path(p) = value else { continue };
            if p.is_empty() {
                continue;
            }
            let p = Path::new(p);
            let mut add = |f: &Path| -> Result<(), String> {
                let shipped = ship(f).map_err(|e| format!("node `{}`, parameter `{name}`: {e}", n.id))?;
                if !files.iter().any(|x| x.path == shipped.path) {
                    files.push(shipped);
                }
                Ok(())
            };
            if p.is_dir() {
                let mut stack = vec![p.to_path_buf()];
                let mut count = 0;
                while let Some(dir) = stack.pop() {
                    let entries = std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
                    for e in entries.flatten() {
                        let path = e.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if path.is_file() {
                            count += 1;
                            if count > MAX_FOLDER_FILES {
                                return Err(format!(
                                    "node `{}`, parameter `{name}`: more than {MAX_FOLDER_FILES} files under {}",
                                    n.id,
                                    p.display()
                                ));
                            }
                            add(&path)?;
                        }
                    }
                }
            } else {
                add(p)?;
            }
        }
    }
    Ok(Shipment {
        graph: graph_file,
        libraries,
        files,
        by_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(normalize(Path::new("/a/../../b")), PathBuf::from("/b"));
    }

    #[test]
    fn connect_endpoints_from_flags() {
        let got = endpoints(&["tcp/a:1,tcp/b:2".into(), " tcp/c:3 ".into()]);
        assert_eq!(got, vec!["tcp/a:1", "tcp/b:2", "tcp/c:3"]);
    }
}
