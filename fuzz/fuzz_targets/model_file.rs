//! Any bytes given to the model loader: an error, or a model that predicts finite scores.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprig::fuzzing::model_file(data);
});
