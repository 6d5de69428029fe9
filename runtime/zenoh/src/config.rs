//! The Zenoh configuration of a quiver process: where it listens and connects, what latency
//! tuning it uses, how big its shared-memory pool is.

use zenoh::config::Config;

use crate::ZenohError;

/// Where a process listens and whom it connects to (`tcp/127.0.0.1:PORT`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub listen: Vec<String>,
    pub connect: Vec<String>,
}

/// Latency and memory knobs (benchmarks compare them; the defaults are what measured best).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Zenoh's low-latency transport: no TX queue, the caller writes to the socket. The same in
    /// every process of a run. On by default: it measured lower latency and 4x the messages per
    /// second of the default transport here (benches/RESULTS.md). A put to a peer that stops
    /// reading waits for it (as a `block` edge must); a dead peer's socket closes and frees it.
    pub lowlatency: bool,
    /// Zenoh's batching (and publishers without `express`): more messages per second, a little
    /// more latency. Off by default.
    pub batching: bool,
    /// Frames smaller than this go as a plain put: below a few KiB a copy over the socket is
    /// faster than a shared-memory buffer (measured: 8 B plain ~78 µs, shared memory ~122 µs).
    pub shm_threshold: usize,
    /// Bytes of this process's first shared-memory pool (0: no shared memory, frames are copied).
    pub shm_pool_bytes: usize,
    /// Bytes its pools may grow to in all (more pools are added for big or many frames).
    pub shm_max_bytes: usize,
    /// The lease this session announces (ms): a peer that hears nothing for that long closes
    /// the link. None: Zenoh's default (10 s). Runs across machines set a short one, so that a
    /// producer waiting on a cut link is released soon.
    pub lease_ms: Option<u64>,
    /// Runs across machines: a put on a `MayDrop` key drops the frame when the link is
    /// congested or cut (instead of holding the producer), and a put on a lossless key that
    /// waits longer than this (ms) closes the link (its consumer is taken as dead). None: wait
    /// as long as it takes (one machine: a dead process's socket closes at once).
    pub network_block_ms: Option<u64>,
    /// TLS with mutual certificates on every link (endpoints are then `tls/`).
    pub tls: Option<crate::Tls>,
}

const MIB: usize = 1 << 20;
/// The default first pool: room for a few camera frames in flight per process.
pub const DEFAULT_POOL_MB: usize = 64;
/// Frames below this many bytes are sent as plain puts.
pub const DEFAULT_SHM_THRESHOLD: usize = 4096;
/// The lease of every process of a run across machines (ms).
pub const NETWORK_LEASE_MS: u64 = 2000;
/// How long a put on a lossless key may wait in a run across machines before the link is
/// closed (ms).
pub const NETWORK_BLOCK_MS: u64 = 5000;
/// The default cap on a process's pools.
pub const DEFAULT_MAX_MB: usize = 1024;

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            lowlatency: true,
            batching: false,
            shm_threshold: DEFAULT_SHM_THRESHOLD,
            shm_pool_bytes: DEFAULT_POOL_MB * MIB,
            shm_max_bytes: DEFAULT_MAX_MB * MIB,
            lease_ms: None,
            network_block_ms: None,
            tls: None,
        }
    }
}

impl Tuning {
    /// Defaults, overridden by `QUIVER_SHM_POOL_MB`, `QUIVER_SHM_MAX_MB`, `QUIVER_SHM_THRESHOLD`
    /// (bytes), `QUIVER_ZENOH_LOWLATENCY=0|1` and `QUIVER_ZENOH_BATCHING=0|1`.
    pub fn from_env() -> Tuning {
        let mut t = Tuning::default();
        for (var, slot, default) in [
            ("QUIVER_SHM_POOL_MB", &mut t.shm_pool_bytes, DEFAULT_POOL_MB),
            ("QUIVER_SHM_MAX_MB", &mut t.shm_max_bytes, DEFAULT_MAX_MB),
        ] {
            if let Ok(v) = std::env::var(var) {
                match v.trim().parse::<usize>() {
                    Ok(mb) => *slot = mb * MIB,
                    Err(_) => tracing::warn!("{var}=`{v}` is not a number of MiB; using {default}"),
                }
            }
        }
        let flag = |var: &str, default: bool| match std::env::var(var) {
            Ok(v) => matches!(v.trim(), "1" | "true" | "yes"),
            Err(_) => default,
        };
        t.lowlatency = flag("QUIVER_ZENOH_LOWLATENCY", t.lowlatency);
        t.batching = flag("QUIVER_ZENOH_BATCHING", t.batching);
        if let Ok(v) = std::env::var("QUIVER_SHM_THRESHOLD") {
            match v.trim().parse::<usize>() {
                Ok(b) => t.shm_threshold = b,
                Err(_) => tracing::warn!("QUIVER_SHM_THRESHOLD=`{v}` is not a number of bytes"),
            }
        }
        t
    }
}

