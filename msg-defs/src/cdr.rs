//! CDR, the encoding ROS 2 messages travel in over DDS (plain CDR, "XCDR1", as the DDS RMWs use
//! it), for any type of a [`Registry`], both directions, driven by the `.msg` definitions.
//!
//! ```text
//! 4-byte encapsulation header: 00 01 00 00 (little-endian) or 00 00 00 00 (big-endian)
//! fields in definition order, each primitive aligned to its size (1, 2, 4, 8) counted from the
//! end of the header; bool and byte 1 byte; string: u32 length including the NUL, bytes, NUL;
//! T[] and T[<=N]: u32 count, then the elements; T[N]: N elements, no count; nested messages
//! inline
//! ```
//!
//! Arrays of numbers (image bytes, scan ranges) are copied as one block in both directions (the
//! Arrow buffer and the CDR bytes have the same little-endian layout), not element by element.
//! Decoding treats its input as untrusted: every length is checked against what is left, strings
//! must be NUL-terminated UTF-8, bounds of bounded arrays and strings hold; a bad payload is an
//! error, never a panic.

use arrow_array::{Array, ArrayRef, BooleanArray, FixedSizeListArray, ListArray, StringArray, StructArray, make_array};
use arrow_buffer::{BooleanBufferBuilder, Buffer, MutableBuffer};
use arrow_data::ArrayData;
use arrow_schema::DataType;

use crate::parse::{ArrayKind, BaseType, FieldType, MsgDef, Primitive};
use crate::registry::{Registry, normalize};

/// Plain CDR, little-endian: what quiver writes.
pub const CDR_LE: [u8; 4] = [0x00, 0x01, 0x00, 0x00];
/// Plain CDR, big-endian (read, never written).
pub const CDR_BE: [u8; 4] = [0x00, 0x00, 0x00, 0x00];

/// A message that cannot be encoded or decoded. `at` names the field (`sensor_msgs/Image.data`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct CdrError {
    pub at: String,
    pub message: String,
}

fn error(at: &str, message: impl Into<String>) -> CdrError {
    CdrError {
        at: at.to_string(),
        message: message.into(),
    }
}

/// The DDS type name of a ROS type: `geometry_msgs/msg/Twist` -> `geometry_msgs::msg::dds_::Twist_`.
pub fn dds_type_name(ros_type: &str) -> String {
    let name = normalize(ros_type);
    let (pkg, ty) = name.split_once('/').unwrap_or(("", &name));
    format!("{pkg}::msg::dds_::{ty}_")
}

/// Whether every field of `ros_type` (nested ones included) can be carried in CDR here; the reason
/// when not (`wstring` is not supported yet).
pub fn check_supported(registry: &Registry, ros_type: &str) -> Result<(), CdrError> {
    let def = lookup(registry, ros_type)?;
    for f in &def.fields {
        match &f.ty.base {
            BaseType::Primitive(Primitive::WString) => {
                return Err(error(
                    &format!("{}.{}", def.name, f.name),
                    "wstring fields are not supported by the CDR codec yet",
                ));
            }
            BaseType::Message(m) => check_supported(registry, m)?,
            BaseType::Primitive(_) => {}
        }
    }
    Ok(())
}

fn lookup<'r>(registry: &'r Registry, ros_type: &str) -> Result<&'r MsgDef, CdrError> {
    registry.get(ros_type).ok_or_else(|| {
        let known: Vec<&str> = registry.names().collect();
        error(ros_type, format!("unknown message type (known: {})", known.join(", ")))
    })
}

/// Bytes of one element of a fixed-size primitive; None for strings.
fn width(p: Primitive) -> Option<usize> {
    Some(match p {
        Primitive::Bool | Primitive::Byte | Primitive::Char | Primitive::Int8 | Primitive::UInt8 => 1,
        Primitive::Int16 | Primitive::UInt16 => 2,
        Primitive::Int32 | Primitive::UInt32 | Primitive::Float32 => 4,
        Primitive::Int64 | Primitive::UInt64 | Primitive::Float64 => 8,
        Primitive::String | Primitive::WString => return None,
    })
}

