//! Typed messages for operators: build a DataPack's array from a Rust struct, read one back, or
//! view the large arrays (scan ranges, image bytes) in place without copying.
//!
//! One message is one row of a `StructArray` whose type is exactly the registry's type for the
//! message (built from the `.msg` file), so typed code and definitions cannot drift apart.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type, UInt32Type};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, ListArray, PrimitiveArray, StringArray, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::Field;

use crate::Registry;

/// A DataPack's data does not hold the expected message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg_type}: {message}")]
pub struct MsgDataError {
    pub msg_type: String,
    pub message: String,
}

fn err(msg_type: &str, message: impl Into<String>) -> MsgDataError {
    MsgDataError {
        msg_type: msg_type.into(),
        message: message.into(),
    }
}

/// A message type with a Rust struct.
pub trait Message: Sized {
    /// `pkg/Type`.
    const TYPE: &'static str;
    /// One message as a one-row struct array. Vectors move into Arrow buffers without copying.
    fn to_arrow(self) -> Result<ArrayRef, MsgDataError> {
        Ok(Arc::new(self.to_struct()?))
    }
    /// The message as a one-row struct array (for nesting).
    fn to_struct(self) -> Result<StructArray, MsgDataError>;
    /// Reads message `row` of a struct array (copies).
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError>;
    /// Reads the only message of `array`.
    fn from_arrow(array: &dyn Array) -> Result<Self, MsgDataError> {
        Self::read(&Row::single(Self::TYPE, array)?)
    }
}

/// Builds a one-row struct of message type `ty` from its columns, in definition order.
pub fn build(ty: &str, columns: Vec<ArrayRef>) -> Result<StructArray, MsgDataError> {
    let fields = Registry::builtin()
        .fields(ty)
        .ok_or_else(|| err(ty, "not a known message type"))?;
    StructArray::try_new(fields.clone(), columns, None).map_err(|e| err(ty, e.to_string()))
}

pub fn col<T: ArrowPrimitiveType>(v: T::Native) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::from_iter_values([v]))
}

pub fn col_str(v: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![v]))
}

/// A one-row list column owning `values` (moved, not copied).
pub fn col_list<T: ArrowPrimitiveType>(values: Vec<T::Native>) -> ArrayRef {
    col_list_of::<T>(values.into())
}

/// A list column of one row over `values` as they are (no copy).
pub fn col_list_of<T: ArrowPrimitiveType>(values: arrow_buffer::ScalarBuffer<T::Native>) -> ArrayRef {
    let item = Arc::new(Field::new("item", T::DATA_TYPE, false));
    let len = values.len();
    let values: ArrayRef = Arc::new(PrimitiveArray::<T>::new(values, None));
    Arc::new(ListArray::new(item, OffsetBuffer::from_lengths([len]), values, None))
}

/// One message inside a struct array.
pub struct Row<'a> {
    ty: &'a str,
    array: &'a StructArray,
    row: usize,
}

