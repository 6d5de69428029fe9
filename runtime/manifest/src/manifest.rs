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
    /// An input the operator cannot work without (`check` and `run` warn when a node leaves it
    /// unbound). Always false on outputs.
    pub required: bool,
}

/// A timer the graph can bind with `{ timer: 100ms }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerSpec {
    pub name: String,
    pub doc: String,
}

/// Ports a node declares in the graph file (`ports:`), for operators whose ports depend on the
/// node (a bridge: one port per topic). The operator declares which settings such a port may
/// carry besides its `type` (e.g. `topic`, `qos`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphPorts {
    pub doc: String,
    pub settings: Vec<TimerSpec>,
    /// The message types such ports may have (`pkg/Type`); empty: any.
    pub types: Vec<String>,
}

/// One port declared in the graph for a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphPort {
    pub name: String,
    pub msg_type: String,
    /// An output (listed in the node's `outputs`), else an input.
    pub output: bool,
    /// `key: value` settings as written in the graph.
    pub settings: Vec<(String, String)>,
}

impl GraphPort {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
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
    /// Whether (and with which settings) nodes declare more ports in the graph.
    pub graph_ports: Option<GraphPorts>,
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
            graph_ports: None,
        }
    }

    /// Nodes of this operator declare (more) ports in the graph file (`ports:`).
    pub fn graph_ports(mut self, doc: &str) -> Self {
        let (settings, types) = self.graph_ports.map(|g| (g.settings, g.types)).unwrap_or_default();
        self.graph_ports = Some(GraphPorts {
            doc: doc.into(),
            settings,
            types,
        });
        self
    }

    /// The message types graph-declared ports may have (implies
    /// [`graph_ports`](Self::graph_ports)); by default any.
    pub fn port_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        let g = self.graph_ports.get_or_insert_with(|| GraphPorts {
            doc: String::new(),
            settings: Vec::new(),
            types: Vec::new(),
        });
        g.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// A setting a graph-declared port may carry (implies [`graph_ports`](Self::graph_ports)).
    pub fn port_setting(mut self, name: &str, doc: &str) -> Self {
        let g = self.graph_ports.get_or_insert_with(|| GraphPorts {
            doc: String::new(),
            settings: Vec::new(),
            types: Vec::new(),
        });
        g.settings.push(TimerSpec {
            name: name.into(),
            doc: doc.into(),
        });
        self
    }

    /// This manifest with a node's graph-declared ports appended (inputs after the declared
    /// inputs, outputs after the declared outputs, each in graph order): the ports one instance
    /// has. The host and the SDK both build it this way, so port indices agree.
    pub fn with_graph_ports(&self, ports: &[GraphPort]) -> Manifest {
        let mut m = self.clone();
        for p in ports {
            let spec = PortSpec {
                name: p.name.clone(),
                msg_type: p.msg_type.clone(),
                doc: "declared in the graph".into(),
                required: false,
            };
            if p.output {
                m.outputs.push(spec);
            } else {
                m.inputs.push(spec);
            }
        }
        m
    }
    pub fn input(mut self, name: &str, msg_type: &str, doc: &str) -> Self {
        self.inputs.push(PortSpec {
            name: name.into(),
            msg_type: msg_type.into(),
            doc: doc.into(),
            required: false,
        });
        self
    }
    /// An input the operator cannot work without: `check` and `run` warn about a node that
    /// leaves it unbound, naming the node, the input and its type.
    pub fn required_input(mut self, name: &str, msg_type: &str, doc: &str) -> Self {
        self = self.input(name, msg_type, doc);
        if let Some(p) = self.inputs.last_mut() {
            p.required = true;
        }
        self
    }
    pub fn output(mut self, name: &str, msg_type: &str, doc: &str) -> Self {
        self.outputs.push(PortSpec {
            name: name.into(),
            msg_type: msg_type.into(),
            doc: doc.into(),
            required: false,
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
