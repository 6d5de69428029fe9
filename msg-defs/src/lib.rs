//! quiver-msgs: message types as ROS-style `.msg` definitions.
//!
//! - [`parse`]: the `.msg` syntax, with located errors.
//! - [`Registry`]: the shipped definitions (`msg-defs/msg/<pkg>/<Type>.msg`) and their Arrow
//!   types (a message is one row of a struct array; large primitive arrays are single buffers).
//! - [`cdr`]: the CDR encoding of any known type (what ROS 2 sends over DDS), both directions.
//! - [`typed`]: Rust structs for the shipped types, to build a DataPack's array and read it back,
//!   and views that read scan ranges and image bytes in place.
//! - [`show`]: any message as text or JSON for a person (`quiver topic echo`), big arrays summarised.

pub mod cdr;
mod parse;
mod registry;
pub mod show;
pub mod typed;

pub use parse::{
    ArrayKind, BaseType, Constant, Field, FieldType, Literal, MsgDef, MsgError, Primitive, parse, resolve_type,
};
pub use registry::{Registry, normalize, primitive_type};
pub use typed::{
    Classification, Header, Image, ImageView, Int64, LaserScan, LaserScanView, Message, MsgDataError, Point, Pose,
    Quaternion, StringMsg, Time, Twist, Vector3,
};
