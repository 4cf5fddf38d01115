//! From a request to one ranked, copy-collapsed list. The planner estimates how many
//! definitions each side would let through and runs the more selective one first:
//! DuckDB's filter result restricting tantivy's scoring, or tantivy's top-k over-fetched and
//! then checked against the filters in memory. `--explain` shows the choice and the estimates
//! behind it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::catalog::{Catalog, Group};
use crate::embed::{EmbedError, Embedder, Vectors};
use crate::library::{Definition, KeySet, Kind};
use crate::registry::{Matching, Registry, RegistryError};
use crate::text::{TextError, TextIndex, Wanted};

/// Structured filters; each one narrows, none is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
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

    /// Whether `d` passes, by the registry's rules (case-insensitive equality; a capability
    /// filter also matches a tag): for the few hits of a text-first plan, which are already in
    /// memory, a predicate is cheaper than a query. A test holds the two to the same answers.
    pub(crate) fn matches(&self, d: &Definition) -> bool {
        fn same(wanted: &Option<String>, have: Option<&str>) -> bool {
            wanted
                .as_ref()
                .is_none_or(|w| have.is_some_and(|h| h.to_lowercase() == w.to_lowercase()))
        }
        self.kind.is_none_or(|k| k == d.kind)
            && same(&self.role, d.role.as_deref())
            && same(&self.category, d.category.as_deref())
            && same(&self.model, d.model.as_deref())
            && self
                .capability
                .as_ref()
                .is_none_or(|c| d.has_label(&c.to_lowercase()))
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
    /// Whether the semantic side ran and was fused with BM25.
    pub semantic: bool,
    /// Stems the text side searched for.
    pub terms: Vec<String>,
    /// Unknown query words and the index terms used instead.
    pub corrections: Vec<Correction>,
    /// Words of the request no definition holds, nor a near spelling of them: the ranking
    /// rests on the others (see `AnalyzedQuery::unknown`).
    pub unknown: Vec<String>,
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
    /// The request's words (lowercased) found, by their stems, in the name, description,
    /// capabilities, tags or use-when text: why it matched, for a reader deciding whether to
    /// trust the hit.
    pub matched: Vec<String>,
    /// This hit's rank on each side before fusion.
    pub ranks: Ranks,
}

/// 1-based ranks of a hit in the BM25 and the semantic lists, when it was in them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ranks {
    pub bm25: Option<usize>,
    pub semantic: Option<usize>,
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
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// The semantic side's weight against BM25's 1.0 when its list is fully confident (see
/// `fuse`). Tuned on both judged sets in tests/relevance/: every weight from 1.0 to 2.4 beats
/// BM25 alone on R@1 and nDCG@5 on both; 2.0 sits in the middle of that range.
const SEMANTIC_WEIGHT: f32 = 2.0;

/// The semantic side's confidence is its best cosine's lead over the candidate this many
/// places below it (distinct definitions, copies skipped). A lead over any of the 2nd to 5th
/// places beats BM25 alone on both judged sets at some weights; over the 3rd, at the widest
/// range of weights.
const CONFIDENCE_DEPTH: usize = 2;

/// Below this cosine a definition is unrelated to the request: the semantic side does not
/// vouch for it at all, so a filter with few candidates does not drag unrelated ones in.
/// (0.1, 0.15 and 0.2 tried: higher floors cost R@1 on the outside collection.)
const MIN_COSINE: f32 = 0.1;

