//! Conversions between Rust values and their C forms in [`quiver_abi`]. Used by the SDK's glue and
//! by the host, so the two sides convert the same way.

use std::time::Duration;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, from_ffi_and_data_type, to_ffi};
use arrow_array::{ArrayRef, make_array};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType};
use quiver_abi as abi;

use quiver_manifest::{ParamKind, ParamValue};

// The abi structs are the Arrow C Data Interface structs; arrow's FFI types are the same
// `#[repr(C)]` layout. These checks make a layout drift a compile error.
const _: () = assert!(size_of::<FFI_ArrowArray>() == size_of::<abi::ArrowArray>());
const _: () = assert!(size_of::<FFI_ArrowSchema>() == size_of::<abi::ArrowSchema>());
const _: () = assert!(align_of::<FFI_ArrowArray>() == align_of::<abi::ArrowArray>());
const _: () = assert!(align_of::<FFI_ArrowSchema>() == align_of::<abi::ArrowSchema>());

/// Borrows `s` as a [`abi::StrRef`].
pub fn str_ref(s: &str) -> abi::StrRef {
    abi::StrRef::new(s)
}

/// Reads a [`abi::StrRef`] into an owned string, replacing invalid UTF-8.
///
/// # Safety
/// `s` must point to `len` readable bytes for the duration of the call.
pub unsafe fn read_str(s: abi::StrRef) -> String {
    if s.ptr.is_null() || s.len == 0 {
        return String::new();
    }
    // SAFETY: the caller guarantees `ptr` points to `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn kind_to_c(kind: ParamKind) -> abi::ParamKind {
    match kind {
        ParamKind::Bool => abi::PARAM_BOOL,
        ParamKind::Int => abi::PARAM_INT,
        ParamKind::Float => abi::PARAM_FLOAT,
        ParamKind::String => abi::PARAM_STRING,
        ParamKind::Duration => abi::PARAM_DURATION,
        ParamKind::Path => abi::PARAM_PATH,
    }
}

pub fn kind_from_c(kind: abi::ParamKind) -> Option<ParamKind> {
    Some(match kind {
        abi::PARAM_BOOL => ParamKind::Bool,
        abi::PARAM_INT => ParamKind::Int,
        abi::PARAM_FLOAT => ParamKind::Float,
        abi::PARAM_STRING => ParamKind::String,
        abi::PARAM_DURATION => ParamKind::Duration,
        abi::PARAM_PATH => ParamKind::Path,
        _ => return None,
    })
}

/// The C form of a value; a string value is borrowed from `v`.
pub fn param_to_c(v: &ParamValue) -> abi::ParamValue {
    let mut c = abi::ParamValue {
        kind: kind_to_c(v.kind()),
        boolean: 0,
        int: 0,
        float: 0.0,
        string: abi::StrRef::EMPTY,
    };
    match v {
        ParamValue::Bool(b) => c.boolean = u8::from(*b),
        ParamValue::Int(i) => c.int = *i,
        ParamValue::Float(f) => c.float = *f,
        ParamValue::String(s) | ParamValue::Path(s) => c.string = str_ref(s),
        ParamValue::Duration(d) => c.int = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
    }
    c
}

/// Reads a C value; `None` for an unknown kind.
///
/// # Safety
/// A string value's `StrRef` must be readable for the duration of the call.
pub unsafe fn param_from_c(c: &abi::ParamValue) -> Option<ParamValue> {
    Some(match kind_from_c(c.kind)? {
        ParamKind::Bool => ParamValue::Bool(c.boolean != 0),
        ParamKind::Int => ParamValue::Int(c.int),
        ParamKind::Float => ParamValue::Float(c.float),
        // SAFETY: forwarded from the caller.
        ParamKind::String => ParamValue::String(unsafe { read_str(c.string) }),
        ParamKind::Duration => ParamValue::Duration(Duration::from_nanos(c.int.max(0) as u64)),
        // SAFETY: forwarded from the caller.
        ParamKind::Path => ParamValue::Path(unsafe { read_str(c.string) }),
    })
}

/// Exports an array through the C Data Interface. No data is copied: the exported structs hold
/// references to the array's buffers until released.
pub fn export_array(array: &ArrayRef) -> Result<(abi::ArrowArray, abi::ArrowSchema), ArrowError> {
    let (array, schema) = to_ffi(&array.to_data())?;
    // SAFETY: FFI_ArrowArray / FFI_ArrowSchema are `#[repr(C)]` structs with exactly the C Data
    // Interface layout, as are the abi types (sizes and alignments asserted above). The transmute
    // moves ownership; arrow's Drop does not run, the receiver calls `release`.
    let out = unsafe {
        (
            std::mem::transmute::<FFI_ArrowArray, abi::ArrowArray>(array),
            std::mem::transmute::<FFI_ArrowSchema, abi::ArrowSchema>(schema),
        )
    };
    Ok(out)
}

