//! The four discovery tools. Every answer has a compact text rendering (what the calling model
//! reads) and the same data as structured content; lists are trimmed at whole entries to a
//! token budget and say how many were left out.

use std::sync::Arc;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::Server;
use crate::engine::EngineError;
use crate::library::{Definition, Kind, one_line};
use crate::planner::{Filters, Hit, Query};

/// The schema of what a tool returns, with every sub-schema inlined: some clients reject
/// `$ref`, and the answers are small enough that nothing is repeated much.
fn output_schema<T: JsonSchema>() -> Arc<rmcp::model::JsonObject> {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12().for_serialize();
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => rmcp::model::JsonObject::new(),
    };
    for key in ["$schema", "title", "description"] {
        object.remove(key);
    }
    Arc::new(object)
}

/// A count argument (`limit`, `max_tokens`): a whole number, or a string holding one, since
/// models sometimes quote numbers. Anything else is an error that names the argument.
fn count<'de, D: Deserializer<'de>>(d: D, name: &str) -> Result<Option<u32>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let parsed = match &value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{name}` must be a whole number such as 5, not {}",
            value.unwrap_or_default()
        ))
    })
}

fn limit_arg<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    count(d, "limit")
}

fn max_tokens_arg<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    count(d, "max_tokens")
}

const DEFAULT_LIMIT: usize = 5;
const MAX_LIMIT: usize = 50;
const DEFAULT_MAX_TOKENS: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DiscoverArgs {
    /// The task or problem in plain words, as you would brief a colleague.
    query: String,
    /// Only this kind: agent, skill or workflow.
    #[serde(default)]
    #[schemars(with = "String")]
    kind: Option<String>,
    /// Only definitions declaring this role.
    #[serde(default)]
    #[schemars(with = "String")]
    role: Option<String>,
    /// Only definitions with this capability or tag.
    #[serde(default)]
    #[schemars(with = "String")]
    capability: Option<String>,
    /// Only this category.
    #[serde(default)]
    #[schemars(with = "String")]
    category: Option<String>,
    /// Only this model (haiku, sonnet, opus, ...).
    #[serde(default)]
    #[schemars(with = "String")]
    model: Option<String>,
    /// Most results (default 5, at most 50).
    #[serde(default, deserialize_with = "limit_arg")]
    #[schemars(with = "u32")]
    limit: Option<u32>,
    /// Token budget of the answer (default 1000).
    #[serde(default, deserialize_with = "max_tokens_arg")]
    #[schemars(with = "u32")]
    max_tokens: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RoleArgs {
    /// A role such as code-review or kubernetes (the server instructions list them).
    role: String,
    /// Most agents (default 5).
    #[serde(default, deserialize_with = "limit_arg")]
    #[schemars(with = "u32")]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CapabilityArgs {
    /// A capability or tag, such as helm or security-audit.
    capability: String,
    /// Most results (default 5, at most 50).
    #[serde(default, deserialize_with = "limit_arg")]
    #[schemars(with = "u32")]
    limit: Option<u32>,
    /// Token budget of the answer (default 1000).
    #[serde(default, deserialize_with = "max_tokens_arg")]
    #[schemars(with = "u32")]
    max_tokens: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DefinitionArgs {
    /// The exact name of an agent, skill or workflow, as returned by discovery.
    name: String,
}

/// One entry of a result list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Entry {
    pub name: String,
    /// agent, skill or workflow
    #[schemars(with = "String")]
    pub kind: Kind,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "f32")]
    pub score: Option<f32>,
    /// The request's words found (by their stems) in its name, description, capabilities or
    /// use-when text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// Other names of identical copies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOut {
    pub results: Vec<Entry>,
    /// Entries left out to stay within max_tokens.
    pub omitted: usize,
    /// Said when nothing matched, or naming the request's words that no definition mentions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RoleOut {
    pub role: String,
    /// Agents to try, in order: the primary, other agents declaring the role, then the
    /// primary's fallbacks.
    pub agents: Vec<Entry>,
    /// Fallbacks named by the library that are not installed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DefinitionOut {
    pub name: String,
    /// agent, skill or workflow
    #[schemars(with = "String")]
    pub kind: Kind,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub uri: String,
    /// The whole file: frontmatter and body.
    pub text: String,
}

fn entry_of_hit(hit: Hit) -> Entry {
    Entry {
        name: hit.name,
        kind: hit.kind,
        description: one_line(&hit.description, 160),
        score: Some(hit.score),
        matched: hit.matched,
        aliases: hit.aliases,
    }
}

fn entry_of(d: &Definition) -> Entry {
    Entry {
        name: d.name.clone(),
        kind: d.kind,
        description: d.summary(160),
        score: None,
        matched: Vec::new(),
        aliases: Vec::new(),
    }
}

fn line(i: usize, e: &Entry) -> String {
    let mut line = format!("{}. {} ({}): {}", i + 1, e.name, e.kind, e.description);
    if !e.matched.is_empty() {
        line.push_str(&format!(" [matched: {}]", e.matched.join(", ")));
    }
    if !e.aliases.is_empty() {
        line.push_str(&format!(" [also: {}]", e.aliases.join(", ")));
    }
    line
}

/// Keeps whole entries while their rendering fits `max_tokens` (4 characters a token).
fn trim(mut entries: Vec<Entry>, max_tokens: usize) -> (Vec<Entry>, usize, String) {
    let budget = max_tokens.max(50) * 4;
    let mut used = 0;
    let mut text = String::new();
    let mut kept = 0;
    for (i, e) in entries.iter().enumerate() {
        let l = line(i, e);
        if kept > 0 && used + l.len() + 1 > budget {
            break;
        }
        used += l.len() + 1;
        text.push_str(&l);
        text.push('\n');
        kept += 1;
    }
    let omitted = entries.len() - kept;
    entries.truncate(kept);
    if omitted > 0 {
        text.push_str(&format!(
            "({omitted} more left out to stay within {max_tokens} tokens)\n"
        ));
    }
    (entries, omitted, text)
}

fn respond<T: Serialize>(text: String, value: &T) -> Result<CallToolResult, String> {
    let structured =
        serde_json::to_value(value).map_err(|e| format!("cannot encode the answer: {e}"))?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    Ok(result)
}

/// Words of the request that nothing in the library mentions: when one names a technology
/// ("Elixir"), the calling model learns that no definition covers it, rather than trusting a
/// list ranked on the request's other words.
fn unknown_note(words: &[String]) -> Option<String> {
    (!words.is_empty()).then(|| format!("no definition mentions: {}", words.join(", ")))
}

fn limit(given: Option<u32>) -> usize {
    given.map_or(DEFAULT_LIMIT, |l| (l as usize).clamp(1, MAX_LIMIT))
}

fn error_text(e: EngineError) -> String {
    e.to_string()
}

#[tool_router(vis = "pub(crate)")]
impl Server {
    #[tool(
        description = "Find the best agents, skills or workflows for a task, ranked. Call this first with the task in plain words; add filters only when you know them. Then load one with get_agent_definition.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<ListOut>()
    )]
    pub fn discover_agents(
        &self,
        Parameters(args): Parameters<DiscoverArgs>,
    ) -> Result<CallToolResult, String> {
        self.timed("discover_agents", || {
            let kind = match args.kind.as_deref().filter(|k| !k.is_empty()) {
                None => None,
                Some(k) => Some(k.parse::<Kind>()?),
            };
            let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
            let filters = Filters {
                kind,
                role: nonempty(args.role),
                capability: nonempty(args.capability),
                category: nonempty(args.category),
                model: nonempty(args.model),
            };
            let query = Query {
                text: args.query,
                filters,
                limit: limit(args.limit),
            };
            let engine = self.engine();
            let found = engine.search(&query).map_err(error_text)?;
            let unknown = unknown_note(&found.plan.unknown);
            let entries: Vec<Entry> = found.results.into_iter().map(entry_of_hit).collect();
            let note = if entries.is_empty() {
                Some(format!(
                    "nothing matched{}; try other words, fewer filters, or discover_agents_by_role",
                    unknown.map_or(String::new(), |u| format!(" ({u})"))
                ))
            } else {
                unknown
            };
            let (results, omitted, mut text) = trim(
                entries,
                args.max_tokens.map_or(DEFAULT_MAX_TOKENS, |t| t as usize),
            );
            if let Some(n) = &note {
                text.push_str(n);
            }
            respond(
                text,
                &ListOut {
                    results,
                    omitted,
                    note,
                },
            )
        })
    }

    #[tool(
        description = "The agent for a role and its fallbacks, in the order to try them. Use when you know the kind of specialist (e.g. code-review); falls back to a search when no agent declares the role.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<RoleOut>()
    )]
    pub fn discover_agents_by_role(
        &self,
        Parameters(args): Parameters<RoleArgs>,
    ) -> Result<CallToolResult, String> {
        self.timed("discover_agents_by_role", || {
            if args.role.trim().is_empty() {
                return Err("`role` is empty; give a role such as code-review".to_string());
            }
            let engine = self.engine();
            let resolved = engine.resolve_role(args.role.trim(), limit(args.limit)).map_err(error_text)?;
            let agents: Vec<Entry> = resolved.agents.iter().filter_map(|n| engine.get(n).ok()).map(|d| entry_of(&d)).collect();
            let note = resolved.searched.then(|| {
                let hint = match resolved.closest_roles.as_slice() {
                    [] => String::new(),
                    near => format!(" (closest roles: {})", near.join(", ")),
                };
                format!("no agent declares the role `{}`; these are the best matches for its words{hint}", args.role)
            });
            let mut text: String = agents.iter().enumerate().map(|(i, e)| line(i, e) + "\n").collect();
            if !resolved.skipped.is_empty() {
                text.push_str(&format!("skipped (not installed): {}\n", resolved.skipped.join(", ")));
            }
            if let Some(n) = &note {
                text.push_str(n);
            }
            respond(text, &RoleOut { role: resolved.role, agents, skipped: resolved.skipped, note })
        })
    }

    #[tool(
        description = "Every agent with a capability (e.g. helm, security-audit), those for which it is central first.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<ListOut>()
    )]
    pub fn discover_agents_by_capability(
        &self,
        Parameters(args): Parameters<CapabilityArgs>,
    ) -> Result<CallToolResult, String> {
        self.timed("discover_agents_by_capability", || {
            let capability = args.capability.trim();
            if capability.is_empty() {
                return Err("`capability` is empty; give a capability such as helm".to_string());
            }
            let engine = self.engine();
            let mut entries: Vec<Entry> =
                engine.with_capability(capability).map_err(error_text)?.iter().map(entry_of).collect();
            let mut note = None;
            if entries.is_empty() {
                let known = engine.capabilities();
                let near = crate::suggest::closest(capability, known.iter().map(|(c, _)| c.as_str()), 3);
                let query = Query { text: capability.replace(['-', '_'], " "), filters: Filters::default(), limit: limit(args.limit) };
                entries = engine.search(&query).map_err(error_text)?.results.into_iter().map(entry_of_hit).collect();
                let hint = if near.is_empty() { String::new() } else { format!(" (closest capabilities: {})", near.join(", ")) };
                note = Some(format!("no definition declares the capability `{capability}`; these match its words{hint}"));
            }
            entries.truncate(limit(args.limit));
            let (results, omitted, mut text) = trim(entries, args.max_tokens.map_or(DEFAULT_MAX_TOKENS, |t| t as usize));
            if let Some(n) = &note {
                text.push_str(n);
            }
            respond(text, &ListOut { results, omitted, note })
        })
    }

    #[tool(
        description = "The full definition of an agent, skill or workflow by exact name. Pass an agent's text as the prompt of a general-purpose subagent.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<DefinitionOut>()
    )]
    pub fn get_agent_definition(
        &self,
        Parameters(args): Parameters<DefinitionArgs>,
    ) -> Result<CallToolResult, String> {
        self.timed("get_agent_definition", || {
            let engine = self.engine();
            let loaded = engine.load(args.name.trim()).map_err(error_text)?;
            let d = loaded.definition;
            let out = DefinitionOut {
                uri: super::resources::uri(d.kind, &d.name),
                name: d.name,
                kind: d.kind,
                description: d.description,
                role: d.role,
                model: d.model,
                tools: d.tools,
                fallbacks: d.fallbacks,
                aliases: loaded.aliases,
                text: loaded.text.to_string(),
            };
            respond(loaded.text.to_string(), &out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: Kind::Agent,
            description: "x".repeat(100),
            score: None,
            matched: vec![],
            aliases: vec![],
        }
    }

    #[test]
    fn trims_at_whole_entries_and_counts_the_rest() {
        let (kept, omitted, text) = trim((0..10).map(|i| entry(&format!("a{i}"))).collect(), 60);
        assert_eq!(kept.len(), 2);
        assert_eq!(omitted, 8);
        assert!(text.ends_with("(8 more left out to stay within 60 tokens)\n"));
        // One entry is always kept, however small the budget.
        assert_eq!(trim(vec![entry("a")], 1).0.len(), 1);
    }
}
