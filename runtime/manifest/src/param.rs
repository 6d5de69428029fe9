//! Parameter kinds, values and declarations (with defaults and inclusive ranges).

use std::fmt;
use std::time::Duration;

/// The kind of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Int,
    Float,
    String,
    /// Written `100ms`, `2s`, `1.5s`, `250us` in graph files.
    Duration,
    /// A file the operator reads: relative to the graph file, checked to exist before running.
    Path,
}

impl ParamKind {
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Bool => "bool",
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::String => "string",
            ParamKind::Duration => "duration",
            ParamKind::Path => "path",
        }
    }
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
    /// An absolute path (resolved by the host).
    Path(String),
}

impl ParamValue {
    pub fn kind(&self) -> ParamKind {
        match self {
            ParamValue::Bool(_) => ParamKind::Bool,
            ParamValue::Int(_) => ParamKind::Int,
            ParamValue::Float(_) => ParamKind::Float,
            ParamValue::String(_) => ParamKind::String,
            ParamValue::Duration(_) => ParamKind::Duration,
            ParamValue::Path(_) => ParamKind::Path,
        }
    }

    /// The value as a number: ints widen, durations in seconds (for range checks).
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
            ParamValue::Duration(d) => write!(f, "{}", crate::format_duration(*d)),
            ParamValue::Path(p) => write!(f, "{p}"),
        }
    }
}

/// A parameter: kind, default (none: the graph must set it), inclusive range, one-line doc.
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
        Self::new(name, ParamKind::String, Some(ParamValue::String(default.into())))
    }
    pub fn duration(name: &str, default: Duration) -> Self {
        Self::new(name, ParamKind::Duration, Some(ParamValue::Duration(default)))
    }
    /// A file or folder the operator reads (relative to the graph file); the graph must set it.
    pub fn path(name: &str) -> Self {
        Self::new(name, ParamKind::Path, None)
    }
    /// A path the graph may leave out: then the operator gets an empty path.
    pub fn optional_path(name: &str) -> Self {
        Self::new(name, ParamKind::Path, Some(ParamValue::Path(String::new())))
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
    pub fn range_duration(mut self, min: Duration, max: Duration) -> Self {
        self.min = Some(ParamValue::Duration(min));
        self.max = Some(ParamValue::Duration(max));
        self
    }
    pub fn doc(mut self, doc: &str) -> Self {
        self.doc = doc.into();
        self
    }

    /// `[min, max]`, `>= min`, `<= max` or `any`, for messages.
    pub fn range_text(&self) -> String {
        match (&self.min, &self.max) {
            (Some(lo), Some(hi)) => format!("[{lo}, {hi}]"),
            (Some(lo), None) => format!(">= {lo}"),
            (None, Some(hi)) => format!("<= {hi}"),
            (None, None) => "any".into(),
        }
    }

    /// Checks kind and range; the error names the allowed range.
    pub fn check(&self, value: &ParamValue) -> Result<(), String> {
        if value.kind() != self.kind {
            let a = if self.kind == ParamKind::Int { "an" } else { "a" };
            return Err(format!("expected {a} {}, got {} `{value}`", self.kind, value.kind()));
        }
        if let Some(v) = value.as_f64() {
            let below = self.min.as_ref().and_then(ParamValue::as_f64).is_some_and(|lo| v < lo);
            let above = self.max.as_ref().and_then(ParamValue::as_f64).is_some_and(|hi| v > hi);
            if v.is_nan() {
                return Err(format!(
                    "NaN (not a number) is outside every range ({})",
                    self.range_text()
                ));
            }
            if below || above {
                return Err(format!("{value} is out of range {}", self.range_text()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_kind_and_range() {
        let p = ParamSpec::int("burst", 1).range_int(1, 10);
        assert_eq!(p.check(&ParamValue::Int(0)).unwrap_err(), "0 is out of range [1, 10]");
        assert_eq!(
            p.check(&ParamValue::Float(2.0)).unwrap_err(),
            "expected an int, got float `2`"
        );
        assert!(p.check(&ParamValue::Int(10)).is_ok());
        let d = ParamSpec::duration("delay", Duration::ZERO).range_duration(Duration::ZERO, Duration::from_secs(1));
        assert_eq!(
            d.check(&ParamValue::Duration(Duration::from_secs(2))).unwrap_err(),
            "2s is out of range [0s, 1s]"
        );
    }
}
