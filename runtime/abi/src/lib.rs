//! quiver-abi: everything that crosses the boundary between the quiver host and an operator
//! plugin (a `cdylib`).
//!
//! Only `#[repr(C)]` types, plain integers and `extern "C"` function pointers live here: no Rust
//! type (no `String`, no `Arc`, no trait object) crosses the boundary, so a plugin built with
//! another rustc or another `arrow` version still works. Data crosses as the Arrow C Data
//! Interface ([`ArrowArray`], [`ArrowSchema`]).
//!
//! Loading is a handshake, in this order, before any plugin function is called:
//! 1. the exported `u32` static [`SYMBOL_ABI_VERSION`] must equal [`ABI_VERSION`];
//! 2. [`SYMBOL_MANIFEST`] returns the [`Manifest`] (ports, timers, parameters);
//! 3. [`SYMBOL_VTABLE`] returns the [`VTable`] of callbacks.
//!
//! Ownership rules, stated once:
//! - Strings ([`StrRef`]) are borrowed for the duration of the call only (the manifest's strings
//!   live as long as the library).
//! - An [`InputPack`]'s `array` and `schema` are moved to the plugin: it may take them (setting
//!   their `release` to null in the pack); the host releases whatever is left after the call.
//! - `emit` moves `array` and `schema` to the host the same way.
//! - An [`OutputBuffer`] from `alloc_output` belongs to the plugin until it calls its `release`
//!   (exactly once, from any thread, at any time: also after the call that allocated it).
#![no_std]

use core::ffi::{c_char, c_void};

/// The ABI version this crate describes. Bump on any change to a type or function below.
pub const ABI_VERSION: u32 = 6;

/// `static QUIVER_ABI_VERSION: u32`: read first, before anything else in the library.
pub const SYMBOL_ABI_VERSION: &[u8] = b"QUIVER_ABI_VERSION\0";
/// `extern "C" fn() -> *const Manifest`.
pub const SYMBOL_MANIFEST: &[u8] = b"quiver_manifest\0";
/// `extern "C" fn() -> *const VTable`.
pub const SYMBOL_VTABLE: &[u8] = b"quiver_vtable\0";

/// A borrowed UTF-8 string: pointer and length, not NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    pub const EMPTY: StrRef = StrRef {
        ptr: core::ptr::null(),
        len: 0,
    };

    /// Borrows `s`; the caller keeps `s` alive while the `StrRef` is in use.
    pub const fn new(s: &str) -> Self {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string back.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid for `'a` (or be null with `len`
    /// 0).
    pub unsafe fn as_str<'a>(&self) -> Result<&'a str, core::str::Utf8Error> {
        if self.ptr.is_null() || self.len == 0 {
            return Ok("");
        }
        // SAFETY: the caller guarantees `ptr` points to `len` valid bytes for `'a`.
        let bytes = unsafe { core::slice::from_raw_parts(self.ptr, self.len) };
        core::str::from_utf8(bytes)
    }
}

/// The Arrow C Data Interface `struct ArrowSchema`, exactly as the Arrow specification lays it out.
#[repr(C)]
#[derive(Debug)]
pub struct ArrowSchema {
    pub format: *const c_char,
    pub name: *const c_char,
    pub metadata: *const c_char,
    pub flags: i64,
    pub n_children: i64,
    pub children: *mut *mut ArrowSchema,
    pub dictionary: *mut ArrowSchema,
    pub release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    pub private_data: *mut c_void,
}

/// The Arrow C Data Interface `struct ArrowArray`, exactly as the Arrow specification lays it out.
#[repr(C)]
#[derive(Debug)]
pub struct ArrowArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut ArrowArray,
    pub dictionary: *mut ArrowArray,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    pub private_data: *mut c_void,
}

