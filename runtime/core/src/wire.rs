//! The wire format of a DataPack between processes and machines: identity, header, the Arrow type
//! and layout, then the array's buffers, each 64-byte aligned within the frame. A receiver that
//! holds the frame in 64-byte-aligned memory (a shared-memory buffer) gets arrays whose buffers
//! point into the frame: no copy. Elsewhere, misaligned buffers are copied once (arrow requires
//! aligned buffers).
//!
//! ```text
//! 0   "QVW1"
//! 4   u32 meta_len
//! 8   meta (meta_len bytes):
//!       u64 seq, u64 timestamp_ns, u8 is_updated, u8 has_data,
//!       4 x (u16 len, utf-8): name, msg_type, source_node, source_port,
//!       if has_data: type, node (recursive, below), u32 n_buffers, n_buffers x (u64 offset, u64 len)
//! body  starts at align64(8 + meta_len); buffer offsets are relative to the body
//!
//! type: u8 tag; List/FixedSizeList(+u32 size): item type, u8 item nullable;
//!       Struct: u16 n, n x (u16 len, name, u8 nullable, type)
//! node: u64 len, u64 null_count, u32 validity buffer (u32::MAX: none),
//!       the data buffers' indices (as many as the type's layout has), children nodes
//! ```
//!
//! Everything read from a frame is untrusted: every length and index is bounds-checked, nesting
//! is limited, and the decoded array passes arrow's full validation (offsets, UTF-8, child
//! lengths) before anyone sees it. A malformed frame is an error, never a panic or an
//! out-of-bounds read.

use std::sync::Arc;

use arrow_array::{ArrayRef, make_array};
use arrow_buffer::{Buffer, NullBuffer};
use arrow_data::{ArrayData, ArrayDataBuilder};
use arrow_schema::{DataType, Field, Fields};
use quiver_operator::{Header, PackId};

const MAGIC: &[u8; 4] = b"QVW1";
const ALIGN: usize = 64;
const MAX_DEPTH: usize = 32;
const NONE: u32 = u32::MAX;

/// A frame that cannot be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the frame is truncated ({0})")]
    Truncated(&'static str),
    #[error("not a quiver frame (bad magic)")]
    BadMagic,
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("data type {0} cannot be sent between processes yet")]
    Unsupported(String),
    #[error("the array is invalid: {0}")]
    Invalid(String),
}

