//! The `extern "C"` callbacks [`export_operator!`](crate::export_operator) puts in the vtable.
//! Every entry catches panics: a panic never unwinds into the host, it becomes `STATUS_PANIC` with
//! the panic message.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow_schema::DataType;
use quiver_abi as abi;

use crate::ffi::{
    import_array_typed, panic_message, param_from_c, read_str, release_array, release_schema, schema_type, str_ref,
    take_array, take_schema,
};
use crate::{Context, DataPack, Error, Header, Manifest, Operator, PackId, Params, Result};

/// One operator instance as the host holds it.
struct Instance<T> {
    op: T,
    manifest: Manifest,
    node: String,
    /// Latest pack per input (for `Context::latest`).
    latest: Vec<Option<DataPack>>,
    /// Last identity seen per input: reused while it does not change (no allocation per pack).
    ids: Vec<Option<Arc<PackId>>>,
    /// Data type last received per input (the host sends a schema only when it changes).
    in_types: Vec<Option<DataType>>,
    /// Data type last sent per output.
    out_types: Vec<Option<DataType>>,
}

impl<T: Operator> Instance<T> {
    /// Calls `f` with the operator, a context for this call and the manifest.
    fn call(
        &mut self,
        host: &abi::HostApi,
        ctx: *mut abi::HostCtx,
        f: impl FnOnce(&mut T, &mut Context<'_>, &Manifest) -> Result<()>,
    ) -> Result<()> {
        let Instance {
            op,
            manifest,
            node,
            latest,
            out_types,
            ..
        } = self;
        let mut cx = Context::new(host, ctx, node, manifest, latest, out_types);
        f(op, &mut cx, manifest)
    }
}

/// The identity in `pack`, reusing `cached` when it is the same.
///
/// # Safety
/// The pack's strings must be valid for the call.
unsafe fn pack_id(cached: &mut Option<Arc<PackId>>, pack: &abi::InputPack) -> Arc<PackId> {
    // SAFETY: forwarded from the caller.
    let same = |s: abi::StrRef, have: &str| unsafe { s.as_str() }.is_ok_and(|s| s == have);
    if let Some(id) = cached
        && same(pack.name, &id.name)
        && same(pack.msg_type, &id.msg_type)
        && same(pack.source_node, &id.source_node)
        && same(pack.source_port, &id.source_port)
    {
        return id.clone();
    }
    // SAFETY: forwarded from the caller.
    let id = unsafe {
        Arc::new(PackId {
            name: read_str(pack.name),
            msg_type: read_str(pack.msg_type),
            source_node: read_str(pack.source_node),
            source_port: read_str(pack.source_port),
        })
    };
    *cached = Some(id.clone());
    id
}

/// The vtable for operator type `T`.
pub const fn vtable<T: Operator>() -> abi::VTable {
    abi::VTable {
        struct_size: size_of::<abi::VTable>(),
        create: create::<T>,
        on_input: on_input::<T>,
        on_timer: on_timer::<T>,
        on_param: on_param::<T>,
        stop: stop::<T>,
        destroy: destroy::<T>,
    }
}

/// Runs `f`, turning an error or a panic into a status plus a message for the host.
///
/// # Safety
/// `host` and `ctx` must be the ones of the current call.
unsafe fn guarded(
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
    reject: bool,
    f: impl FnOnce() -> Result<()>,
) -> abi::Status {
    let (status, message) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return abi::STATUS_OK,
        Ok(Err(e)) => (
            if reject {
                abi::STATUS_REJECTED
            } else {
                abi::STATUS_ERROR
            },
            e.to_string(),
        ),
        Err(payload) => (abi::STATUS_PANIC, panic_message(payload.as_ref())),
    };
    // SAFETY: the caller passes the host api and context of the current call.
    unsafe { ((*host).set_error)(ctx, str_ref(&message)) };
    status
}

/// Runs `f` on the instance, guarded.
///
/// # Safety
/// `instance` must come from `create::<T>` and not be destroyed; `host`/`ctx` as for `guarded`.
unsafe fn with_instance<T: Operator>(
    instance: *mut c_void,
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
    reject: bool,
    f: impl FnOnce(&mut Instance<T>, &abi::HostApi) -> Result<()>,
) -> abi::Status {
    // SAFETY: forwarded from the caller: `instance` is a live `Instance<T>` used by one thread at a
    // time, `host` is valid for the call.
    unsafe {
        guarded(host, ctx, reject, || {
            let inst = &mut *instance.cast::<Instance<T>>();
            // A cached pack is "updated" only during the callback that delivered it.
            for pack in inst.latest.iter_mut().flatten() {
                pack.set_updated(false);
            }
            f(inst, &*host)
        })
    }
}

