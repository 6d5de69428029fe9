//! The `.msg` syntax (ROS 2 flavour): fields with primitive or nested types, fixed / bounded /
//! unbounded arrays, bounded strings, default values, constants, `#` comments.

use std::fmt;

/// A primitive ROS type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    Bool,
    Byte,
    Char,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float32,
    Float64,
    String,
    WString,
}

impl Primitive {
    pub fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "bool" => Primitive::Bool,
            "byte" => Primitive::Byte,
            "char" => Primitive::Char,
            "int8" => Primitive::Int8,
            "uint8" => Primitive::UInt8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::UInt16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::UInt32,
            "int64" => Primitive::Int64,
            "uint64" => Primitive::UInt64,
            "float32" => Primitive::Float32,
            "float64" => Primitive::Float64,
            "string" => Primitive::String,
            "wstring" => Primitive::WString,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
            Primitive::Byte => "byte",
            Primitive::Char => "char",
            Primitive::Int8 => "int8",
            Primitive::UInt8 => "uint8",
            Primitive::Int16 => "int16",
            Primitive::UInt16 => "uint16",
            Primitive::Int32 => "int32",
            Primitive::UInt32 => "uint32",
            Primitive::Int64 => "int64",
            Primitive::UInt64 => "uint64",
            Primitive::Float32 => "float32",
            Primitive::Float64 => "float64",
            Primitive::String => "string",
            Primitive::WString => "wstring",
        }
    }

    pub fn is_string(self) -> bool {
        matches!(self, Primitive::String | Primitive::WString)
    }

    fn is_integer(self) -> bool {
        !matches!(
            self,
            Primitive::Bool | Primitive::Float32 | Primitive::Float64 | Primitive::String | Primitive::WString
        )
    }

    /// Inclusive integer range of the type.
    fn int_range(self) -> (i128, i128) {
        match self {
            Primitive::Int8 => (i8::MIN as i128, i8::MAX as i128),
            Primitive::Byte | Primitive::Char | Primitive::UInt8 => (0, u8::MAX as i128),
            Primitive::Int16 => (i16::MIN as i128, i16::MAX as i128),
            Primitive::UInt16 => (0, u16::MAX as i128),
            Primitive::Int32 => (i32::MIN as i128, i32::MAX as i128),
            Primitive::UInt32 => (0, u32::MAX as i128),
            Primitive::Int64 => (i64::MIN as i128, i64::MAX as i128),
            _ => (0, u64::MAX as i128),
        }
    }
}

