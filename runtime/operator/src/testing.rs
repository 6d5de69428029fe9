//! A test harness that drives an operator through the real C ABI inside a unit test: the same
//! vtable, the same Arrow export and import as a graph run, without loading a library.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::ArrayRef;
use quiver_abi as abi;

use crate::ffi::{export_array, import_array, param_to_c, read_str, release_array, release_schema, str_ref};

/// The Arrow layout the host requires for `msg_type` (built-in messages), as its emit and its
/// frame decoder check it: a test that passes here must not be refused there.
fn check_layout(what: &str, msg_type: &str, got: &arrow_schema::DataType) -> Result<(), String> {
    match quiver_msgs::Registry::builtin().data_type(msg_type) {
        Some(want) if want != got => Err(format!(
            "{what} is declared as {msg_type} but the data is {got}; build it with quiver_msgs::{} (layout {want}) (the host refuses it)",
            msg_type.rsplit('/').next().unwrap_or_default()
        )),
        _ => Ok(()),
    }
}
use crate::{DataPack, Header, Manifest, Operator, PackId, ParamValue};

/// What a harness call reports when the operator fails.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// The operator returned an error (or refused a parameter) with this message.
    Error(String),
    /// The operator panicked with this message.
    Panic(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Error(m) => write!(f, "{m}"),
            CallError::Panic(m) => write!(f, "panicked: {m}"),
        }
    }
}

#[derive(Default)]
struct State {
    node: String,
    now_ns: u64,
    error: String,
    finished: bool,
    logs: Vec<String>,
    reports: Vec<(String, String)>,
    outputs: Vec<(String, DataPack)>,
    output_ids: Vec<Arc<PackId>>,
    output_types: Vec<Option<arrow_schema::DataType>>,
    seqs: Vec<u64>,
    /// Output buffers lent and not given back yet.
    loans: Arc<AtomicUsize>,
}

/// Memory the harness lends for `output_buffer`, like a host lending shared memory.
struct Loan {
    _memory: arrow_buffer::MutableBuffer,
    loans: Arc<AtomicUsize>,
}

unsafe extern "C" fn h_release_loan(handle: *mut c_void) {
    // SAFETY: `handle` is a `Box<Loan>` made by `h_alloc_output`, released once (ABI rule).
    let loan = unsafe { Box::from_raw(handle.cast::<Loan>()) };
    loan.loans.fetch_sub(1, Ordering::SeqCst);
}

unsafe extern "C" fn h_alloc_output(
    ctx: *mut abi::HostCtx,
    port: u32,
    len: usize,
    out: *mut abi::OutputBuffer,
) -> abi::Status {
    // SAFETY: ctx is our State; `out` is valid for the call.
    unsafe {
        let st = state(ctx);
        if port as usize >= st.output_ids.len() {
            st.error = format!("no output #{port}");
            return abi::STATUS_ERROR;
        }
        let mut memory = arrow_buffer::MutableBuffer::from_len_zeroed(len);
        let data = memory.as_mut_ptr();
        st.loans.fetch_add(1, Ordering::SeqCst);
        let loan = Box::new(Loan {
            _memory: memory,
            loans: st.loans.clone(),
        });
        *out = abi::OutputBuffer {
            data,
            len,
            handle: Box::into_raw(loan).cast(),
            release: Some(h_release_loan),
        };
        abi::STATUS_OK
    }
}

/// Drives one operator instance.
pub struct Harness<T: Operator> {
    instance: *mut c_void,
    vtable: abi::VTable,
    host: Box<abi::HostApi>,
    state: Box<State>,
    manifest: Manifest,
    seq_in: u64,
    _op: PhantomData<T>,
}

fn ctx_of(state: &mut State) -> *mut abi::HostCtx {
    (state as *mut State).cast()
}

/// # Safety
/// `ctx` must be the `State` this harness passed to the current call.
unsafe fn state<'a>(ctx: *mut abi::HostCtx) -> &'a mut State {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *ctx.cast::<State>() }
}