/// A decoded DataPack.
#[derive(Clone, Debug)]
pub struct WirePack {
    pub id: PackId,
    pub header: Header,
    pub data: Option<ArrayRef>,
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

// ---------------------------------------------------------------- encoding

struct Encoder {
    meta: Vec<u8>,
    buffers: Vec<Buffer>,
}

impl Encoder {
    fn u8(&mut self, v: u8) {
        self.meta.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.meta.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.meta.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.meta.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) -> Result<(), WireError> {
        let len = u16::try_from(s.len()).map_err(|_| WireError::Malformed(format!("string of {} bytes", s.len())))?;
        self.u16(len);
        self.meta.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn buffer(&mut self, b: Buffer) -> u32 {
        self.buffers.push(b);
        (self.buffers.len() - 1) as u32
    }

    fn data_type(&mut self, t: &DataType) -> Result<(), WireError> {
        let tag = tag_of(t).ok_or_else(|| WireError::Unsupported(t.to_string()))?;
        self.u8(tag);
        match t {
            DataType::List(f) => {
                self.data_type(f.data_type())?;
                self.u8(u8::from(f.is_nullable()));
            }
            DataType::FixedSizeList(f, n) => {
                self.u32(*n as u32);
                self.data_type(f.data_type())?;
                self.u8(u8::from(f.is_nullable()));
            }
            DataType::Struct(fields) => {
                self.u16(fields.len() as u16);
                for f in fields {
                    self.str(f.name())?;
                    self.u8(u8::from(f.is_nullable()));
                    self.data_type(f.data_type())?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `data` has offset 0 (normalised by the caller).
    fn node(&mut self, data: &ArrayData) -> Result<(), WireError> {
        self.u64(data.len() as u64);
        self.u64(data.null_count() as u64);
        let validity = match data.nulls() {
            Some(n) if n.null_count() > 0 => self.buffer(n.buffer().clone()),
            _ => NONE,
        };
        self.u32(validity);
        for b in data.buffers() {
            let i = self.buffer(b.clone());
            self.u32(i);
        }
        for child in data.child_data() {
            self.node(child)?;
        }
        Ok(())
    }
}

fn tag_of(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Null => 0,
        DataType::Boolean => 1,
        DataType::Int8 => 2,
        DataType::Int16 => 3,
        DataType::Int32 => 4,
        DataType::Int64 => 5,
        DataType::UInt8 => 6,
        DataType::UInt16 => 7,
        DataType::UInt32 => 8,
        DataType::UInt64 => 9,
        DataType::Float32 => 10,
        DataType::Float64 => 11,
        DataType::Utf8 => 12,
        DataType::Binary => 13,
        DataType::List(_) => 14,
        DataType::FixedSizeList(_, _) => 15,
        DataType::Struct(_) => 16,
        _ => return None,
    })
}

/// Whether every level of `data` starts at offset 0 with unsliced validity (what `node` sends).
fn is_plain(data: &ArrayData) -> bool {
    data.offset() == 0 && data.nulls().is_none_or(|n| n.offset() == 0) && data.child_data().iter().all(is_plain)
}

/// The frame size and the pieces to write: (meta, buffers). Split from writing so a transport
/// can allocate the destination (a shared-memory buffer) first.
pub struct Encoded {
    meta: Vec<u8>,
    buffers: Vec<Buffer>,
}

impl Encoded {
    fn body_start(&self) -> usize {
        align(8 + self.meta.len())
    }

    /// Bytes the frame needs.
    pub fn len(&self) -> usize {
        self.buffers
            .iter()
            .fold(self.body_start(), |end, b| align(end) + b.len())
    }

    /// A frame always has its magic and header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame into `out` (exactly `self.len()` bytes; for zero-copy receipt `out`
    /// should be 64-byte aligned).
    pub fn write_to(&self, out: &mut [u8]) -> Result<(), WireError> {
        if out.len() != self.len() {
            return Err(WireError::Malformed(format!(
                "destination of {} bytes for a {}-byte frame",
                out.len(),
                self.len()
            )));
        }
        out.fill(0);
        out[0..4].copy_from_slice(MAGIC);
        out[4..8].copy_from_slice(&(self.meta.len() as u32).to_le_bytes());
        out[8..8 + self.meta.len()].copy_from_slice(&self.meta);
        let body = self.body_start();
        let mut at = body;
        for b in &self.buffers {
            at = align(at);
            out[at..at + b.len()].copy_from_slice(b.as_slice());
            at += b.len();
        }
        Ok(())
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        // Cannot fail: the length is the one it asks for.
        let _ = self.write_to(&mut v);
        v
    }
}

/// Encodes a DataPack.
pub fn encode(id: &PackId, header: &Header, data: Option<&ArrayRef>) -> Result<Encoded, WireError> {
    let mut e = describe(id, header, data)?;
    if data.is_some() {
        // Buffers one after the other from the body's start, each aligned; `len` and `write_to`
        // follow the same rule, so they agree.
        let mut at = 0usize;
        let mut offsets = Vec::with_capacity(e.buffers.len());
        for b in &e.buffers {
            at = align(at);
            offsets.push((at, b.len()));
            at += b.len();
        }
        e.offsets(&offsets);
    }
    Ok(Encoded {
        meta: e.meta,
        buffers: e.buffers,
    })
}

/// The meta of a DataPack up to (not including) its buffer table, and the buffers.
fn describe(id: &PackId, header: &Header, data: Option<&ArrayRef>) -> Result<Encoder, WireError> {
    let mut e = Encoder {
        meta: Vec::with_capacity(128),
        buffers: Vec::new(),
    };
    e.u64(header.seq);
    e.u64(header.timestamp_ns);
    e.u8(u8::from(header.is_updated));
    e.u8(u8::from(data.is_some()));
    for s in [&id.name, &id.msg_type, &id.source_node, &id.source_port] {
        e.str(s)?;
    }
    if let Some(array) = data {
        let mut d = array.to_data();
        if !is_plain(&d) {
            // A sliced array: send a compact copy (its buffers start at offset 0).
            let mut copy = arrow_data::transform::MutableArrayData::new(vec![&d], false, d.len());
            copy.try_extend(0, 0, d.len())
                .map_err(|err| WireError::Invalid(err.to_string()))?;
            d = copy.freeze();
        }
        e.data_type(d.data_type())?;
        e.node(&d)?;
    }
    Ok(e)
}

impl Encoder {
    /// The buffer table: (offset from the body's start, length) per buffer.
    fn offsets(&mut self, offsets: &[(usize, usize)]) {
        self.u32(offsets.len() as u32);
        for &(o, l) in offsets {
            self.u64(o as u64);
            self.u64(l as u64);
        }
    }
}

/// A frame in memory whose data region a producer has already written (see [`encode_in_place`]).
#[derive(Clone, Copy, Debug)]
pub struct FrameSpace {
    /// Address of the frame's first byte and the frame's length.
    pub base: usize,
    pub len: usize,
    /// Where the producer's region starts in the frame, and its length. Everything before it
    /// is free for the magic, the meta and the pack's other (small) buffers.
    pub region_at: usize,
    pub region_len: usize,
}

/// What to write into a [`FrameSpace`] to complete the frame: `(frame offset, bytes)` pieces,
/// all before the producer's region.
#[derive(Debug)]
pub struct Placed {
    pub head: Vec<u8>,
    pub pieces: Vec<(usize, Buffer)>,
}

/// Encodes a DataPack around buffers that already sit in the region of `space`: those are
/// referenced where they are; the magic, the meta and every other buffer go before the region.
/// `None` when no buffer lies in the region (nothing to gain) or the rest does not fit before
/// it; the caller then encodes a fresh frame.
pub fn encode_in_place(
    id: &PackId,
    header: &Header,
    data: &ArrayRef,
    space: &FrameSpace,
) -> Result<Option<Placed>, WireError> {
    let mut e = describe(id, header, Some(data))?;
    let region = space.base + space.region_at..space.base + space.region_at + space.region_len;
    let inside = |b: &Buffer| {
        let start = b.as_ptr() as usize;
        !b.is_empty() && region.contains(&start) && start + b.len() <= region.end
    };
    if !e.buffers.iter().any(inside) {
        return Ok(None);
    }
    // The meta's final length: what it has plus the table (u32 count + 16 bytes a buffer).
    let body = align(8 + e.meta.len() + 4 + 16 * e.buffers.len());
    if body > space.region_at {
        return Ok(None);
    }
    let mut at = body;
    let mut offsets = Vec::with_capacity(e.buffers.len());
    let mut pieces = Vec::new();
    for b in &e.buffers {
        let frame_offset = if inside(b) {
            b.as_ptr() as usize - space.base
        } else {
            at = align(at);
            let here = at;
            at += b.len();
            pieces.push((here, b.clone()));
            here
        };
        offsets.push((frame_offset - body, b.len()));
    }
    if at > space.region_at {
        return Ok(None);
    }
    e.offsets(&offsets);
    debug_assert_eq!(align(8 + e.meta.len()), body);
    let mut head = Vec::with_capacity(8 + e.meta.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&(e.meta.len() as u32).to_le_bytes());
    head.extend_from_slice(&e.meta);
    Ok(Some(Placed { head, pieces }))
}

// ---------------------------------------------------------------- decoding

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(WireError::Truncated(what))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self, what: &'static str) -> Result<String, WireError> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed(format!("{what} is not UTF-8")))
    }

    fn data_type(&mut self, depth: usize) -> Result<DataType, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::Malformed("types nested too deep".into()));
        }
        let tag = self.u8("type")?;
        Ok(match tag {
            0 => DataType::Null,
            1 => DataType::Boolean,
            2 => DataType::Int8,
            3 => DataType::Int16,
            4 => DataType::Int32,
            5 => DataType::Int64,
            6 => DataType::UInt8,
            7 => DataType::UInt16,
            8 => DataType::UInt32,
            9 => DataType::UInt64,
            10 => DataType::Float32,
            11 => DataType::Float64,
            12 => DataType::Utf8,
            13 => DataType::Binary,
            14 => {
                let item = self.data_type(depth + 1)?;
                let nullable = self.u8("list item")? != 0;
                DataType::List(Arc::new(Field::new("item", item, nullable)))
            }
            15 => {
                let n = self.u32("fixed list size")?;
                let n = i32::try_from(n).map_err(|_| WireError::Malformed(format!("fixed list size {n}")))?;
                let item = self.data_type(depth + 1)?;
                let nullable = self.u8("list item")? != 0;
                DataType::FixedSizeList(Arc::new(Field::new("item", item, nullable)), n)
            }
            16 => {
                let n = self.u16("struct fields")? as usize;
                let mut fields = Vec::with_capacity(n.min(256));
                for _ in 0..n {
                    let name = self.str("field name")?;
                    let nullable = self.u8("field")? != 0;
                    fields.push(Field::new(name, self.data_type(depth + 1)?, nullable));
                }
                DataType::Struct(Fields::from(fields))
            }
            other => return Err(WireError::Malformed(format!("unknown type tag {other}"))),
        })
    }
}