impl ArrowArray {
    /// A released (empty) array: `release` is null.
    pub const fn released() -> Self {
        ArrowArray {
            length: 0,
            null_count: 0,
            offset: 0,
            n_buffers: 0,
            n_children: 0,
            buffers: core::ptr::null_mut(),
            children: core::ptr::null_mut(),
            dictionary: core::ptr::null_mut(),
            release: None,
            private_data: core::ptr::null_mut(),
        }
    }
}

impl ArrowSchema {
    /// A released (empty) schema: `release` is null.
    pub const fn released() -> Self {
        ArrowSchema {
            format: core::ptr::null(),
            name: core::ptr::null(),
            metadata: core::ptr::null(),
            flags: 0,
            n_children: 0,
            children: core::ptr::null_mut(),
            dictionary: core::ptr::null_mut(),
            release: None,
            private_data: core::ptr::null_mut(),
        }
    }
}

/// Result of a call into the plugin or the host. A plain `u32`, not an enum: an out-of-range
/// value from foreign code must not be undefined behaviour.
pub type Status = u32;
pub const STATUS_OK: Status = 0;
/// The callback returned an error; the message was passed to [`HostApi::set_error`].
pub const STATUS_ERROR: Status = 1;
/// The callback panicked; the panic message was passed to [`HostApi::set_error`].
pub const STATUS_PANIC: Status = 2;
/// `on_param` refused the value; the reason was passed to [`HostApi::set_error`].
pub const STATUS_REJECTED: Status = 3;
/// The host is shutting down and did not accept the output.
pub const STATUS_CLOSED: Status = 4;

/// Parameter kinds.
pub type ParamKind = u32;
pub const PARAM_BOOL: ParamKind = 1;
pub const PARAM_INT: ParamKind = 2;
pub const PARAM_FLOAT: ParamKind = 3;
pub const PARAM_STRING: ParamKind = 4;
/// A duration in nanoseconds, carried in `ParamValue::int`; written `100ms`, `2s` in YAML.
pub const PARAM_DURATION: ParamKind = 5;
/// A file the operator reads, carried in `ParamValue::string` as an absolute path (the host
/// resolves it against the graph file's folder and checks that it exists).
pub const PARAM_PATH: ParamKind = 6;

/// A parameter value; only the field named by `kind` is meaningful.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ParamValue {
    pub kind: ParamKind,
    pub boolean: u8,
    pub int: i64,
    pub float: f64,
    pub string: StrRef,
}

/// A named parameter value passed to `create`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NamedParam {
    pub name: StrRef,
    pub value: ParamValue,
}

/// An input or output port. `msg_type` is a `pkg/Type` name (or `any` on an input that takes
/// every type).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PortDecl {
    pub name: StrRef,
    pub msg_type: StrRef,
    pub doc: StrRef,
    /// 1: an input the operator cannot work without (ABI 6); 0 on outputs.
    pub required: u8,
}

/// A timer the operator can be driven by (`{ timer: 100ms }` in the graph).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TimerDecl {
    pub name: StrRef,
    pub doc: StrRef,
}

/// A parameter: its kind, optional default and inclusive range (ints, floats, durations).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ParamDecl {
    pub name: StrRef,
    pub kind: ParamKind,
    pub doc: StrRef,
    pub has_default: u8,
    pub default: ParamValue,
    pub has_min: u8,
    pub min: ParamValue,
    pub has_max: u8,
    pub max: ParamValue,
}

/// A named thing with a doc string (a setting graph-declared ports may carry).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SettingDecl {
    pub name: StrRef,
    pub doc: StrRef,
}

/// `key: value` of a graph-declared port, as written in the graph.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PortSetting {
    pub key: StrRef,
    pub value: StrRef,
}

/// A port the graph declared for one node (operators whose manifest sets `graph_ports`).
/// Instances see their declared ports first, then these, inputs and outputs each in this order.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GraphPortDecl {
    pub name: StrRef,
    pub msg_type: StrRef,
    /// 1: an output; 0: an input.
    pub is_output: u8,
    pub settings: *const PortSetting,
    pub n_settings: usize,
}