unsafe extern "C" fn h_emit(
    ctx: *mut abi::HostCtx,
    port: u32,
    array: *mut abi::ArrowArray,
    schema: *mut abi::ArrowSchema,
    options: abi::EmitOptions,
) -> abi::Status {
    // SAFETY: ctx is our State; array/schema are valid exported structs or null.
    unsafe {
        let st = state(ctx);
        let port = port as usize;
        if !schema.is_null() && !array.is_null() {
            // The host checks the declared type's layout at emit: so does the harness.
            if let Some(id) = st.output_ids.get(port).cloned()
                && let Ok(t) = crate::ffi::schema_type(&*schema)
                && let Err(e) = check_layout(&format!("output `{}`", id.source_port), &id.msg_type, &t)
            {
                release_schema(&mut *schema);
                release_array(&mut *array);
                st.error = e;
                return abi::STATUS_ERROR;
            }
        }
        let Some(id) = st.output_ids.get(port).cloned() else {
            st.error = format!("no output #{port}");
            return abi::STATUS_ERROR;
        };
        let data = if array.is_null() {
            None
        } else {
            let taken = crate::ffi::take_array(&mut *array);
            let imported = if schema.is_null() {
                match st.output_types[port].clone() {
                    Some(t) => crate::ffi::import_array_typed(taken, t),
                    None => {
                        st.error = "no schema and no earlier data type".into();
                        return abi::STATUS_ERROR;
                    }
                }
            } else {
                let imported = import_array(taken, &*schema);
                release_schema(&mut *schema);
                imported
            };
            if let Ok(a) = &imported {
                st.output_types[port] = Some(a.data_type().clone());
            }
            match imported {
                Ok(a) => Some(a),
                Err(e) => {
                    st.error = e.to_string();
                    return abi::STATUS_ERROR;
                }
            }
        };
        let ts = if options.has_timestamp != 0 {
            options.timestamp_ns
        } else {
            st.now_ns
        };
        let seq = st.seqs[port];
        st.seqs[port] += 1;
        let name = id.source_port.clone();
        st.outputs.push((
            name,
            DataPack::new(
                id,
                Header {
                    seq,
                    timestamp_ns: ts,
                    is_updated: true,
                },
                data,
            ),
        ));
        abi::STATUS_OK
    }
}

unsafe extern "C" fn h_now(ctx: *mut abi::HostCtx) -> u64 {
    // SAFETY: ctx is our State.
    unsafe { state(ctx).now_ns }
}

unsafe extern "C" fn h_log(ctx: *mut abi::HostCtx, _level: u32, msg: abi::StrRef) {
    // SAFETY: ctx is our State; msg is valid for the call.
    unsafe {
        let msg = read_str(msg);
        state(ctx).logs.push(msg);
    }
}

unsafe extern "C" fn h_set_error(ctx: *mut abi::HostCtx, msg: abi::StrRef) {
    // SAFETY: ctx is our State; msg is valid for the call.
    unsafe {
        let msg = read_str(msg);
        state(ctx).error = msg;
    }
}

unsafe extern "C" fn h_finish(ctx: *mut abi::HostCtx) {
    // SAFETY: ctx is our State.
    unsafe { state(ctx).finished = true }
}

unsafe extern "C" fn h_report(ctx: *mut abi::HostCtx, key: abi::StrRef, value: abi::StrRef) {
    // SAFETY: ctx is our State; the strings are valid for the call.
    unsafe {
        let (key, value) = (read_str(key), read_str(value));
        let st = state(ctx);
        match st.reports.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => st.reports.push((key, value)),
        }
    }
}

unsafe extern "C" fn h_last_error(ctx: *mut abi::HostCtx) -> abi::StrRef {
    // SAFETY: ctx is our State; the string lives until the next call.
    unsafe { str_ref(&state(ctx).error) }
}

impl<T: Operator> Harness<T> {
    /// Creates the operator with `params` over the manifest's defaults.
    pub fn new(params: &[(&str, ParamValue)]) -> Result<Self, CallError> {
        Self::with_ports(params, &[])
    }

