//! An operator's manifest: name, version, doc, ports, timers, parameters.

use crate::param::ParamSpec;

/// The message type of an input that accepts every type.
pub const ANY_TYPE: &str = "any";

/// Whether a producer's message type can feed a consumer's.
pub fn types_match(producer: &str, consumer: &str) -> bool {
    consumer == ANY_TYPE || producer == ANY_TYPE || producer == consumer
}

/// An input or output port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub name: String,
    /// `pkg/Type`, or [`ANY_TYPE`] on an input that accepts every type.
    pub msg_type: String,
    pub doc: String,
}

/// A timer the graph can bind with `{ timer: 100ms }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerSpec {
    pub name: String,
    pub doc: String,
}

/// What an operator declares about itself. Operators build it with the methods below; the host
/// reads it back from the plugin (and fills in `sdk`).
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub doc: String,
    /// Which SDK built the plugin (set by the host when loading; empty in a builder).
    pub sdk: String,
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
            sdk: String::new(),
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

    pub fn find_input(&self, name: &str) -> Option<&PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }
    pub fn find_output(&self, name: &str) -> Option<&PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
    pub fn find_timer(&self, name: &str) -> Option<&TimerSpec> {
        self.timers.iter().find(|t| t.name == name)
    }
    pub fn find_param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|p| p.name == name)
    }
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|p| p.name == name)
    }
}
