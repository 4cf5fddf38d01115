//! Entry points for the cargo-fuzz targets in `fuzz/` (built only with the `fuzzing` feature,
//! never part of the public API). Each function takes the fuzzer's input, decodes it as its doc
//! comment says, runs one parser that reads outside input, and asserts the properties that must
//! hold for every input. A panic here is a bug.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use crate::engine::{Config, Engine, EngineError};
use crate::library::Kind;
use crate::library::formats::{Location, check_name, parse_file};
use crate::mcp::{prompts, resources, tools};
use crate::planner::{Filters, PlanError, Query};

/// Where a fuzzed file pretends to live, chosen by the first input byte (`'0'`, `'1'`, `'2'`):
/// a plain markdown file (agent if its frontmatter says so), a SKILL.md, a slash command.
const FRONTMATTER_PATHS: [&str; 3] = [
    "lib/agents/fuzz/fuzzed-agent.md",
    "lib/skills/fuzz/fuzzed-skill/SKILL.md",
    "lib/commands/fuzzed-workflow.md",
];

/// `frontmatter`: the whole file path of `parse_file` (NUL and UTF-8 checks, fences, strict
/// YAML, the lenient fallback, field mapping, markdown body) on arbitrary bytes.
pub fn frontmatter(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let relative = Path::new(FRONTMATTER_PATHS[usize::from(selector) % FRONTMATTER_PATHS.len()]);
    let path = Path::new("/fuzz-root").join(relative);
    let parsed = parse_file(
        &Location {
            root: 0,
            path: &path,
            relative,
        },
        bytes,
    );
    for d in &parsed.diagnostics {
        assert!(d.line >= 1, "diagnostic without a line: {d:?}");
        assert_eq!(d.path, path);
    }
    if let Some((definition, _body)) = &parsed.definition {
        // Names travel into URIs and lookups: a served name must never be able to point elsewhere.
        assert!(
            check_name(&definition.name).is_ok(),
            "served a name that check_name refuses: {:?}",
            definition.name
        );
        assert!(!definition.name.trim().is_empty());
        // What a list shows of the description: one line, no longer than asked, no example.
        let summary = definition.summary(200);
        assert!(
            summary.chars().count() <= 200,
            "summary too long: {summary:?}"
        );
        assert!(
            summary.is_empty()
                || summary
                    .split(' ')
                    .all(|w| !w.is_empty() && !w.contains(char::is_whitespace)),
            "summary not one flat line: {summary:?}"
        );
        assert!(
            !summary.contains("<example"),
            "summary with an example: {summary:?}"
        );
    }
}

/// A few real definitions of every kind, one pair of identical copies, and a role chain.
const QUERY_LIBRARY: &[(&str, &[u8])] = &[
    (
        "agents/quality/code-reviewer.md",
        include_bytes!("../tests/fixtures/v5/agents/quality/code-reviewer.md"),
    ),
    (
        "agents/quality/security-reviewer.md",
        include_bytes!("../tests/fixtures/v5/agents/quality/security-reviewer.md"),
    ),
    (
        "agents/development/fullstack-developer.md",
        include_bytes!("../tests/fixtures/v5/agents/development/fullstack-developer.md"),
    ),
    (
        "agents/core/angular-developer.md",
        include_bytes!("../tests/fixtures/claude-code/categories/01-core/angular-developer.md"),
    ),
    (
        "agents/core/backlog-groomer.md",
        include_bytes!("../tests/fixtures/claude-code/categories/01-core/backlog-groomer.md"),
    ),
    (
        "agents/infra/terraform-engineer.md",
        include_bytes!("../tests/fixtures/claude-code/categories/02-infra/terraform-engineer.md"),
    ),
    (
        "plugins/a/agents/backend-architect.md",
        include_bytes!(
            "../tests/fixtures/claude-code/plugins/backend-development/agents/backend-development-backend-architect.md"
        ),
    ),
    (
        "plugins/b/agents/backend-architect.md",
        include_bytes!(
            "../tests/fixtures/claude-code/plugins/api-scaffolding/agents/api-scaffolding-backend-architect.md"
        ),
    ),
    (
        "fragments/rust-async-runtime.md",
        include_bytes!("../tests/fixtures/v8/fragments/rust-async-runtime.md"),
    ),
    (
        "skills/tools/git-bisect/SKILL.md",
        include_bytes!("../tests/fixtures/mixed/skills/tools/git-bisect/SKILL.md"),
    ),
    (
        "skills/tools/git-bisect/references/cheatsheet.md",
        include_bytes!("../tests/fixtures/mixed/skills/tools/git-bisect/references/cheatsheet.md"),
    ),
    (
        "commands/fix-bug.md",
        include_bytes!("../tests/fixtures/mixed/commands/fix-bug.md"),
    ),
    (
        "commands/release-notes.md",
        include_bytes!("../tests/fixtures/mixed/commands/release-notes.md"),
    ),
];

