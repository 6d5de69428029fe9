//! Host-side DataPacks. An array a plugin emits stays in its C form (a [`ForeignArray`]) and is
//! shared by every consumer: delivering it exports the same C struct fields again with a
//! reference-counted release, so moving a pack through the host costs no allocation and no copy.
//! The producing library stays loaded until the last consumer has released the array.

use std::ffi::c_void;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_schema::{ArrowError, DataType};
use quiver_abi as abi;
use quiver_operator::ffi::{export_array_only, import_array_typed, release_array};
use quiver_operator::{Header, PackId};

use crate::loader::Library;

/// An array produced by a plugin, owned by the host in its C form.
pub(crate) struct ForeignArray {
    array: abi::ArrowArray,
    data_type: DataType,
    // Dropped after `array` is released (see Drop): the release callback is the library's code.
    // None: the host made the array (received from another process); its release is host code.
    _library: Option<Arc<Library>>,
}

// SAFETY: the C struct is never mutated after adoption and its release callback runs once, in
// Drop; Arrow arrays are immutable and their buffers may be read from any thread (arrow's own
// FFI types are Send + Sync for the same reason).
unsafe impl Send for ForeignArray {}
// SAFETY: as above: only shared reads happen through `&ForeignArray`.
unsafe impl Sync for ForeignArray {}

impl Drop for ForeignArray {
    fn drop(&mut self) {
        // SAFETY: we own the unreleased struct; its library is still loaded (field dropped later).
        unsafe { release_array(&mut self.array) }
    }
}

unsafe extern "C" fn release_shared(array: *mut abi::ArrowArray) {
    // SAFETY: `array` was made by `ForeignArray::export`: its private data is one strong count of
    // the ForeignArray, given back exactly once (release is nulled below).
    unsafe {
        let a = &mut *array;
        drop(Arc::from_raw(a.private_data.cast::<ForeignArray>().cast_const()));
        a.release = None;
        a.private_data = std::ptr::null_mut();
    }
}

fn check_struct(a: &abi::ArrowArray) -> Result<(), String> {
    if a.release.is_none() {
        return Err("the array was already released".into());
    }
    if a.length < 0 || a.offset < 0 || a.null_count < -1 {
        return Err(format!(
            "negative length {} / offset {} / null count {}",
            a.length, a.offset, a.null_count
        ));
    }
    if a.n_buffers < 0 || (a.n_buffers > 0 && a.buffers.is_null()) {
        return Err(format!("{} buffers but no buffer list", a.n_buffers));
    }
    if a.n_children < 0 || (a.n_children > 0 && a.children.is_null()) {
        return Err(format!("{} children but no child list", a.n_children));
    }
    for i in 0..a.n_children as usize {
        // SAFETY: `children` holds `n_children` pointers (C Data Interface).
        let child = unsafe { *a.children.add(i) };
        if child.is_null() {
            return Err(format!("child {i} is null"));
        }
        // SAFETY: a non-null child pointer points to a valid ArrowArray.
        check_struct(unsafe { &*child })?;
    }
    Ok(())
}

impl ForeignArray {
    /// Takes ownership of `array` (of type `data_type`, produced by `library`) after a structural
    /// check. On an error the array is released.
    ///
    /// # Safety
    /// `array` must be a C Data Interface struct (released or not) produced by `library`'s code.
    pub unsafe fn adopt(
        mut array: abi::ArrowArray,
        data_type: DataType,
        library: Arc<Library>,
    ) -> Result<Arc<ForeignArray>, String> {
        if let Err(e) = check_struct(&array) {
            // SAFETY: valid struct (released or not), ours to release.
            unsafe { release_array(&mut array) };
            return Err(e);
        }
        Ok(Arc::new(ForeignArray {
            array,
            data_type,
            _library: Some(library),
        }))
    }

    /// An array the host made (decoded from another process's frame), shared like a plugin's.
    pub fn from_host(array: &ArrayRef) -> Arc<ForeignArray> {
        Arc::new(ForeignArray {
            array: export_array_only(array),
            data_type: array.data_type().clone(),
            _library: None,
        })
    }

    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// A C struct for one consumer: the same buffers and children, released by dropping one
    /// reference to `self`. No allocation, no copy. Consumers read children in place (as arrow's
    /// importer does); they must not move them out.
    pub fn export(self: &Arc<Self>) -> abi::ArrowArray {
        let a = &self.array;
        abi::ArrowArray {
            length: a.length,
            null_count: a.null_count,
            offset: a.offset,
            n_buffers: a.n_buffers,
            n_children: a.n_children,
            buffers: a.buffers,
            children: a.children,
            dictionary: a.dictionary,
            release: Some(release_shared),
            private_data: Arc::into_raw(self.clone()).cast_mut().cast::<c_void>(),
        }
    }

    /// The array as an arrow `ArrayRef` in the host (zero copy; checked by `validate`).
    pub fn to_arrow(self: &Arc<Self>) -> Result<ArrayRef, ArrowError> {
        // SAFETY: `export` gives a valid, unreleased struct of type `data_type`.
        unsafe { import_array_typed(self.export(), self.data_type.clone()) }
    }
}

/// A DataPack as the host queues it.
#[derive(Clone)]
pub(crate) struct Pack {
    pub id: Arc<PackId>,
    pub header: Header,
    /// None: an empty DataPack.
    pub data: Option<Arc<ForeignArray>>,
}
