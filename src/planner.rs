//! From a request to one ranked, copy-collapsed list. The planner estimates how many
//! definitions each side would let through and runs the more selective one first:
//! DuckDB's filter result restricting tantivy's scoring, or tantivy's top-k over-fetched and
//! then filtered by DuckDB. `--explain` shows the choice and the estimates behind it.

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::library::Kind;
use crate::registry::{Registry, RegistryError};
use crate::text::{TextError, TextIndex};

/// Structured filters; each one narrows, none is required.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Filters {
    pub kind: Option<Kind>,
    pub role: Option<String>,
    pub capability: Option<String>,
    pub category: Option<String>,
    pub model: Option<String>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// A request: natural-language text, filters, and how many results to return.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub text: String,
    pub filters: Filters,
    pub limit: usize,
}

/// Which side ran first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// No filters: tantivy alone.
    TextOnly,
    /// No text: DuckDB alone, listed by name.
    FilterOnly,
    /// DuckDB's candidates first, then tantivy scores only those.
    FilterFirst,
    /// tantivy's top-k, over-fetched, then DuckDB keeps those passing the filters.
    TextFirst,
}

/// What the planner decided and why.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub strategy: Strategy,
    /// Stems the text side searched for.
    pub terms: Vec<String>,
    /// Unknown query words and the index terms used instead.
    pub corrections: Vec<Correction>,
    /// Definitions passing the filters (DuckDB count), when there are filters.
    pub filter_matches: Option<u64>,
    /// At least this many definitions match some query term.
    pub text_matches_at_least: Option<u64>,
    /// Candidates the first side handed to the second.
    pub candidates: usize,
    pub elapsed_us: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Correction {
    pub word: String,
    pub replaced_by: Vec<String>,
}

/// One entry of a result list; copies of one definition are one entry.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    pub name: String,
    pub kind: Kind,
    pub score: f32,
    pub description: String,
    pub category: Option<String>,
    pub role: Option<String>,
    pub path: String,
    pub aliases: Vec<String>,
    /// Query terms (stems) found in the name, description, capabilities, tags or use-when text:
    /// why it matched, for a reader deciding whether to trust the hit.
    pub matched: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    pub results: Vec<Hit>,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("nothing to search for: give a query, a filter, or both")]
    Empty,
    #[error(
        "the query is {chars} characters long; keep it under {MAX_QUERY_CHARS} (a task brief, not a document)"
    )]
    TooLong { chars: usize },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Text(#[from] TextError),
}

/// Longer requests are refused: a brief is a few hundred characters, and analysing megabytes
/// of text would stall every other request.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// Filters matching at most this many definitions are run first when they are also more
/// selective than the text; a term-set restriction of this size costs well under a millisecond.
const FILTER_FIRST_MAX: u64 = 20_000;

