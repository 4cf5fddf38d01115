//! Field mapping: Claude Code subagents, Agent Skills, slash commands and the older orchestr8
//! formats (v5 `role`/`capabilities`/`fallbacks`/`use_when`, v8 `id`/`tags`/`useWhen`) all become
//! one [`Definition`]. Unknown fields are kept in `extra`; a wrongly typed known field is a
//! warning, never a reason to drop the file.

use std::path::Path;

use serde_json::{Map, Value};

use super::body::BodyText;
use super::frontmatter::{self, Fields, SplitError};
use super::{Definition, Kind, estimate_tokens};
use crate::diagnostic::Diagnostic;

/// Files larger than this are not definitions (a system prompt is a few kilobytes); refusing
/// them keeps one stray log or dump from costing memory and index space.
pub(crate) const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Where a file sits, as far as classification cares.
pub(crate) struct Location<'a> {
    pub root: usize,
    pub path: &'a Path,
    /// Path relative to its root's parent (the root's own name included).
    pub relative: &'a Path,
}

/// Everything learnt from one file.
#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    pub definition: Option<(Definition, BodyText)>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads one file's bytes into a definition, or into the diagnostics that say why not.
pub(crate) fn parse_file(loc: &Location<'_>, bytes: &[u8]) -> ParsedFile {
    let mut out = ParsedFile::default();
    let path = loc.path;
    if bytes.contains(&0) {
        out.diagnostics.push(Diagnostic::error(
            path,
            1,
            "binary file (contains NUL bytes), not a markdown definition",
        ));
        return out;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            out.diagnostics.push(Diagnostic::error(
                path,
                line,
                format!(
                    "invalid UTF-8 at byte {}; save the file as UTF-8",
                    e.valid_up_to()
                ),
            ));
            return out;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let kind = classify(loc.relative);

    let (fields, body) = match frontmatter::split(text) {
        Ok(split) => match frontmatter::read(split.yaml) {
            Ok(Fields::Strict(fields)) => (fields, split.body),
            Ok(Fields::Lenient {
                fields,
                line,
                reason,
            }) => {
                out.diagnostics.push(Diagnostic::warning(
                    path,
                    line + 1,
                    format!("frontmatter is not strict YAML ({}); read it line by line as `key: value` pairs. Quote values that contain \": \"", first_line(&reason)),
                ));
                (fields, split.body)
            }
            Err(e) => {
                if kind.is_some() || looks_like_definition(split.yaml) {
                    out.diagnostics
                        .push(Diagnostic::error(path, e.line + 1, e.message));
                }
                return out;
            }
        },
        Err(SplitError::Unclosed) => {
            out.diagnostics.push(Diagnostic::error(
                path,
                1,
                "frontmatter opened by `---` on line 1 is never closed; add a `---` line after the last field",
            ));
            return out;
        }
        Err(SplitError::Missing) => match kind {
            Some(Kind::Workflow) => (Map::new(), text),
            Some(Kind::Skill) => {
                out.diagnostics.push(Diagnostic::error(
                    path,
                    1,
                    "SKILL.md has no frontmatter; it needs `name` and `description` between `---` lines",
                ));
                return out;
            }
            _ => return out,
        },
    };

    let mut reader = FieldReader {
        fields,
        path,
        diagnostics: Vec::new(),
    };
    let name_field = reader.string("name").or_else(|| reader.string("id"));
    let description = reader.string("description");
    let kind = match kind {
        Some(k) => k,
        None => {
            let routable = description.is_some()
                || reader.fields.contains_key("role")
                || reader.fields.contains_key("capabilities");
            if name_field.is_none() || !routable {
                out.diagnostics.append(&mut reader.diagnostics);
                return out; // markdown with some frontmatter, but not an agent: skip quietly
            }
            Kind::Agent
        }
    };
    let name = match kind {
        Kind::Workflow => stem(path),
        Kind::Skill => name_field.or_else(|| parent_name(path, 1)),
        Kind::Agent => name_field,
    };
    let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
        reader.diagnostics.push(Diagnostic::error(
            path,
            2,
            "definition has no `name` (or `id`)",
        ));
        out.diagnostics.append(&mut reader.diagnostics);
        return out;
    };
    if let Err(why) = check_name(&name) {
        reader
            .diagnostics
            .push(Diagnostic::error(path, 2, format!("name `{name}` {why}")));
        out.diagnostics.append(&mut reader.diagnostics);
        return out;
    }
    let mut use_when = reader.list("use_when");
    use_when.extend(reader.list("useWhen"));
    let description = description
        .or_else(|| use_when.first().cloned())
        .unwrap_or_else(|| BodyText::first_paragraph(body));
    if description.is_empty() && kind != Kind::Workflow {
        reader.diagnostics.push(Diagnostic::warning(
            path,
            2,
            format!("`{name}` has no `description`; routing will only see its body"),
        ));
    }
    let category = reader.string("category").or_else(|| match kind {
        Kind::Skill => parent_name(path, 2),
        _ => parent_name(path, 1),
    });
    let definition = Definition {
        key: key_of(path),
        kind,
        category: category.filter(|c| c != "commands" && c != "agents" && c != "skills"),
        role: reader.string("role"),
        model: reader.string("model"),
        description,
        path: path.to_path_buf(),
        root: loc.root,
        tokens: estimate_tokens(bytes.len()),
        capabilities: reader.list("capabilities"),
        tags: reader.list("tags"),
        fallbacks: reader.list("fallbacks"),
        use_when,
        tools: {
            let mut tools = reader.list("tools");
            tools.extend(reader.list("allowed-tools"));
            tools
        },
        argument_hint: reader.argument_hint(),
        extra: std::mem::take(&mut reader.fields),
        text: Default::default(),
        name,
    };
    out.definition = Some((definition, BodyText::from_markdown(body)));
    out.diagnostics.append(&mut reader.diagnostics);
    out
}

