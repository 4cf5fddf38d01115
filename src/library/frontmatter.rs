//! Splitting a file into frontmatter and body, and reading the frontmatter: strict YAML first,
//! then, for the files Claude Code loads but YAML rejects, a line-based `key: value` reading.

use serde_json::{Map, Value};

/// A file split at its frontmatter fences.
#[derive(Debug, PartialEq)]
pub(crate) struct Split<'a> {
    /// The YAML between the fences.
    pub yaml: &'a str,
    /// Everything after the closing fence.
    pub body: &'a str,
}

#[derive(Debug, PartialEq)]
pub(crate) enum SplitError {
    /// The file does not start with `---`: it has no frontmatter at all.
    Missing,
    /// `---` opens a block that never closes.
    Unclosed,
}

/// Splits `text` (BOM already removed) at its `---` fences. CRLF and trailing spaces on the
/// fence lines are accepted; `...` also closes, as in YAML.
pub(crate) fn split(text: &str) -> Result<Split<'_>, SplitError> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().ok_or(SplitError::Missing)?;
    if first.trim_end() != "---" {
        return Err(SplitError::Missing);
    }
    let yaml_start = first.len();
    let mut offset = yaml_start;
    for line in lines {
        let fence = line.trim_end();
        if fence == "---" || fence == "..." {
            return Ok(Split {
                yaml: &text[yaml_start..offset],
                body: &text[offset + line.len()..],
            });
        }
        offset += line.len();
    }
    Err(SplitError::Unclosed)
}

/// The outcome of reading a frontmatter block.
#[derive(Debug, PartialEq)]
pub(crate) enum Fields {
    /// Strict YAML that is a mapping (an empty block is an empty mapping).
    Strict(Map<String, Value>),
    /// Strict YAML failed; the line-based reading found these pairs. `line` and `reason` say
    /// where and why strict parsing failed, for the warning.
    Lenient {
        fields: Map<String, Value>,
        line: usize,
        reason: String,
    },
}

/// Why a frontmatter block could not be read at all.
#[derive(Debug, PartialEq)]
pub(crate) struct FieldsError {
    /// 1-based line within the YAML block.
    pub line: usize,
    pub message: String,
}

/// Reads a frontmatter block. Strict YAML wins; when it fails, the lenient reading is used if it
/// finds at least one `key: value` pair. serde_yaml bounds recursion depth and alias expansion,
/// so hostile YAML (deep nesting, "billion laughs") is an error, not an exhausted machine.
pub(crate) fn read(yaml: &str) -> Result<Fields, FieldsError> {
    match serde_yaml::from_str::<serde_yaml::Value>(yaml) {
        Ok(serde_yaml::Value::Null) => Ok(Fields::Strict(Map::new())),
        Ok(serde_yaml::Value::Mapping(mapping)) => {
            let mut fields = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    serde_yaml::Value::String(s) => s,
                    other => scalar_text(&other).ok_or_else(|| FieldsError {
                        line: 1,
                        message: "frontmatter has a key that is not a string".into(),
                    })?,
                };
                fields.insert(key, to_json(value));
            }
            Ok(Fields::Strict(fields))
        }
        Ok(other) => Err(FieldsError {
            line: 1,
            message: format!(
                "frontmatter is {}, expected `key: value` pairs",
                describe(&other)
            ),
        }),
        Err(error) => {
            let line = error.location().map_or(1, |l| l.line());
            let reason = error.to_string();
            let fields = lenient(yaml);
            if fields.is_empty() {
                Err(FieldsError {
                    line,
                    message: format!("frontmatter is not valid YAML: {reason}"),
                })
            } else {
                Ok(Fields::Lenient {
                    fields,
                    line,
                    reason,
                })
            }
        }
    }
}

fn describe(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::String(_) => "a plain string",
        serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => "a single value",
        _ => "not a mapping",
    }
}

fn scalar_text(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// YAML to JSON without loss for what frontmatter holds; non-string keys become their text,
/// tags are dropped (JSON cannot say them).
fn to_json(value: serde_yaml::Value) -> Value {
    match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect())
        }
        serde_yaml::Value::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .filter_map(|(k, v)| scalar_text(&k).map(|k| (k, to_json(v))))
                .collect(),
        ),
        serde_yaml::Value::Tagged(tagged) => to_json(tagged.value),
    }
}