/// An in-memory engine (no index directory, no embedding model) over `files`, given as paths relative to one
/// library root and their contents. The files are written to a temporary directory that is
/// removed again once the engine has read them.
fn open_in_memory(files: &[(&str, &[u8])]) -> Engine {
    let root = std::env::temp_dir().join(format!("orchestr8-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (relative, bytes) in files {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().expect("a file has a parent"))
            .expect("create fuzz library directory");
        std::fs::write(&path, bytes).expect("write fuzz library file");
    }
    let engine = Engine::open(&Config::new(vec![root.clone()])).expect("open the fuzz library");
    let _ = std::fs::remove_dir_all(&root);
    engine
}

/// `query`: the input split on newlines into query text, kind, role, capability, category,
/// model and limit; searched in `QUERY_LIBRARY` as the CLI and `discover_agents` would, then
/// used for the role, capability and name lookups the other tools make.
pub fn query(data: &[u8]) {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| open_in_memory(QUERY_LIBRARY));
    let input = String::from_utf8_lossy(data);
    let mut parts = input.split('\n');
    let text = parts.next().unwrap_or_default().to_string();
    let mut next = || parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    let kind = next().and_then(|k| k.parse::<Kind>().ok());
    let filters = Filters {
        kind,
        role: next(),
        capability: next(),
        category: next(),
        model: next(),
    };
    let limit = next()
        .and_then(|l| l.trim().parse::<usize>().ok())
        .unwrap_or(5);
    let query = Query {
        text,
        filters,
        limit,
    };
    match engine.search(&query) {
        Ok(found) => {
            assert!(found.results.len() <= limit);
            let mut names: Vec<&str> = found.results.iter().map(|h| h.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), found.results.len(), "a name listed twice");
        }
        Err(EngineError::Plan(PlanError::Empty)) => {
            assert!(query.text.trim().is_empty() && query.filters.is_empty());
        }
        // A filter value no definition declares is named back to the caller: it must be one
        // the query gave, for the filter the error names.
        Err(EngineError::UnknownFilter { filter, value, .. }) => {
            let given = match filter {
                "role" => &query.filters.role,
                "capability" => &query.filters.capability,
                "category" => &query.filters.category,
                "model" => &query.filters.model,
                other => panic!("unknown filter kind {other}"),
            };
            assert_eq!(given.as_deref(), Some(value.as_str()), "on {query:?}");
        }
        Err(e) => panic!("search failed on {query:?}: {e}"),
    }
    if let Some(role) = &query.filters.role {
        let _ = engine.resolve_role(role, limit.min(50));
    }
    if let Some(capability) = &query.filters.capability {
        let _ = engine.with_capability(capability);
    }
    let _ = engine.get(query.text.trim());
    let _ = engine.load(query.text.trim());
}

/// `tool_args`: the MCP tools' argument structs decoded from arbitrary bytes, both straight
/// from the bytes and, as rmcp does, from an already parsed JSON object.
pub fn tool_args(data: &[u8]) {
    fn decode<T: serde::de::DeserializeOwned + std::fmt::Debug>(
        data: &[u8],
        value: Option<&serde_json::Value>,
    ) {
        if let Ok(args) = serde_json::from_slice::<T>(data) {
            let _ = format!("{args:?}");
        }
        if let Some(value) = value
            && let Ok(args) = serde_json::from_value::<T>(value.clone())
        {
            let _ = format!("{args:?}");
        }
    }
    let value = serde_json::from_slice::<serde_json::Value>(data).ok();
    let value = value.as_ref();
    decode::<tools::DiscoverArgs>(data, value);
    decode::<tools::RoleArgs>(data, value);
    decode::<tools::CapabilityArgs>(data, value);
    decode::<tools::DefinitionArgs>(data, value);
}