/// The element type of a field: a primitive or another message (`pkg/Type`, resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseType {
    Primitive(Primitive),
    Message(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrayKind {
    Single,
    /// `T[N]`
    Fixed(usize),
    /// `T[<=N]`
    Bounded(usize),
    /// `T[]`
    Unbounded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldType {
    pub base: BaseType,
    /// `string<=N`
    pub string_bound: Option<usize>,
    pub array: ArrayKind,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.base {
            BaseType::Primitive(p) => f.write_str(p.name())?,
            BaseType::Message(m) => f.write_str(m)?,
        }
        if let Some(b) = self.string_bound {
            write!(f, "<={b}")?;
        }
        match self.array {
            ArrayKind::Single => Ok(()),
            ArrayKind::Fixed(n) => write!(f, "[{n}]"),
            ArrayKind::Bounded(n) => write!(f, "[<={n}]"),
            ArrayKind::Unbounded => f.write_str("[]"),
        }
    }
}

/// A literal value (defaults and constants).
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Bool(bool),
    Int(i128),
    Float(f64),
    String(String),
    Array(Vec<Literal>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub default: Option<Literal>,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    pub name: String,
    pub ty: Primitive,
    pub value: Literal,
    pub line: usize,
}

/// One message definition.
#[derive(Clone, Debug, PartialEq)]
pub struct MsgDef {
    /// `pkg/Type`.
    pub name: String,
    pub fields: Vec<Field>,
    pub constants: Vec<Constant>,
    /// Where it was read from (for messages).
    pub file: String,
}

impl MsgDef {
    pub fn package(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn constant(&self, name: &str) -> Option<&Constant> {
        self.constants.iter().find(|c| c.name == name)
    }
}

/// A `.msg` file error with its location.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct MsgError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Splits off a `#` comment that is not inside a quoted string.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .clone()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

fn valid_constant_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Parses one `.msg` file for type `pkg/Type`. Nested type names are resolved as ROS does:
/// `Type` means `pkg/Type` (the same package), `Header` means `std_msgs/Header`, and
/// `other_pkg/Type` or `other_pkg/msg/Type` name another package.
pub fn parse(name: &str, file: &str, text: &str) -> Result<MsgDef, MsgError> {
    let package = name.split('/').next().unwrap_or_default().to_string();
    let mut def = MsgDef {
        name: name.into(),
        fields: Vec::new(),
        constants: Vec::new(),
        file: file.into(),
    };
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let content = strip_comment(raw_line);
        if content.trim().is_empty() {
            continue;
        }
        let indent = content.len() - content.trim_start().len();
        let err = |col: usize, message: String| MsgError {
            file: file.into(),
            line: line_no,
            col: col + 1,
            message,
        };
        let rest = &content[indent..];
        let type_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let type_text = &rest[..type_end];
        let after_type = &rest[type_end..];
        let name_start = indent + type_end + (after_type.len() - after_type.trim_start().len());
        let after_type = after_type.trim_start();
        if after_type.is_empty() {
            return Err(err(
                indent,
                format!("`{type_text}` has no field name (write `<type> <name>`)"),
            ));
        }
        // A constant: `TYPE NAME=value` (spaces around `=` allowed).
        let (field_name, value_text, is_constant) = match after_type.find('=') {
            Some(eq)
                if !after_type[..eq].trim().is_empty() && !after_type[..eq].trim().contains(char::is_whitespace) =>
            {
                (after_type[..eq].trim(), after_type[eq + 1..].trim(), true)
            }
            _ => {
                let n_end = after_type.find(char::is_whitespace).unwrap_or(after_type.len());
                (&after_type[..n_end], after_type[n_end..].trim(), false)
            }
        };
        let ty = parse_type(type_text, &package).map_err(|m| err(indent, m))?;
        if is_constant {
            if !valid_constant_name(field_name) {
                return Err(err(
                    name_start,
                    format!("constant name `{field_name}` must be UPPER_CASE"),
                ));
            }
            let BaseType::Primitive(p) = ty.base else {
                return Err(err(
                    indent,
                    format!("constant `{field_name}` must have a primitive type, not {ty}"),
                ));
            };
            if ty.array != ArrayKind::Single {
                return Err(err(indent, format!("constant `{field_name}` cannot be an array")));
            }
            if def.constants.iter().any(|c| c.name == field_name) {
                return Err(err(name_start, format!("constant `{field_name}` is defined twice")));
            }
            let value = parse_literal(value_text, p, true).map_err(|m| err(name_start, m))?;
            def.constants.push(Constant {
                name: field_name.into(),
                ty: p,
                value,
                line: line_no,
            });
            continue;
        }
        if !valid_field_name(field_name) {
            return Err(err(
                name_start,
                format!(
                    "field name `{field_name}` must be lower_snake_case (start with a letter, no double or trailing _)"
                ),
            ));
        }
        if def.fields.iter().any(|f| f.name == field_name) {
            return Err(err(name_start, format!("field `{field_name}` is defined twice")));
        }
        let default = if value_text.is_empty() {
            None
        } else {
            let value_col = content.len()
                - content[name_start..].trim_start()[field_name.len()..]
                    .trim_start()
                    .len();
            let BaseType::Primitive(p) = ty.base else {
                return Err(err(
                    value_col,
                    format!("field `{field_name}` of message type {ty} cannot have a default"),
                ));
            };
            let lit = if ty.array == ArrayKind::Single {
                parse_literal(value_text, p, false).map_err(|m| err(value_col, m))?
            } else {
                let inner = value_text
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .ok_or_else(|| {
                        err(
                            value_col,
                            format!("the default of array field `{field_name}` must be `[a, b, ...]`"),
                        )
                    })?;
                let items = if inner.trim().is_empty() {
                    Vec::new()
                } else {
                    inner
                        .split(',')
                        .map(|v| parse_literal(v.trim(), p, false))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| err(value_col, m))?
                };
                match ty.array {
                    ArrayKind::Fixed(n) if items.len() != n => {
                        return Err(err(
                            value_col,
                            format!("`{field_name}` has {n} elements but its default has {}", items.len()),
                        ));
                    }
                    ArrayKind::Bounded(n) if items.len() > n => {
                        return Err(err(
                            value_col,
                            format!(
                                "`{field_name}` holds at most {n} elements but its default has {}",
                                items.len()
                            ),
                        ));
                    }
                    _ => {}
                }
                Literal::Array(items)
            };
            if let (Some(bound), Literal::String(s)) = (ty.string_bound, &lit)
                && s.chars().count() > bound
            {
                return Err(err(
                    value_col,
                    format!("the default of `{field_name}` is longer than its bound {bound}"),
                ));
            }
            Some(lit)
        };
        def.fields.push(Field {
            name: field_name.into(),
            ty,
            default,
            line: line_no,
        });
    }
    Ok(def)
}