pub(crate) fn run(
    text: &TextIndex,
    registry: &Registry,
    catalog: &Catalog,
    query: &Query,
) -> Result<SearchResult, PlanError> {
    let started = Instant::now();
    let chars = query.text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(PlanError::TooLong { chars });
    }
    let analyzed = text.analyze(&query.text);
    let has_text = !query.text.trim().is_empty();
    if !has_text && query.filters.is_empty() {
        return Err(PlanError::Empty);
    }
    let filter_matches = if query.filters.is_empty() {
        None
    } else {
        Some(registry.count(&query.filters)?)
    };
    let text_estimate = has_text.then_some(analyzed.max_doc_freq);
    let strategy = match (has_text, filter_matches) {
        (false, _) => Strategy::FilterOnly,
        (true, None) => Strategy::TextOnly,
        (true, Some(n)) if n <= FILTER_FIRST_MAX && n <= analyzed.max_doc_freq.max(1) * 4 => {
            Strategy::FilterFirst
        }
        (true, Some(_)) => Strategy::TextFirst,
    };

    let mut wanted: Vec<String> = analyzed.stems.clone();
    wanted.extend(
        analyzed
            .corrections
            .iter()
            .flat_map(|(_, near)| near.iter().cloned()),
    );
    let mut collapse = Collapser {
        catalog,
        text,
        wanted,
        limit: query.limit,
        seen: HashSet::new(),
        hits: Vec::new(),
    };
    let candidates = match strategy {
        Strategy::FilterOnly => {
            let keys = registry.filter(&query.filters, None)?;
            for &key in &keys {
                collapse.push(key, 0.0);
            }
            keys.len()
        }
        Strategy::FilterFirst => {
            let keys = registry.filter(&query.filters, None)?;
            let hits = text.search(&analyzed, Some(&keys), fetch_size(query.limit, catalog))?;
            for (key, score) in hits {
                collapse.push(key, score);
            }
            keys.len()
        }
        Strategy::TextOnly | Strategy::TextFirst => {
            // Over-fetch so copies and filtered-out hits do not leave the list short; widen
            // until it is full or the text side has nothing more.
            let mut fetch = fetch_size(query.limit, catalog);
            loop {
                collapse.clear();
                let hits = text.search(&analyzed, None, fetch)?;
                let allowed: Option<HashSet<u64>> = match strategy {
                    Strategy::TextFirst => {
                        let keys: Vec<u64> = hits.iter().map(|h| h.0).collect();
                        Some(
                            registry
                                .filter(&query.filters, Some(&keys))?
                                .into_iter()
                                .collect(),
                        )
                    }
                    _ => None,
                };
                for &(key, score) in &hits {
                    if allowed.as_ref().is_none_or(|a| a.contains(&key)) {
                        collapse.push(key, score);
                    }
                }
                if collapse.is_full() || hits.len() < fetch {
                    break fetch;
                }
                fetch *= 4;
            }
        }
    };
    let plan = Plan {
        strategy,
        terms: analyzed.stems.clone(),
        corrections: analyzed
            .corrections
            .iter()
            .map(|(word, near)| Correction {
                word: word.clone(),
                replaced_by: near.clone(),
            })
            .collect(),
        filter_matches,
        text_matches_at_least: text_estimate,
        candidates,
        elapsed_us: started.elapsed().as_micros() as u64,
    };
    Ok(SearchResult {
        results: collapse.finish(),
        plan,
    })
}

/// Enough hits to fill `limit` entries after collapsing the usual number of copies.
fn fetch_size(limit: usize, catalog: &Catalog) -> usize {
    let copies = (catalog.len() / 20).clamp(10, 200);
    limit.saturating_mul(4).saturating_add(copies)
}

/// Keeps the first (best) hit of each copy group, skipping definitions that lost a name clash.
struct Collapser<'a> {
    catalog: &'a Catalog,
    text: &'a TextIndex,
    /// Query terms, for `Hit::matched`.
    wanted: Vec<String>,
    limit: usize,
    seen: HashSet<usize>,
    hits: Vec<Hit>,
}

impl Collapser<'_> {
    fn clear(&mut self) {
        self.seen.clear();
        self.hits.clear();
    }

    fn is_full(&self) -> bool {
        self.hits.len() >= self.limit
    }

    fn push(&mut self, key: u64, score: f32) {
        if self.is_full() || self.catalog.is_shadowed(key) {
            return;
        }
        let (Some(group), Some((canonical, aliases))) =
            (self.catalog.group_id(key), self.catalog.group(key))
        else {
            return;
        };
        if !self.seen.insert(group) {
            return;
        }
        let matched = if self.wanted.is_empty() {
            Vec::new()
        } else {
            let routing = [
                canonical.name.replace('-', " "),
                canonical.description.clone(),
                canonical.capabilities.join(" "),
                canonical.tags.join(" "),
                canonical.use_when.join(" "),
            ]
            .join(" ");
            let present: HashSet<String> = self.text.stems(&routing).into_iter().collect();
            self.wanted
                .iter()
                .filter(|w| present.contains(*w))
                .cloned()
                .collect()
        };
        self.hits.push(Hit {
            name: canonical.name.clone(),
            kind: canonical.kind,
            score: (score * 1000.0).round() / 1000.0,
            description: canonical.summary(200),
            category: canonical.category.clone(),
            role: canonical.role.clone(),
            path: canonical.path.display().to_string(),
            aliases,
            matched,
        });
    }

    fn finish(self) -> Vec<Hit> {
        self.hits
    }
}
