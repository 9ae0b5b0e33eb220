//! Any bytes as a corpus in every format, each record through the text path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprig::fuzzing::corpus(data);
});
