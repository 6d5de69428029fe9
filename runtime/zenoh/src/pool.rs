//! This process's shared-memory pools. One pool to start with; when a frame does not fit any
//! pool (too big, or the pools are full of frames receivers still hold — Zenoh also keeps each
//! sent buffer for up to ~100 ms to hand it over safely), a new pool is added, up to a cap.
//! Only when the cap is reached does a sender wait, and after `POOL_WAIT` it sends a copy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zenoh::Wait;
use zenoh::shm::{
    AllocAlignment, GarbageCollect, PosixShmProviderBackend, ShmProvider, ShmProviderBuilder, ZAllocError,
    ZLayoutAllocError, ZShmMut,
};

use crate::config;

/// How long a sender waits for room once every pool is full and no pool may be added.
const POOL_WAIT: Duration = Duration::from_millis(20);

type Provider = ShmProvider<PosixShmProviderBackend>;

pub(crate) struct Pools {
    pools: Mutex<Vec<(Arc<Provider>, usize)>>,
    first_bytes: usize,
    max_bytes: usize,
}

fn make_pool(bytes: usize) -> Result<(Provider, usize), String> {
    let bytes = config::fit_pool_to_memlock(bytes)?;
    let align = AllocAlignment::new(6).map_err(|e| format!("alignment: {e:?}"))?;
    let backend = PosixShmProviderBackend::builder((bytes, align))
        .wait()
        .map_err(|e| format!("creating a {bytes}-byte pool: {e}"))?;
    Ok((ShmProviderBuilder::backend(backend).wait(), bytes))
}

fn try_alloc(provider: &Provider, len: usize) -> Result<Option<ZShmMut>, String> {
    match provider.alloc(len).with_policy::<GarbageCollect>().wait() {
        Ok(buf) => Ok(Some(buf)),
        Err(ZLayoutAllocError::Alloc(ZAllocError::OutOfMemory | ZAllocError::NeedDefragment)) => Ok(None),
        Err(e) => Err(format!("{e:?}")),
    }
}

impl Pools {
    /// The first pool now (`first_bytes`), more on demand up to `max_bytes` in all.
    pub fn new(first_bytes: usize, max_bytes: usize) -> Result<Pools, String> {
        let (provider, bytes) = make_pool(first_bytes)?;
        Ok(Pools {
            pools: Mutex::new(vec![(Arc::new(provider), bytes)]),
            first_bytes: bytes,
            max_bytes: max_bytes.max(bytes),
        })
    }

    pub fn total_bytes(&self) -> usize {
        self.lock().iter().map(|p| p.1).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Arc<Provider>, usize)>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn alloc_in_existing(&self, len: usize) -> Result<Option<ZShmMut>, String> {
        // Newest pool first: it is the one most likely to have room.
        let pools: Vec<Arc<Provider>> = self.lock().iter().rev().map(|p| p.0.clone()).collect();
        for p in pools {
            if let Some(buf) = try_alloc(&p, len)? {
                return Ok(Some(buf));
            }
        }
        Ok(None)
    }

    /// A 64-byte-aligned buffer of `len` bytes, or why there is none (the caller copies).
    pub fn alloc(&self, len: usize) -> Result<ZShmMut, String> {
        if len == 0 {
            return Err("an empty frame".into());
        }
        if let Some(buf) = self.alloc_in_existing(len)? {
            return Ok(buf);
        }
        // Room for two such frames at least: a stream of them needs one being written while
        // the previous one is still held.
        let want = self.first_bytes.max(len.saturating_mul(2)).div_ceil(64) * 64;
        if self.total_bytes() + want <= self.max_bytes {
            match make_pool(want) {
                Ok((provider, bytes)) => {
                    let provider = Arc::new(provider);
                    self.lock().push((provider.clone(), bytes));
                    tracing::debug!("added a {bytes}-byte shared-memory pool");
                    if let Some(buf) = try_alloc(&provider, len)? {
                        return Ok(buf);
                    }
                }
                Err(e) => tracing::debug!("cannot add a shared-memory pool: {e}"),
            }
        }
        let deadline = Instant::now() + POOL_WAIT;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(50));
            if let Some(buf) = self.alloc_in_existing(len)? {
                return Ok(buf);
            }
        }
        Err(format!(
            "no room for a {len}-byte frame in {} bytes of shared memory (the cap is {} bytes)",
            self.total_bytes(),
            self.max_bytes
        ))
    }

    /// Like [`alloc`](Self::alloc), but waits as long as it takes for room (logging every 5 s);
    /// an error only for a frame that can never fit.
    pub fn alloc_waiting(&self, len: usize) -> Result<ZShmMut, String> {
        if len > self.max_bytes {
            return Err(format!(
                "a {len}-byte frame is larger than the shared-memory cap ({} bytes; QUIVER_SHM_MAX_MB)",
                self.max_bytes
            ));
        }
        let mut last_note = Instant::now();
        loop {
            match self.alloc(len) {
                Ok(buf) => return Ok(buf),
                Err(why) if last_note.elapsed() > Duration::from_secs(5) => {
                    tracing::warn!("still waiting for shared memory: {why}");
                    last_note = Instant::now();
                }
                Err(_) => {}
            }
        }
    }
}
