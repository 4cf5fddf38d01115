//! Workflows as prompts: `argument-hint`, workflow text and argument values, separated by
//! `\x1f`, through `arguments`, `body` and `render`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| orchestr8::fuzzing::prompt_render(input));