/// Imports an array from the C Data Interface, taking ownership of `array` (its release callback
/// runs when the last buffer is dropped). The schema is only read. Checks the buffer layout
/// (`ArrayData::validate`), so a malformed array is an error, not a later out-of-bounds read.
///
/// # Safety
/// `array` and `schema` must be valid, unreleased C Data Interface structs describing the same
/// array.
pub unsafe fn import_array(array: abi::ArrowArray, schema: &abi::ArrowSchema) -> Result<ArrayRef, ArrowError> {
    if array.release.is_none() {
        return Err(ArrowError::CDataInterface("the array was already released".into()));
    }
    if schema.release.is_none() {
        return Err(ArrowError::CDataInterface("the schema was already released".into()));
    }
    // SAFETY: same layout (see export_array); ownership of the array moves into arrow's type.
    let array = unsafe { std::mem::transmute::<abi::ArrowArray, FFI_ArrowArray>(array) };
    // SAFETY: `FFI_ArrowSchema` has the layout of `abi::ArrowSchema`; a shared reference to one is
    // a valid shared reference to the other.
    let schema = unsafe { &*(schema as *const abi::ArrowSchema).cast::<FFI_ArrowSchema>() };
    // SAFETY: the caller guarantees both structs are valid and describe the same array.
    let data = unsafe { from_ffi(array, schema)? };
    data.validate()?;
    Ok(make_array(data))
}

/// Exports only the array (no schema): for a receiver that already knows the data type.
pub fn export_array_only(array: &ArrayRef) -> abi::ArrowArray {
    let data = array.to_data();
    if is_flat(&data) {
        return export_flat(data);
    }
    let array = FFI_ArrowArray::new(&data);
    // SAFETY: same layout (see export_array); ownership moves to the returned struct.
    unsafe { std::mem::transmute::<FFI_ArrowArray, abi::ArrowArray>(array) }
}

/// What a flat export owns: the array's data (its buffers stay alive) and the buffer pointers.
struct FlatExport {
    _data: ArrayData,
    buffers: [*const std::ffi::c_void; 3],
}

unsafe extern "C" fn release_flat(array: *mut abi::ArrowArray) {
    // SAFETY: `array` was made by `export_flat`; its private data is the boxed FlatExport, freed
    // exactly once (release is nulled below).
    unsafe {
        let a = &mut *array;
        drop(Box::from_raw(a.private_data.cast::<FlatExport>()));
        a.release = None;
        a.private_data = std::ptr::null_mut();
    }
}

/// The common case [`export_flat`] handles: an array without children, dictionary or variadic
/// buffers, with at most 3 C buffers, whose validity bitmap shares the array's offset.
fn is_flat(data: &ArrayData) -> bool {
    let layout = arrow_data::layout(data.data_type());
    data.child_data().is_empty()
        && !layout.variadic
        && !matches!(data.data_type(), DataType::Dictionary(..) | DataType::Null)
        && data.buffers().len() == layout.buffers.len()
        && data.buffers().len() + usize::from(layout.can_contain_null_mask) <= 3
        && data.nulls().is_none_or(|n| n.offset() == data.offset())
}

/// Exports a flat array (see [`is_flat`]) with one allocation instead of arrow's five.
fn export_flat(data: ArrayData) -> abi::ArrowArray {
    let layout = arrow_data::layout(data.data_type());
    let mut buffers = [std::ptr::null(); 3];
    let mut n = 0;
    if layout.can_contain_null_mask {
        buffers[0] = data
            .nulls()
            .map_or(std::ptr::null(), |nulls| nulls.buffer().as_ptr().cast());
        n = 1;
    }
    for b in data.buffers() {
        buffers[n] = b.as_ptr().cast();
        n += 1;
    }
    let mut private = Box::new(FlatExport { buffers, _data: data });
    let d = &private._data;
    let (length, null_count, offset) = (d.len() as i64, d.null_count() as i64, d.offset() as i64);
    let buffers_ptr = private.buffers.as_mut_ptr();
    abi::ArrowArray {
        length,
        null_count,
        offset,
        n_buffers: n as i64,
        n_children: 0,
        buffers: buffers_ptr,
        children: std::ptr::null_mut(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_flat),
        private_data: Box::into_raw(private).cast(),
    }
}

/// Exports a data type as a C schema.
pub fn export_schema(data_type: &DataType) -> Result<abi::ArrowSchema, ArrowError> {
    let schema = FFI_ArrowSchema::try_from(data_type)?;
    // SAFETY: same layout (see export_array); ownership moves to the returned struct.
    Ok(unsafe { std::mem::transmute::<FFI_ArrowSchema, abi::ArrowSchema>(schema) })
}

/// The data type a C schema describes (the schema is only read).
///
/// # Safety
/// `schema` must be a valid, unreleased C schema.
pub unsafe fn schema_type(schema: &abi::ArrowSchema) -> Result<DataType, ArrowError> {
    if schema.release.is_none() {
        return Err(ArrowError::CDataInterface("the schema was already released".into()));
    }
    // SAFETY: same layout; a shared reference to one is a shared reference to the other.
    let schema = unsafe { &*(schema as *const abi::ArrowSchema).cast::<FFI_ArrowSchema>() };
    DataType::try_from(schema)
}

