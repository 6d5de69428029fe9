//! The C form of an operator's [`Manifest`] for the ABI.

use std::sync::OnceLock;

use quiver_abi as abi;

use crate::ffi::{param_to_c, str_ref};
use quiver_manifest::{Manifest, ParamValue};

/// The C form of a [`Manifest`]: owns the Rust manifest and the arrays the C struct points into.
pub(crate) struct CManifest {
    // Kept alive: `c` points into these.
    _rust: Box<Manifest>,
    _inputs: Vec<abi::PortDecl>,
    _outputs: Vec<abi::PortDecl>,
    _timers: Vec<abi::TimerDecl>,
    _params: Vec<abi::ParamDecl>,
    _settings: Vec<abi::SettingDecl>,
    _types: Vec<abi::StrRef>,
    pub(crate) c: abi::Manifest,
}

// SAFETY: a `CManifest` is immutable after construction; its raw pointers point into heap data it
// owns (the boxed manifest and the vectors), which never moves or changes while it lives.
unsafe impl Send for CManifest {}
// SAFETY: as above; shared reads of immutable data are sound.
unsafe impl Sync for CManifest {}

const SDK: &str = concat!("quiver-operator ", env!("CARGO_PKG_VERSION"));

impl CManifest {
    pub(crate) fn new(rust: Manifest) -> Self {
        let rust = Box::new(rust);
        let port = |p: &quiver_manifest::PortSpec| abi::PortDecl {
            name: str_ref(&p.name),
            msg_type: str_ref(&p.msg_type),
            doc: str_ref(&p.doc),
            required: u8::from(p.required),
        };
        let inputs: Vec<_> = rust.inputs.iter().map(port).collect();
        let outputs: Vec<_> = rust.outputs.iter().map(port).collect();
        let timers: Vec<_> = rust
            .timers
            .iter()
            .map(|t| abi::TimerDecl {
                name: str_ref(&t.name),
                doc: str_ref(&t.doc),
            })
            .collect();
        let opt = |v: &Option<ParamValue>| match v {
            Some(v) => (1, param_to_c(v)),
            None => (0, param_to_c(&ParamValue::Bool(false))),
        };
        let params: Vec<_> = rust
            .params
            .iter()
            .map(|p| {
                let (has_default, default) = opt(&p.default);
                let (has_min, min) = opt(&p.min);
                let (has_max, max) = opt(&p.max);
                abi::ParamDecl {
                    name: str_ref(&p.name),
                    kind: crate::ffi::kind_to_c(p.kind),
                    doc: str_ref(&p.doc),
                    has_default,
                    default,
                    has_min,
                    min,
                    has_max,
                    max,
                }
            })
            .collect();
        let settings: Vec<_> = rust
            .graph_ports
            .iter()
            .flat_map(|g| &g.settings)
            .map(|t| abi::SettingDecl {
                name: str_ref(&t.name),
                doc: str_ref(&t.doc),
            })
            .collect();
        let types: Vec<_> = rust
            .graph_ports
            .iter()
            .flat_map(|g| &g.types)
            .map(|t| str_ref(t))
            .collect();
        let c = abi::Manifest {
            abi_version: abi::ABI_VERSION,
            name: str_ref(&rust.name),
            version: str_ref(&rust.version),
            doc: str_ref(&rust.doc),
            sdk: abi::StrRef::new(SDK),
            inputs: inputs.as_ptr(),
            n_inputs: inputs.len(),
            outputs: outputs.as_ptr(),
            n_outputs: outputs.len(),
            timers: timers.as_ptr(),
            n_timers: timers.len(),
            params: params.as_ptr(),
            n_params: params.len(),
            graph_ports: u8::from(rust.graph_ports.is_some()),
            graph_ports_doc: rust
                .graph_ports
                .as_ref()
                .map_or(abi::StrRef::EMPTY, |g| str_ref(&g.doc)),
            port_settings: settings.as_ptr(),
            n_port_settings: settings.len(),
            port_types: types.as_ptr(),
            n_port_types: types.len(),
        };
        CManifest {
            _rust: rust,
            _inputs: inputs,
            _outputs: outputs,
            _timers: timers,
            _params: params,
            _settings: settings,
            _types: types,
            c,
        }
    }
}

/// Holds one operator type's C manifest for the life of the library.
pub struct ManifestCell(OnceLock<CManifest>);

impl ManifestCell {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ManifestCell(OnceLock::new())
    }

    /// The C manifest, or null if `T::manifest()` panicked (the host then refuses the library).
    pub fn get<T: crate::Operator>(&self) -> *const abi::Manifest {
        let built = std::panic::catch_unwind(|| {
            &self.0.get_or_init(|| CManifest::new(T::manifest())).c as *const abi::Manifest
        });
        built.unwrap_or(std::ptr::null())
    }
}
