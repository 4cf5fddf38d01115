//! Resource URI parsing; an accepted skill-file path must stay inside the skill's folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|uri: &str| orchestr8::fuzzing::resource_uri(uri));
