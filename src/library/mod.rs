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

/// First sentence-ish line of `text`, without `<example>` blocks, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let cut = text.find("<example").unwrap_or(text.len());
    let flat = text[..cut].split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Rough token count of a text: 4 bytes a token, the usual rule of thumb for English.
pub fn estimate_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}
