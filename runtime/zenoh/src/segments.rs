//! Shared-memory segment files (`/dev/shm/<n>.zenoh`) and their cleanup.
//!
//! Zenoh unlinks a segment when the last process holding it lets go, but a process that maps
//! another's segment keeps it mapped until it exits, and the last process to exit cannot
//! unlink what it still maps itself. So the supervisor collects the segments every process of
//! the run reported and, once they have all exited, unlinks those no live process maps. A
//! killed worker's segments are covered the same way (it reported them when it started).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

const DIR: &str = "/dev/shm";

/// A Zenoh segment file: `/dev/shm/<n>.zenoh`.
fn is_segment(p: &Path) -> bool {
    p.parent() == Some(Path::new(DIR)) && p.extension().is_some_and(|e| e == "zenoh")
}

fn segments_in_maps(maps: &str) -> impl Iterator<Item = PathBuf> + '_ {
    maps.lines().filter_map(|line| {
        // The path is the last field; a deleted file ends in " (deleted)" and is skipped.
        let path = Path::new(line.split_whitespace().nth(5)?);
        (is_segment(path) && !line.ends_with("(deleted)")).then(|| path.to_path_buf())
    })
}

/// Segments a process (`/proc/<pid>`) holds open.
fn open_segments(proc_dir: &Path) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|p| is_segment(p))
        .collect()
}

/// The segments this process maps now.
pub fn mapped_segments() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let set: HashSet<PathBuf> = segments_in_maps(&maps).collect();
    let mut v: Vec<PathBuf> = set.into_iter().collect();
    v.sort();
    v
}

/// Segments any process other than this one maps or holds open (Zenoh keeps a locked file
/// open for each segment it uses). Processes whose maps cannot be read belong to other users
/// and cannot open our 0600 segments.
fn used_by_others() -> HashSet<PathBuf> {
    let me = std::process::id().to_string();
    let mut out = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) {
            out.extend(segments_in_maps(&maps));
        }
        out.extend(open_segments(&entry.path()));
    }
    out
}

/// Unlinks those of `candidates` that still exist and that no other live process maps;
/// returns them. Call it when every process that used them has exited or closed its session.
pub fn sweep_segments(candidates: &[PathBuf]) -> Vec<PathBuf> {
    let busy = used_by_others();
    let mut removed = Vec::new();
    for c in candidates {
        if is_segment(c) && c.exists() && !busy.contains(c) && std::fs::remove_file(c).is_ok() {
            removed.push(c.clone());
        }
    }
    removed
}

/// Segment files that no process maps or holds open (left behind). A segment is briefly unmapped between
/// its creation and its mapping, so callers should confirm with a second look.
pub fn unmapped_segments() -> Vec<PathBuf> {
    let mut busy = used_by_others();
    busy.extend(mapped_segments());
    busy.extend(open_segments(Path::new("/proc/self")));
    let Ok(dir) = std::fs::read_dir(DIR) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_segment(p) && !busy.contains(p))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_zenoh_segments_in_maps() {
        let maps = "\
7f00-7f10 rw-s 00000000 00:1a 123 /dev/shm/42.zenoh
7f10-7f20 rw-s 00000000 00:1a 124 /dev/shm/43.zenoh (deleted)
7f20-7f30 r-xp 00000000 08:01 125 /usr/lib/libc.so.6
7f30-7f40 rw-s 00000000 00:1a 126 /dev/shm/other
7f40-7f50 rw-p 00000000 00:00 0
";
        let found: Vec<PathBuf> = segments_in_maps(maps).collect();
        assert_eq!(found, vec![PathBuf::from("/dev/shm/42.zenoh")]);
    }

    #[test]
    fn sweep_leaves_what_is_not_a_segment() {
        let not_segment = std::env::temp_dir().join("quiver-sweep-test.zenoh");
        std::fs::write(&not_segment, b"x").expect("write");
        assert!(sweep_segments(std::slice::from_ref(&not_segment)).is_empty());
        assert!(not_segment.exists());
        let _ = std::fs::remove_file(not_segment);
    }
}
