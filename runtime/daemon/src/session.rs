//! The control plane's Zenoh sessions: a daemon is a Zenoh router (daemons that `--connect` to
//! one another route queries, replies and liveliness between them and every run); `quiver run`
//! and `quiver machines` are clients of one daemon. No scouting: endpoints are explicit.
//! A link that goes silent expires after a 1 s lease (Zenoh's default is 10 s): that is what
//! bounds the time to notice a lost machine.

use quiver_zenoh::{Tls, with_tls};
use zenoh::config::Config;

use crate::ControlError;

/// The lease every control session announces (ms); keep-alives go 4 times per lease.
pub const LEASE_MS: u64 = 1000;

fn set(c: &mut Config, key: &str, json5: &str) -> Result<(), ControlError> {
    c.insert_json5(key, json5).map_err(|e| ControlError::Config {
        key: key.into(),
        reason: e.to_string(),
    })
}

fn list(items: &[String], tls: Option<&Tls>) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|e| format!("{:?}", with_tls(e, tls.is_some())))
        .collect();
    format!("[{}]", quoted.join(","))
}

fn common(c: &mut Config, tls: Option<&Tls>) -> Result<(), ControlError> {
    if let Some(t) = tls {
        t.apply(c).map_err(|e| ControlError::Config {
            key: "--tls".into(),
            reason: e.to_string(),
        })?;
    }
    set(c, "scouting/multicast/enabled", "false")?;
    set(c, "scouting/gossip/enabled", "false")?;
    set(c, "transport/link/tx/lease", &LEASE_MS.to_string())?;
    set(c, "transport/link/tx/keep_alive", "4")?;
    set(c, "transport/shared_memory/enabled", "false")?;
    Ok(())
}

/// A daemon's session: a router listening on `listen`, connecting to the other daemons (with
/// `tls`: every endpoint is `tls/`, certificates required both ways).
pub fn daemon_config(listen: &[String], connect: &[String], tls: Option<&Tls>) -> Result<Config, ControlError> {
    let mut c = Config::default();
    set(&mut c, "mode", r#""router""#)?;
    set(&mut c, "listen/endpoints", &list(listen, tls))?;
    set(&mut c, "connect/endpoints", &list(connect, tls))?;
    common(&mut c, tls)?;
    // Daemons started in any order find each other: retry connecting for ever, quickly at
    // first.
    set(
        &mut c,
        "connect/retry",
        "{ period_init_ms: 100, period_max_ms: 1000, period_increase_factor: 2 }",
    )?;
    Ok(c)
}

/// A client's session (`quiver run`, `quiver machines`): connects to the first daemon of
/// `connect` that answers; fails at once when none does.
pub fn client_config(connect: &[String], tls: Option<&Tls>) -> Result<Config, ControlError> {
    let mut c = Config::default();
    set(&mut c, "mode", r#""client""#)?;
    set(&mut c, "connect/endpoints", &list(connect, tls))?;
    set(&mut c, "listen/endpoints", "[]")?;
    common(&mut c, tls)?;
    set(&mut c, "connect/timeout_ms", "3000")?;
    set(&mut c, "connect/exit_on_failure", "true")?;
    Ok(c)
}
