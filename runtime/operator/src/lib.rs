//! quiver-operator: the SDK for writing a quiver operator.
//!
//! An operator is a crate built as a `cdylib` that implements [`Operator`] and calls
//! [`export_operator!`] once. The macro generates the C symbols of the plugin ABI
//! ([`quiver_abi`]); the operator's own code needs no `unsafe`.
//!
//! ```
//! use quiver_msgs::{Int64, Message};
//! use quiver_operator::prelude::*;
//!
//! struct Double;
//! impl Operator for Double {
//!     fn manifest() -> Manifest {
//!         Manifest::new("double", env!("CARGO_PKG_VERSION"), "Doubles every value")
//!             .input("value", "std_msgs/Int64", "values in")
//!             .output("value", "std_msgs/Int64", "values doubled")
//!     }
//!     fn new(_ctx: &mut Context<'_>, _params: &Params) -> Result<Self> { Ok(Double) }
//!     fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
//!         // A std_msgs/Int64 is a one-row struct array: read and build it with quiver_msgs.
//!         let v = Int64::from_arrow(pack.data()?.as_ref())?;
//!         ctx.emit("value", Int64 { data: v.data * 2 }.to_arrow()?)
//!     }
//! }
//! export_operator!(Double);
//!
//! // The harness drives it through the C ABI, as strictly as the host.
//! let mut h = quiver_operator::testing::Harness::<Double>::new(&[]).unwrap();
//! h.input("value", Some(Int64 { data: 21 }.to_arrow().unwrap())).unwrap();
//! let (port, pack) = &h.take_outputs()[0];
//! assert_eq!((port.as_str(), Int64::from_arrow(pack.data().unwrap().as_ref()).unwrap().data), ("value", 42));
//! ```
//!
//! [`testing::Harness`] drives an operator through the same C ABI inside a unit test.

mod context;
mod error;
pub mod ffi;
mod glue;
mod manifest;
mod output;
mod pack;
mod params;
pub mod testing;

pub use context::{Context, LogLevel};
pub use error::{Error, Result};
pub use output::OutputBuffer;
pub use pack::{DataPack, EmptyPackError, Header, PackId};
pub use params::Params;
pub use quiver_manifest::{GraphPort, Manifest, ParamKind, ParamSpec, ParamValue, PortSpec, TimerSpec};

/// What operator crates usually import.
pub mod prelude {
    pub use crate::{
        Context, DataPack, Error, Manifest, Operator, OutputBuffer, ParamSpec, ParamValue, Params, Result, bail,
        export_operator,
    };
    pub use arrow_array::cast::AsArray;
    pub use arrow_array::types::*;
    pub use arrow_array::{Array, ArrayRef, Float32Array, Float64Array, Int64Array, UInt8Array, UInt64Array};
}

/// Re-exported so operators use exactly the arrow the SDK was built with.
pub mod external {
    pub use arrow_array;
    pub use arrow_buffer;
    pub use arrow_data;
    pub use arrow_schema;
    pub use quiver_abi;
    pub use quiver_manifest;
}

pub use quiver_abi as abi;

/// An operator: created once per graph node, then driven by inputs, timers and parameter changes.
///
/// Every callback runs on the node's own thread, one at a time. A returned error (or a panic) is
/// reported against the node; the graph keeps running.
pub trait Operator: Send + Sized + 'static {
    /// Ports, timers and parameters. Called when the library is loaded and at `new`.
    fn manifest() -> Manifest;

    /// Creates the operator. `params` holds every declared parameter (defaults filled in, values
    /// already checked against kind and range).
    fn new(ctx: &mut Context<'_>, params: &Params) -> Result<Self>;

    /// A DataPack arrived on `input`.
    fn on_input(&mut self, ctx: &mut Context<'_>, input: &str, pack: DataPack) -> Result<()> {
        let _ = (ctx, pack);
        bail!("operator declares input `{input}` but does not implement on_input")
    }

    /// The timer named `timer` fired.
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &str) -> Result<()> {
        let _ = ctx;
        bail!("operator declares timer `{timer}` but does not implement on_timer")
    }

    /// A parameter changes while running. Return `Err(reason)` to refuse the value; the host has
    /// already checked kind and range against the manifest.
    fn on_param(&mut self, ctx: &mut Context<'_>, name: &str, value: &ParamValue) -> Result<()> {
        let _ = (ctx, value);
        bail!("parameter `{name}` cannot be changed while running")
    }

    /// The graph stops. Outputs are no longer accepted.
    fn stop(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
}

/// Generates the plugin's C symbols for an [`Operator`] type. Call it once per cdylib.
#[macro_export]
macro_rules! export_operator {
    ($ty:ty) => {
        /// ABI version of this plugin, read by the host before anything else.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub static QUIVER_ABI_VERSION: u32 = $crate::abi::ABI_VERSION;

        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn quiver_manifest() -> *const $crate::abi::Manifest {
            static CELL: $crate::__private::ManifestCell = $crate::__private::ManifestCell::new();
            CELL.get::<$ty>()
        }

        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn quiver_vtable() -> *const $crate::abi::VTable {
            static VTABLE: $crate::abi::VTable = $crate::__private::vtable::<$ty>();
            &VTABLE
        }
    };
}

/// Used by [`export_operator!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::vtable;
    pub use crate::manifest::ManifestCell;
}
