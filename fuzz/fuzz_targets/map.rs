//! Map files of the simulated world.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sim_core::Map::parse("fuzz.yaml", text);
    }
});
