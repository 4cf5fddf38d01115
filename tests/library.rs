//! The shipped library's invariants: counts, required fields, roles and fallback chains,
//! skills named like their folders, workflows that name only roles that exist.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use orchestr8::{Config, Definition, Engine, Kind, Severity};

const GENERALISTS: &[&str] = &[
    "fullstack-developer",
    "architect",
    "infrastructure-engineer",
    "technical-writer",
    "code-reviewer",
    "project-orchestrator",
];

fn shipped() -> Engine {
    let home = Path::new(env!("CARGO_MANIFEST_DIR"));
    let roots: Vec<PathBuf> = ["agents", "skills", "commands"]
        .iter()
        .map(|d| home.join(d))
        .collect();
    Engine::open(&Config::new(roots)).expect("the shipped library opens")
}

fn of_kind(engine: &Engine, kind: Kind) -> Vec<Definition> {
    engine.definitions().filter(|d| d.kind == kind).collect()
}

#[test]
fn validates_without_errors_or_warnings() {
    let engine = shipped();
    let problems: Vec<String> = engine
        .diagnostics()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        engine
            .diagnostics()
            .iter()
            .all(|d| d.severity != Severity::Error)
    );
}

#[test]
fn agents_are_complete() {
    let engine = shipped();
    let agents = of_kind(&engine, Kind::Agent);
    assert_eq!(agents.len(), 79);
    let categories: BTreeSet<&str> = agents
        .iter()
        .filter_map(|a| a.category.as_deref())
        .collect();
    assert!(categories.len() >= 12, "{categories:?}");
    for required in [
        "project-orchestrator",
        "feature-orchestrator",
        "workflow-coordinator",
        "architect",
        "code-reviewer",
        "kubernetes-expert",
    ] {
        assert!(engine.get(required).is_ok(), "{required} is missing");
    }
    for a in &agents {
        let folder = a
            .path
            .parent()
            .and_then(Path::file_name)
            .map(|f| f.to_string_lossy().into_owned());
        assert_eq!(
            a.category, folder,
            "{}: category must equal its folder",
            a.name
        );
        assert_eq!(
            a.path.file_stem().map(|s| s.to_string_lossy().into_owned()),
            Some(a.name.clone())
        );
        assert!(
            !a.description.is_empty() && a.description.len() <= 400,
            "{}: description",
            a.name
        );
        assert!(a.role.is_some(), "{}: role", a.name);
        assert!(
            (4..=8).contains(&a.capabilities.len()),
            "{}: capabilities",
            a.name
        );
        assert!(
            !a.use_when.is_empty() && a.model.is_some() && !a.tools.is_empty(),
            "{}: use_when, model, tools",
            a.name
        );
        let text = std::fs::read_to_string(&a.path).unwrap();
        let words = text
            .splitn(3, "---")
            .nth(2)
            .unwrap_or_default()
            .split_whitespace()
            .count();
        assert!(
            (400..=1500).contains(&words),
            "{}: body has {words} words",
            a.name
        );
    }
}

#[test]
fn every_role_has_a_chain_that_resolves_and_ends_in_a_generalist() {
    let engine = shipped();
    let names: BTreeSet<&str> = engine.names().into_iter().collect();
    for agent in of_kind(&engine, Kind::Agent) {
        let chain = &agent.fallbacks;
        assert!(
            chain.len() >= 2,
            "{}: fallback chain shorter than two",
            agent.name
        );
        let unique: BTreeSet<&String> = chain.iter().collect();
        assert_eq!(
            unique.len(),
            chain.len(),
            "{}: fallback listed twice",
            agent.name
        );
        assert!(
            !chain.contains(&agent.name),
            "{}: falls back to itself",
            agent.name
        );
        for f in chain {
            assert!(
                names.contains(f.as_str()),
                "{}: fallback {f} does not exist",
                agent.name
            );
        }
        let last = chain.last().unwrap();
        assert!(
            GENERALISTS.contains(&last.as_str()),
            "{}: chain ends in {last}, not a generalist",
            agent.name
        );
    }
    for role in engine.roles() {
        let resolved = engine.resolve_role(&role.role, 50).unwrap();
        assert!(
            !resolved.searched && resolved.skipped.is_empty(),
            "{}",
            role.role
        );
        assert!(
            resolved.agents.len() >= 3,
            "{}: {:?}",
            role.role,
            resolved.agents
        );
    }
}

#[test]
fn skills_are_named_like_their_folders() {
    let engine = shipped();
    let skills = of_kind(&engine, Kind::Skill);
    assert!(skills.len() >= 30, "{} skills", skills.len());
    for s in &skills {
        let folder = s
            .path
            .parent()
            .and_then(Path::file_name)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(s.name, folder);
        assert!(
            s.name.len() <= 64
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(
            !s.description.is_empty() && s.description.len() <= 1024,
            "{}",
            s.name
        );
    }
    assert!(
        skills
            .iter()
            .filter(|s| !engine.skill_files(s).is_empty())
            .count()
            >= 6
    );
}

#[test]
fn workflows_name_only_roles_that_exist() {
    let engine = shipped();
    let roles: BTreeSet<String> = engine.roles().into_iter().map(|r| r.role).collect();
    let workflows = of_kind(&engine, Kind::Workflow);
    let names: BTreeSet<&str> = workflows.iter().map(|w| w.name.as_str()).collect();
    let expected = [
        "new-project",
        "add-feature",
        "refactor",
        "fix-bug",
        "security-audit",
        "optimize-performance",
        "deploy",
    ];
    assert_eq!(names, expected.into_iter().collect());
    let mut used: HashMap<&str, usize> = HashMap::new();
    for w in &workflows {
        assert!(
            w.argument_hint.is_some() && !w.description.is_empty(),
            "{}",
            w.name
        );
        let text = std::fs::read_to_string(&w.path).unwrap();
        assert!(
            text.contains("$ARGUMENTS") && text.contains("discover_agents_by_role"),
            "{}",
            w.name
        );
        let mentioned: Vec<&str> = text
            .split("role `")
            .skip(1)
            .filter_map(|rest| rest.split('`').next())
            .collect();
        assert!(!mentioned.is_empty(), "{} names no role", w.name);
        for role in mentioned {
            assert!(
                roles.contains(role),
                "{} names role `{role}`, which no agent declares",
                w.name
            );
            *used.entry(&w.name).or_default() += 1;
        }
    }
}
