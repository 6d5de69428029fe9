//! The operator's manifest: the Rust builder operators write, and its C form for the ABI.

use std::sync::OnceLock;

use quiver_abi as abi;

use crate::ffi::{param_to_c, str_ref};
use crate::params::{ParamKind, ParamValue};

/// An input or output port.
#[derive(Clone, Debug)]
pub struct PortSpec {
    pub name: String,
    /// `pkg/Type`, or `any` on an input that accepts every type.
    pub msg_type: String,
    pub doc: String,
}

/// A timer the graph can bind with `{ timer: 100ms }`.
#[derive(Clone, Debug)]
pub struct TimerSpec {
    pub name: String,
    pub doc: String,
}

/// A parameter with kind, default, inclusive range and doc.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    pub doc: String,
    pub default: Option<ParamValue>,
    pub min: Option<ParamValue>,
    pub max: Option<ParamValue>,
}

impl ParamSpec {
    fn new(name: &str, kind: ParamKind, default: Option<ParamValue>) -> Self {
        ParamSpec {
            name: name.into(),
            kind,
            doc: String::new(),
            default,
            min: None,
            max: None,
        }
    }
    pub fn bool(name: &str, default: bool) -> Self {
        Self::new(name, ParamKind::Bool, Some(ParamValue::Bool(default)))
    }
    pub fn int(name: &str, default: i64) -> Self {
        Self::new(name, ParamKind::Int, Some(ParamValue::Int(default)))
    }
    pub fn float(name: &str, default: f64) -> Self {
        Self::new(name, ParamKind::Float, Some(ParamValue::Float(default)))
    }
    pub fn string(name: &str, default: &str) -> Self {
        Self::new(
            name,
            ParamKind::String,
            Some(ParamValue::String(default.into())),
        )
    }
    pub fn duration(name: &str, default: std::time::Duration) -> Self {
        Self::new(
            name,
            ParamKind::Duration,
            Some(ParamValue::Duration(default)),
        )
    }
    /// A parameter the graph must set (no default).
    pub fn required(name: &str, kind: ParamKind) -> Self {
        Self::new(name, kind, None)
    }
    /// Inclusive range for ints.
    pub fn range_int(mut self, min: i64, max: i64) -> Self {
        self.min = Some(ParamValue::Int(min));
        self.max = Some(ParamValue::Int(max));
        self
    }
    /// Inclusive range for floats.
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(ParamValue::Float(min));
        self.max = Some(ParamValue::Float(max));
        self
    }
    /// Inclusive range for durations.
    pub fn range_duration(mut self, min: std::time::Duration, max: std::time::Duration) -> Self {
        self.min = Some(ParamValue::Duration(min));
        self.max = Some(ParamValue::Duration(max));
        self
    }
    pub fn doc(mut self, doc: &str) -> Self {
        self.doc = doc.into();
        self
    }
}

/// What an operator declares about itself: name, version, one-line doc, ports, timers,
/// parameters.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub doc: String,
    pub inputs: Vec<PortSpec>,
    pub outputs: Vec<PortSpec>,
    pub timers: Vec<TimerSpec>,
    pub params: Vec<ParamSpec>,
}

impl Manifest {
    pub fn new(name: &str, version: &str, doc: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            doc: doc.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            timers: Vec::new(),
            params: Vec::new(),
        }
    }
    pub fn input(mut self, name: &str, msg_type: &str, doc: &str) -> Self {
        self.inputs.push(PortSpec {
            name: name.into(),
            msg_type: msg_type.into(),
            doc: doc.into(),
        });
        self
    }
    pub fn output(mut self, name: &str, msg_type: &str, doc: &str) -> Self {
        self.outputs.push(PortSpec {
            name: name.into(),
            msg_type: msg_type.into(),
            doc: doc.into(),
        });
        self
    }
    pub fn timer(mut self, name: &str, doc: &str) -> Self {
        self.timers.push(TimerSpec {
            name: name.into(),
            doc: doc.into(),
        });
        self
    }
    pub fn param(mut self, param: ParamSpec) -> Self {
        self.params.push(param);
        self
    }

    pub(crate) fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|p| p.name == name)
    }
    pub(crate) fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|p| p.name == name)
    }
}

/// The C form of a [`Manifest`]: owns the Rust manifest and the arrays the C struct points into.
pub(crate) struct CManifest {
    // Kept alive: `c` points into these.
    _rust: Box<Manifest>,
    _inputs: Vec<abi::PortDecl>,
    _outputs: Vec<abi::PortDecl>,
    _timers: Vec<abi::TimerDecl>,
    _params: Vec<abi::ParamDecl>,
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
        let port = |p: &PortSpec| abi::PortDecl {
            name: str_ref(&p.name),
            msg_type: str_ref(&p.msg_type),
            doc: str_ref(&p.doc),
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
        };
        CManifest {
            _rust: rust,
            _inputs: inputs,
            _outputs: outputs,
            _timers: timers,
            _params: params,
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
