//! What the graph needs to know about an operator: its manifest, as the host read it from the
//! plugin.

use std::fmt;
use std::time::Duration;

/// The message type an input declares to accept anything.
pub const ANY_TYPE: &str = "any";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub name: String,
    pub msg_type: String,
    pub doc: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerSpec {
    pub name: String,
    pub doc: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Int,
    Float,
    String,
    Duration,
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Bool => "bool",
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::String => "string",
            ParamKind::Duration => "duration",
        })
    }
}

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

    /// Numeric value for range checks (durations in seconds).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Int(i) => Some(i as f64),
            ParamValue::Float(f) => Some(f),
            ParamValue::Duration(d) => Some(d.as_secs_f64()),
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
            ParamValue::Duration(d) => write!(f, "{}", crate::duration::format(*d)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    pub doc: String,
    pub default: Option<ParamValue>,
    pub min: Option<ParamValue>,
    pub max: Option<ParamValue>,
}

impl ParamSpec {
    /// `[min, max]`, `>= min`, `<= max` or `any`, for messages.
    pub fn range_text(&self) -> String {
        match (&self.min, &self.max) {
            (Some(lo), Some(hi)) => format!("[{lo}, {hi}]"),
            (Some(lo), None) => format!(">= {lo}"),
            (None, Some(hi)) => format!("<= {hi}"),
            (None, None) => "any".into(),
        }
    }

    /// Checks kind and range; the error text names the allowed range.
    pub fn check(&self, value: &ParamValue) -> Result<(), String> {
        if value.kind() != self.kind {
            return Err(format!(
                "expected a {}, got {} `{value}`",
                self.kind,
                value.kind()
            ));
        }
        if let Some(v) = value.as_f64() {
            let below = self
                .min
                .as_ref()
                .and_then(ParamValue::as_f64)
                .is_some_and(|lo| v < lo);
            let above = self
                .max
                .as_ref()
                .and_then(ParamValue::as_f64)
                .is_some_and(|hi| v > hi);
            if below || above || v.is_nan() {
                return Err(format!("{value} is out of range {}", self.range_text()));
            }
        }
        Ok(())
    }
}

/// An operator's manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorSpec {
    pub name: String,
    pub version: String,
    pub doc: String,
    /// Which SDK built it.
    pub sdk: String,
    pub inputs: Vec<PortSpec>,
    pub outputs: Vec<PortSpec>,
    pub timers: Vec<TimerSpec>,
    pub params: Vec<ParamSpec>,
}

impl OperatorSpec {
    pub fn input(&self, name: &str) -> Option<&PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }
    pub fn output(&self, name: &str) -> Option<&PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
    pub fn timer(&self, name: &str) -> Option<&TimerSpec> {
        self.timers.iter().find(|t| t.name == name)
    }
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Whether a producer's type can feed a consumer's.
pub fn types_match(producer: &str, consumer: &str) -> bool {
    consumer == ANY_TYPE || producer == ANY_TYPE || producer == consumer
}