/// Merges the BM25 and semantic lists by normalised scores (CombSUM): BM25 divided by the top
/// score, cosine rescaled to 0..1 over the candidates. Unlike reciprocal-rank fusion, which we
/// measured first (R@1 on the shipped library fell from 0.866 to 0.841), this keeps a
/// confident BM25 winner on top when its lead is large, and lets semantic similarity decide
/// when the keyword scores are flat.
///
/// Rescaling stretches any cosine range to 0..1, so a semantic list whose head is flat (five
/// definitions within 0.01 of each other) would vote as loudly as one with a clear winner.
/// The semantic weight is therefore scaled by the list's own confidence: how far its best
/// cosine leads the candidates just below, as a share of the whole range. A model that cannot
/// tell its top candidates apart leaves the order to BM25. `group` names each key's copy
/// group, so a definition's identical copies do not count as its rivals. Without a semantic
/// list the BM25 order and scores pass through unchanged.
fn fuse(
    bm25: &[(u64, f32)],
    near: &[(u64, f32)],
    group: impl Fn(u64) -> Option<usize>,
) -> Vec<(u64, f32, Ranks)> {
    if near.is_empty() {
        return bm25
            .iter()
            .enumerate()
            .map(|(i, &(k, s))| {
                (
                    k,
                    s,
                    Ranks {
                        bm25: Some(i + 1),
                        semantic: None,
                    },
                )
            })
            .collect();
    }
    let mut merged: std::collections::HashMap<u64, (f32, Ranks)> = std::collections::HashMap::new();
    let top = bm25.first().map_or(1.0, |h| h.1.max(f32::EPSILON));
    for (i, &(key, score)) in bm25.iter().enumerate() {
        let entry = merged.entry(key).or_default();
        entry.0 += score / top;
        entry.1.bm25 = Some(i + 1);
    }
    let (high, low) = (
        near.first().map_or(1.0, |h| h.1),
        near.last().map_or(0.0, |h| h.1),
    );
    let spread = (high - low).max(f32::EPSILON);
    let weight = SEMANTIC_WEIGHT * (high - runner_up(near, &group)) / spread;
    for (i, &(key, cosine)) in near.iter().enumerate().filter(|(_, h)| h.1 >= MIN_COSINE) {
        let entry = merged.entry(key).or_default();
        entry.0 += weight * (cosine - low) / spread;
        entry.1.semantic = Some(i + 1);
    }
    let mut fused: Vec<(u64, f32, Ranks)> = merged
        .into_iter()
        // The weakest semantic candidate rescales to 0: with no keyword match either, there is
        // no evidence for it at all.
        .filter(|(_, (s, _))| *s > 0.0)
        .map(|(k, (s, r))| (k, s, r))
        .collect();
    fused.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| {
                a.2.bm25
                    .unwrap_or(usize::MAX)
                    .cmp(&b.2.bm25.unwrap_or(usize::MAX))
            })
            .then_with(|| a.0.cmp(&b.0))
    });
    fused
}

/// The cosine of the definition `CONFIDENCE_DEPTH` distinct places below the best one, or of
/// the last candidate when the list is shorter.
fn runner_up(near: &[(u64, f32)], group: impl Fn(u64) -> Option<usize>) -> f32 {
    let mut seen = HashSet::new();
    near.iter()
        .filter(|&&(key, _)| group(key).is_none_or(|g| seen.insert(g)))
        .nth(CONFIDENCE_DEPTH)
        .or(near.last())
        .map_or(0.0, |h| h.1)
}

/// Longer requests are refused: a brief is a few hundred characters, and analysing megabytes
/// of text would stall every other request.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// Filters matching at most this many definitions are run first when they are also more
/// selective than the text; a term-set restriction of this size costs well under a millisecond.
const FILTER_FIRST_MAX: u64 = 20_000;