unsafe extern "C" fn create<T: Operator>(
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
    node_id: abi::StrRef,
    params: *const abi::NamedParam,
    n_params: usize,
    ports: *const abi::GraphPortDecl,
    n_ports: usize,
) -> *mut c_void {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: the host passes valid pointers for the duration of the call.
    let status = unsafe {
        guarded(host, ctx, false, || {
            let node = read_str(node_id);
            let mut values = Params::new();
            let raw = if n_params == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(params, n_params)
            };
            for p in raw {
                let name = read_str(p.name);
                let value = param_from_c(&p.value)
                    .ok_or_else(|| Error::msg(format!("parameter `{name}` has unknown kind {}", p.value.kind)))?;
                values.insert(name, value);
            }
            let ports = if n_ports == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(ports, n_ports)
            };
            for p in ports {
                let settings = if p.n_settings == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(p.settings, p.n_settings)
                };
                values.add_graph_port(quiver_manifest::GraphPort {
                    name: read_str(p.name),
                    msg_type: read_str(p.msg_type),
                    output: p.is_output != 0,
                    settings: settings.iter().map(|s| (read_str(s.key), read_str(s.value))).collect(),
                });
            }
            // The instance's ports: the declared ones, then the graph's (as the host orders them).
            let manifest = T::manifest().with_graph_ports(values.graph_ports());
            let latest = vec![None; manifest.inputs.len()];
            let ids = vec![None; manifest.inputs.len()];
            let in_types = vec![None; manifest.inputs.len()];
            let mut out_types = vec![None; manifest.outputs.len()];
            let op = {
                let mut cx = Context::new(&*host, ctx, &node, &manifest, &latest, &mut out_types);
                T::new(&mut cx, &values)?
            };
            out = Box::into_raw(Box::new(Instance {
                op,
                manifest,
                node,
                latest,
                ids,
                in_types,
                out_types,
            }))
            .cast();
            Ok(())
        })
    };
    if status == abi::STATUS_OK {
        out
    } else {
        std::ptr::null_mut()
    }
}

unsafe extern "C" fn on_input<T: Operator>(
    instance: *mut c_void,
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
    port: u32,
    pack: *mut abi::InputPack,
) -> abi::Status {
    // SAFETY: the host passes a live instance, its api and context, and a valid pack it lends us.
    unsafe {
        with_instance::<T>(instance, host, ctx, false, |inst, host| {
            let port = port as usize;
            let pack = &mut *pack;
            let Instance {
                op,
                manifest,
                node,
                latest,
                ids,
                in_types,
                out_types,
            } = inst;
            let Some(input) = manifest.inputs.get(port).map(|p| p.name.as_str()) else {
                return Err(Error::msg(format!("host delivered to unknown input #{port}")));
            };
            let id = pack_id(&mut ids[port], pack);
            let header = Header {
                seq: pack.header.seq,
                timestamp_ns: pack.header.timestamp_ns,
                is_updated: pack.header.is_updated != 0,
            };
            let data = if pack.has_data != 0 {
                let mut array = take_array(&mut pack.array);
                let data_type = if pack.schema.release.is_some() {
                    let mut schema = take_schema(&mut pack.schema);
                    let t = schema_type(&schema);
                    release_schema(&mut schema);
                    t.map_err(|e| e.to_string())
                } else {
                    in_types[port]
                        .clone()
                        .ok_or_else(|| "no schema and no earlier data type".to_string())
                };
                let data_type = match data_type {
                    Ok(t) => t,
                    Err(e) => {
                        release_array(&mut array);
                        return Err(Error::msg(format!("input `{input}`: {e}")));
                    }
                };
                in_types[port] = Some(data_type.clone());
                let imported = import_array_typed(array, data_type);
                Some(imported.map_err(|e| Error::from(e).context(format!("input `{input}`: malformed Arrow data")))?)
            } else {
                None
            };
            let pack = DataPack::new(id, header, data);
            if let Some(slot) = latest.get_mut(port) {
                *slot = Some(pack.clone());
            }
            let mut cx = Context::new(host, ctx, node, manifest, latest, out_types);
            op.on_input(&mut cx, input, pack)
        })
    }
}

unsafe extern "C" fn on_timer<T: Operator>(
    instance: *mut c_void,
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
    timer: u32,
) -> abi::Status {
    // SAFETY: the host passes a live instance, its api and context.
    unsafe {
        with_instance::<T>(instance, host, ctx, false, |inst, host| {
            inst.call(host, ctx, |op, cx, manifest| {
                match manifest.timers.get(timer as usize) {
                    Some(t) => op.on_timer(cx, &t.name),
                    None => Err(Error::msg(format!("host fired unknown timer #{timer}"))),
                }
            })
        })
    }
}

unsafe extern "C" fn on_param<T: Operator>(
    instance: *mut c_void,
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
    param: *const abi::NamedParam,
) -> abi::Status {
    // SAFETY: the host passes a live instance, its api and context, and a valid parameter.
    unsafe {
        with_instance::<T>(instance, host, ctx, true, |inst, host| {
            let param = &*param;
            let name = read_str(param.name);
            let value = param_from_c(&param.value)
                .ok_or_else(|| Error::msg(format!("parameter `{name}` has unknown kind {}", param.value.kind)))?;
            inst.call(host, ctx, |op, cx, _| op.on_param(cx, &name, &value))
        })
    }
}

unsafe extern "C" fn stop<T: Operator>(
    instance: *mut c_void,
    host: *const abi::HostApi,
    ctx: *mut abi::HostCtx,
) -> abi::Status {
    // SAFETY: the host passes a live instance, its api and context.
    unsafe {
        with_instance::<T>(instance, host, ctx, false, |inst, host| {
            inst.call(host, ctx, |op, cx, _| op.stop(cx))
        })
    }
}

unsafe extern "C" fn destroy<T: Operator>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panicking Drop must not unwind into the host; there is nobody to report it to but stderr.
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `Box::into_raw` in `create::<T>` and is destroyed once.
        drop(unsafe { Box::from_raw(instance.cast::<Instance<T>>()) });
    }));
    if let Err(payload) = dropped {
        eprintln!(
            "quiver operator: dropping the instance panicked: {}",
            panic_message(payload.as_ref())
        );
    }
}
