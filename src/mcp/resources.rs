//! Resource URIs: the catalog, every definition by kind and name, a skill's supporting files,
//! and roles and capabilities. Parsing is strict: a URI that could point outside the library
//! (`..`, a separator in a name, an absolute path) is refused before anything is opened.

use crate::library::Kind;

pub(crate) const SCHEME: &str = "orchestr8://";
pub(crate) const CATALOG: &str = "orchestr8://catalog";

/// What a resource URI asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Target<'a> {
    Catalog,
    Definition(Kind, &'a str),
    /// A file inside a skill's folder, by path relative to that folder.
    SkillFile(&'a str, &'a str),
    Role(&'a str),
    Capability(&'a str),
}

pub(crate) fn templates() -> [(&'static str, &'static str, &'static str, &'static str); 6] {
    [
        (
            "orchestr8://agents/{name}",
            "agent",
            "An agent's full definition (system prompt).",
            "text/markdown",
        ),
        (
            "orchestr8://skills/{name}",
            "skill",
            "A skill's SKILL.md.",
            "text/markdown",
        ),
        (
            "orchestr8://skills/{name}/{+path}",
            "skill-file",
            "A file of a skill's folder, e.g. references/checklist.md.",
            "text/plain",
        ),
        (
            "orchestr8://workflows/{name}",
            "workflow",
            "A workflow (slash command) definition.",
            "text/markdown",
        ),
        (
            "orchestr8://roles/{role}",
            "role",
            "A role's agents in fallback order.",
            "application/json",
        ),
        (
            "orchestr8://capabilities/{capability}",
            "capability",
            "Every agent with a capability.",
            "application/json",
        ),
    ]
}

pub(crate) fn uri(kind: Kind, name: &str) -> String {
    let folder = match kind {
        Kind::Agent => "agents",
        Kind::Skill => "skills",
        Kind::Workflow => "workflows",
    };
    format!("{SCHEME}{folder}/{name}")
}

/// Parses a resource URI, or says why it is refused.
pub(crate) fn parse(uri: &str) -> Result<Target<'_>, String> {
    if uri == CATALOG {
        return Ok(Target::Catalog);
    }
    let rest = uri
        .strip_prefix(SCHEME)
        .ok_or_else(|| format!("unknown resource `{uri}`: URIs start with {SCHEME}"))?;
    if rest.contains('\\') || rest.contains('\0') || rest.contains('%') {
        return Err(format!(
            "refused `{uri}`: backslashes, NUL and percent-escapes are not allowed"
        ));
    }
    let (folder, tail) = rest
        .split_once('/')
        .ok_or_else(|| format!("unknown resource `{uri}`"))?;
    let (name, path) = match tail.split_once('/') {
        Some((name, path)) => (name, Some(path)),
        None => (tail, None),
    };
    check_segment(uri, name)?;
    match (folder, path) {
        ("agents", None) => Ok(Target::Definition(Kind::Agent, name)),
        ("skills", None) => Ok(Target::Definition(Kind::Skill, name)),
        ("workflows", None) => Ok(Target::Definition(Kind::Workflow, name)),
        ("roles", None) => Ok(Target::Role(name)),
        ("capabilities", None) => Ok(Target::Capability(name)),
        ("skills", Some(path)) => {
            if path.is_empty() || path.starts_with('/') {
                return Err(format!(
                    "refused `{uri}`: the file path must be relative to the skill's folder"
                ));
            }
            for segment in path.split('/') {
                check_segment(uri, segment)?;
            }
            Ok(Target::SkillFile(name, path))
        }
        _ => Err(format!(
            "unknown resource `{uri}`; see resources/templates/list"
        )),
    }
}

fn check_segment(uri: &str, segment: &str) -> Result<(), String> {
    if segment.is_empty() || segment == "." || segment == ".." || segment.starts_with('.') {
        return Err(format!(
            "refused `{uri}`: empty, `.` or `..` path segments are not allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(parse("orchestr8://catalog"), Ok(Target::Catalog));
        assert_eq!(
            parse("orchestr8://agents/code-reviewer"),
            Ok(Target::Definition(Kind::Agent, "code-reviewer"))
        );
        assert_eq!(
            parse("orchestr8://skills/git-bisect/references/a.md"),
            Ok(Target::SkillFile("git-bisect", "references/a.md"))
        );
        assert_eq!(
            parse("orchestr8://roles/code-review"),
            Ok(Target::Role("code-review"))
        );
    }

    #[test]
    fn refuses_escapes() {
        for bad in [
            "orchestr8://skills/x/../../etc/passwd",
            "orchestr8://skills/x//etc/passwd",
            "orchestr8://agents/..",
            "orchestr8://skills/x/%2e%2e/secret",
            "orchestr8://skills/x/.hidden",
            "orchestr8://agents/a\\b",
            "file:///etc/passwd",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