/// The stable key of a definition: a hash of its path.
pub(crate) fn key_of(path: &Path) -> u64 {
    xxhash_rust::xxh3::xxh3_64(path.as_os_str().as_encoded_bytes())
}

/// `SKILL.md` is a skill; a markdown file under a `commands/` folder is a workflow; anything
/// else may be an agent if its frontmatter says so.
fn classify(relative: &Path) -> Option<Kind> {
    if relative.file_name().is_some_and(|f| f == "SKILL.md") {
        return Some(Kind::Skill);
    }
    let mut dirs = relative.parent().into_iter().flat_map(|p| p.components());
    if dirs.any(|c| c.as_os_str() == "commands") {
        return Some(Kind::Workflow);
    }
    None
}

/// A frontmatter that fails to parse is only worth an error when it was meant to be a
/// definition; other markdown with a stray `---` block is not ours to judge.
fn looks_like_definition(yaml: &str) -> bool {
    yaml.lines()
        .any(|l| l.starts_with("name:") || l.starts_with("id:") || l.starts_with("description:"))
}

/// Names travel into URIs and file lookups: refuse the ones that could point elsewhere.
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.contains(['/', '\\']) {
        Err("contains a path separator")
    } else if name.contains("..") {
        Err("contains `..`")
    } else if name.chars().any(char::is_control) {
        Err("contains control characters")
    } else if name.len() > 200 {
        Err("is longer than 200 characters")
    } else {
        Ok(())
    }
}

fn stem(path: &Path) -> Option<String> {
    path.file_stem().map(|s| s.to_string_lossy().into_owned())
}

