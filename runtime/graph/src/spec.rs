//! What the graph needs to know about an operator: its manifest, as the host read it from the
//! plugin. The types are `quiver-manifest`'s, shared with the SDK.

pub use quiver_manifest::{
    ANY_TYPE, GraphPort, GraphPorts, ParamKind, ParamSpec, ParamValue, PortSpec, TimerSpec, types_match,
};

/// An operator's manifest as the host loaded it.
pub type OperatorSpec = quiver_manifest::Manifest;
