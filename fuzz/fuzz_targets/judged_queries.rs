//! Judged query files (JSON Lines) as `orchestr8 eval --queries` reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| orchestr8::fuzzing::judged_queries(text));