fn set(config: &mut Config, key: &str, json5: &str) -> Result<(), ZenohError> {
    config.insert_json5(key, json5).map_err(|e| ZenohError::Config {
        key: key.into(),
        reason: e.to_string(),
    })
}

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|e| format!("\"{e}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// Peer mode on the given endpoints only: no multicast or gossip scouting, so two runs on one
/// machine never meet, and nothing leaves loopback. Public so that baselines (benchmarks) run
/// raw Zenoh with exactly quiver's tuning.
pub fn session_config(endpoints: &Endpoints, tuning: &Tuning) -> Result<Config, ZenohError> {
    let mut c = Config::default();
    let tls = tuning.tls.is_some();
    let listen: Vec<String> = endpoints.listen.iter().map(|e| crate::with_tls(e, tls)).collect();
    let connect: Vec<String> = endpoints.connect.iter().map(|e| crate::with_tls(e, tls)).collect();
    set(&mut c, "mode", r#""peer""#)?;
    set(&mut c, "listen/endpoints", &json_list(&listen))?;
    set(&mut c, "connect/endpoints", &json_list(&connect))?;
    if let Some(t) = &tuning.tls {
        t.apply(&mut c)?;
    }
    set(&mut c, "scouting/multicast/enabled", "false")?;
    set(&mut c, "scouting/gossip/enabled", "false")?;
    // Peers started a moment later are retried quickly, and `open` does not wait for them.
    set(
        &mut c,
        "connect/retry",
        "{ period_init_ms: 50, period_max_ms: 1000, period_increase_factor: 2 }",
    )?;
    set(&mut c, "open/return_conditions/connect_scouted", "false")?;
    // Latency: no batching (a message goes out when it is put), unless asked for.
    set(
        &mut c,
        "transport/link/tx/queue/batching/enabled",
        if tuning.batching { "true" } else { "false" },
    )?;
    if tuning.lowlatency {
        set(&mut c, "transport/unicast/qos/enabled", "false")?;
        set(&mut c, "transport/unicast/lowlatency", "true")?;
    }
    // A `block` input promises no loss: a put waits for a slow receiver as long as it takes
    // (Zenoh's default closes the link after 5 s). A dead receiver is noticed by its socket
    // closing (or the lease), which releases the put.
    let block_wait_us = tuning.network_block_ms.map_or(3_600_000_000, |ms| ms * 1000);
    set(
        &mut c,
        "transport/link/tx/queue/congestion_control/block/wait_before_close",
        &block_wait_us.to_string(),
    )?;
    if let Some(lease) = tuning.lease_ms {
        set(&mut c, "transport/link/tx/lease", &lease.to_string())?;
        set(&mut c, "transport/link/tx/keep_alive", "4")?;
    }
    // Shared memory set up when the session opens (the first frame pays nothing), and no
    // implicit copying of large plain payloads into a second pool: we allocate our own.
    set(&mut c, "transport/shared_memory/enabled", "true")?;
    set(&mut c, "transport/shared_memory/mode", r#""init""#)?;
    set(
        &mut c,
        "transport/shared_memory/transport_optimization/enabled",
        "false",
    )?;
    Ok(c)
}

/// Zenoh locks every segment it maps in memory (its own pool, about 1.25 MiB of metadata, and
/// every pool it received from). Raise the locked-memory limit as far as allowed and shrink the
/// pool to fit what is left; an error when nothing useful fits.
pub(crate) fn fit_pool_to_memlock(want: usize) -> Result<usize, String> {
    use rlimit::Resource;
    let want = want.div_ceil(64) * 64;
    if has_ipc_lock() {
        // CAP_IPC_LOCK: mlock is not limited.
        return Ok(want);
    }
    let (soft, hard) = Resource::MEMLOCK
        .get()
        .map_err(|e| format!("reading the locked-memory limit: {e}"))?;
    // Privileged (root, CAP_SYS_RESOURCE): no limit at all. Otherwise up to the hard limit.
    let limit = if rlimit::setrlimit(Resource::MEMLOCK, rlimit::INFINITY, rlimit::INFINITY).is_ok() {
        rlimit::INFINITY
    } else if soft < hard && rlimit::setrlimit(Resource::MEMLOCK, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    if limit == rlimit::INFINITY {
        return Ok(want);
    }
    // Leave room for the metadata and for the pools of up to three other processes.
    let budget = (limit as usize).saturating_sub(6 * MIB) / 4;
    let bytes = want.min(budget) / 64 * 64;
    if bytes < MIB {
        return Err(format!(
            "the locked-memory limit is {} KiB (ulimit -l); shared memory needs more",
            limit / 1024
        ));
    }
    if bytes < want {
        tracing::warn!(
            "the locked-memory limit ({} KiB, ulimit -l) allows a shared-memory pool of {} KiB, not {} KiB",
            limit / 1024,
            bytes / 1024,
            want / 1024
        );
    }
    Ok(bytes)
}

/// Whether this process holds CAP_IPC_LOCK (effective), which lifts the locked-memory limit.
fn has_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}