/// Data buffers per type (validity excluded), as arrow lays them out.
fn data_buffers(t: &DataType) -> usize {
    match t {
        DataType::Null | DataType::Struct(_) | DataType::FixedSizeList(_, _) => 0,
        DataType::Utf8 | DataType::Binary => 2,
        _ => 1,
    }
}

struct NodeSpec {
    len: usize,
    null_count: usize,
    validity: u32,
    buffers: Vec<u32>,
    children: Vec<NodeSpec>,
}

fn read_node(c: &mut Cursor<'_>, t: &DataType, depth: usize) -> Result<NodeSpec, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::Malformed("arrays nested too deep".into()));
    }
    let len = usize::try_from(c.u64("length")?).map_err(|_| WireError::Malformed("length".into()))?;
    let null_count = usize::try_from(c.u64("null count")?).map_err(|_| WireError::Malformed("null count".into()))?;
    let validity = c.u32("validity")?;
    let mut buffers = Vec::new();
    for _ in 0..data_buffers(t) {
        buffers.push(c.u32("buffer index")?);
    }
    let children = match t {
        DataType::List(f) | DataType::FixedSizeList(f, _) => vec![read_node(c, f.data_type(), depth + 1)?],
        DataType::Struct(fields) => fields
            .iter()
            .map(|f| read_node(c, f.data_type(), depth + 1))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok(NodeSpec {
        len,
        null_count,
        validity,
        buffers,
        children,
    })
}

