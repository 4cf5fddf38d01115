//! A whole definition file through `parse_file`: fences, strict YAML, the lenient fallback,
//! field mapping and the markdown body. The first byte picks where the file lives (`'0'` agent,
//! `'1'` SKILL.md, `'2'` slash command); the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| orchestr8::fuzzing::frontmatter(data));
