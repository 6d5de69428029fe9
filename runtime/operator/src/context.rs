//! The operator's view of the host during one callback.

use arrow_array::ArrayRef;
use arrow_schema::DataType;
use quiver_abi as abi;

use crate::ffi::{export_array_only, export_schema, read_str, release_array, release_schema, str_ref};
use crate::{DataPack, Error, Manifest, OutputBuffer, Result};

/// Log levels for [`Context::log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// What an operator can do during a callback: send outputs, read the clock, log, read the latest
/// pack of each input, finish.
pub struct Context<'a> {
    host: &'a abi::HostApi,
    ctx: *mut abi::HostCtx,
    node: &'a str,
    manifest: &'a Manifest,
    latest: &'a [Option<DataPack>],
    /// The data type last sent on each output: the schema is sent only when it changes.
    out_types: &'a mut [Option<DataType>],
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        host: &'a abi::HostApi,
        ctx: *mut abi::HostCtx,
        node: &'a str,
        manifest: &'a Manifest,
        latest: &'a [Option<DataPack>],
        out_types: &'a mut [Option<DataType>],
    ) -> Self {
        Context {
            host,
            ctx,
            node,
            manifest,
            latest,
            out_types,
        }
    }

    /// The graph node this operator instance runs as.
    pub fn node_id(&self) -> &str {
        self.node
    }

    /// The run's clock in nanoseconds: wall-clock aligned and monotonic in a real-time run,
    /// simulated in stepped mode. Use it instead of the system clock so stepped runs stay
    /// deterministic.
    pub fn now_ns(&self) -> u64 {
        // SAFETY: `host` and `ctx` are the ones the host passed to the current callback.
        unsafe { (self.host.now_ns)(self.ctx) }
    }

    /// Sends `data` on output `output`. May block while a `block` input downstream is full.
    pub fn emit(&mut self, output: &str, data: ArrayRef) -> Result<()> {
        self.send(output, Some(&data), None)
    }

    /// Sends `data` stamped with `timestamp_ns` (e.g. a sensor's capture time) instead of now.
    pub fn emit_stamped(&mut self, output: &str, data: ArrayRef, timestamp_ns: u64) -> Result<()> {
        self.send(output, Some(&data), Some(timestamp_ns))
    }

    /// Sends an empty DataPack (identity and header, no data) on `output`.
    pub fn emit_empty(&mut self, output: &str) -> Result<()> {
        self.send(output, None, None)
    }

    /// `len` bytes to write a pack's data into for `output`, e.g. an image's pixels: fill them,
    /// turn them into an Arrow buffer ([`OutputBuffer::into_buffer`]), build the array around it
    /// and emit it. When `output` goes to another process, the bytes are lent by the host inside
    /// the shared-memory frame that will carry the pack, so nothing is copied on the way; for an
    /// output consumed in this process only (or a small `len`) they are ordinary memory.
    pub fn output_buffer(&mut self, output: &str, len: usize) -> Result<OutputBuffer> {
        let port = self.port(output)?;
        let mut out = abi::OutputBuffer::none();
        // SAFETY: `host`/`ctx` belong to the current callback; `out` is valid for the call.
        let status = unsafe { (self.host.alloc_output)(self.ctx, port as u32, len, &mut out) };
        if status != abi::STATUS_OK {
            // SAFETY: the host's last error stays valid until the next host call.
            let why = unsafe { read_str((self.host.last_error)(self.ctx)) };
            return Err(Error::msg(format!("no buffer for output `{output}`: {why}")));
        }
        // SAFETY: `out` was filled by the host's alloc_output for `len` bytes.
        Ok(unsafe { OutputBuffer::from_host(out, len) }.unwrap_or_else(|| OutputBuffer::own(len)))
    }

    /// The index of output `output`, or an error naming the outputs there are.
    fn port(&self, output: &str) -> Result<usize> {
        self.manifest.output_index(output).ok_or_else(|| {
            let known: Vec<&str> = self.manifest.outputs.iter().map(|p| p.name.as_str()).collect();
            Error::msg(format!(
                "operator `{}` has no output `{output}` (outputs: {})",
                self.manifest.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    fn send(&mut self, output: &str, data: Option<&ArrayRef>, stamp: Option<u64>) -> Result<()> {
        let port = self.port(output)?;
        let options = abi::EmitOptions {
            has_timestamp: u8::from(stamp.is_some()),
            timestamp_ns: stamp.unwrap_or(0),
        };
        let status = match data {
            Some(data) => {
                let data_type = data.data_type();
                let known = self.out_types.get(port).and_then(Option::as_ref) == Some(data_type);
                let mut schema = if known {
                    None
                } else {
                    Some(
                        export_schema(data_type)
                            .map_err(|e| Error::from(e).context(format!("exporting output `{output}`")))?,
                    )
                };
                let mut array = export_array_only(data);
                let schema_ptr = schema
                    .as_mut()
                    .map_or(std::ptr::null_mut(), |s| s as *mut abi::ArrowSchema);
                // SAFETY: `host`/`ctx` belong to the current callback; `array` (and `schema`, or
                // null: same type as last time) are valid exported structs that the host moves
                // out of, or leaves for us to release.
                let status = unsafe { (self.host.emit)(self.ctx, port as u32, &mut array, schema_ptr, options) };
                // SAFETY: valid structs, released here only if the host did not take them.
                unsafe {
                    release_array(&mut array);
                    if let Some(s) = schema.as_mut() {
                        release_schema(s);
                    }
                }
                if status == abi::STATUS_OK
                    && !known
                    && let Some(slot) = self.out_types.get_mut(port)
                {
                    *slot = Some(data_type.clone());
                }
                status
            }
            // SAFETY: null array and schema mean an empty DataPack.
            None => unsafe {
                (self.host.emit)(
                    self.ctx,
                    port as u32,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    options,
                )
            },
        };
        match status {
            abi::STATUS_OK => Ok(()),
            _ => {
                // SAFETY: the host's last error stays valid until the next host call.
                let why = unsafe { read_str((self.host.last_error)(self.ctx)) };
                Err(Error::msg(format!("output `{output}` not sent: {why}")))
            }
        }
    }

    /// The most recent pack received on `input` (from this or an earlier callback), if any. Its
    /// `is_updated()` is true only during the callback that delivered it.
    pub fn latest(&self, input: &str) -> Option<&DataPack> {
        let index = self.manifest.input_index(input)?;
        self.latest.get(index)?.as_ref()
    }

    /// Logs `msg` under this node's name.
    pub fn log(&self, level: LogLevel, msg: &str) {
        let level = match level {
            LogLevel::Error => abi::LOG_ERROR,
            LogLevel::Warn => abi::LOG_WARN,
            LogLevel::Info => abi::LOG_INFO,
            LogLevel::Debug => abi::LOG_DEBUG,
            LogLevel::Trace => abi::LOG_TRACE,
        };
        // SAFETY: `host`/`ctx` belong to the current callback; `msg` outlives the call.
        unsafe { (self.host.log)(self.ctx, level, str_ref(msg)) }
    }

    pub fn info(&self, msg: &str) {
        self.log(LogLevel::Info, msg)
    }

    pub fn warn(&self, msg: &str) {
        self.log(LogLevel::Warn, msg)
    }

    /// Sets a named figure shown in the run's status line and final summary (`distance` =
    /// `12.3 m`); setting a key again replaces its value.
    pub fn report(&mut self, key: &str, value: impl std::fmt::Display) {
        let value = value.to_string();
        // SAFETY: `host`/`ctx` belong to the current callback; both strings outlive the call.
        unsafe { (self.host.report)(self.ctx, str_ref(key), str_ref(&value)) }
    }

    /// This operator has nothing more to do: its timers stop. The run ends when every
    /// timer-driven node has finished and no message is in flight.
    pub fn finish(&mut self) {
        // SAFETY: `host`/`ctx` belong to the current callback.
        unsafe { (self.host.finish)(self.ctx) }
    }
}