// ---------------------------------------------------------------- encoding

/// Encodes message `row` of `array` (an array of `ros_type`'s Arrow layout, as a DataPack
/// carries it) as CDR, encapsulation header included.
pub fn encode(registry: &Registry, ros_type: &str, array: &dyn Array, row: usize) -> Result<Vec<u8>, CdrError> {
    encode_with(registry, ros_type, array, row, true)
}

/// Like [`encode`], without the encapsulation header (for a DDS stack that writes it itself):
/// little-endian plain CDR.
pub fn encode_body(registry: &Registry, ros_type: &str, array: &dyn Array, row: usize) -> Result<Vec<u8>, CdrError> {
    encode_with(registry, ros_type, array, row, false)
}

fn encode_with(
    registry: &Registry,
    ros_type: &str,
    array: &dyn Array,
    row: usize,
    with_header: bool,
) -> Result<Vec<u8>, CdrError> {
    let def = lookup(registry, ros_type)?;
    let want = registry
        .data_type(ros_type)
        .ok_or_else(|| error(ros_type, "no Arrow layout"))?;
    if array.data_type() != want {
        return Err(error(
            &def.name,
            format!(
                "the data is {}, not the layout of {} ({want})",
                array.data_type(),
                def.name
            ),
        ));
    }
    let s = array
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| error(&def.name, "not a struct array"))?;
    if row >= s.len() {
        return Err(error(&def.name, format!("no row {row} in {} rows", s.len())));
    }
    let mut w = Writer {
        buf: Vec::with_capacity(64 + array.get_buffer_memory_size().min(1 << 24)),
        base: 0,
    };
    if with_header {
        w.buf.extend_from_slice(&CDR_LE);
        w.base = 4;
    }
    w.message(registry, def, s, row)?;
    Ok(w.buf)
}

struct Writer {
    buf: Vec<u8>,
    /// Where the body starts (alignment counts from there).
    base: usize,
}

