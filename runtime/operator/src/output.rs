//! Output buffers written in place: [`Context::output_buffer`](crate::Context::output_buffer)
//! lends the operator memory for a pack's data. When the output goes to another process, that
//! memory already is the shared-memory frame the pack travels in, so sending it copies nothing;
//! otherwise it is ordinary 64-byte-aligned memory.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::{Buffer, MutableBuffer};
use quiver_abi as abi;

/// Memory lent by the host, given back (its `release` called once) when the last Arrow buffer
/// over it is dropped.
struct Lent {
    handle: *mut std::ffi::c_void,
    release: unsafe extern "C" fn(*mut std::ffi::c_void),
}

// SAFETY: the ABI states that `release` may be called from any thread; `handle` is an opaque
// token only passed back to it, never dereferenced here.
unsafe impl Send for Lent {}
// SAFETY: as above; `&Lent` gives access to nothing.
unsafe impl Sync for Lent {}
impl std::panic::RefUnwindSafe for Lent {}

impl Drop for Lent {
    fn drop(&mut self) {
        // SAFETY: the host's release for this handle, called exactly once (Lent is dropped once).
        unsafe { (self.release)(self.handle) }
    }
}

enum Memory {
    Lent {
        ptr: NonNull<u8>,
        len: usize,
        owner: Arc<Lent>,
    },
    Own(MutableBuffer),
}

/// Bytes to fill with an output's data: dereferences to `[u8]` (its initial contents are
/// unspecified: write all of it), then [`into_buffer`](Self::into_buffer) makes the Arrow
/// [`Buffer`] to build the array from (no copy). Build the array, emit it once: a pack emitted
/// twice from the same buffer is copied the second time.
pub struct OutputBuffer {
    memory: Memory,
}

// SAFETY: the lent memory is exclusively this value's until `into_buffer` (the host does not touch
// it before the pack is emitted), and `Lent` is Send.
unsafe impl Send for OutputBuffer {}

impl OutputBuffer {
    /// Takes what the host filled in; `None` when the host lent nothing (ordinary memory then).
    ///
    /// # Safety
    /// `out` must come from the host's `alloc_output` for `len` bytes.
    pub(crate) unsafe fn from_host(out: abi::OutputBuffer, len: usize) -> Option<OutputBuffer> {
        let release = out.release?;
        let Some(ptr) = NonNull::new(out.data) else {
            // Nothing lent, but a handle to give back anyway.
            // SAFETY: the host's release for its own handle, once.
            unsafe { release(out.handle) };
            return None;
        };
        let owner = Arc::new(Lent {
            handle: out.handle,
            release,
        });
        if out.len < len {
            return None; // `owner` gives the short loan back
        }
        Some(OutputBuffer {
            memory: Memory::Lent { ptr, len, owner },
        })
    }

    /// Ordinary, zeroed, 64-byte-aligned memory of `len` bytes.
    pub(crate) fn own(len: usize) -> OutputBuffer {
        OutputBuffer {
            memory: Memory::Own(MutableBuffer::from_len_zeroed(len)),
        }
    }

    /// Whether the host lent this memory (shared memory of the frame that will carry the pack),
    /// rather than it being ordinary memory.
    pub fn is_lent(&self) -> bool {
        matches!(self.memory, Memory::Lent { .. })
    }

    /// The filled bytes as an Arrow buffer (no copy), to build the output array from.
    pub fn into_buffer(self) -> Buffer {
        match self.memory {
            // SAFETY: `ptr` points to `len` bytes the host keeps valid until `owner` releases
            // them; from here on nobody writes them (this value is consumed).
            Memory::Lent { ptr, len, owner } => unsafe { Buffer::from_custom_allocation(ptr, len, owner) },
            Memory::Own(m) => m.into(),
        }
    }
}

impl Deref for OutputBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.memory {
            // SAFETY: `len` initialised bytes (the host's memory is a mapped file or heap, never
            // uninitialised), lent to this value alone until it is consumed.
            Memory::Lent { ptr, len, .. } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            Memory::Own(m) => m.as_slice(),
        }
    }
}

impl DerefMut for OutputBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.memory {
            // SAFETY: as for `deref`; `&mut self` makes this the only reference.
            Memory::Lent { ptr, len, .. } => unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), *len) },
            Memory::Own(m) => m.as_slice_mut(),
        }
    }
}

impl std::fmt::Debug for OutputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBuffer")
            .field("len", &self.len())
            .field("lent", &self.is_lent())
            .finish()
    }
}
