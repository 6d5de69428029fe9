//! CDR payloads from ROS 2 (untrusted), for every built-in message type: the first byte picks
//! the type.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let registry = quiver_msgs::Registry::builtin();
    let names: Vec<&str> = registry.names().collect();
    let name = names[pick as usize % names.len()];
    let _ = quiver_msgs::cdr::decode(registry, name, bytes);
});