impl<'a> Row<'a> {
    /// The only row of `array`, which must be a struct.
    pub fn single(ty: &'a str, array: &'a dyn Array) -> Result<Row<'a>, MsgDataError> {
        let s = array
            .as_struct_opt()
            .ok_or_else(|| err(ty, format!("expected a struct array, found {}", array.data_type())))?;
        if s.len() != 1 {
            return Err(err(ty, format!("expected one message, found {}", s.len())));
        }
        Ok(Row { ty, array: s, row: 0 })
    }

    fn column(&self, name: &str) -> Result<&'a ArrayRef, MsgDataError> {
        self.array
            .column_by_name(name)
            .ok_or_else(|| err(self.ty, format!("no field `{name}`")))
    }

    fn prim<T: ArrowPrimitiveType>(&self, name: &str) -> Result<T::Native, MsgDataError> {
        let c = self.column(name)?;
        let a = c.as_primitive_opt::<T>().ok_or_else(|| {
            err(
                self.ty,
                format!("field `{name}` is {}, expected {}", c.data_type(), T::DATA_TYPE),
            )
        })?;
        Ok(a.value(self.row))
    }

    pub fn f32(&self, name: &str) -> Result<f32, MsgDataError> {
        self.prim::<Float32Type>(name)
    }
    pub fn f64(&self, name: &str) -> Result<f64, MsgDataError> {
        self.prim::<Float64Type>(name)
    }
    pub fn i32(&self, name: &str) -> Result<i32, MsgDataError> {
        self.prim::<Int32Type>(name)
    }
    pub fn i64(&self, name: &str) -> Result<i64, MsgDataError> {
        self.prim::<Int64Type>(name)
    }
    pub fn u32(&self, name: &str) -> Result<u32, MsgDataError> {
        self.prim::<UInt32Type>(name)
    }
    pub fn u8(&self, name: &str) -> Result<u8, MsgDataError> {
        self.prim::<UInt8Type>(name)
    }

    pub fn str(&self, name: &str) -> Result<&'a str, MsgDataError> {
        let c = self.column(name)?;
        let a = c
            .as_string_opt::<i32>()
            .ok_or_else(|| err(self.ty, format!("field `{name}` is {}, expected Utf8", c.data_type())))?;
        Ok(a.value(self.row))
    }

    /// A nested message field.
    pub fn nested(&self, name: &str, ty: &'a str) -> Result<Row<'a>, MsgDataError> {
        let c = self.column(name)?;
        let s = c.as_struct_opt().ok_or_else(|| {
            err(
                self.ty,
                format!("field `{name}` is {}, expected a struct", c.data_type()),
            )
        })?;
        Ok(Row {
            ty,
            array: s,
            row: self.row,
        })
    }

    /// A list field of primitives, in place: no copy.
    pub fn slice<T: ArrowPrimitiveType>(&self, name: &str) -> Result<&'a [T::Native], MsgDataError> {
        let c = self.column(name)?;
        let wrong = || {
            err(
                self.ty,
                format!("field `{name}` is {}, expected List<{}>", c.data_type(), T::DATA_TYPE),
            )
        };
        let list = c.as_list_opt::<i32>().ok_or_else(wrong)?;
        let values = list.values().as_primitive_opt::<T>().ok_or_else(wrong)?;
        let offsets = list.value_offsets();
        let (start, end) = (offsets[self.row] as usize, offsets[self.row + 1] as usize);
        values
            .values()
            .get(start..end)
            .ok_or_else(|| err(self.ty, format!("field `{name}`: offsets out of bounds")))
    }
}

macro_rules! simple_message {
    ($(#[$doc:meta])* $name:ident, $ty:literal, { $($field:ident : $fty:ty => $arrow:ty, $getter:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name { $(pub $field: $fty),* }

        impl Message for $name {
            const TYPE: &'static str = $ty;
            fn to_struct(self) -> Result<StructArray, MsgDataError> {
                build($ty, vec![$(col::<$arrow>(self.$field)),*])
            }
            fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
                Ok($name { $($field: row.$getter(stringify!($field))?),* })
            }
        }
    };
}

simple_message!(
    /// builtin_interfaces/Time
    Time, "builtin_interfaces/Time", { sec: i32 => Int32Type, i32, nanosec: u32 => UInt32Type, u32 });
simple_message!(
    /// geometry_msgs/Vector3
    Vector3, "geometry_msgs/Vector3", { x: f64 => Float64Type, f64, y: f64 => Float64Type, f64, z: f64 => Float64Type, f64 });
simple_message!(
    /// geometry_msgs/Point
    Point, "geometry_msgs/Point", { x: f64 => Float64Type, f64, y: f64 => Float64Type, f64, z: f64 => Float64Type, f64 });
simple_message!(
    /// std_msgs/Int64
    Int64, "std_msgs/Int64", { data: i64 => Int64Type, i64 });

/// geometry_msgs/Quaternion (defaults to the identity rotation, as the definition says).
#[derive(Clone, Debug, PartialEq)]
pub struct Quaternion {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub w: f64,
}

impl Default for Quaternion {
    fn default() -> Self {
        Quaternion {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            w: 1.0,
        }
    }
}

impl Quaternion {
    /// A rotation of `yaw` radians about z.
    pub fn from_yaw(yaw: f64) -> Self {
        Quaternion {
            x: 0.0,
            y: 0.0,
            z: (yaw / 2.0).sin(),
            w: (yaw / 2.0).cos(),
        }
    }
    /// The rotation about z.
    pub fn yaw(&self) -> f64 {
        2.0 * self.z.atan2(self.w)
    }
}

impl Message for Quaternion {
    const TYPE: &'static str = "geometry_msgs/Quaternion";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![
                col::<Float64Type>(self.x),
                col::<Float64Type>(self.y),
                col::<Float64Type>(self.z),
                col::<Float64Type>(self.w),
            ],
        )
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        Ok(Quaternion {
            x: row.f64("x")?,
            y: row.f64("y")?,
            z: row.f64("z")?,
            w: row.f64("w")?,
        })
    }
}