fn build(t: &DataType, n: &NodeSpec, buffers: &[Buffer]) -> Result<ArrayData, WireError> {
    let get = |i: u32| -> Result<Buffer, WireError> {
        buffers
            .get(i as usize)
            .cloned()
            .ok_or_else(|| WireError::Malformed(format!("buffer index {i} out of range")))
    };
    // arrow's validation panics (rather than refusing) when a fixed-size list's length times its
    // size overflows: refuse that first (fuzz/findings/wire-arrow-validation-panic).
    if let DataType::FixedSizeList(_, size) = t
        && n.len.checked_mul(usize::try_from(*size).unwrap_or(0)).is_none()
    {
        return Err(WireError::Malformed(format!(
            "a fixed-size list of {} lists of {size} values",
            n.len
        )));
    }
    let children: Vec<ArrayData> = match t {
        DataType::List(f) | DataType::FixedSizeList(f, _) => vec![build(f.data_type(), &n.children[0], buffers)?],
        DataType::Struct(fields) => fields
            .iter()
            .zip(&n.children)
            .map(|(f, c)| build(f.data_type(), c, buffers))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let nulls = if n.validity == NONE {
        None
    } else {
        let b = get(n.validity)?;
        if b.len() * 8 < n.len {
            return Err(WireError::Malformed(format!(
                "validity of {} bytes for {} values",
                b.len(),
                n.len
            )));
        }
        Some(NullBuffer::new(arrow_buffer::BooleanBuffer::new(b, 0, n.len)))
    };
    if nulls.as_ref().map_or(0, |x| x.null_count()) != n.null_count {
        return Err(WireError::Malformed(
            "null count does not match the validity bitmap".into(),
        ));
    }
    let data_buffers = n.buffers.iter().map(|&i| get(i)).collect::<Result<Vec<_>, _>>()?;
    // arrow's validation panics on a fixed-width buffer whose length is not a whole number of
    // elements; refuse those first.
    for (b, spec) in data_buffers.iter().zip(arrow_data::layout(t).buffers) {
        if let arrow_data::BufferSpec::FixedWidth { byte_width, .. } = spec
            && b.len() % byte_width != 0
        {
            return Err(WireError::Malformed(format!(
                "a buffer of {} bytes for {byte_width}-byte values",
                b.len()
            )));
        }
    }
    ArrayDataBuilder::new(t.clone())
        .len(n.len)
        .nulls(nulls)
        .buffers(data_buffers)
        .child_data(children)
        // Buffers that are not aligned in memory (a frame received into ordinary memory) are
        // copied; in aligned shared memory they are used in place.
        .align_buffers(true)
        .build()
        .map_err(|e| WireError::Invalid(e.to_string()))
}

/// Decodes a frame. The array's buffers are slices of `frame` (zero copy) where aligned.
pub fn decode(frame: &Buffer) -> Result<WirePack, WireError> {
    let bytes = frame.as_slice();
    let mut c = Cursor { bytes, at: 0 };
    if c.take(4, "magic")? != MAGIC {
        return Err(WireError::BadMagic);
    }
    let meta_len = c.u32("meta length")? as usize;
    let body = align(8usize.checked_add(meta_len).ok_or(WireError::Truncated("meta"))?);
    if 8 + meta_len > bytes.len() {
        return Err(WireError::Truncated("meta"));
    }
    let mut m = Cursor {
        bytes: &bytes[..8 + meta_len],
        at: 8,
    };
    let header = Header {
        seq: m.u64("seq")?,
        timestamp_ns: m.u64("timestamp")?,
        is_updated: m.u8("updated")? != 0,
    };
    let has_data = m.u8("has data")? != 0;
    let id = PackId {
        name: m.str("name")?,
        msg_type: m.str("message type")?,
        source_node: m.str("source node")?,
        source_port: m.str("source port")?,
    };
    let data = if has_data {
        let t = m.data_type(0)?;
        let node = read_node(&mut m, &t, 0)?;
        let n = m.u32("buffer count")? as usize;
        if n > 4096 {
            return Err(WireError::Malformed(format!("{n} buffers")));
        }
        let mut buffers = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = usize::try_from(m.u64("buffer offset")?).map_err(|_| WireError::Truncated("buffer"))?;
            let len = usize::try_from(m.u64("buffer length")?).map_err(|_| WireError::Truncated("buffer"))?;
            let start = body.checked_add(offset).ok_or(WireError::Truncated("buffer"))?;
            let end = start
                .checked_add(len)
                .filter(|&e| e <= bytes.len())
                .ok_or(WireError::Truncated("buffer"))?;
            buffers.push(frame.slice_with_length(start, end - start));
        }
        // Known layouts arrow's validation would panic on are refused above (`build`); any other
        // panic in arrow is caught here too, so a frame from outside is refused, never a panic of
        // the receiving callback. The fuzz target still sees such a panic: libFuzzer's hook
        // aborts on it before it is caught.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let array = build(&t, &node, &buffers)?;
            array.validate_full().map_err(|e| WireError::Invalid(e.to_string()))?;
            Ok(make_array(array))
        }));
        match checked {
            Ok(array) => Some(array?),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                return Err(WireError::Invalid(format!("arrow refused the layout: {why}")));
            }
        }
    } else {
        None
    };
    Ok(WirePack { id, header, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int32Array, StringArray};
    use quiver_msgs::{Classification, Header as MsgHeader, Image, LaserScan, Message, Pose, Quaternion, Twist};

    fn id() -> PackId {
        PackId::new("world", "scan", "sensor_msgs/LaserScan")
    }

    fn header() -> Header {
        Header {
            seq: 42,
            timestamp_ns: 1_700_000_000_000_000_001,
            is_updated: true,
        }
    }

    /// A frame in 64-byte aligned memory, as a shared-memory buffer would be.
    fn aligned(bytes: &[u8]) -> Buffer {
        let mut m = arrow_buffer::MutableBuffer::with_capacity(bytes.len());
        m.extend_from_slice(bytes);
        m.into()
    }

    fn round_trip(array: ArrayRef) -> ArrayRef {
        let frame = aligned(&encode(&id(), &header(), Some(&array)).unwrap().to_vec());
        let back = decode(&frame).unwrap();
        assert_eq!(back.id, id());
        assert_eq!(back.header, header());
        let data = back.data.unwrap();
        assert_eq!(&data, &array);
        data
    }

    fn samples() -> Vec<ArrayRef> {
        vec![
            LaserScan {
                ranges: vec![1.0, f32::NAN, f32::INFINITY, 3.5],
                ..LaserScan::default()
            }
            .to_arrow()
            .unwrap(),
            Image::rgb8(MsgHeader::at_ns(5, "cam"), 8, 4, (0..96).collect())
                .to_arrow()
                .unwrap(),
            Twist::default().to_arrow().unwrap(),
            Pose {
                orientation: Quaternion::from_yaw(1.0),
                ..Pose::default()
            }
            .to_arrow()
            .unwrap(),
            Classification {
                label: "clear".into(),
                probabilities: vec![0.9, 0.05, 0.05],
                ..Default::default()
            }
            .to_arrow()
            .unwrap(),
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")]).slice(1, 2)),
        ]
    }

    #[test]
    fn every_kind_of_message_round_trips() {
        for a in samples() {
            round_trip(a);
        }
        let frame = aligned(&encode(&id(), &header(), None).unwrap().to_vec());
        assert!(decode(&frame).unwrap().data.is_none(), "an empty DataPack");
    }

    #[test]
    fn decoding_aligned_memory_copies_nothing() {
        let pixels: Vec<u8> = vec![9; 640 * 480 * 3];
        let image = Image::rgb8(MsgHeader::default(), 640, 480, pixels).to_arrow().unwrap();
        let frame = aligned(&encode(&id(), &header(), Some(&image)).unwrap().to_vec());
        let back = decode(&frame).unwrap().data.unwrap();
        let view = quiver_msgs::ImageView::new(back.as_ref()).unwrap();
        let (lo, hi) = (frame.as_ptr() as usize, frame.as_ptr() as usize + frame.len());
        let p = view.data.as_ptr() as usize;
        assert!(p >= lo && p < hi, "the pixels are read in place, inside the frame");
    }

    #[test]
    fn truncated_frames_are_errors_never_panics() {
        for a in samples() {
            let bytes = encode(&id(), &header(), Some(&a)).unwrap().to_vec();
            for cut in 0..bytes.len() {
                assert!(
                    decode(&aligned(&bytes[..cut])).is_err(),
                    "a frame cut at {cut} of {} decoded",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn corrupted_frames_never_panic() {
        let mut rng = 0x1234_5678_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut ok, mut refused) = (0, 0);
        for a in samples() {
            let clean = encode(&id(), &header(), Some(&a)).unwrap().to_vec();
            for _ in 0..2000 {
                let mut bytes = clean.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = next() as u8;
                }
                match std::panic::catch_unwind(|| decode(&aligned(&bytes)).map(|p| p.data.map(|d| d.len()))) {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(_)) => refused += 1,
                    Err(_) => panic!("decoding a corrupted frame panicked"),
                }
            }
        }
        assert!(
            refused > 1000,
            "most corruptions are caught ({refused} refused, {ok} accepted)"
        );
    }

    /// Inputs the `wire` fuzz target found (fuzz/findings): each is refused, never a panic.
    #[test]
    fn fuzz_findings_are_refused() {
        let findings = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/findings");
        let mut n = 0;
        for entry in std::fs::read_dir(findings).unwrap() {
            let path = entry.unwrap().path();
            if !path.file_name().unwrap().to_string_lossy().starts_with("wire-") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| decode(&aligned(&bytes)).map(|p| p.data.map(|d| d.len())));
            match outcome {
                Ok(Err(_)) => n += 1,
                Ok(Ok(_)) => panic!("{} was accepted", path.display()),
                Err(_) => panic!("decoding {} panicked", path.display()),
            }
        }
        assert!(n > 0, "no wire findings in {findings}");
    }

    #[test]
    fn bad_magic_and_unsupported_types() {
        assert_eq!(decode(&aligned(b"XXXX\0\0\0\0")).unwrap_err(), WireError::BadMagic);
        let dict: ArrayRef = Arc::new(arrow_array::DictionaryArray::<arrow_array::types::Int8Type>::from_iter(
            ["a"],
        ));
        assert!(matches!(
            encode(&id(), &header(), Some(&dict)),
            Err(WireError::Unsupported(_))
        ));
    }

    #[test]
    fn in_place_frames_reference_the_written_region() {
        // A frame as a transport would lend it: the producer wrote an image's pixels at 4096.
        const AT: usize = 4096;
        let pixels: Vec<u8> = (0..640 * 480 * 3).map(|i| (i % 251) as u8).collect();
        let mut memory = arrow_buffer::MutableBuffer::from_len_zeroed(AT + pixels.len());
        memory.as_slice_mut()[AT..].copy_from_slice(&pixels);
        let frame: Buffer = memory.into();
        let space = FrameSpace {
            base: frame.as_ptr() as usize,
            len: frame.len(),
            region_at: AT,
            region_len: pixels.len(),
        };
        let image = Image {
            header: MsgHeader::default(),
            height: 480,
            width: 640,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: 1920,
            data: Vec::new(),
        };
        // The image with its pixels over the region, as an operator builds it.
        let array = image.to_arrow_over(frame.slice_with_length(AT, pixels.len())).unwrap();

        let placed = encode_in_place(&id(), &header(), &array, &space).unwrap().unwrap();
        // Everything but the pixels goes before them.
        assert!(placed.pieces.iter().all(|(at, b)| at + b.len() <= AT));
        let mut out = frame.as_slice().to_vec();
        out[..placed.head.len()].copy_from_slice(&placed.head);
        for (at, b) in &placed.pieces {
            out[*at..at + b.len()].copy_from_slice(b.as_slice());
        }
        let decoded = decode(&aligned(&out)).unwrap();
        assert_eq!(decoded.data.as_ref().unwrap(), &array);
        let back = Image::from_arrow(decoded.data.as_ref().unwrap().as_ref()).unwrap();
        assert_eq!(back.data, pixels);

        // Nothing in the region: not for in place.
        let other = round_trip(Arc::new(Int32Array::from(vec![1, 2])));
        assert!(encode_in_place(&id(), &header(), &other, &space).unwrap().is_none());
        // No room before the region for the meta: not either.
        let tight = FrameSpace { region_at: 64, ..space };
        assert!(encode_in_place(&id(), &header(), &array, &tight).unwrap().is_none());
    }
}