fn parent_name(path: &Path, up: usize) -> Option<String> {
    let mut dir = path.parent();
    for _ in 1..up {
        dir = dir.and_then(Path::parent);
    }
    dir.and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Takes known fields out of the map, leaving the unknown ones for `extra`.
struct FieldReader<'a> {
    fields: Map<String, Value>,
    path: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl FieldReader<'_> {
    fn string(&mut self, key: &str) -> Option<String> {
        match self.fields.remove(key)? {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            other => {
                self.wrong_type(key, "a string");
                self.fields.insert(key.to_string(), other);
                None
            }
        }
    }

    /// `argument-hint: [issue-number]` is a YAML list to a strict parser, but its author meant
    /// the text `[issue-number]`.
    fn argument_hint(&mut self) -> Option<String> {
        match self.fields.get("argument-hint") {
            Some(Value::Array(items)) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| {
                        format!(
                            "[{}]",
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        )
                    })
                    .collect();
                self.fields.remove("argument-hint");
                Some(parts.join(" "))
            }
            _ => self.string("argument-hint"),
        }
    }

    /// A list field, written as a YAML list or as a comma-separated string.
    fn list(&mut self, key: &str) -> Vec<String> {
        match self.fields.remove(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.trim().to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .filter(|s| !s.is_empty())
                .collect(),
            Some(other) => {
                self.wrong_type(key, "a list or a comma-separated string");
                self.fields.insert(key.to_string(), other);
                Vec::new()
            }
        }
    }

    fn wrong_type(&mut self, key: &str, expected: &str) {
        self.diagnostics.push(Diagnostic::warning(
            self.path,
            2,
            format!("field `{key}` should be {expected}; kept as an unknown field"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(rel: &str, text: &str) -> ParsedFile {
        let path = PathBuf::from("/lib").join(rel);
        parse_file(
            &Location {
                root: 0,
                path: &path,
                relative: Path::new(rel),
            },
            text.as_bytes(),
        )
    }

    #[test]
    fn claude_code_subagent() {
        let p = parse(
            "agents/backend/api-builder.md",
            "---\nname: api-builder\ndescription: Builds REST APIs\ntools: Read, Edit\nmodel: sonnet\ncolor: blue\n---\nYou build APIs.\n",
        );
        let (d, body) = p.definition.unwrap();
        assert_eq!((d.name.as_str(), d.kind), ("api-builder", Kind::Agent));
        assert_eq!(d.tools, ["Read", "Edit"]);
        assert_eq!(d.category.as_deref(), Some("backend"));
        assert_eq!(d.extra["color"], "blue");
        assert!(body.text.contains("You build APIs."));
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn v8_fragment_uses_id_and_use_when() {
        let p = parse(
            "frags/x.md",
            "---\nid: rust-async\ntags: [rust, tokio]\ncapabilities: [async]\nuseWhen:\n  - Writing async Rust\n---\nbody\n",
        );
        let (d, _) = p.definition.unwrap();
        assert_eq!(d.name, "rust-async");
        assert_eq!(d.description, "Writing async Rust");
        assert_eq!(d.tags, ["rust", "tokio"]);
        assert_eq!(d.use_when, ["Writing async Rust"]);
    }

    #[test]
    fn workflow_name_is_the_stem_and_frontmatter_optional() {
        let (d, _) = parse("commands/fix-bug.md", "Fix $ARGUMENTS\n")
            .definition
            .unwrap();
        assert_eq!((d.name.as_str(), d.kind), ("fix-bug", Kind::Workflow));
    }

    #[test]
    fn readme_without_frontmatter_is_skipped_quietly() {
        let p = parse("agents/notes.md", "# Notes\n");
        assert!(p.definition.is_none() && p.diagnostics.is_empty());
    }

    #[test]
    fn bad_names_and_files_are_diagnosed() {
        let p = parse("a.md", "---\nname: x..y\ndescription: x\n---\n");
        assert!(p.diagnostics[0].message.contains("`..`"));
        let p = parse("a.md", "---\nname: x\ndescription: y\n");
        assert!(p.diagnostics[0].message.contains("never closed"));
        let p = parse_file(
            &Location {
                root: 0,
                path: Path::new("/b.md"),
                relative: Path::new("b.md"),
            },
            b"---\nname: \xff\n---\n",
        );
        assert_eq!(p.diagnostics[0].line, 2);
    }
}
