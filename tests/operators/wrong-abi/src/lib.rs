//! A library that claims an ABI version the host does not speak: the loader must refuse it by
//! reading this number alone, before calling anything.

/// Not the host's ABI version.
#[unsafe(no_mangle)]
pub static QUIVER_ABI_VERSION: u32 = 999;
