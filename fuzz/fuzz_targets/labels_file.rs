//! Any bytes as a labels file (`sprig train --labels`), joined against a fixed corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprig::fuzzing::labels_file(data);
});