    /// Creates the operator with `params` and the graph-declared `ports` of a node (operators
    /// whose manifest sets `graph_ports`).
    pub fn with_ports(params: &[(&str, ParamValue)], ports: &[crate::GraphPort]) -> Result<Self, CallError> {
        let manifest = T::manifest().with_graph_ports(ports);
        // What the host's graph check refuses, refused here too.
        for (name, value) in params {
            let spec = manifest.params.iter().find(|p| p.name == *name).ok_or_else(|| {
                let known: Vec<&str> = manifest.params.iter().map(|p| p.name.as_str()).collect();
                CallError::Error(format!(
                    "unknown parameter `{name}` (the operator declares: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            spec.check(value)
                .map_err(|e| CallError::Error(format!("parameter `{name}`: {e}")))?;
        }
        for p in &manifest.params {
            if p.default.is_none() && !params.iter().any(|(n, _)| *n == p.name) {
                return Err(CallError::Error(format!(
                    "missing parameter `{}` ({}, no default)",
                    p.name, p.kind
                )));
            }
        }
        let mut values: Vec<(String, ParamValue)> = manifest
            .params
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.default.clone()?)))
            .collect();
        for (name, value) in params {
            match values.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.clone(),
                None => values.push((name.to_string(), value.clone())),
            }
        }
        let c_params: Vec<abi::NamedParam> = values
            .iter()
            .map(|(n, v)| abi::NamedParam {
                name: str_ref(n),
                value: param_to_c(v),
            })
            .collect();
        let node = "test-node".to_string();
        let output_ids = manifest
            .outputs
            .iter()
            .map(|p| Arc::new(PackId::new(&node, &p.name, &p.msg_type)))
            .collect();
        let mut state = Box::new(State {
            node,
            seqs: vec![0; manifest.outputs.len()],
            output_types: vec![None; manifest.outputs.len()],
            output_ids,
            ..State::default()
        });
        let host = Box::new(abi::HostApi {
            struct_size: size_of::<abi::HostApi>(),
            emit: h_emit,
            now_ns: h_now,
            log: h_log,
            set_error: h_set_error,
            finish: h_finish,
            last_error: h_last_error,
            report: h_report,
            alloc_output: h_alloc_output,
        });
        let vtable = crate::glue::vtable::<T>();
        let node_ref = str_ref(&state.node);
        let ctx = ctx_of(&mut state);
        let c_ports = crate::ffi::CGraphPorts::new(ports);
        // SAFETY: host, ctx, params and ports are valid for the call.
        let instance = unsafe {
            (vtable.create)(
                &*host,
                ctx,
                node_ref,
                c_params.as_ptr(),
                c_params.len(),
                c_ports.as_ptr(),
                c_ports.len(),
            )
        };
        if instance.is_null() {
            return Err(CallError::Error(std::mem::take(&mut state.error)));
        }
        Ok(Harness {
            instance,
            vtable,
            host,
            state,
            manifest,
            seq_in: 0,
            _op: PhantomData,
        })
    }

    fn result(&mut self, status: abi::Status) -> Result<(), CallError> {
        let msg = std::mem::take(&mut self.state.error);
        match status {
            abi::STATUS_OK => Ok(()),
            abi::STATUS_PANIC => Err(CallError::Panic(msg)),
            _ => Err(CallError::Error(msg)),
        }
    }

    /// Sets the clock the operator reads.
    pub fn set_time_ns(&mut self, now_ns: u64) {
        self.state.now_ns = now_ns;
    }

