use std::collections::BTreeMap;
use std::time::Duration;

use quiver_manifest::{GraphPort, ParamValue};

use crate::{Error, Result};

/// The parameters an operator is created with: every declared parameter, defaults filled in;
/// and the ports the graph declared for this node (operators with `graph_ports`).
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
    ports: Vec<GraphPort>,
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// The ports the graph declared for this node (`ports:`), in graph order.
    pub fn graph_ports(&self) -> &[GraphPort] {
        &self.ports
    }

    pub fn add_graph_port(&mut self, port: GraphPort) {
        self.ports.push(port);
    }

    pub fn insert(&mut self, name: impl Into<String>, value: ParamValue) {
        self.values.insert(name.into(), value);
    }

    /// The value, if the parameter was declared without a default and not given.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    fn require(&self, name: &str) -> Result<&ParamValue> {
        self.values
            .get(name)
            .ok_or_else(|| Error::msg(format!("parameter `{name}` is not set")))
    }

    fn wrong(name: &str, want: &str, got: &ParamValue) -> Error {
        Error::msg(format!(
            "parameter `{name}` is of kind {}, not {want}",
            got.kind().name()
        ))
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.require(name)? {
            ParamValue::Bool(b) => Ok(*b),
            other => Err(Self::wrong(name, "bool", other)),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        match self.require(name)? {
            ParamValue::Int(i) => Ok(*i),
            other => Err(Self::wrong(name, "int", other)),
        }
    }

    pub fn float(&self, name: &str) -> Result<f64> {
        let v = self.require(name)?;
        v.as_f64().ok_or_else(|| Self::wrong(name, "float", v))
    }

    pub fn string(&self, name: &str) -> Result<&str> {
        match self.require(name)? {
            ParamValue::String(s) => Ok(s),
            other => Err(Self::wrong(name, "string", other)),
        }
    }

    /// A file path (absolute: the host resolved it against the graph's folder).
    pub fn path(&self, name: &str) -> Result<std::path::PathBuf> {
        match self.require(name)? {
            ParamValue::Path(p) => Ok(p.into()),
            other => Err(Self::wrong(name, "path", other)),
        }
    }

    pub fn duration(&self, name: &str) -> Result<Duration> {
        match self.require(name)? {
            ParamValue::Duration(d) => Ok(*d),
            other => Err(Self::wrong(name, "duration", other)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_name_the_parameter_on_mismatch() {
        let mut p = Params::new();
        p.insert("n", ParamValue::Int(3));
        assert_eq!(p.int("n").unwrap(), 3);
        assert_eq!(p.float("n").unwrap(), 3.0);
        assert_eq!(
            p.bool("n").unwrap_err().message(),
            "parameter `n` is of kind int, not bool"
        );
        assert_eq!(p.int("m").unwrap_err().message(), "parameter `m` is not set");
    }
}