fn parse_size(text: &str, what: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("`{text}` is not a valid {what}"))
}

fn parse_type(text: &str, package: &str) -> Result<FieldType, String> {
    let (base_text, array) = match text.find('[') {
        Some(open) => {
            let inner = text[open + 1..]
                .strip_suffix(']')
                .ok_or_else(|| format!("`{text}`: an array type ends with `]`"))?;
            let array = if inner.is_empty() {
                ArrayKind::Unbounded
            } else if let Some(bound) = inner.strip_prefix("<=") {
                ArrayKind::Bounded(parse_size(bound, "array bound")?)
            } else {
                let n = parse_size(inner, "array size")?;
                if n == 0 {
                    return Err(format!("`{text}`: a fixed array needs at least one element"));
                }
                ArrayKind::Fixed(n)
            };
            (&text[..open], array)
        }
        None => (text, ArrayKind::Single),
    };
    let (base_text, string_bound) = match base_text.split_once("<=") {
        Some((b, bound)) => (b, Some(parse_size(bound, "string bound")?)),
        None => (base_text, None),
    };
    let base = match Primitive::from_name(base_text) {
        Some(p) => BaseType::Primitive(p),
        None => BaseType::Message(resolve_type(base_text, package)?),
    };
    if string_bound.is_some() && !matches!(base, BaseType::Primitive(p) if p.is_string()) {
        return Err(format!("`{text}`: only strings take a `<=N` bound"));
    }
    Ok(FieldType {
        base,
        string_bound,
        array,
    })
}

fn valid_type_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

