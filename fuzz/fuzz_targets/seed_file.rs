//! Any bytes as a seed file (`--seeds`), applied to a fixed corpus as `sprig train` does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprig::fuzzing::seed_file(data);
});