/// What an operator declares about itself. Lives as long as the library.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Manifest {
    /// Repeats [`ABI_VERSION`]: a second check that the library was not half-rebuilt.
    pub abi_version: u32,
    pub name: StrRef,
    pub version: StrRef,
    pub doc: StrRef,
    /// Which SDK built the plugin, e.g. `quiver-operator 0.1.0`.
    pub sdk: StrRef,
    pub inputs: *const PortDecl,
    pub n_inputs: usize,
    pub outputs: *const PortDecl,
    pub n_outputs: usize,
    pub timers: *const TimerDecl,
    pub n_timers: usize,
    pub params: *const ParamDecl,
    pub n_params: usize,
    /// 1: nodes declare (more) ports in the graph (`ports:`), passed to `create`.
    pub graph_ports: u8,
    pub graph_ports_doc: StrRef,
    /// The settings such ports may carry besides their type.
    pub port_settings: *const SettingDecl,
    pub n_port_settings: usize,
    /// The message types such ports may have; none: any.
    pub port_types: *const StrRef,
    pub n_port_types: usize,
}

/// DataPack header (NRP-Core semantics).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PackHeader {
    /// Per output port, starting at 0, without gaps.
    pub seq: u64,
    /// Nanoseconds on the run's clock (wall-clock aligned; simulated in stepped mode).
    pub timestamp_ns: u64,
    /// 1 only on the step the pack was produced.
    pub is_updated: u8,
}

/// A DataPack delivered to `on_input`. Identity: (`name`, `msg_type`, `source_node`/`source_port`).
#[repr(C)]
#[derive(Debug)]
pub struct InputPack {
    pub name: StrRef,
    pub msg_type: StrRef,
    pub source_node: StrRef,
    pub source_port: StrRef,
    pub header: PackHeader,
    /// 0 for an empty DataPack (no data; `array` and `schema` are released). With 1 and a
    /// released `schema`, the data type is that of the previous pack delivered on this input to
    /// this instance.
    pub has_data: u8,
    pub array: ArrowArray,
    pub schema: ArrowSchema,
}

/// Options for [`HostApi::emit`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EmitOptions {
    /// 1: use `timestamp_ns` (e.g. a sensor's capture time) instead of the host clock.
    pub has_timestamp: u8,
    pub timestamp_ns: u64,
}

/// Memory the host lends a plugin to write an output's data into (see [`HostApi::alloc_output`]).
#[repr(C)]
#[derive(Debug)]
pub struct OutputBuffer {
    /// `len` writable bytes, 64-byte aligned, contents unspecified. Null: the host has no
    /// special memory for this output; the plugin allocates ordinary memory itself.
    pub data: *mut u8,
    pub len: usize,
    /// Passed to `release`.
    pub handle: *mut c_void,
    /// Gives the memory back; callable from any thread, exactly once.
    pub release: Option<unsafe extern "C" fn(handle: *mut c_void)>,
}

impl OutputBuffer {
    /// No memory (what the plugin passes in; the host fills it).
    pub const fn none() -> Self {
        OutputBuffer {
            data: core::ptr::null_mut(),
            len: 0,
            handle: core::ptr::null_mut(),
            release: None,
        }
    }
}

/// The host's side of one call: opaque to the plugin.
#[repr(C)]
pub struct HostCtx {
    _private: [u8; 0],
}

/// Log levels for [`HostApi::log`].
pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;
pub const LOG_TRACE: u32 = 5;

