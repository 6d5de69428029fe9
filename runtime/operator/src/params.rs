use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::{Error, Result};

/// The kind of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Int,
    Float,
    String,
    /// Written `100ms`, `2s`, `1.5s`, `250us` in the graph.
    Duration,
}

impl ParamKind {
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Bool => "bool",
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::String => "string",
            ParamKind::Duration => "duration",
        }
    }
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Duration(Duration),
}

impl ParamValue {
    pub fn kind(&self) -> ParamKind {
        match self {
            ParamValue::Bool(_) => ParamKind::Bool,
            ParamValue::Int(_) => ParamKind::Int,
            ParamValue::Float(_) => ParamKind::Float,
            ParamValue::String(_) => ParamKind::String,
            ParamValue::Duration(_) => ParamKind::Duration,
        }
    }

    /// The value as a float (ints widen).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Float(f) => Some(f),
            ParamValue::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::String(s) => write!(f, "{s:?}"),
            ParamValue::Duration(d) => write!(f, "{d:?}"),
        }
    }
}

/// The parameters an operator is created with: every declared parameter, defaults filled in.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
}

impl Params {
    pub fn new() -> Self {
        Params::default()
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
            .ok_or_else(|| Error::msg(format!("parameter '{name}' is not set")))
    }

    fn wrong(name: &str, want: &str, got: &ParamValue) -> Error {
        Error::msg(format!(
            "parameter '{name}' is of kind {}, not {want}",
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
            "parameter 'n' is of kind int, not bool"
        );
        assert_eq!(
            p.int("m").unwrap_err().message(),
            "parameter 'm' is not set"
        );
    }
}
