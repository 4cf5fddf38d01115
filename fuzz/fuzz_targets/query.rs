//! The planner over a tiny in-memory library: query analysis (stems, typo corrections),
//! DuckDB filters, tantivy search, copy collapsing, and the role, capability and name lookups.
//! The input's lines are query text, kind, role, capability, category, model and limit.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use orchestr8::Engine;

/// A few real definitions of every kind, one pair of identical copies, and a role chain.
const LIBRARY: &[(&str, &[u8])] = &[
    (
        "agents/quality/code-reviewer.md",
        include_bytes!("../../tests/fixtures/v5/agents/quality/code-reviewer.md"),
    ),
    (
        "agents/quality/security-reviewer.md",
        include_bytes!("../../tests/fixtures/v5/agents/quality/security-reviewer.md"),
    ),
    (
        "agents/development/fullstack-developer.md",
        include_bytes!("../../tests/fixtures/v5/agents/development/fullstack-developer.md"),
    ),
    (
        "agents/core/angular-developer.md",
        include_bytes!("../../tests/fixtures/claude-code/categories/01-core/angular-developer.md"),
    ),
    (
        "agents/core/backlog-groomer.md",
        include_bytes!("../../tests/fixtures/claude-code/categories/01-core/backlog-groomer.md"),
    ),
    (
        "agents/infra/terraform-engineer.md",
        include_bytes!(
            "../../tests/fixtures/claude-code/categories/02-infra/terraform-engineer.md"
        ),
    ),
    (
        "plugins/a/agents/backend-architect.md",
        include_bytes!(
            "../../tests/fixtures/claude-code/plugins/backend-development/agents/backend-development-backend-architect.md"
        ),
    ),
    (
        "plugins/b/agents/backend-architect.md",
        include_bytes!(
            "../../tests/fixtures/claude-code/plugins/api-scaffolding/agents/api-scaffolding-backend-architect.md"
        ),
    ),
    (
        "fragments/rust-async-runtime.md",
        include_bytes!("../../tests/fixtures/v8/fragments/rust-async-runtime.md"),
    ),
    (
        "skills/tools/git-bisect/SKILL.md",
        include_bytes!("../../tests/fixtures/mixed/skills/tools/git-bisect/SKILL.md"),
    ),
    (
        "skills/tools/git-bisect/references/cheatsheet.md",
        include_bytes!(
            "../../tests/fixtures/mixed/skills/tools/git-bisect/references/cheatsheet.md"
        ),
    ),
    (
        "commands/fix-bug.md",
        include_bytes!("../../tests/fixtures/mixed/commands/fix-bug.md"),
    ),
    (
        "commands/release-notes.md",
        include_bytes!("../../tests/fixtures/mixed/commands/release-notes.md"),
    ),
];

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| orchestr8::fuzzing::open_in_memory(LIBRARY))
}

fuzz_target!(|data: &[u8]| orchestr8::fuzzing::query(engine(), data));