pub(crate) fn run(
    semantic: Option<(&Embedder, &Vectors)>,
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
    let matching = if query.filters.is_empty() {
        None
    } else {
        Some(registry.matching(&query.filters, FILTER_FIRST_MAX)?)
    };
    let text_estimate = has_text.then_some(analyzed.max_doc_freq);
    let (strategy, allowed) = match (has_text, &matching) {
        (false, _) => (Strategy::FilterOnly, None),
        (true, None) => (Strategy::TextOnly, None),
        (true, Some(Matching::Few(keys)))
            if keys.len() as u64 <= analyzed.max_doc_freq.max(1) * 4 =>
        {
            (Strategy::FilterFirst, Some(Arc::clone(keys)))
        }
        (true, Some(_)) => (Strategy::TextFirst, None),
    };
    let filter_matches = matching.as_ref().map(Matching::count);

    // A correction is shown as the index term it was replaced by.
    let corrected = analyzed
        .corrections
        .iter()
        .flat_map(|(_, near)| near.iter().cloned());
    let wanted = analyzed
        .stems
        .iter()
        .cloned()
        .chain(corrected.clone())
        .collect();
    let shown = analyzed.said.iter().cloned().chain(corrected).collect();
    let mut collapse = Collapser {
        catalog,
        wanted: Wanted::new(wanted),
        shown,
        limit: query.limit,
        seen: HashSet::new(),
        hits: Vec::new(),
    };
    let near_query = match semantic {
        Some((embedder, vectors)) if has_text && !vectors.is_empty() => {
            Some((embedder.query(&query.text)?, vectors))
        }
        _ => None,
    };
    let nearest = |only: Option<&KeySet>, fetch: usize| match &near_query {
        Some((q, vectors)) => vectors.nearest(q, only, fetch),
        None => Vec::new(),
    };
    let candidates = match strategy {
        Strategy::FilterOnly => {
            // By name, as many as fill the list after copies collapse: widen until full.
            let mut fetch = fetch_size(query.limit, catalog);
            loop {
                collapse.clear();
                let keys = registry.filter(&query.filters, fetch)?;
                for &key in keys.iter() {
                    collapse.push(key, 0.0, Ranks::default());
                }
                if collapse.is_full() || keys.len() < fetch {
                    break keys.len();
                }
                fetch = fetch.saturating_mul(4);
            }
        }
        Strategy::TextOnly | Strategy::TextFirst | Strategy::FilterFirst => {
            // Over-fetch so copies and filtered-out hits do not leave the list short; widen
            // until it is full or neither side has anything more. BM25 alone, with no filter
            // or with the filter's keys handed to it, only needs enough hits to fill the list
            // after copies collapse: the text side skips documents that cannot reach the k-th
            // best score, so a smaller k skips more (2-word queries at 100k: p50 1.36 -> 1.0
            // ms; a capability and four words, fetching 20 rather than 80: p50 0.80-1.02 ->
            // 0.76-0.87 ms). Fused, the deeper BM25 hits still add to the semantic side's
            // candidates (nDCG@5 on both judged sets drops with k = 20).
            let mut fetch = fetch_size(query.limit, catalog);
            let mut text_fetch = match (strategy, &near_query) {
                (Strategy::TextOnly | Strategy::FilterFirst, None) => {
                    query.limit.saturating_mul(2).min(fetch)
                }
                _ => fetch,
            };
            let fetched = loop {
                collapse.clear();
                let bm25 = text.search(&analyzed, allowed.as_ref(), text_fetch)?;
                let near = nearest(allowed.as_deref(), fetch);
                let fused = fuse(&bm25, &near, |k| catalog.group_id(k));
                for (key, score, ranks) in fused {
                    // Only text-first hits can fail the filters.
                    let passes = strategy != Strategy::TextFirst
                        || catalog
                            .by_key(key)
                            .is_some_and(|d| query.filters.matches(&d));
                    if passes {
                        collapse.push(key, score, ranks);
                    }
                }
                if collapse.is_full() || (bm25.len() < text_fetch && near.len() < fetch) {
                    break text_fetch.max(near.len());
                }
                fetch = fetch.saturating_mul(4);
                text_fetch = text_fetch.saturating_mul(4);
            };
            // A filter-first plan's candidates are the filter's keys.
            allowed.as_ref().map_or(fetched, |keys| keys.len())
        }
    };
    let plan = Plan {
        strategy,
        semantic: near_query.is_some(),
        terms: analyzed.stems.clone(),
        corrections: analyzed
            .corrections
            .iter()
            .map(|(word, near)| Correction {
                word: word.clone(),
                replaced_by: near.clone(),
            })
            .collect(),
        unknown: analyzed.unknown.clone(),
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

/// Enough hits to fill `limit` entries after collapsing the usual number of copies (a few per
/// cent of a library); when they do not, the caller widens. Kept small because every fetched
/// hit costs a heap slot in the ranking and an entry in the fusion.
fn fetch_size(limit: usize, catalog: &Catalog) -> usize {
    let copies = (catalog.len() / 20).clamp(10, 40);
    limit.saturating_mul(4).saturating_add(copies)
}

/// Keeps the first (best) hit of each copy group, skipping definitions that lost a name clash.
struct Collapser<'a> {
    catalog: &'a Catalog,
    /// Query terms (stems), for `Hit::matched`.
    wanted: Wanted,
    /// How each of `wanted` is shown: the request's own word for it.
    shown: Vec<String>,
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

    fn push(&mut self, key: u64, score: f32, ranks: Ranks) {
        if self.is_full() {
            return;
        }
        // One lookup per hit; the canonical definition is decoded only for a group not yet
        // listed.
        let Some(group) = self.catalog.served_group(key) else {
            return;
        };
        if !self.seen.insert(group) {
            return;
        }
        let Some(Group {
            canonical,
            aliases,
            routing_stems,
        }) = self.catalog.group(group)
        else {
            return;
        };
        let matched = self
            .wanted
            .present(&routing_stems)
            .into_iter()
            .map(|i| self.shown[i].clone())
            .collect();
        self.hits.push(Hit {
            name: canonical.name.clone(),
            kind: canonical.kind,
            score: (score * 10_000.0).round() / 10_000.0,
            description: canonical.summary(200),
            category: canonical.category.clone(),
            role: canonical.role.clone(),
            path: canonical.path.display().to_string(),
            aliases,
            matched,
            ranks,
        });
    }

    fn finish(self) -> Vec<Hit> {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(fused: &[(u64, f32, Ranks)]) -> Vec<u64> {
        fused.iter().map(|h| h.0).collect()
    }

    const BM25: [(u64, f32); 3] = [(1, 10.0), (2, 9.0), (3, 5.0)];

    #[test]
    fn a_flat_semantic_head_leaves_the_order_to_bm25() {
        let near = [(2, 0.40), (3, 0.399), (4, 0.398), (1, 0.30), (5, 0.10)];
        let fused = fuse(&BM25, &near, |k| Some(k as usize));
        assert_eq!(order(&fused)[..3], [1, 2, 3]);
        assert_eq!(fused[1].2.semantic, Some(1));
    }

    #[test]
    fn a_clear_semantic_winner_overtakes_a_close_bm25_lead() {
        let near = [(2, 0.60), (3, 0.30), (4, 0.29), (1, 0.25), (5, 0.10)];
        let fused = fuse(&BM25, &near, |k| Some(k as usize));
        assert_eq!(order(&fused)[..2], [2, 1]);
        assert_eq!(
            fused[0].2,
            Ranks {
                bm25: Some(2),
                semantic: Some(1)
            }
        );
    }

    #[test]
    fn copies_are_not_their_own_rivals() {
        // 12 is a copy of 2: the lead is measured against 3 and 4, not the copy.
        let near = [(2, 0.60), (12, 0.60), (3, 0.30), (4, 0.29), (1, 0.25)];
        let group = |k: u64| Some(if k == 12 { 2 } else { k as usize });
        assert_eq!(runner_up(&near, group), 0.29);
        assert_eq!(runner_up(&near[..2], group), 0.60);
    }

    #[test]
    fn without_a_semantic_list_bm25_passes_through() {
        let fused = fuse(&BM25, &[], |k| Some(k as usize));
        assert_eq!(order(&fused), [1, 2, 3]);
        assert_eq!(fused[0].1, 10.0);
    }
}
