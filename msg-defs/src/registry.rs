//! The set of known message types: the shipped definitions (embedded at build time) plus any a
//! user adds; each turns into an Arrow data type.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields};

use crate::parse::{ArrayKind, BaseType, MsgDef, MsgError, Primitive, parse, resolve_type};

/// The definitions shipped in `msg-defs/msg/<pkg>/<Type>.msg`.
const SHIPPED: &[(&str, &str)] = &[
    (
        "builtin_interfaces/Time",
        include_str!("../msg/builtin_interfaces/Time.msg"),
    ),
    ("std_msgs/Header", include_str!("../msg/std_msgs/Header.msg")),
    ("std_msgs/String", include_str!("../msg/std_msgs/String.msg")),
    ("std_msgs/Int64", include_str!("../msg/std_msgs/Int64.msg")),
    (
        "geometry_msgs/Vector3",
        include_str!("../msg/geometry_msgs/Vector3.msg"),
    ),
    ("geometry_msgs/Twist", include_str!("../msg/geometry_msgs/Twist.msg")),
    ("geometry_msgs/Point", include_str!("../msg/geometry_msgs/Point.msg")),
    (
        "geometry_msgs/Quaternion",
        include_str!("../msg/geometry_msgs/Quaternion.msg"),
    ),
    ("geometry_msgs/Pose", include_str!("../msg/geometry_msgs/Pose.msg")),
    (
        "sensor_msgs/LaserScan",
        include_str!("../msg/sensor_msgs/LaserScan.msg"),
    ),
    ("sensor_msgs/Image", include_str!("../msg/sensor_msgs/Image.msg")),
    (
        "quiver_msgs/Classification",
        include_str!("../msg/quiver_msgs/Classification.msg"),
    ),
];

/// `pkg/msg/Type` or `pkg/Type` -> `pkg/Type`.
pub fn normalize(name: &str) -> String {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, "msg", ty] => format!("{pkg}/{ty}"),
        _ => name.to_string(),
    }
}

/// Known message types.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    defs: BTreeMap<String, Arc<MsgDef>>,
    types: BTreeMap<String, DataType>,
}

impl Registry {
    /// The shipped definitions.
    pub fn builtin() -> &'static Registry {
        static BUILTIN: OnceLock<Registry> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let mut r = Registry::default();
            for (name, text) in SHIPPED {
                let file = format!("msg-defs/msg/{name}.msg");
                // The shipped files are tested (`every_shipped_definition_...`); a broken one is
                // a build of ours, not user input.
                let def = parse(name, &file, text).unwrap_or_else(|e| panic!("shipped message definition: {e}"));
                r.defs.insert(def.name.clone(), Arc::new(def));
            }
            r.resolve_all()
                .unwrap_or_else(|e| panic!("shipped message definitions: {e}"));
            r
        })
    }

    /// Adds a definition from `.msg` text (for type `pkg/Type`) and checks that every type it
    /// uses is known.
    pub fn add(&mut self, name: &str, file: &str, text: &str) -> Result<(), MsgError> {
        let name = normalize(name);
        resolve_type(&name, "").map_err(|message| MsgError {
            file: file.into(),
            line: 1,
            col: 1,
            message,
        })?;
        let def = parse(&name, file, text)?;
        let previous = self.defs.insert(name.clone(), Arc::new(def));
        let result = self.resolve_all();
        if result.is_err() {
            // Leave the registry as it was.
            match previous {
                Some(p) => self.defs.insert(name, p),
                None => self.defs.remove(&name),
            };
            self.resolve_all()?;
        }
        result
    }

    pub fn get(&self, name: &str) -> Option<&MsgDef> {
        self.defs.get(&normalize(name)).map(|d| d.as_ref())
    }

    /// Every known type name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.defs.contains_key(&normalize(name))
    }

    /// The Arrow type of one message: a struct with one field per message field.
    pub fn data_type(&self, name: &str) -> Option<&DataType> {
        self.types.get(&normalize(name))
    }

    /// The struct fields of a message type.
    pub fn fields(&self, name: &str) -> Option<&Fields> {
        match self.data_type(name)? {
            DataType::Struct(fields) => Some(fields),
            _ => None,
        }
    }

    /// Computes the Arrow type of every definition; refuses unknown nested types and recursion.
    fn resolve_all(&mut self) -> Result<(), MsgError> {
        self.types.clear();
        let names: Vec<String> = self.defs.keys().cloned().collect();
        for name in names {
            let mut visiting = Vec::new();
            self.resolve(&name, &mut visiting)?;
        }
        Ok(())
    }

    fn resolve(&mut self, name: &str, visiting: &mut Vec<String>) -> Result<DataType, MsgError> {
        if let Some(t) = self.types.get(name) {
            return Ok(t.clone());
        }
        let def = self.defs.get(name).cloned().ok_or_else(|| MsgError {
            file: String::new(),
            line: 0,
            col: 0,
            message: format!("unknown message type {name}"),
        })?;
        visiting.push(name.to_string());
        let mut fields = Vec::new();
        for f in &def.fields {
            let element = match &f.ty.base {
                BaseType::Primitive(p) => primitive_type(*p),
                BaseType::Message(m) => {
                    let located = |message: String| MsgError {
                        file: def.file.clone(),
                        line: f.line,
                        col: 1,
                        message,
                    };
                    if visiting.contains(m) {
                        return Err(located(format!("{m} contains itself (through field `{}`)", f.name)));
                    }
                    if !self.defs.contains_key(m) {
                        let known: Vec<&str> = self.defs.keys().map(String::as_str).collect();
                        return Err(located(format!(
                            "unknown message type {m} (known: {})",
                            known.join(", ")
                        )));
                    }
                    self.resolve(m, visiting)?
                }
            };
            let item = || Arc::new(Field::new("item", element.clone(), false));
            let dt = match f.ty.array {
                ArrayKind::Single => element.clone(),
                ArrayKind::Fixed(n) => DataType::FixedSizeList(item(), n as i32),
                ArrayKind::Bounded(_) | ArrayKind::Unbounded => DataType::List(item()),
            };
            fields.push(Field::new(&f.name, dt, false));
        }
        visiting.pop();
        let dt = DataType::Struct(Fields::from(fields));
        self.types.insert(name.to_string(), dt.clone());
        Ok(dt)
    }
}

