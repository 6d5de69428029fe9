//! The local registry of runs: one JSON file per live process of a run, in [`dir()`]
//! (`$XDG_RUNTIME_DIR/quiver/runs`, else `/tmp/quiver-<uid>/runs`), written when the process
//! starts serving and removed when it stops. A file whose process is gone (killed) is ignored
//! and cleaned up by the next reader.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ControlError;

/// One process of a running graph, and where its control session listens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub run: String,
    pub graph: String,
    /// `main`, or the worker's process name.
    pub process: String,
    pub pid: u32,
    /// Zenoh endpoints of its control session (`tcp/127.0.0.1:PORT`).
    pub endpoints: Vec<String>,
    /// Seconds since the Unix epoch.
    pub started: u64,
    /// Node ids served by this process.
    pub nodes: Vec<String>,
}

/// Where entries are kept.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("QUIVER_RUNS_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("quiver/runs"),
        _ => std::env::temp_dir().join(format!("quiver-{}/runs", uid())),
    }
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

fn file_of(dir: &Path, e: &Entry) -> PathBuf {
    dir.join(format!("{}.{}.json", e.run, e.process))
}

/// Registers `entry`; the returned guard removes it when dropped.
pub fn register(entry: &Entry) -> Result<Registered, ControlError> {
    let dir = dir();
    let err = |reason: String| ControlError::Registry {
        path: dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(&dir).map_err(|e| err(e.to_string()))?;
    let path = file_of(&dir, entry);
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec_pretty(entry).map_err(|e| err(e.to_string()))?;
    std::fs::write(&tmp, json).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
    Ok(Registered { path })
}

/// Removes its entry when dropped.
#[derive(Debug)]
pub struct Registered {
    path: PathBuf,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Every live process of every run, oldest first; entries of dead processes are removed.
pub fn list() -> Vec<Entry> {
    let dir = dir();
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in read.flatten() {
        let path = f.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(text) = std::fs::read(&path) else { continue };
        match serde_json::from_slice::<Entry>(&text) {
            Ok(e) if alive(e.pid) => out.push(e),
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => tracing::debug!("{}: not a run entry: {e}", path.display()),
        }
    }
    out.sort_by(|a, b| (a.started, &a.run, &a.process).cmp(&(b.started, &b.run, &b.process)));
    out
}

/// The processes of the run `name` (a run id, or a graph name when one run of it is live;
/// none: the only live run).
pub fn find(name: Option<&str>) -> Result<Vec<Entry>, ControlError> {
    let all = list();
    let mut runs: Vec<(String, String)> = Vec::new();
    for e in &all {
        if !runs.iter().any(|(r, _)| *r == e.run) {
            runs.push((e.run.clone(), e.graph.clone()));
        }
    }
    let shown = || {
        if runs.is_empty() {
            "none is running on this machine".to_string()
        } else {
            let list: Vec<String> = runs.iter().map(|(r, g)| format!("{g} ({r})")).collect();
            format!("running: {}", list.join(", "))
        }
    };
    let chosen: Vec<&(String, String)> = match name {
        None => runs.iter().collect(),
        Some(n) => {
            let by_id: Vec<_> = runs.iter().filter(|(r, _)| r == n).collect();
            if by_id.is_empty() {
                runs.iter().filter(|(_, g)| g == n).collect()
            } else {
                by_id
            }
        }
    };
    match chosen.as_slice() {
        [one] => Ok(all.iter().filter(|e| e.run == one.0).cloned().collect()),
        [] => Err(ControlError::NoRun(match name {
            Some(n) => format!("no run `{n}`: {}", shown()),
            None => format!("no graph is running on this machine ({})", dir().display()),
        })),
        many => Err(ControlError::NoRun(format!(
            "{} runs match, name one by id: {}",
            many.len(),
            many.iter()
                .map(|(r, g)| format!("{g} ({r})"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