    /// Delivers `data` (or an empty pack) on `input`, from a fictitious upstream node.
    pub fn input(&mut self, input: &str, data: Option<ArrayRef>) -> Result<(), CallError> {
        let port = self
            .manifest
            .inputs
            .iter()
            .position(|p| p.name == input)
            .ok_or_else(|| CallError::Error(format!("operator has no input `{input}`")))?;
        let msg_type = self.manifest.inputs[port].msg_type.clone();
        if let Some(d) = &data {
            check_layout(&format!("input `{input}`"), &msg_type, d.data_type()).map_err(CallError::Error)?;
        }
        let (array, schema) = match &data {
            Some(d) => export_array(d).map_err(|e| CallError::Error(e.to_string()))?,
            None => (abi::ArrowArray::released(), abi::ArrowSchema::released()),
        };
        let mut pack = abi::InputPack {
            name: str_ref("upstream/out"),
            msg_type: str_ref(&msg_type),
            source_node: str_ref("upstream"),
            source_port: str_ref("out"),
            header: abi::PackHeader {
                seq: self.seq_in,
                timestamp_ns: self.state.now_ns,
                is_updated: 1,
            },
            has_data: u8::from(data.is_some()),
            array,
            schema,
        };
        self.seq_in += 1;
        let ctx = ctx_of(&mut self.state);
        // SAFETY: live instance, valid host and ctx, a valid pack lent for the call.
        let status = unsafe { (self.vtable.on_input)(self.instance, &*self.host, ctx, port as u32, &mut pack) };
        // SAFETY: whatever the plugin did not take is released here.
        unsafe {
            release_array(&mut pack.array);
            release_schema(&mut pack.schema);
        }
        self.result(status)
    }

    /// Fires timer `name`.
    pub fn timer(&mut self, name: &str) -> Result<(), CallError> {
        let index = self
            .manifest
            .timers
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| CallError::Error(format!("operator has no timer `{name}`")))?;
        let ctx = ctx_of(&mut self.state);
        // SAFETY: live instance, valid host and ctx.
        let status = unsafe { (self.vtable.on_timer)(self.instance, &*self.host, ctx, index as u32) };
        self.result(status)
    }

    /// Changes a parameter at run time, as the host would after checking kind and range.
    pub fn set_param(&mut self, name: &str, value: ParamValue) -> Result<(), CallError> {
        let spec = self
            .manifest
            .params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| CallError::Error(format!("unknown parameter `{name}`")))?;
        spec.check(&value)
            .map_err(|e| CallError::Error(format!("parameter `{name}`: {e}")))?;
        let param = abi::NamedParam {
            name: str_ref(name),
            value: param_to_c(&value),
        };
        let ctx = ctx_of(&mut self.state);
        // SAFETY: live instance, valid host, ctx and parameter.
        let status = unsafe { (self.vtable.on_param)(self.instance, &*self.host, ctx, &param) };
        self.result(status)
    }

    /// Calls `stop`.
    pub fn stop(&mut self) -> Result<(), CallError> {
        let ctx = ctx_of(&mut self.state);
        // SAFETY: live instance, valid host and ctx.
        let status = unsafe { (self.vtable.stop)(self.instance, &*self.host, ctx) };
        self.result(status)
    }

    /// Everything emitted since the last call: (output name, pack).
    pub fn take_outputs(&mut self) -> Vec<(String, DataPack)> {
        std::mem::take(&mut self.state.outputs)
    }

    /// Log lines written by the operator.
    pub fn logs(&self) -> &[String] {
        &self.state.logs
    }

    /// The figures the operator reported (key, value), in first-report order.
    pub fn reports(&self) -> &[(String, String)] {
        &self.state.reports
    }

    /// The value the operator last reported for `key`.
    pub fn report(&self, key: &str) -> Option<&str> {
        self.state
            .reports
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the operator called `finish`.
    pub fn finished(&self) -> bool {
        self.state.finished
    }

    /// Output buffers lent to the operator (`Context::output_buffer`) and not given back yet:
    /// a buffer is given back when the last array over it is dropped.
    pub fn lent_buffers(&self) -> usize {
        self.state.loans.load(Ordering::SeqCst)
    }
}