/// Functions the host offers the plugin. Every function takes the `HostCtx` of the current call
/// and must only be called during that call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host compiled it.
    pub struct_size: usize,
    /// Sends a DataPack on output port `port`. `array` null: an empty DataPack. `schema` null
    /// with an array: the array has the data type of the previous array emitted on this port
    /// (saves exporting and parsing a schema per message).
    /// Moves the array and schema to the host (their `release` is set to null).
    /// May block (a `block` input downstream is full). Returns `STATUS_OK`, `STATUS_ERROR`
    /// (message via the host log) or `STATUS_CLOSED`.
    pub emit: unsafe extern "C" fn(
        ctx: *mut HostCtx,
        port: u32,
        array: *mut ArrowArray,
        schema: *mut ArrowSchema,
        options: EmitOptions,
    ) -> Status,
    /// The run's clock in nanoseconds (simulated in stepped mode).
    pub now_ns: unsafe extern "C" fn(ctx: *mut HostCtx) -> u64,
    /// Logs `msg` at `level` under the node's name.
    pub log: unsafe extern "C" fn(ctx: *mut HostCtx, level: u32, msg: StrRef),
    /// Records the error or rejection message of the current call (copied by the host).
    pub set_error: unsafe extern "C" fn(ctx: *mut HostCtx, msg: StrRef),
    /// The operator has finished: its timers stop. A run ends when every timer-driven node has
    /// finished and the graph is idle.
    pub finish: unsafe extern "C" fn(ctx: *mut HostCtx),
    /// Why the last host call of this `ctx` failed (empty if it did not). Valid until the next
    /// host call.
    pub last_error: unsafe extern "C" fn(ctx: *mut HostCtx) -> StrRef,
    /// Sets a named figure of this node (e.g. `distance` = `12.3 m`), shown in the run's live
    /// status line and final summary. Setting a key again replaces its value.
    pub report: unsafe extern "C" fn(ctx: *mut HostCtx, key: StrRef, value: StrRef),
    /// Lends `len` bytes to fill with the data of a pack for output `port`, then emit (zero
    /// copy: when the output goes to another process the bytes are already in the shared-memory
    /// frame that carries them). Fills `out`; `out.data` null means "use ordinary memory" (an
    /// output consumed in this process only, a small `len`, no shared memory available).
    /// Returns `STATUS_OK` or `STATUS_ERROR` (no such port).
    pub alloc_output: unsafe extern "C" fn(ctx: *mut HostCtx, port: u32, len: usize, out: *mut OutputBuffer) -> Status,
}

/// The operator's callbacks. `instance` is what `create` returned.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VTable {
    /// `size_of::<VTable>()` as the plugin compiled it.
    pub struct_size: usize,
    /// Creates an instance. Null on failure (reason via `set_error`). `params` holds every
    /// declared parameter, defaults filled in by the host; `ports` the node's graph-declared
    /// ports (none unless the manifest sets `graph_ports`).
    pub create: unsafe extern "C" fn(
        host: *const HostApi,
        ctx: *mut HostCtx,
        node_id: StrRef,
        params: *const NamedParam,
        n_params: usize,
        ports: *const GraphPortDecl,
        n_ports: usize,
    ) -> *mut c_void,
    /// A DataPack arrived on input `port` (index into the manifest's inputs).
    pub on_input: unsafe extern "C" fn(
        instance: *mut c_void,
        host: *const HostApi,
        ctx: *mut HostCtx,
        port: u32,
        pack: *mut InputPack,
    ) -> Status,
    /// Timer `timer` (index into the manifest's timers) fired.
    pub on_timer:
        unsafe extern "C" fn(instance: *mut c_void, host: *const HostApi, ctx: *mut HostCtx, timer: u32) -> Status,
    /// A parameter changes at run time; `STATUS_REJECTED` refuses it (reason via `set_error`).
    pub on_param: unsafe extern "C" fn(
        instance: *mut c_void,
        host: *const HostApi,
        ctx: *mut HostCtx,
        param: *const NamedParam,
    ) -> Status,
    /// The graph stops; last chance to flush. Outputs are not accepted any more.
    pub stop: unsafe extern "C" fn(instance: *mut c_void, host: *const HostApi, ctx: *mut HostCtx) -> Status,
    /// Frees the instance. Never fails, never calls the host.
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
}

/// `extern "C" fn() -> *const Manifest`
pub type ManifestFn = unsafe extern "C" fn() -> *const Manifest;
/// `extern "C" fn() -> *const VTable`
pub type VTableFn = unsafe extern "C" fn() -> *const VTable;