/// `resource_uri`: resource URI parsing. Whatever it accepts must stay inside the library: a
/// definition, role or capability name is one path segment, and a skill file's path is
/// relative with only normal segments (no `..`, no root, no `.`-prefixed names).
pub fn resource_uri(uri: &str) {
    let Ok(target) = resources::parse(uri) else {
        return;
    };
    let one_segment = |name: &str| {
        assert!(
            !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != "..",
            "accepted name {name:?} in {uri:?}"
        );
    };
    match target {
        resources::Target::Catalog => assert_eq!(uri, resources::CATALOG),
        resources::Target::Definition(_, name)
        | resources::Target::Role(name)
        | resources::Target::Capability(name) => one_segment(name),
        resources::Target::SkillFile(name, relative) => {
            one_segment(name);
            let path = Path::new(relative);
            assert!(
                !relative.is_empty() && !path.is_absolute() && !relative.starts_with('/'),
                "skill file path {relative:?} from {uri:?} is not relative"
            );
            assert!(
                relative.split(['/', '\\']).all(|s| s != ".."),
                "skill file path {relative:?} from {uri:?} has a `..` segment"
            );
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "skill file path {relative:?} from {uri:?} is not plain segments"
            );
            // Joined onto a skill folder, it stays under that folder.
            let folder = PathBuf::from("/library/skills/some-skill");
            assert!(folder.join(path).starts_with(&folder));
        }
    }
}

/// `judged_queries`: a judged query file (JSON Lines). What it accepts satisfies the checks it
/// promises: every query judges something relevant, with grades 1 or 2, under unique ids.
pub fn judged_queries(text: &str) {
    if let Ok(judged) = crate::eval::parse(text) {
        let mut ids = std::collections::HashSet::new();
        for j in &judged {
            assert!(!j.relevant.is_empty());
            assert!(j.relevant.values().all(|g| (1..=2).contains(g)));
            assert!(ids.insert(j.id.as_str()), "id {:?} accepted twice", j.id);
        }
    }
}

/// `prompt_render`: a workflow as a prompt. The input, split on `\x1f`, is the `argument-hint`
/// (empty: none), the workflow file's text, and argument values in declared order.
pub fn prompt_render(input: &str) {
    let mut parts = input.split('\x1f');
    let hint = parts.next().filter(|h| !h.is_empty());
    let text = parts.next().unwrap_or_default();
    let declared = prompts::arguments(hint);
    assert!((1..=9).contains(&declared.len()));
    assert!(declared.iter().all(|(name, _)| !name.is_empty()));
    let given: BTreeMap<String, String> = declared
        .iter()
        .map(|(name, _)| name.clone())
        .zip(parts.map(str::to_string))
        .collect();
    let body = prompts::body(text);
    assert!(text.ends_with(body));
    let rendered = prompts::render(body, &declared, &given);
    if !body.contains('$') {
        assert_eq!(rendered, body);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The committed seeds still pass their targets' checks. The fuzzer runs only when asked
    /// (`scripts/fuzz`), and an entry point drifts with the code it calls: once a search began
    /// to name a filter value no definition declares, the query target failed on its sixth
    /// input, and nothing else noticed.
    #[test]
    fn every_committed_seed_passes_its_target() {
        replay("frontmatter", &super::frontmatter);
        replay("query", &super::query);
        replay("tool_args", &super::tool_args);
        replay("resource_uri", &text(super::resource_uri));
        replay("judged_queries", &text(super::judged_queries));
        replay("prompt_render", &text(super::prompt_render));
    }

    /// A `&str` target: as libFuzzer does for those, input that is not UTF-8 is skipped.
    fn text(run: fn(&str)) -> impl Fn(&[u8]) {
        move |data| {
            if let Ok(text) = std::str::from_utf8(data) {
                run(text);
            }
        }
    }

    /// Runs every seed in `fuzz/seeds/<target>/` through `run`, naming the one that fails.
    fn replay(target: &str, run: &dyn Fn(&[u8])) {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(target);
        let mut replayed = 0;
        for entry in std::fs::read_dir(&seeds).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
            assert!(caught.is_ok(), "{target}: seed {} fails", path.display());
            replayed += 1;
        }
        assert!(replayed > 0, "no seeds in {}", seeds.display());
    }
}