/// std_msgs/String
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringMsg {
    pub data: String,
}

impl Message for StringMsg {
    const TYPE: &'static str = "std_msgs/String";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(Self::TYPE, vec![col_str(&self.data)])
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        Ok(StringMsg {
            data: row.str("data")?.into(),
        })
    }
}

/// std_msgs/Header
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}

impl Header {
    /// A header stamped `ns` nanoseconds after the epoch (e.g. `ctx.now_ns()`).
    pub fn at_ns(ns: u64, frame_id: &str) -> Self {
        Header {
            stamp: Time {
                sec: (ns / 1_000_000_000) as i32,
                nanosec: (ns % 1_000_000_000) as u32,
            },
            frame_id: frame_id.into(),
        }
    }
    pub fn stamp_ns(&self) -> u64 {
        self.stamp.sec.max(0) as u64 * 1_000_000_000 + self.stamp.nanosec as u64
    }
}

impl Message for Header {
    const TYPE: &'static str = "std_msgs/Header";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![Arc::new(self.stamp.to_struct()?), col_str(&self.frame_id)],
        )
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        Ok(Header {
            stamp: Time::read(&row.nested("stamp", Time::TYPE)?)?,
            frame_id: row.str("frame_id")?.into(),
        })
    }
}

/// geometry_msgs/Twist
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Twist {
    pub linear: Vector3,
    pub angular: Vector3,
}

impl Message for Twist {
    const TYPE: &'static str = "geometry_msgs/Twist";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![Arc::new(self.linear.to_struct()?), Arc::new(self.angular.to_struct()?)],
        )
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        Ok(Twist {
            linear: Vector3::read(&row.nested("linear", Vector3::TYPE)?)?,
            angular: Vector3::read(&row.nested("angular", Vector3::TYPE)?)?,
        })
    }
}

/// geometry_msgs/Pose
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pose {
    pub position: Point,
    pub orientation: Quaternion,
}

impl Message for Pose {
    const TYPE: &'static str = "geometry_msgs/Pose";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![
                Arc::new(self.position.to_struct()?),
                Arc::new(self.orientation.to_struct()?),
            ],
        )
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        Ok(Pose {
            position: Point::read(&row.nested("position", Point::TYPE)?)?,
            orientation: Quaternion::read(&row.nested("orientation", Quaternion::TYPE)?)?,
        })
    }
}

/// sensor_msgs/LaserScan
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaserScan {
    pub header: Header,
    pub angle_min: f32,
    pub angle_max: f32,
    pub angle_increment: f32,
    pub time_increment: f32,
    pub scan_time: f32,
    pub range_min: f32,
    pub range_max: f32,
    pub ranges: Vec<f32>,
    pub intensities: Vec<f32>,
}

impl Message for LaserScan {
    const TYPE: &'static str = "sensor_msgs/LaserScan";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![
                Arc::new(self.header.to_struct()?),
                col::<Float32Type>(self.angle_min),
                col::<Float32Type>(self.angle_max),
                col::<Float32Type>(self.angle_increment),
                col::<Float32Type>(self.time_increment),
                col::<Float32Type>(self.scan_time),
                col::<Float32Type>(self.range_min),
                col::<Float32Type>(self.range_max),
                col_list::<Float32Type>(self.ranges),
                col_list::<Float32Type>(self.intensities),
            ],
        )
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        let v = LaserScanView::from_row(Row {
            ty: row.ty,
            array: row.array,
            row: row.row,
        })?;
        Ok(LaserScan {
            ranges: v.ranges.to_vec(),
            intensities: v.intensities.to_vec(),
            ..v.scalars
        })
    }
}

/// A LaserScan read in place: `ranges` and `intensities` point into the DataPack's buffer.
#[derive(Debug)]
pub struct LaserScanView<'a> {
    /// Everything but the arrays (which are empty here).
    pub scalars: LaserScan,
    pub ranges: &'a [f32],
    pub intensities: &'a [f32],
}

impl<'a> LaserScanView<'a> {
    pub fn new(array: &'a dyn Array) -> Result<Self, MsgDataError> {
        Self::from_row(Row::single(LaserScan::TYPE, array)?)
    }