/// The Arrow type of a primitive ROS type.
pub fn primitive_type(p: Primitive) -> DataType {
    match p {
        Primitive::Bool => DataType::Boolean,
        Primitive::Byte | Primitive::Char | Primitive::UInt8 => DataType::UInt8,
        Primitive::Int8 => DataType::Int8,
        Primitive::Int16 => DataType::Int16,
        Primitive::UInt16 => DataType::UInt16,
        Primitive::Int32 => DataType::Int32,
        Primitive::UInt32 => DataType::UInt32,
        Primitive::Int64 => DataType::Int64,
        Primitive::UInt64 => DataType::UInt64,
        Primitive::Float32 => DataType::Float32,
        Primitive::Float64 => DataType::Float64,
        Primitive::String | Primitive::WString => DataType::Utf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_definition_resolves() {
        let r = Registry::builtin();
        assert_eq!(r.names().count(), SHIPPED.len());
        let scan = r.fields("sensor_msgs/msg/LaserScan").unwrap();
        assert_eq!(
            scan.find("ranges").unwrap().1.data_type(),
            &DataType::List(Arc::new(Field::new("item", DataType::Float32, false)))
        );
        let header = r.fields("std_msgs/Header").unwrap();
        assert!(matches!(
            header.find("stamp").unwrap().1.data_type(),
            DataType::Struct(_)
        ));
        assert_eq!(
            r.get("quiver_msgs/Classification")
                .unwrap()
                .constant("OBSTACLE_RIGHT")
                .unwrap()
                .value,
            crate::Literal::Int(2)
        );
    }

    #[test]
    fn unknown_and_recursive_types_are_refused_with_location() {
        let mut r = Registry::builtin().clone();
        let e = r
            .add("my_msgs/Robot", "Robot.msg", "string name\nmy_msgs/Wheel[4] wheels\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Robot.msg:2:1: unknown message type my_msgs/Wheel (known: builtin_interfaces/Time"),
            "{e}"
        );
        let e = r.add("my_msgs/Loop", "Loop.msg", "Loop next\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Loop.msg:1:1: my_msgs/Loop contains itself (through field `next`)"
        );
        r.add("my_msgs/Wheel", "Wheel.msg", "float64 radius 0.1\n").unwrap();
        assert!(r.contains("my_msgs/Wheel"));
    }
}
