//! The content-addressed cache of a daemon: every shipped file is kept once, under its SHA-256
//! (`<cache>/blobs/<sha256>`), and a run's process gets a staging folder that mirrors the
//! paths of the run's machine (`<cache>/runs/<run>/<process>/fs/<absolute path>`), so relative
//! paths in the graph (`maps/room.yaml`, `../model/x.safetensors`) resolve as they did there.
//! Libraries are linked under their file names in `<stage>/lib`, the worker's operator path.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 and size of a file, read in chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex(&h.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hash as it must be: 64 lowercase hex digits (it becomes a file name).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> std::io::Result<Cache> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("runs"))?;
        Ok(Cache {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(sha256)
    }

    /// Whether the blob is here and intact (its hash is checked again: a cache file may have
    /// been damaged since).
    pub fn has(&self, sha256: &str) -> bool {
        let p = self.blob_path(sha256);
        matches!(sha256_file(&p), Ok((h, _)) if h == sha256)
    }

    /// Stores fetched bytes after checking their hash.
    pub fn store(&self, sha256: &str, bytes: &[u8]) -> Result<(), String> {
        let got = sha256_hex(bytes);
        if got != sha256 {
            return Err(format!("the bytes received hash to {got}, not {sha256}"));
        }
        let dir = self.root.join("blobs");
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{sha256}.{}.{n}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.blob_path(sha256))
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("writing {} to the cache: {e}", self.blob_path(sha256).display())
        })
    }

    /// A fresh staging folder for one process of a run.
    pub fn stage(&self, run: &str, process: &str) -> std::io::Result<Stage> {
        let dir = self.root.join("runs").join(run).join(process);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.join("lib"))?;
        std::fs::create_dir_all(dir.join("fs"))?;
        Ok(Stage { dir })
    }

    /// A fresh folder for a run handed to this daemon (`quiver run --detach`):
    /// `<cache>/detached/<run>`, a staging folder that also keeps its log and summary.
    pub fn stage_detached(&self, run: &str) -> std::io::Result<Stage> {
        let dir = self.root.join("detached").join(run);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.join("lib"))?;
        std::fs::create_dir_all(dir.join("fs"))?;
        Ok(Stage { dir })
    }

    /// Removes a run's staging folders (the blobs stay).
    pub fn forget_run(&self, run: &str) {
        let _ = std::fs::remove_dir_all(self.root.join("runs").join(run));
    }
}

/// One process's staging folder.
#[derive(Clone, Debug)]
pub struct Stage {
    pub dir: PathBuf,
}

impl Stage {
    /// Where the run machine's absolute `path` is in the mirror. Refuses paths that are not
    /// absolute or that climb (`..`): they come from another machine.
    pub fn mirror(&self, path: &str) -> Result<PathBuf, String> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(format!("`{path}` is not an absolute path"));
        }
        let mut out = self.dir.join("fs");
        for c in p.components() {
            match c {
                std::path::Component::RootDir => {}
                std::path::Component::Normal(s) => out.push(s),
                _ => return Err(format!("`{path}` is not a plain absolute path")),
            }
        }
        Ok(out)
    }

    /// Links a cached blob at `target` (a hard link; a copy across file systems).
    pub fn place(&self, blob: &Path, target: &Path) -> std::io::Result<()> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if target.exists() {
            std::fs::remove_file(target)?;
        }
        std::fs::hard_link(blob, target).or_else(|_| std::fs::copy(blob, target).map(|_| ()))
    }

    pub fn lib_dir(&self) -> PathBuf {
        self.dir.join("lib")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_checked_and_paths_mirrored() {
        let dir = std::env::temp_dir().join(format!("quiver-cache-test-{}", std::process::id()));
        let cache = Cache::open(&dir).expect("cache");
        let sha = sha256_hex(b"hello");
        assert_eq!(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert!(!cache.has(&sha));
        assert!(cache.store(&sha, b"hellO").is_err(), "wrong bytes refused");
        cache.store(&sha, b"hello").expect("store");
        assert!(cache.has(&sha));
        std::fs::write(cache.blob_path(&sha), b"damaged").expect("damage");
        assert!(!cache.has(&sha), "a damaged blob is not taken");
        let stage = cache.stage("r1", "p").expect("stage");
        assert_eq!(
            stage.mirror("/work/graphs/../x").unwrap_err(),
            "`/work/graphs/../x` is not a plain absolute path"
        );
        assert!(stage.mirror("graphs/x.yaml").is_err());
        let m = stage.mirror("/work/graphs/x.yaml").expect("mirror");
        assert!(m.starts_with(&stage.dir) && m.ends_with("fs/work/graphs/x.yaml"));
        assert!(is_sha256(&sha) && !is_sha256("../etc/passwd") && !is_sha256(&sha.to_uppercase()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