impl<T: Operator> Drop for Harness<T> {
    fn drop(&mut self) {
        // SAFETY: the instance came from create and is destroyed once.
        unsafe { (self.vtable.destroy)(self.instance) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    struct Echo {
        gain: i64,
    }

    impl Operator for Echo {
        fn manifest() -> Manifest {
            Manifest::new("echo", "0.0.0", "test")
                .input(
                    "x",
                    "test_msgs/Plain",
                    "in (a plain Int64Array: not a built-in message)",
                )
                .output("y", "test_msgs/Plain", "out")
                .timer("tick", "t")
                .param(ParamSpec::int("gain", 2).range_int(-10, 10))
        }
        fn new(_: &mut Context<'_>, p: &Params) -> Result<Self> {
            Ok(Echo { gain: p.int("gain")? })
        }
        fn on_input(&mut self, ctx: &mut Context<'_>, _: &str, pack: DataPack) -> Result<()> {
            assert!(ctx.latest("x").is_some_and(|p| p.is_updated()));
            if pack.is_empty() {
                pack.data()?;
            }
            let v = pack.data()?.as_primitive::<Int64Type>().value(0);
            if v == 13 {
                panic!("unlucky {v}");
            }
            ctx.emit("y", std::sync::Arc::new(Int64Array::from(vec![v * self.gain])))
        }
        fn on_timer(&mut self, ctx: &mut Context<'_>, _: &str) -> Result<()> {
            // The pack delivered in an earlier callback is stale now.
            assert!(ctx.latest("x").is_none_or(|p| !p.is_updated()));
            ctx.emit("nope", std::sync::Arc::new(Int64Array::from(vec![0])))
        }
        fn on_param(&mut self, _: &mut Context<'_>, name: &str, v: &ParamValue) -> Result<()> {
            match (name, v) {
                ("gain", ParamValue::Int(0)) => bail!("a gain of 0 would silence the output"),
                ("gain", ParamValue::Int(g)) => {
                    self.gain = *g;
                    Ok(())
                }
                _ => bail!("unknown parameter {name}"),
            }
        }
    }

    #[test]
    fn harness_drives_callbacks_through_the_abi() {
        let mut h = Harness::<Echo>::new(&[("gain", ParamValue::Int(3))]).unwrap();
        h.input("x", Some(std::sync::Arc::new(Int64Array::from(vec![5]))))
            .unwrap();
        let out = h.take_outputs();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "y");
        assert_eq!(out[0].1.data().unwrap().as_primitive::<Int64Type>().value(0), 15);

        // An empty pack's data is an error, reported, not a panic.
        let err = h.input("x", None).unwrap_err();
        assert_eq!(
            err,
            CallError::Error("DataPack `upstream/out` is empty: it carries no data (check `is_empty()` first)".into())
        );

        // A panic is caught and reported with its message.
        let err = h
            .input("x", Some(std::sync::Arc::new(Int64Array::from(vec![13]))))
            .unwrap_err();
        assert_eq!(err, CallError::Panic("unlucky 13".into()));

        // Unknown output is a clear error.
        let err = h.timer("tick").unwrap_err();
        assert_eq!(
            err,
            CallError::Error("operator `echo` has no output `nope` (outputs: y)".into())
        );

        // A parameter change can be refused with a reason.
        assert_eq!(
            h.set_param("gain", ParamValue::Int(0)).unwrap_err(),
            CallError::Error("a gain of 0 would silence the output".into())
        );
        h.set_param("gain", ParamValue::Int(-1)).unwrap();
        h.input("x", Some(std::sync::Arc::new(Int64Array::from(vec![4]))))
            .unwrap();
        assert_eq!(
            h.take_outputs()[0]
                .1
                .data()
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0),
            -4
        );
    }

    /// Writes its output in place: a UInt8 array of `n` bytes (value = index), n from the input.
    struct Writer;

