//! Any bytes as a weighted edge list.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprig::fuzzing::edges(data);
});