/// The line-based reading Claude Code effectively applies: a top-level `key: value` line starts a
/// field whose value is everything after the first `: `; indented lines continue it, `- item`
/// lines make it a list, and `>`/`|` introduce folded or literal blocks.
fn lenient(yaml: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut current: Option<(String, Pending)> = None;
    for line in yaml.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            if let Some((
                _,
                Pending::Block {
                    text,
                    literal: true,
                },
            )) = current.as_mut()
            {
                text.push('\n');
            }
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if !indented && let Some((key, value)) = top_level_pair(line) {
            if let Some((k, p)) = current.take() {
                fields.insert(k, p.finish());
            }
            current = Some((key.to_string(), Pending::start(value)));
            continue;
        }
        match current.as_mut() {
            Some((_, pending)) => pending.continue_with(trimmed),
            None => continue,
        }
    }
    if let Some((k, p)) = current.take() {
        fields.insert(k, p.finish());
    }
    fields
}

fn top_level_pair(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_once(':')?;
    let key = key.trim_end();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some((key, rest.trim()))
}

enum Pending {
    Scalar(String),
    List(Vec<Value>),
    Block { text: String, literal: bool },
}

impl Pending {
    fn start(value: &str) -> Pending {
        if value.starts_with('>') || value.starts_with('|') {
            return Pending::Block {
                text: String::new(),
                literal: value.starts_with('|'),
            };
        }
        if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            return Pending::List(
                inner
                    .split(',')
                    .map(|s| unquote(s.trim()))
                    .filter(|s| !s.is_empty())
                    .map(Value::String)
                    .collect(),
            );
        }
        Pending::Scalar(unquote(value))
    }

    fn continue_with(&mut self, trimmed: &str) {
        match self {
            Pending::Scalar(s) if s.is_empty() && trimmed.starts_with("- ") => {
                *self = Pending::List(vec![Value::String(unquote(trimmed[2..].trim()))]);
            }
            Pending::List(items) if trimmed.starts_with("- ") => {
                items.push(Value::String(unquote(trimmed[2..].trim())));
            }
            Pending::List(items) => {
                if let Some(Value::String(last)) = items.last_mut() {
                    last.push(' ');
                    last.push_str(trimmed);
                }
            }
            Pending::Scalar(s) => {
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(trimmed);
            }
            Pending::Block { text, literal } => {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push(if *literal { '\n' } else { ' ' });
                }
                text.push_str(trimmed);
            }
        }
    }

    fn finish(self) -> Value {
        match self {
            Pending::Scalar(s) if s.is_empty() => Value::Null,
            Pending::Scalar(s) => Value::String(s),
            Pending::List(items) => Value::Array(items),
            Pending::Block { text, .. } => Value::String(text.trim_end().to_string()),
        }
    }
}

fn unquote(s: &str) -> String {
    let quoted = s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')));
    if quoted {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_at_fences_with_crlf() {
        let s = split("---\r\nname: a\r\n---\r\nbody\r\n").unwrap();
        assert_eq!(s.yaml, "name: a\r\n");
        assert_eq!(s.body, "body\r\n");
    }

    #[test]
    fn missing_and_unclosed_fences() {
        assert_eq!(split("# title\n"), Err(SplitError::Missing));
        assert_eq!(split("---\nname: a\n"), Err(SplitError::Unclosed));
        assert_eq!(split(""), Err(SplitError::Missing));
    }

    #[test]
    fn unquoted_colon_falls_back_to_lenient() {
        let yaml = "name: groomer\ndescription: Use when grooming. Triggers on: 'groom backlog'\ntools: Read, Grep\n";
        match read(yaml).unwrap() {
            Fields::Lenient { fields, line, .. } => {
                assert_eq!(line, 2);
                assert_eq!(
                    fields["description"],
                    json!("Use when grooming. Triggers on: 'groom backlog'")
                );
                assert_eq!(fields["tools"], json!("Read, Grep"));
            }
            other => panic!("expected lenient, got {other:?}"),
        }
    }

    #[test]
    fn lenient_reads_lists_and_blocks() {
        let yaml = "name: x\ndescription: a: b\ncapabilities:\n  - one\n  - two\nnotes: >\n  folded\n  text\n";
        let Fields::Lenient { fields, .. } = read(yaml).unwrap() else {
            panic!()
        };
        assert_eq!(fields["capabilities"], json!(["one", "two"]));
        assert_eq!(fields["notes"], json!("folded text"));
    }

    #[test]
    fn non_mapping_and_empty() {
        assert!(read("- a\n- b\n").unwrap_err().message.contains("a list"));
        assert_eq!(read("").unwrap(), Fields::Strict(Map::new()));
    }

    #[test]
    fn alias_bomb_is_an_error_not_a_hang() {
        let mut yaml = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for c in 'b'..='j' {
            yaml.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = c;
        }
        // Either refused or read leniently as plain text; never expanded into gigabytes.
        if let Ok(Fields::Strict(_)) = read(&yaml) {
            panic!("alias bomb expanded");
        }
    }
}
