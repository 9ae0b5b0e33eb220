//! Any bytes given to the graph loader: an error or a graph that passes every invariant.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sprig::fuzzing::graph_file(data);
});
