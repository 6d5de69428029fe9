//! TLS with mutual certificates for every link of a quiver cluster (control and data plane):
//! each side proves itself with a certificate signed by the cluster's CA, and a peer without
//! one cannot open a link at all (so it can neither publish into nor read any key, nor query a
//! daemon). Names are not checked against certificates (machines are reached by address;
//! trust is the CA's signature).

use std::path::{Path, PathBuf};

use zenoh::config::Config;

use crate::ZenohError;

/// The files of `--tls DIR`: `ca.pem` (the cluster's CA), `cert.pem` and `key.pem` (this
/// machine's certificate, signed by that CA, and its private key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    pub const FILES: [&'static str; 3] = ["ca.pem", "cert.pem", "key.pem"];

    /// The three files in `dir`; an error names the one missing.
    pub fn from_dir(dir: &Path) -> Result<Tls, ZenohError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let [ca, cert, key] = Self::FILES.map(|f| dir.join(f));
        for f in [&ca, &cert, &key] {
            if !f.is_file() {
                return Err(ZenohError::Config {
                    key: "--tls".into(),
                    reason: format!(
                        "{} is missing (a TLS folder holds ca.pem, cert.pem and key.pem)",
                        f.display()
                    ),
                });
            }
        }
        Ok(Tls { ca, cert, key })
    }

    /// The folder it was read from.
    pub fn dir(&self) -> &Path {
        self.ca.parent().unwrap_or(Path::new("."))
    }

    /// Sets Zenoh's TLS keys: these certificates on every link, client certificates required.
    pub fn apply(&self, c: &mut Config) -> Result<(), ZenohError> {
        let path = |p: &Path| format!("{:?}", p.display().to_string());
        let mut set = |key: &str, value: String| {
            c.insert_json5(key, &value).map_err(|e| ZenohError::Config {
                key: key.into(),
                reason: e.to_string(),
            })
        };
        set("transport/link/tls/root_ca_certificate", path(&self.ca))?;
        set("transport/link/tls/listen_certificate", path(&self.cert))?;
        set("transport/link/tls/listen_private_key", path(&self.key))?;
        set("transport/link/tls/connect_certificate", path(&self.cert))?;
        set("transport/link/tls/connect_private_key", path(&self.key))?;
        set("transport/link/tls/enable_mtls", "true".into())?;
        set("transport/link/tls/verify_name_on_connect", "false".into())?;
        Ok(())
    }
}

/// `tcp/HOST:PORT` as `tls/HOST:PORT` when TLS is on (other endpoints as they are).
pub fn with_tls(endpoint: &str, tls: bool) -> String {
    match endpoint.strip_prefix("tcp/") {
        Some(rest) if tls => format!("tls/{rest}"),
        _ => endpoint.to_string(),
    }
}