/// Imports an array whose data type is known (taking ownership of `array`), with the same checks
/// as [`import_array`].
///
/// # Safety
/// `array` must be a valid, unreleased C array of type `data_type`.
pub unsafe fn import_array_typed(array: abi::ArrowArray, data_type: DataType) -> Result<ArrayRef, ArrowError> {
    if array.release.is_none() {
        return Err(ArrowError::CDataInterface("the array was already released".into()));
    }
    // SAFETY: same layout (see export_array); ownership of the array moves into arrow's type.
    let array = unsafe { std::mem::transmute::<abi::ArrowArray, FFI_ArrowArray>(array) };
    // SAFETY: the caller guarantees the array is valid and of this type.
    let data = unsafe { from_ffi_and_data_type(array, data_type)? };
    data.validate()?;
    Ok(make_array(data))
}

/// Releases a C array if it has not been released or moved out.
///
/// # Safety
/// `array` must be a valid C Data Interface struct (released or not).
pub unsafe fn release_array(array: &mut abi::ArrowArray) {
    if let Some(release) = array.release {
        // SAFETY: the C Data Interface says a consumer releases an unreleased array by calling its
        // own release callback with a pointer to it.
        unsafe { release(array) };
        array.release = None;
    }
}

/// Releases a C schema if it has not been released or moved out.
///
/// # Safety
/// `schema` must be a valid C Data Interface struct (released or not).
pub unsafe fn release_schema(schema: &mut abi::ArrowSchema) {
    if let Some(release) = schema.release {
        // SAFETY: as for release_array.
        unsafe { release(schema) };
        schema.release = None;
    }
}

/// Moves a C array out of `slot`, leaving a released one behind.
pub fn take_array(slot: &mut abi::ArrowArray) -> abi::ArrowArray {
    std::mem::replace(slot, abi::ArrowArray::released())
}

/// Moves a C schema out of `slot`, leaving a released one behind.
pub fn take_schema(slot: &mut abi::ArrowSchema) -> abi::ArrowSchema {
    std::mem::replace(slot, abi::ArrowSchema::released())
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// A node's graph-declared ports in their C form, for `create` (borrows `ports`' strings).
pub struct CGraphPorts {
    decls: Vec<abi::GraphPortDecl>,
    // `decls` point into these.
    _settings: Vec<Vec<abi::PortSetting>>,
}

impl CGraphPorts {
    pub fn new(ports: &[quiver_manifest::GraphPort]) -> CGraphPorts {
        let settings: Vec<Vec<abi::PortSetting>> = ports
            .iter()
            .map(|p| {
                p.settings
                    .iter()
                    .map(|(k, v)| abi::PortSetting {
                        key: str_ref(k),
                        value: str_ref(v),
                    })
                    .collect()
            })
            .collect();
        let decls = ports
            .iter()
            .zip(&settings)
            .map(|(p, s)| abi::GraphPortDecl {
                name: str_ref(&p.name),
                msg_type: str_ref(&p.msg_type),
                is_output: u8::from(p.output),
                settings: s.as_ptr(),
                n_settings: s.len(),
            })
            .collect();
        CGraphPorts {
            decls,
            _settings: settings,
        }
    }

    pub fn as_ptr(&self) -> *const abi::GraphPortDecl {
        self.decls.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.decls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn export_then_import_shares_buffers() {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let before = array.to_data().buffers()[0].as_ptr();
        let (c_array, mut c_schema) = export_array(&array).unwrap();
        // SAFETY: freshly exported structs describing one array.
        let back = unsafe { import_array(c_array, &c_schema).unwrap() };
        // SAFETY: the schema is ours to release.
        unsafe { release_schema(&mut c_schema) };
        assert_eq!(back.to_data().buffers()[0].as_ptr(), before);
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn flat_export_round_trips_nulls_slices_and_strings() {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)]).slice(1, 2)),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")]).slice(1, 2)),
            Arc::new(arrow_array::BooleanArray::from(vec![true, false, true])),
        ];
        for array in arrays {
            let c = export_array_only(&array);
            // SAFETY: a freshly exported array of this type.
            let back = unsafe { import_array_typed(c, array.data_type().clone()).unwrap() };
            assert_eq!(&back, &array);
        }
    }

    #[test]
    fn strings_and_params_round_trip() {
        let array: ArrayRef = Arc::new(StringArray::from(vec!["a", "bc"]));
        let (c_array, mut c_schema) = export_array(&array).unwrap();
        // SAFETY: freshly exported structs describing one array.
        let back = unsafe { import_array(c_array, &c_schema).unwrap() };
        // SAFETY: ours to release.
        unsafe { release_schema(&mut c_schema) };
        assert_eq!(&back, &array);
        for v in [
            ParamValue::Bool(true),
            ParamValue::Int(-4),
            ParamValue::Float(0.5),
            ParamValue::String("x".into()),
            ParamValue::Duration(Duration::from_millis(100)),
        ] {
            let c = param_to_c(&v);
            // SAFETY: `v` outlives `c`.
            assert_eq!(unsafe { param_from_c(&c) }, Some(v));
        }
    }
}
