//! quiver-graph: graph files.
//!
//! `YAML text --(raw::parse)--> RawGraph --(validate, with operator manifests)--> Graph`.
//!
//! The raw stage keeps every location and refuses unknown keys; the validated stage resolves
//! references and checks ports, types and parameters against the manifests the host loaded.
//! Every error is a [`GraphError`] with file, line, column, node and port. This crate does no
//! I/O beyond reading the graph file (and a parameter file, [`apply_params_file`]): manifests
//! come in through a [`Resolver`].

mod error;
mod graph;
mod params_file;
mod raw;
mod render;
mod spec;
mod validate;
mod warn;
mod yaml;

pub use error::{ErrorKind, Errors, GraphError};
pub use graph::{
    DEFAULT_DEPTH, DEFAULT_HEALTH_TIMEOUT, Edge, Graph, Input, MAIN_PROCESS, Node, OperatorRef, QueueSpec, Source,
    Target,
};
pub use params_file::apply_params_file;
pub use quiver_manifest::{format_duration, parse_duration};
pub use raw::{
    DEFAULT_MAX_RESTARTS, MAX_FILE_BYTES, Passing, Policy, RawGraph, RawInput, RawNode, RawPort, RawQueue, RawScalar,
    RawSource, Restart, Spanned, load, parse, read_text,
};
pub use render::{Format, render};
pub use spec::{
    ANY_TYPE, GraphPort, GraphPorts, OperatorSpec, ParamKind, ParamSpec, ParamValue, PortSpec, TimerSpec, types_match,
};
pub use validate::{Resolver, operator_ref, param_from_text, validate};
pub use warn::{GraphWarning, warnings};
pub use yaml::{MAX_VALUES, Span, locate};
