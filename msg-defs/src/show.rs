//! Messages shown to a person or a script: any Arrow value of a message type as YAML-like text
//! (nested fields by name) or as JSON, with big arrays summarised (`[57600 x uint8]`, an image's
//! data as `[160x120 rgb8, 57600 bytes]`) unless everything is asked for. What `quiver topic
//! echo` prints.

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// Lists longer than this are summarised unless `full`.
pub const SHOWN_ITEMS: usize = 16;

/// One value, ready to print.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    List(Vec<Shown>),
    /// A list too long to print: what it is.
    Summary(String),
    Map(Vec<(String, Shown)>),
}

/// Row `row` of `array` (a message is one row of a struct array).
pub fn shown(array: &dyn Array, row: usize, full: bool) -> Shown {
    if row >= array.len() {
        return Shown::Null;
    }
    if array.is_null(row) {
        return Shown::Null;
    }
    match array.data_type() {
        DataType::Boolean => Shown::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Shown::Int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Shown::Int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Shown::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Shown::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Shown::UInt(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => Shown::UInt(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => Shown::UInt(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => Shown::UInt(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => {
            // Shown as the f32 it is (`0.1`, not `0.10000000149011612`).
            let v = array.as_primitive::<Float32Type>().value(row);
            Shown::Float(format!("{v:?}").parse().unwrap_or(f64::from(v)))
        }
        DataType::Float64 => Shown::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Shown::Str(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Shown::Str(array.as_string::<i64>().value(row).to_string()),
        DataType::Binary => summary_or(array.as_binary::<i32>().value(row), full),
        DataType::List(_) => list(&array.as_list::<i32>().value(row), full),
        DataType::LargeList(_) => list(&array.as_list::<i64>().value(row), full),
        DataType::FixedSizeList(_, _) => list(&array.as_fixed_size_list().value(row), full),
        DataType::Struct(_) => {
            let s = array.as_struct();
            let mut fields: Vec<(String, Shown)> = s
                .column_names()
                .iter()
                .zip(s.columns())
                .map(|(name, col)| (name.to_string(), shown(col.as_ref(), row, full)))
                .collect();
            if !full {
                image_summary(&mut fields);
            }
            Shown::Map(fields)
        }
        other => Shown::Summary(format!("<{other}>")),
    }
}

fn summary_or(bytes: &[u8], full: bool) -> Shown {
    if full || bytes.len() <= SHOWN_ITEMS {
        Shown::List(bytes.iter().map(|&b| Shown::UInt(b.into())).collect())
    } else {
        Shown::Summary(format!("[{} bytes]", bytes.len()))
    }
}

fn list(values: &ArrayRef, full: bool) -> Shown {
    let n = values.len();
    if !full && n > SHOWN_ITEMS {
        let item = match values.data_type() {
            DataType::Struct(_) => "messages".to_string(),
            t => primitive_name(t),
        };
        let bytes = values.data_type().primitive_width().map(|w| w * n);
        return Shown::Summary(match bytes {
            Some(b) => format!("[{n} x {item}, {b} bytes]"),
            None => format!("[{n} x {item}]"),
        });
    }
    Shown::List((0..n).map(|i| shown(values.as_ref(), i, full)).collect())
}

fn primitive_name(t: &DataType) -> String {
    match t {
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Boolean => "bool",
        DataType::Utf8 => "string",
        _ => return t.to_string(),
    }
    .into()
}

/// `sensor_msgs/Image`'s `data`, summarised as what it is: `[WxH encoding, N bytes]`.
fn image_summary(fields: &mut [(String, Shown)]) {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(Shown::UInt(w)), Some(Shown::UInt(h)), Some(Shown::Str(enc))) =
        (get("width"), get("height"), get("encoding"))
    else {
        return;
    };
    if let Some((_, data)) = fields.iter_mut().find(|(n, _)| n == "data")
        && let Shown::Summary(s) = data
        && let Some(bytes) = s.split(", ").nth(1).and_then(|b| b.strip_suffix(']'))
    {
        *data = Shown::Summary(format!("[{w}x{h} {enc}, {bytes}]"));
    }
}

/// YAML-like text, one field per line, `indent` spaces in.
pub fn to_text(v: &Shown, indent: usize) -> String {
    let mut out = String::new();
    write_text(&mut out, v, indent);
    out
}

fn scalar(v: &Shown) -> Option<String> {
    Some(match v {
        Shown::Null => "null".into(),
        Shown::Bool(b) => b.to_string(),
        Shown::Int(i) => i.to_string(),
        Shown::UInt(u) => u.to_string(),
        Shown::Float(f) => float_text(*f),
        Shown::Str(s) => json_string(s),
        Shown::Summary(s) => s.clone(),
        Shown::List(items) if items.iter().all(scalar_only) => {
            let parts: Vec<String> = items.iter().filter_map(scalar).collect();
            format!("[{}]", parts.join(", "))
        }
        _ => return None,
    })
}

fn scalar_only(v: &Shown) -> bool {
    !matches!(v, Shown::List(_) | Shown::Map(_))
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf".into() } else { "-.inf".into() }
    } else {
        format!("{f:?}")
    }
}

fn write_text(out: &mut String, v: &Shown, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Shown::Map(fields) => {
            for (name, value) in fields {
                match scalar(value) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}{name}: {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{name}:");
                        write_text(out, value, indent + 2);
                    }
                }
            }
        }
        Shown::List(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}-");
                        write_text(out, item, indent + 2);
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other).unwrap_or_default());
        }
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON (non-finite floats as null, summaries as strings).
pub fn to_json(v: &Shown) -> String {
    match v {
        Shown::Null => "null".into(),
        Shown::Bool(b) => b.to_string(),
        Shown::Int(i) => i.to_string(),
        Shown::UInt(u) => u.to_string(),
        Shown::Float(f) if f.is_finite() => format!("{f:?}"),
        Shown::Float(_) => "null".into(),
        Shown::Str(s) | Shown::Summary(s) => json_string(s),
        Shown::List(items) => format!("[{}]", items.iter().map(to_json).collect::<Vec<_>>().join(",")),
        Shown::Map(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), to_json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Header, Image, LaserScan, Message, Time};

    #[test]
    fn an_image_is_summarised_and_shown_in_full_on_demand() {
        let img = Image {
            header: Header {
                stamp: Time { sec: 1, nanosec: 5 },
                frame_id: "cam".into(),
            },
            height: 120,
            width: 160,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: 480,
            data: vec![7; 160 * 120 * 3],
        };
        let a = img.to_arrow().unwrap();
        let text = to_text(&shown(a.as_ref(), 0, false), 0);
        assert!(
            text.contains("header:\n  stamp:\n    sec: 1\n    nanosec: 5\n  frame_id: \"cam\"\n"),
            "{text}"
        );
        assert!(text.contains("data: [160x120 rgb8, 57600 bytes]\n"), "{text}");
        let full = to_text(&shown(a.as_ref(), 0, true), 0);
        assert!(full.len() > 57600 * 3, "every byte shown");
        let json = to_json(&shown(a.as_ref(), 0, false));
        assert!(
            json.starts_with("{\"header\":{\"stamp\":{\"sec\":1,\"nanosec\":5},\"frame_id\":\"cam\"},\"height\":120"),
            "{json}"
        );
    }

    #[test]
    fn short_lists_are_shown_long_ones_counted_and_nan_is_legible() {
        let scan = LaserScan {
            ranges: vec![1.0, f32::NAN, f32::INFINITY],
            ..LaserScan::default()
        };
        let a = scan.to_arrow().unwrap();
        let text = to_text(&shown(a.as_ref(), 0, false), 0);
        assert!(text.contains("ranges: [1.0, .nan, .inf]\n"), "{text}");
        assert!(to_json(&shown(a.as_ref(), 0, false)).contains("\"ranges\":[1.0,null,null]"));
        let long = LaserScan {
            ranges: vec![2.0; 360],
            ..LaserScan::default()
        };
        let a = long.to_arrow().unwrap();
        assert!(to_text(&shown(a.as_ref(), 0, false), 0).contains("ranges: [360 x float32, 1440 bytes]\n"));
    }
}