    fn from_row(row: Row<'a>) -> Result<Self, MsgDataError> {
        Ok(LaserScanView {
            scalars: LaserScan {
                header: Header::read(&row.nested("header", Header::TYPE)?)?,
                angle_min: row.f32("angle_min")?,
                angle_max: row.f32("angle_max")?,
                angle_increment: row.f32("angle_increment")?,
                time_increment: row.f32("time_increment")?,
                scan_time: row.f32("scan_time")?,
                range_min: row.f32("range_min")?,
                range_max: row.f32("range_max")?,
                ranges: Vec::new(),
                intensities: Vec::new(),
            },
            ranges: row.slice::<Float32Type>("ranges")?,
            intensities: row.slice::<Float32Type>("intensities")?,
        })
    }
}

/// sensor_msgs/Image
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub encoding: String,
    pub is_bigendian: u8,
    pub step: u32,
    pub data: Vec<u8>,
}

impl Image {
    /// An rgb8 image of `width` x `height` owning `data` (`width * height * 3` bytes).
    pub fn rgb8(header: Header, width: u32, height: u32, data: Vec<u8>) -> Self {
        Image {
            header,
            height,
            width,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: width * 3,
            data,
        }
    }
}

impl Image {
    /// The message as an array whose pixels are `data` as it is, e.g. an operator's output
    /// buffer filled in place (`self.data` is not used): no copy.
    pub fn to_arrow_over(self, data: arrow_buffer::Buffer) -> Result<ArrayRef, MsgDataError> {
        Ok(Arc::new(self.struct_over(data.into())?))
    }

    fn struct_over(self, data: arrow_buffer::ScalarBuffer<u8>) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![
                Arc::new(self.header.to_struct()?),
                col::<UInt32Type>(self.height),
                col::<UInt32Type>(self.width),
                col_str(&self.encoding),
                col::<UInt8Type>(self.is_bigendian),
                col::<UInt32Type>(self.step),
                col_list_of::<UInt8Type>(data),
            ],
        )
    }
}

impl Message for Image {
    const TYPE: &'static str = "sensor_msgs/Image";
    fn to_struct(mut self) -> Result<StructArray, MsgDataError> {
        let data = std::mem::take(&mut self.data);
        self.struct_over(data.into())
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        let v = ImageView::from_row(Row {
            ty: row.ty,
            array: row.array,
            row: row.row,
        })?;
        Ok(Image {
            data: v.data.to_vec(),
            ..v.scalars
        })
    }
}

/// An Image read in place: `data` points into the DataPack's buffer.
#[derive(Debug)]
pub struct ImageView<'a> {
    /// Everything but the pixels (empty here).
    pub scalars: Image,
    pub data: &'a [u8],
}

impl<'a> ImageView<'a> {
    pub fn new(array: &'a dyn Array) -> Result<Self, MsgDataError> {
        Self::from_row(Row::single(Image::TYPE, array)?)
    }

    fn from_row(row: Row<'a>) -> Result<Self, MsgDataError> {
        let scalars = Image {
            header: Header::read(&row.nested("header", Header::TYPE)?)?,
            height: row.u32("height")?,
            width: row.u32("width")?,
            encoding: row.str("encoding")?.into(),
            is_bigendian: row.u8("is_bigendian")?,
            step: row.u32("step")?,
            data: Vec::new(),
        };
        let data = row.slice::<UInt8Type>("data")?;
        let need = scalars.step as u64 * scalars.height as u64;
        if (data.len() as u64) < need {
            return Err(err(
                Image::TYPE,
                format!(
                    "{} bytes of data for step {} x height {}",
                    data.len(),
                    scalars.step,
                    scalars.height
                ),
            ));
        }
        Ok(ImageView { scalars, data })
    }
}

/// quiver_msgs/Classification
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Classification {
    pub header: Header,
    pub class_id: u8,
    pub label: String,
    pub confidence: f32,
    pub probabilities: Vec<f32>,
}

impl Message for Classification {
    const TYPE: &'static str = "quiver_msgs/Classification";
    fn to_struct(self) -> Result<StructArray, MsgDataError> {
        build(
            Self::TYPE,
            vec![
                Arc::new(self.header.to_struct()?),
                col::<UInt8Type>(self.class_id),
                col_str(&self.label),
                col::<Float32Type>(self.confidence),
                col_list::<Float32Type>(self.probabilities),
            ],
        )
    }
    fn read(row: &Row<'_>) -> Result<Self, MsgDataError> {
        Ok(Classification {
            header: Header::read(&row.nested("header", Header::TYPE)?)?,
            class_id: row.u8("class_id")?,
            label: row.str("label")?.into(),
            confidence: row.f32("confidence")?,
            probabilities: row.slice::<Float32Type>("probabilities")?.to_vec(),
        })
    }
}
