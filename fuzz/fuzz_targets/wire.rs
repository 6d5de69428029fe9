//! DataPack frames from another process or machine (untrusted).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = arrow_buffer::Buffer::from(data.to_vec());
    let _ = quiver_runtime::wire::decode(&frame);
});
