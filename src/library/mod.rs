//! What a definition is, read from disk: walking roots, splitting frontmatter from body,
//! mapping the field sets found in the wild onto one [`Definition`].

mod body;
pub(crate) mod formats;
mod frontmatter;
pub(crate) mod scan;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use body::BodyText;
pub(crate) use formats::{key_of, parse_file};

/// A set of definition keys, such as a filter's answer. A key is already an xxh3 hash, so
/// FxHash's one multiplication spreads keys as well as the standard SipHash does, at a fraction
/// of the cost: a filtered search tests the set once for every document it considers.
pub(crate) type KeySet = rustc_hash::FxHashSet<u64>;

/// The three kinds of definition a library holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Agent,
    Skill,
    Workflow,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Skill => "skill",
            Kind::Workflow => "workflow",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "agent" | "agents" => Ok(Kind::Agent),
            "skill" | "skills" => Ok(Kind::Skill),
            "workflow" | "workflows" | "command" | "commands" => Ok(Kind::Workflow),
            other => Err(format!(
                "unknown kind `{other}`: expected agent, skill or workflow"
            )),
        }
    }
}

/// The frontmatter of one definition, normalised across formats. The body is not kept here:
/// it is indexed once and read from disk again when someone asks for the full text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Definition {
    /// Stable identity: a hash of the file's path.
    pub key: u64,
    pub name: String,
    pub kind: Kind,
    pub category: Option<String>,
    pub role: Option<String>,
    pub model: Option<String>,
    pub description: String,
    pub path: PathBuf,
    /// Position of the root this file was found under, in configuration order.
    pub root: usize,
    /// A rough size of the whole file in model tokens (4 bytes a token).
    pub tokens: u64,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub fallbacks: Vec<String>,
    pub use_when: Vec<String>,
    pub tools: Vec<String>,
    pub argument_hint: Option<String>,
    /// Fields this engine does not interpret, kept as they were written.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Where the index keeps this file's text.
    #[serde(skip)]
    pub(crate) text: crate::store::TextLocation,
}

impl Definition {
    /// The description cut to its first line and at most `max` characters, for compact lists.
    pub fn summary(&self, max: usize) -> String {
        one_line(&self.description, max)
    }

    /// Whether a capability or tag equals `wanted`, which is already lowercased.
    pub fn has_label(&self, wanted: &str) -> bool {
        self.capabilities
            .iter()
            .chain(&self.tags)
            .any(|l| l.to_lowercase() == wanted)
    }

    /// Capabilities and tags, lowercased, sorted, each once: what a capability filter matches.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .capabilities
            .iter()
            .chain(&self.tags)
            .map(|l| l.to_lowercase())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        labels
    }
}

/// `text` on one line, without `<example>` blocks, at most `max` characters. Reads only as many
/// words as it keeps: it runs for every hit listed, and a Claude Code description with its
/// examples runs to kilobytes.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 8));
    let mut chars = 0;
    for word in text.split_whitespace() {
        // A `char` pattern is a memchr; a `str` one sets up a substring search each call.
        let example = word.contains('<').then(|| word.find("<example")).flatten();
        let word = &word[..example.unwrap_or(word.len())];
        if !word.is_empty() {
            if !out.is_empty() {
                out.push(' ');
                chars += 1;
            }
            out.push_str(word);
            chars += word.chars().count();
        }
        if example.is_some() || chars > max {
            break;
        }
    }
    if chars > max {
        let end = out
            .char_indices()
            .nth(max.saturating_sub(1))
            .map_or(out.len(), |(at, _)| at);
        out.truncate(end);
        out.push('…');
    }
    out
}

/// Rough token count of a text: 4 bytes a token, the usual rule of thumb for English.
pub fn estimate_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_flattens_and_cuts_at_max_characters() {
        assert_eq!(
            one_line("  Reviews code.\n\n  Finds bugs.  ", 80),
            "Reviews code. Finds bugs."
        );
        assert_eq!(one_line("abc def", 7), "abc def");
        assert_eq!(one_line("abc defg", 7), "abc de…");
        // Characters, not bytes.
        assert_eq!(one_line("héllo wörld", 8), "héllo w…");
        assert_eq!(one_line("", 10), "");
    }

    #[test]
    fn one_line_stops_at_the_first_example() {
        let described = "Use for Go services.\n<example>\nuser: help\n</example> more";
        assert_eq!(one_line(described, 200), "Use for Go services.");
        assert_eq!(
            one_line("Use for Go.<example>x</example>", 200),
            "Use for Go."
        );
        assert_eq!(one_line("<example>only</example>", 200), "");
    }
}