    impl Operator for Writer {
        fn manifest() -> Manifest {
            Manifest::new("writer", "0.0.0", "test")
                .input("n", "test_msgs/Plain", "how many bytes")
                .output("bytes", "any/Bytes", "bytes written in place")
        }
        fn new(_: &mut Context<'_>, _: &Params) -> Result<Self> {
            Ok(Writer)
        }
        fn on_input(&mut self, ctx: &mut Context<'_>, _: &str, pack: DataPack) -> Result<()> {
            let n = pack.data()?.as_primitive::<Int64Type>().value(0) as usize;
            let mut buf = ctx.output_buffer("bytes", n)?;
            assert!(buf.is_lent());
            assert_eq!(buf.as_ptr() as usize % 64, 0);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = i as u8;
            }
            let array = UInt8Array::new(buf.into_buffer().into(), None);
            ctx.emit("bytes", std::sync::Arc::new(array))?;
            ctx.output_buffer("nope", 1).map(|_| ())
        }
    }

    /// Declares the built-in std_msgs/Int64 but handles plain Int64Arrays: the host refuses
    /// such arrays on both sides, and so does the harness.
    struct Sloppy;

    impl Operator for Sloppy {
        fn manifest() -> Manifest {
            Manifest::new("sloppy", "0.0.0", "test")
                .input("x", "std_msgs/Int64", "in")
                .output("y", "std_msgs/Int64", "out")
                .param(ParamSpec::int("gain", 2).range_int(1, 10))
        }
        fn new(_: &mut Context<'_>, _: &Params) -> Result<Self> {
            Ok(Sloppy)
        }
        fn on_input(&mut self, ctx: &mut Context<'_>, _: &str, _pack: DataPack) -> Result<()> {
            ctx.emit("y", std::sync::Arc::new(Int64Array::from(vec![1])))
        }
        fn on_timer(&mut self, _: &mut Context<'_>, _: &str) -> Result<()> {
            Ok(())
        }
        fn on_param(&mut self, _: &mut Context<'_>, _: &str, _: &ParamValue) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_harness_is_as_strict_as_the_host() {
        let err = |r: Result<Harness<Sloppy>, CallError>| match r {
            Err(CallError::Error(m)) => m,
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(
            err(Harness::<Sloppy>::new(&[("gian", ParamValue::Int(3))])),
            "unknown parameter `gian` (the operator declares: gain)"
        );
        assert_eq!(
            err(Harness::<Sloppy>::new(&[("gain", ParamValue::Int(30))])),
            "parameter `gain`: 30 is out of range [1, 10]"
        );
        assert_eq!(
            err(Harness::<Sloppy>::new(&[("gain", ParamValue::Float(3.0))])),
            "parameter `gain`: expected an int, got float `3`"
        );
        let mut h = Harness::<Sloppy>::new(&[]).unwrap();
        assert_eq!(
            h.set_param("gain", ParamValue::Int(0)).unwrap_err(),
            CallError::Error("parameter `gain`: 0 is out of range [1, 10]".into())
        );
        let plain = std::sync::Arc::new(Int64Array::from(vec![5]));
        let e = h.input("x", Some(plain)).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "input `x` is declared as std_msgs/Int64 but the data is Int64; build it with quiver_msgs::Int64"
            ),
            "{e}"
        );
        let good = quiver_msgs::Message::to_arrow(quiver_msgs::Int64 { data: 5 }).unwrap();
        let e = h.input("x", Some(good)).unwrap_err().to_string();
        assert!(
            e.contains("output `y` is declared as std_msgs/Int64 but the data is Int64"),
            "{e}"
        );
        assert!(h.take_outputs().is_empty(), "the refused output was not emitted");
    }

    #[test]
    fn output_buffers_are_written_in_place_and_given_back() {
        let mut h = Harness::<Writer>::new(&[]).unwrap();
        let err = h
            .input("n", Some(std::sync::Arc::new(Int64Array::from(vec![1000]))))
            .unwrap_err();
        assert_eq!(
            err,
            CallError::Error("operator `writer` has no output `nope` (outputs: bytes)".into())
        );
        let out = h.take_outputs();
        let bytes = out[0].1.data().unwrap().as_primitive::<UInt8Type>().clone();
        assert_eq!(bytes.len(), 1000);
        assert!(bytes.values().iter().enumerate().all(|(i, b)| *b == i as u8));
        // The emitted array still uses the lent memory; dropping the last reference gives it back.
        assert_eq!(h.lent_buffers(), 1);
        drop(out);
        assert_eq!(h.lent_buffers(), 1, "`bytes` still holds it");
        drop(bytes);
        assert_eq!(h.lent_buffers(), 0);
    }
}