impl Writer {
    fn align(&mut self, n: usize) {
        let body = self.buf.len() - self.base;
        let pad = (n - body % n) % n;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn message(&mut self, registry: &Registry, def: &MsgDef, s: &StructArray, row: usize) -> Result<(), CdrError> {
        for (i, f) in def.fields.iter().enumerate() {
            let at = || format!("{}.{}", def.name, f.name);
            let col = s.columns().get(i).ok_or_else(|| error(&at(), "missing column"))?;
            if col.is_null(row) {
                return Err(error(&at(), "is null (ROS messages have no null fields)"));
            }
            match f.ty.array {
                ArrayKind::Single => self.elements(registry, &f.ty, col.as_ref(), row, 1, &at)?,
                ArrayKind::Fixed(n) => {
                    let list = col
                        .as_any()
                        .downcast_ref::<FixedSizeListArray>()
                        .ok_or_else(|| error(&at(), "not a fixed-size list"))?;
                    let start = row * n; // the values of a sliced list are sliced with it
                    self.elements(registry, &f.ty, list.values().as_ref(), start, n, &at)?;
                }
                ArrayKind::Bounded(_) | ArrayKind::Unbounded => {
                    let list = col
                        .as_any()
                        .downcast_ref::<ListArray>()
                        .ok_or_else(|| error(&at(), "not a list"))?;
                    let offsets = list.value_offsets();
                    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                    let count = end - start;
                    if let ArrayKind::Bounded(b) = f.ty.array
                        && count > b
                    {
                        return Err(error(&at(), format!("{count} elements, more than its bound {b}")));
                    }
                    let n = u32::try_from(count).map_err(|_| error(&at(), format!("{count} elements")))?;
                    self.u32(n);
                    self.elements(registry, &f.ty, list.values().as_ref(), start, count, &at)?;
                }
            }
        }
        Ok(())
    }

    /// Elements `start..start + count` of `values`, each of the field's element type.
    fn elements(
        &mut self,
        registry: &Registry,
        ty: &FieldType,
        values: &dyn Array,
        start: usize,
        count: usize,
        at: &dyn Fn() -> String,
    ) -> Result<(), CdrError> {
        if start + count > values.len() {
            return Err(error(&at(), "list offsets beyond the values"));
        }
        match &ty.base {
            BaseType::Message(m) => {
                let def = lookup(registry, m)?;
                let s = values
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .ok_or_else(|| error(&at(), "not a struct"))?;
                for i in start..start + count {
                    self.message(registry, def, s, i)?;
                }
            }
            BaseType::Primitive(Primitive::String) => {
                let strings = values
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| error(&at(), "not a string array"))?;
                for i in start..start + count {
                    let v = strings.value(i);
                    if let Some(b) = ty.string_bound
                        && v.len() > b
                    {
                        return Err(error(
                            &at(),
                            format!("a string of {} bytes, more than its bound {b}", v.len()),
                        ));
                    }
                    let n = u32::try_from(v.len() + 1).map_err(|_| error(&at(), "string too long"))?;
                    self.u32(n);
                    self.buf.extend_from_slice(v.as_bytes());
                    self.buf.push(0);
                }
            }
            BaseType::Primitive(Primitive::WString) => {
                return Err(error(&at(), "wstring fields are not supported by the CDR codec yet"));
            }
            BaseType::Primitive(Primitive::Bool) => {
                let bools = values
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| error(&at(), "not a boolean array"))?;
                self.buf
                    .extend((start..start + count).map(|i| u8::from(bools.value(i))));
            }
            BaseType::Primitive(p) => {
                let w = width(*p).unwrap_or(1);
                self.align(w);
                let data = values.to_data();
                let buffer = data.buffers().first().ok_or_else(|| error(&at(), "no values buffer"))?;
                let from = (data.offset() + start) * w;
                let bytes = buffer
                    .as_slice()
                    .get(from..from + count * w)
                    .ok_or_else(|| error(&at(), "values buffer too short"))?;
                if cfg!(target_endian = "little") {
                    // One block: Arrow's buffer already is the little-endian CDR layout.
                    self.buf.extend_from_slice(bytes);
                } else {
                    for chunk in bytes.chunks_exact(w) {
                        self.buf.extend(chunk.iter().rev());
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- decoding

/// Decodes a CDR payload (encapsulation header included) of `ros_type` into a one-row struct
/// array of its Arrow layout.
pub fn decode(registry: &Registry, ros_type: &str, bytes: &[u8]) -> Result<ArrayRef, CdrError> {
    let def = lookup(registry, ros_type)?;
    let dt = registry
        .data_type(ros_type)
        .ok_or_else(|| error(ros_type, "no Arrow layout"))?;
    let header: [u8; 4] = bytes.get(..4).and_then(|h| h.try_into().ok()).ok_or_else(|| {
        error(
            &def.name,
            format!("truncated: {} bytes, not even the 4-byte header", bytes.len()),
        )
    })?;
    let big_endian = match header {
        CDR_LE => false,
        CDR_BE => true,
        other => {
            return Err(error(
                &def.name,
                format!(
                    "encapsulation header {other:02x?} is not plain CDR (00 01 00 00 little-endian or 00 00 00 00 big-endian)"
                ),
            ));
        }
    };
    decode_from(registry, def, dt, bytes, 4, big_endian)
}

/// Like [`decode`], for a payload whose encapsulation header a DDS stack has already read
/// (`big_endian` from it).
pub fn decode_body(registry: &Registry, ros_type: &str, body: &[u8], big_endian: bool) -> Result<ArrayRef, CdrError> {
    let def = lookup(registry, ros_type)?;
    let dt = registry
        .data_type(ros_type)
        .ok_or_else(|| error(ros_type, "no Arrow layout"))?;
    decode_from(registry, def, dt, body, 0, big_endian)
}

fn decode_from(
    registry: &Registry,
    def: &MsgDef,
    dt: &DataType,
    bytes: &[u8],
    base: usize,
    big_endian: bool,
) -> Result<ArrayRef, CdrError> {
    let mut r = Reader {
        bytes,
        at: base,
        base,
        big_endian,
    };
    let mut col = Col::for_type(dt);
    r.element(registry, def, &mut col)?;
    let data = col.finish(dt).map_err(|e| error(&def.name, e))?;
    Ok(make_array(data))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Where the body starts (alignment counts from there).
    base: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn align(&mut self, n: usize) {
        let body = self.at - self.base;
        self.at += (n - body % n) % n;
    }

    fn take(&mut self, n: usize, at: &dyn Fn() -> String) -> Result<&'a [u8], CdrError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                error(
                    &at(),
                    format!(
                        "truncated: {n} bytes needed at offset {}, the payload has {}",
                        self.at,
                        self.bytes.len()
                    ),
                )
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self, at: &dyn Fn() -> String) -> Result<u32, CdrError> {
        self.align(4);
        let b: [u8; 4] = self.take(4, at)?.try_into().map_err(|_| error(&at(), "truncated"))?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    /// One message of `def` into `col` (a struct column).
    fn element(&mut self, registry: &Registry, def: &MsgDef, col: &mut Col) -> Result<(), CdrError> {
        let Col::Struct { fields, len } = col else {
            return Err(error(&def.name, "layout mismatch (not a struct)"));
        };
        for (f, c) in def.fields.iter().zip(fields.iter_mut()) {
            let at = || format!("{}.{}", def.name, f.name);
            match f.ty.array {
                ArrayKind::Single => self.elements(registry, &f.ty, c, 1, &at)?,
                ArrayKind::Fixed(n) => {
                    let Col::Fixed { child, .. } = c else {
                        return Err(error(&at(), "layout mismatch (not a fixed-size list)"));
                    };
                    self.elements(registry, &f.ty, child, n, &at)?;
                }
                ArrayKind::Bounded(_) | ArrayKind::Unbounded => {
                    let count = self.u32(&at)? as usize;
                    if let ArrayKind::Bounded(b) = f.ty.array
                        && count > b
                    {
                        return Err(error(&at(), format!("{count} elements, more than its bound {b}")));
                    }
                    // Every element takes at least one byte (a string four): a count the rest of
                    // the payload cannot hold is refused before anything is allocated.
                    let least = match &f.ty.base {
                        BaseType::Primitive(p) => width(*p).unwrap_or(4),
                        BaseType::Message(_) => 1,
                    };
                    if count.saturating_mul(least) > self.remaining() {
                        return Err(error(
                            &at(),
                            format!("truncated: {count} elements announced, {} bytes left", self.remaining()),
                        ));
                    }
                    let Col::List { offsets, child } = c else {
                        return Err(error(&at(), "layout mismatch (not a list)"));
                    };
                    self.elements(registry, &f.ty, child, count, &at)?;
                    let last = offsets.last().copied().unwrap_or(0);
                    let next = i32::try_from(last as usize + count).map_err(|_| error(&at(), "too many elements"))?;
                    offsets.push(next);
                }
            }
        }
        *len += 1;
        Ok(())
    }

    /// `count` elements of the field's element type into `col`.
    fn elements(
        &mut self,
        registry: &Registry,
        ty: &FieldType,
        col: &mut Col,
        count: usize,
        at: &dyn Fn() -> String,
    ) -> Result<(), CdrError> {
        match (&ty.base, col) {
            (BaseType::Message(m), col) => {
                let def = lookup(registry, m)?;
                for _ in 0..count {
                    self.element(registry, def, col)?;
                }
            }
            (BaseType::Primitive(Primitive::String), Col::Str { offsets, bytes }) => {
                for _ in 0..count {
                    let n = self.u32(at)? as usize;
                    let raw = self.take(n, at)?;
                    // Length 0 (no NUL at all) is sent by some writers for an empty string.
                    let text = match raw.split_last() {
                        None => &[][..],
                        Some((0, text)) => text,
                        Some(_) => return Err(error(&at(), "a string without its terminating NUL")),
                    };
                    let text = std::str::from_utf8(text)
                        .map_err(|e| error(&at(), format!("a string that is not UTF-8: {e}")))?;
                    if let Some(b) = ty.string_bound
                        && text.len() > b
                    {
                        return Err(error(
                            &at(),
                            format!("a string of {} bytes, more than its bound {b}", text.len()),
                        ));
                    }
                    bytes.extend_from_slice(text.as_bytes());
                    let end = i32::try_from(bytes.len()).map_err(|_| error(&at(), "strings too long"))?;
                    offsets.push(end);
                }
            }
            (BaseType::Primitive(Primitive::Bool), Col::Bool(bits)) => {
                for &b in self.take(count, at)? {
                    if b > 1 {
                        return Err(error(&at(), format!("a bool of value {b}")));
                    }
                    bits.append(b == 1);
                }
            }
            (BaseType::Primitive(p), Col::Prim { width: w, bytes, len }) if width(*p) == Some(*w) => {
                self.align(*w);
                let n = count.checked_mul(*w).ok_or_else(|| error(&at(), "too many elements"))?;
                let raw = self.take(n, at)?;
                if self.big_endian == cfg!(target_endian = "little") && *w > 1 {
                    for chunk in raw.chunks_exact(*w) {
                        bytes.extend(chunk.iter().rev().copied());
                    }
                } else {
                    // One block.
                    bytes.extend_from_slice(raw);
                }
                *len += count;
            }
            _ => return Err(error(&at(), format!("{ty} is not supported by the CDR codec"))),
        }
        Ok(())
    }
}

/// A column being decoded, shaped like the Arrow type it becomes.
enum Col {
    Prim {
        width: usize,
        bytes: MutableBuffer,
        len: usize,
    },
    Bool(BooleanBufferBuilder),
    Str {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
    Struct {
        fields: Vec<Col>,
        len: usize,
    },
    List {
        offsets: Vec<i32>,
        child: Box<Col>,
    },
    Fixed {
        n: usize,
        child: Box<Col>,
    },
    /// A type the codec does not handle (refused when reached).
    Other,
}

impl Col {
    fn for_type(dt: &DataType) -> Col {
        match dt {
            DataType::Struct(fields) => Col::Struct {
                fields: fields.iter().map(|f| Col::for_type(f.data_type())).collect(),
                len: 0,
            },
            DataType::List(f) => Col::List {
                offsets: vec![0],
                child: Box::new(Col::for_type(f.data_type())),
            },
            DataType::FixedSizeList(f, n) => Col::Fixed {
                n: (*n).max(1) as usize,
                child: Box::new(Col::for_type(f.data_type())),
            },
            DataType::Boolean => Col::Bool(BooleanBufferBuilder::new(0)),
            DataType::Utf8 => Col::Str {
                offsets: vec![0],
                bytes: Vec::new(),
            },
            t => match t.primitive_width() {
                Some(width) => Col::Prim {
                    width,
                    bytes: MutableBuffer::new(0),
                    len: 0,
                },
                None => Col::Other,
            },
        }
    }

    fn len(&self) -> usize {
        match self {
            Col::Prim { len, .. } | Col::Struct { len, .. } => *len,
            Col::Bool(b) => b.len(),
            Col::Str { offsets, .. } | Col::List { offsets, .. } => offsets.len() - 1,
            Col::Fixed { n, child } => child.len() / n,
            Col::Other => 0,
        }
    }

    /// The Arrow data (validated by arrow).
    fn finish(self, dt: &DataType) -> Result<ArrayData, String> {
        let builder = match (self, dt) {
            (Col::Prim { bytes, len, .. }, dt) => ArrayData::builder(dt.clone()).len(len).add_buffer(bytes.into()),
            (Col::Bool(mut bits), dt) => {
                let len = bits.len();
                ArrayData::builder(dt.clone())
                    .len(len)
                    .add_buffer(bits.finish().into_inner())
            }
            (Col::Str { offsets, bytes }, dt) => ArrayData::builder(dt.clone())
                .len(offsets.len() - 1)
                .add_buffer(Buffer::from_vec(offsets))
                .add_buffer(Buffer::from_vec(bytes)),
            (Col::Struct { fields, len }, DataType::Struct(defs)) => {
                let children = fields
                    .into_iter()
                    .zip(defs.iter())
                    .map(|(c, f)| c.finish(f.data_type()))
                    .collect::<Result<Vec<_>, _>>()?;
                ArrayData::builder(dt.clone()).len(len).child_data(children)
            }
            (Col::List { offsets, child }, DataType::List(f)) => {
                let child = child.finish(f.data_type())?;
                ArrayData::builder(dt.clone())
                    .len(offsets.len() - 1)
                    .add_buffer(Buffer::from_vec(offsets))
                    .child_data(vec![child])
            }
            (Col::Fixed { n, child }, DataType::FixedSizeList(f, _)) => {
                let len = child.len() / n;
                let child = child.finish(f.data_type())?;
                ArrayData::builder(dt.clone()).len(len).child_data(vec![child])
            }
            (_, dt) => return Err(format!("{dt} is not supported by the CDR codec")),
        };
        builder.build().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Classification, Header, Image, Int64, LaserScan, Message, Point, Pose, Quaternion, StringMsg, Time, Twist,
        Vector3,
    };

    fn reg() -> &'static Registry {
        Registry::builtin()
    }

    fn header() -> Header {
        Header {
            stamp: Time {
                sec: 1_700_000_000,
                nanosec: 123_456_789,
            },
            frame_id: "laser_frame".into(),
        }
    }

    /// One message of every shipped type.
    fn samples() -> Vec<(&'static str, ArrayRef)> {
        let scan = LaserScan {
            header: header(),
            angle_min: -1.5,
            angle_max: 1.5,
            angle_increment: 0.01,
            time_increment: 0.0,
            scan_time: 0.1,
            range_min: 0.1,
            range_max: 10.0,
            ranges: (0..300).map(|i| i as f32 * 0.03).collect(),
            intensities: vec![],
        };
        let pixels: Vec<u8> = (0..640 * 480 * 3).map(|i| (i % 253) as u8).collect();
        vec![
            (
                "geometry_msgs/msg/Twist",
                Twist {
                    linear: Vector3 {
                        x: 0.5,
                        y: 0.0,
                        z: -1.0,
                    },
                    angular: Vector3 {
                        x: 0.0,
                        y: 0.25,
                        z: 1e-9,
                    },
                }
                .to_arrow()
                .unwrap(),
            ),
            ("sensor_msgs/msg/LaserScan", scan.to_arrow().unwrap()),
            (
                "sensor_msgs/msg/Image",
                Image::rgb8(header(), 640, 480, pixels).to_arrow().unwrap(),
            ),
            (
                "sensor_msgs/msg/Image",
                Image::rgb8(header(), 4, 2, (0..24).collect()).to_arrow().unwrap(),
            ),
            (
                "std_msgs/msg/String",
                StringMsg {
                    data: "héllo, ROS".into(),
                }
                .to_arrow()
                .unwrap(),
            ),
            (
                "std_msgs/msg/String",
                StringMsg { data: String::new() }.to_arrow().unwrap(),
            ),
            ("std_msgs/msg/Int64", Int64 { data: -42 }.to_arrow().unwrap()),
            ("std_msgs/msg/Header", header().to_arrow().unwrap()),
            (
                "builtin_interfaces/msg/Time",
                Time { sec: -5, nanosec: 7 }.to_arrow().unwrap(),
            ),
            (
                "geometry_msgs/msg/Pose",
                Pose {
                    position: Point { x: 1.0, y: 2.0, z: 3.0 },
                    orientation: Quaternion::from_yaw(0.7),
                }
                .to_arrow()
                .unwrap(),
            ),
            (
                "quiver_msgs/msg/Classification",
                Classification {
                    header: header(),
                    class_id: 2,
                    label: "obstacle_right".into(),
                    confidence: 0.875,
                    probabilities: vec![0.1, 0.025, 0.875],
                }
                .to_arrow()
                .unwrap(),
            ),
        ]
    }

    #[test]
    fn every_shipped_type_round_trips() {
        let covered: std::collections::BTreeSet<String> = samples().iter().map(|(t, _)| normalize(t)).collect();
        let shipped: std::collections::BTreeSet<String> = reg().names().map(String::from).collect();
        let missing: Vec<_> = shipped.difference(&covered).collect();
        // Nested-only types are covered through their parents; every top-level one has a sample.
        for name in &missing {
            assert!(
                [
                    "geometry_msgs/Vector3",
                    "geometry_msgs/Point",
                    "geometry_msgs/Quaternion"
                ]
                .contains(&name.as_str()),
                "no sample for {name}"
            );
        }
        for (ty, array) in samples() {
            let bytes = encode(reg(), ty, array.as_ref(), 0).unwrap();
            assert_eq!(&bytes[..4], &CDR_LE);
            let back = decode(reg(), ty, &bytes).unwrap();
            assert_eq!(&back, &array, "{ty}");
            let body = encode_body(reg(), ty, array.as_ref(), 0).unwrap();
            assert_eq!(body, bytes[4..], "{ty}: the body is the payload after the header");
            assert_eq!(&decode_body(reg(), ty, &body, false).unwrap(), &array, "{ty}");
        }
    }

    #[test]
    fn known_bytes() {
        // Twist: six float64, the first at body offset 0 (already 8-aligned).
        let twist = Twist {
            linear: Vector3 { x: 1.0, y: 2.0, z: 3.0 },
            angular: Vector3 { x: 4.0, y: 5.0, z: 6.0 },
        }
        .to_arrow()
        .unwrap();
        let mut want = CDR_LE.to_vec();
        for v in [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(encode(reg(), "geometry_msgs/Twist", twist.as_ref(), 0).unwrap(), want);

        // String: u32 length with the NUL, the bytes, the NUL.
        let s = StringMsg { data: "hi".into() }.to_arrow().unwrap();
        assert_eq!(
            encode(reg(), "std_msgs/String", s.as_ref(), 0).unwrap(),
            [0, 1, 0, 0, 3, 0, 0, 0, b'h', b'i', 0]
        );

        // Header then a float64: the string ends at body offset 4+4+4+6 = 18, padded to 24.
        let mut r = Registry::builtin().clone();
        r.add(
            "t_msgs/Stamped",
            "Stamped.msg",
            "std_msgs/Header header\nfloat64 v\nuint8[] b\nint16 s\n",
        )
        .unwrap();
        let dt = r.data_type("t_msgs/Stamped").unwrap().clone();
        let bytes = [
            &CDR_LE[..],
            &7i32.to_le_bytes(),
            &8u32.to_le_bytes(),
            &6u32.to_le_bytes(),
            b"frame\0",
            &[0u8; 6],
            &2.5f64.to_le_bytes(),
            &3u32.to_le_bytes(),
            &[9u8, 8, 7],
            &[0u8; 1],
            &(-2i16).to_le_bytes(),
        ]
        .concat();
        let decoded = decode(&r, "t_msgs/Stamped", &bytes).unwrap();
        assert_eq!(decoded.data_type(), &dt);
        assert_eq!(encode(&r, "t_msgs/Stamped", decoded.as_ref(), 0).unwrap(), bytes);
    }

    #[test]
    fn big_endian_payloads_are_read() {
        let mut bytes = CDR_BE.to_vec();
        for v in [1.0f64, -2.0, 0.5] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let v = decode(reg(), "geometry_msgs/Vector3", &bytes).unwrap();
        assert_eq!(
            Vector3::from_arrow(v.as_ref()).unwrap(),
            Vector3 {
                x: 1.0,
                y: -2.0,
                z: 0.5
            }
        );
    }

    #[test]
    fn fixed_and_bounded_arrays_and_strings() {
        let mut r = Registry::builtin().clone();
        r.add(
            "t_msgs/Arrays",
            "Arrays.msg",
            "float64[3] v\ngeometry_msgs/Point[2] pts\nint32[<=2] small\nstring<=3 s\nbool[] flags\nstring[] names\n",
        )
        .unwrap();
        let mut bytes = CDR_LE.to_vec();
        for v in [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&10i32.to_le_bytes());
        bytes.extend_from_slice(&11i32.to_le_bytes());
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(b"abc\0");
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 0, 1, 0]); // three bools + padding
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(b"x\0\0\0");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(b"\0");
        let a = decode(&r, "t_msgs/Arrays", &bytes).unwrap();
        assert_eq!(encode(&r, "t_msgs/Arrays", a.as_ref(), 0).unwrap(), bytes);

        // Bounds hold both ways.
        let mut over = bytes.clone();
        over[4 + 72..4 + 76].copy_from_slice(&3u32.to_le_bytes());
        let e = decode(&r, "t_msgs/Arrays", &over).unwrap_err();
        assert_eq!(e.to_string(), "t_msgs/Arrays.small: 3 elements, more than its bound 2");
        let mut long = bytes.clone();
        let at = 4 + 72 + 12;
        long[at..at + 4].copy_from_slice(&5u32.to_le_bytes());
        long.splice(at + 4..at + 8, b"abcd\0".iter().copied());
        let e = decode(&r, "t_msgs/Arrays", &long).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t_msgs/Arrays.s: a string of 4 bytes, more than its bound 3"),
            "{e}"
        );
    }

    #[test]
    fn bad_payloads_are_errors_never_panics() {
        let e = decode(reg(), "geometry_msgs/Twist", &[0, 7, 0, 0, 1, 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "geometry_msgs/Twist: encapsulation header [00, 07, 00, 00] is not plain CDR (00 01 00 00 little-endian or 00 00 00 00 big-endian)"
        );
        let e = decode(reg(), "geometry_msgs/Twist", &[0, 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "geometry_msgs/Twist: truncated: 2 bytes, not even the 4-byte header"
        );
        let e = decode(reg(), "nav_msgs/Odometry", &CDR_LE).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("nav_msgs/Odometry: unknown message type (known: builtin_interfaces/Time, "),
            "{e}"
        );
        // A huge count is refused before anything is allocated.
        let mut huge = CDR_LE.to_vec();
        huge.extend_from_slice(&[0; 16]); // header: stamp, frame_id ""
        huge.extend_from_slice(&[0; 28]); // seven float32
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = decode(reg(), "sensor_msgs/LaserScan", &huge).unwrap_err();
        assert!(e.message.contains("4294967295 elements announced"), "{e}");

        // Every truncation of every sample, and random corruptions.
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (ty, array) in samples() {
            let bytes = encode(reg(), ty, array.as_ref(), 0).unwrap();
            if bytes.len() < 5000 {
                for n in 0..bytes.len() {
                    // A prefix can be valid only when the rest were trailing bytes (none here).
                    assert!(
                        decode(reg(), ty, &bytes[..n]).is_err(),
                        "{ty}: prefix of {n} bytes decoded"
                    );
                }
            }
            for _ in 0..2000 {
                let mut bad = bytes[..bytes.len().min(4096)].to_vec();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % bad.len();
                    bad[i] = next() as u8;
                }
                let _ = decode(reg(), ty, &bad);
            }
        }
    }

    #[test]
    fn wrong_layouts_and_unsupported_types_are_refused() {
        let twist = Twist::default().to_arrow().unwrap();
        let e = encode(reg(), "geometry_msgs/Pose", twist.as_ref(), 0).unwrap_err();
        assert!(
            e.to_string().starts_with("geometry_msgs/Pose: the data is Struct("),
            "{e}"
        );
        let e = encode(reg(), "geometry_msgs/Twist", twist.as_ref(), 1).unwrap_err();
        assert_eq!(e.to_string(), "geometry_msgs/Twist: no row 1 in 1 rows");
        let mut r = Registry::builtin().clone();
        r.add("t_msgs/Wide", "Wide.msg", "wstring w\n").unwrap();
        assert_eq!(
            check_supported(&r, "t_msgs/Wide").unwrap_err().to_string(),
            "t_msgs/Wide.w: wstring fields are not supported by the CDR codec yet"
        );
        assert!(check_supported(reg(), "sensor_msgs/msg/Image").is_ok());
        assert_eq!(
            dds_type_name("geometry_msgs/msg/Twist"),
            "geometry_msgs::msg::dds_::Twist_"
        );
        assert_eq!(dds_type_name("sensor_msgs/Image"), "sensor_msgs::msg::dds_::Image_");
    }
}
