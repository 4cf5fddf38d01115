//! The planner over a tiny in-memory library: query analysis (stems, typo corrections),
//! DuckDB filters, tantivy search, copy collapsing, and the role, capability and name lookups.
//! The input's lines are query text, kind, role, capability, category, model and limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| orchestr8::fuzzing::query(data));