fn valid_package(pkg: &str) -> bool {
    pkg.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `Type` -> `pkg/Type`; `Header` -> `std_msgs/Header`; `p/Type` and `p/msg/Type` -> `p/Type`.
pub fn resolve_type(text: &str, package: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let (pkg, ty) = match parts.as_slice() {
        ["Header"] => ("std_msgs", "Header"),
        [ty] => (package, *ty),
        [pkg, ty] | [pkg, "msg", ty] => (*pkg, *ty),
        _ => return Err(format!("`{text}` is not a type (write `pkg/Type`)")),
    };
    if !valid_package(pkg) || !valid_type_name(ty) {
        return Err(format!(
            "`{text}` is not a known primitive type nor a `pkg/Type` message name"
        ));
    }
    Ok(format!("{pkg}/{ty}"))
}

fn parse_literal(text: &str, ty: Primitive, constant: bool) -> Result<Literal, String> {
    let what = if constant { "constant" } else { "default" };
    if text.is_empty() {
        return Err(format!("the {what} has no value"));
    }
    match ty {
        Primitive::Bool => match text {
            "true" | "True" | "1" => Ok(Literal::Bool(true)),
            "false" | "False" | "0" => Ok(Literal::Bool(false)),
            _ => Err(format!("`{text}` is not a bool {what} (true or false)")),
        },
        Primitive::Float32 | Primitive::Float64 => text
            .parse::<f64>()
            .map(Literal::Float)
            .map_err(|_| format!("`{text}` is not a {} {what}", ty.name())),
        Primitive::String | Primitive::WString => {
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| text.strip_prefix(*q).and_then(|t| t.strip_suffix(*q)));
            Ok(Literal::String(match unquoted {
                Some(inner) => inner.replace("\\\"", "\"").replace("\\'", "'").replace("\\\\", "\\"),
                None => text.to_string(),
            }))
        }
        _ if ty.is_integer() => {
            let v = if let Some(hex) = text.strip_prefix("0x") {
                i128::from_str_radix(hex, 16)
            } else {
                text.parse::<i128>()
            }
            .map_err(|_| format!("`{text}` is not an integer {what}"))?;
            let (lo, hi) = ty.int_range();
            if v < lo || v > hi {
                return Err(format!("{v} does not fit in {} [{lo}, {hi}]", ty.name()));
            }
            Ok(Literal::Int(v))
        }
        _ => Err(format!("`{text}` is not a valid {what}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<MsgDef, MsgError> {
        parse("test_msgs/T", "T.msg", text)
    }

    #[test]
    fn parses_fields_arrays_bounds_defaults_constants_comments() {
        let def = p("# a comment\n\
            int32 A=5   # constant\n\
            string NAME = \"x # not a comment\"\n\
            float64 x 1.5\n\
            uint8[] data\n\
            float32[3] v [1, 2, 3]\n\
            int16[<=4] small\n\
            string<=8 label \"hi\"\n\
            Point p\n\
            Header header\n\
            geometry_msgs/msg/Pose pose\n")
        .unwrap();
        assert_eq!(
            def.constants[0],
            Constant {
                name: "A".into(),
                ty: Primitive::Int32,
                value: Literal::Int(5),
                line: 2
            }
        );
        assert_eq!(def.constants[1].value, Literal::String("x # not a comment".into()));
        let f = |n: &str| def.field(n).unwrap();
        assert_eq!(f("x").default, Some(Literal::Float(1.5)));
        assert_eq!(f("data").ty.array, ArrayKind::Unbounded);
        assert_eq!(f("v").ty.array, ArrayKind::Fixed(3));
        assert_eq!(f("small").ty.array, ArrayKind::Bounded(4));
        assert_eq!(f("label").ty.string_bound, Some(8));
        assert_eq!(f("p").ty.base, BaseType::Message("test_msgs/Point".into()));
        assert_eq!(f("header").ty.base, BaseType::Message("std_msgs/Header".into()));
        assert_eq!(f("pose").ty.base, BaseType::Message("geometry_msgs/Pose".into()));
        assert_eq!(f("v").ty.to_string(), "float32[3]");
    }

    #[test]
    fn malformed_files_give_located_errors() {
        let cases = [
            (
                "int32\n",
                "T.msg:1:1: `int32` has no field name (write `<type> <name>`)",
            ),
            (
                "int32 x\nflaot32 y\n",
                "T.msg:2:1: `flaot32` is not a known primitive type nor a `pkg/Type` message name",
            ),
            (
                "int32 BadName\n",
                "T.msg:1:7: field name `BadName` must be lower_snake_case (start with a letter, no double or trailing _)",
            ),
            ("int32 x\nint32 x\n", "T.msg:2:7: field `x` is defined twice"),
            ("uint8 BIG=300\n", "T.msg:1:7: 300 does not fit in uint8 [0, 255]"),
            (
                "  float32[2] v [1, 2, 3]\n",
                "T.msg:1:16: `v` has 2 elements but its default has 3",
            ),
            ("int32[x] v\n", "T.msg:1:1: `x` is not a valid array size"),
            ("int32<=3 v\n", "T.msg:1:1: `int32<=3`: only strings take a `<=N` bound"),
            (
                "Point[] p 5\n",
                "T.msg:1:11: field `p` of message type test_msgs/Point[] cannot have a default",
            ),
            (
                "bool flag maybe\n",
                "T.msg:1:11: `maybe` is not a bool default (true or false)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(p(text).unwrap_err().to_string(), want, "for {text:?}");
        }
    }
}
