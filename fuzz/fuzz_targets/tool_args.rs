//! The MCP tools' argument structs decoded from arbitrary JSON bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| orchestr8::fuzzing::tool_args(data));
