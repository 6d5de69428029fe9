//! Graph files: the located YAML parser and the raw graph reader (keys, shapes, values).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = quiver_graph::parse(std::path::Path::new("fuzz.yaml"), text);
    }
});
