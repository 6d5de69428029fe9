//! ROS-style `.msg` definitions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = quiver_msgs::parse("fuzz_msgs/Fuzz", "fuzz.msg", text);
    }
});
