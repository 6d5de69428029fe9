//! quiver-manifest: the data model of what an operator declares, shared by the plugin SDK (which
//! builds it) and the host and graph checker (which read it back from the plugin).
//!
//! No dependencies: plugins, the graph crate and the runtime all use these exact types.

mod duration;
mod manifest;
mod param;

pub use duration::{format as format_duration, parse as parse_duration};
pub use manifest::{ANY_TYPE, GraphPort, GraphPorts, Manifest, PortSpec, TimerSpec, types_match};
pub use param::{ParamKind, ParamSpec, ParamValue};
