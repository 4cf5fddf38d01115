//! Search quality, measured: a judged query file (`tests/relevance/*.jsonl`, format in the
//! README) run through the engine and scored with R@1, R@5, MRR@10, nDCG@5 and Ideal@1,
//! overall and per tag. Identical copies count as one definition, as search shows them.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::planner::{Filters, Query};
use crate::suggest::closest;

/// One judged query.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judged {
    pub id: String,
    pub query: String,
    /// Name -> grade: 2 ideal, 1 acceptable.
    pub relevant: BTreeMap<String, u8>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Reads a JSON Lines judgment file; every problem is reported with its line.
pub fn parse(text: &str) -> Result<Vec<Judged>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut ids = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Judged>(line) {
            Err(e) => errors.push(format!("line {n}: {e}")),
            Ok(j) => {
                if let Some(first) = ids.insert(j.id.clone(), n) {
                    errors.push(format!(
                        "line {n}: id `{}` already used on line {first}",
                        j.id
                    ));
                }
                if j.relevant.is_empty() {
                    errors.push(format!(
                        "line {n}: `{}` judges no definition relevant",
                        j.id
                    ));
                }
                if let Some((name, grade)) = j.relevant.iter().find(|(_, g)| !(1..=2).contains(*g))
                {
                    errors.push(format!(
                        "line {n}: grade {grade} for `{name}`; grades are 1 or 2"
                    ));
                }
                out.push(j);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The five figures, for one query or averaged.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Metrics {
    #[serde(rename = "R@1")]
    pub r1: f64,
    #[serde(rename = "R@5")]
    pub r5: f64,
    #[serde(rename = "MRR@10")]
    pub mrr10: f64,
    #[serde(rename = "nDCG@5")]
    pub ndcg5: f64,
    #[serde(rename = "Ideal@1")]
    pub ideal1: f64,
    pub no_result: usize,
    /// How many queries these figures average over.
    pub queries: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PerQuery {
    pub id: String,
    pub ranked: Vec<String>,
    /// 1-based rank of the first relevant name, if any in the first 10.
    pub hit_rank: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub queries: usize,
    pub overall: Metrics,
    pub by_tag: BTreeMap<String, Metrics>,
    pub latency_ms: Latency,
    pub per_query: Vec<PerQuery>,
}

/// Names in the judgments that the library does not have, with the closest existing ones.
pub fn unknown_names(engine: &Engine, judged: &[Judged]) -> Vec<String> {
    let names = engine.names();
    let mut problems = Vec::new();
    for j in judged {
        for name in j.relevant.keys() {
            if engine.canonical_name(name).is_none() {
                let near = closest(name, names.iter().copied(), 3);
                let hint = if near.is_empty() {
                    String::new()
                } else {
                    format!(" (closest: {})", near.join(", "))
                };
                problems.push(format!("{}: `{name}` is not in the library{hint}", j.id));
            }
        }
    }
    problems
}

/// Runs every query (top 10) and scores it.
/// Which ranking to score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// What `search` does: BM25 fused with semantic similarity when the model is loaded.
    Default,
    /// BM25 alone.
    Bm25,
}

pub fn run(engine: &Engine, judged: &[Judged], ranking: Ranking) -> Result<Report, EngineError> {
    let mut per_query = Vec::new();
    let mut scored: Vec<(Metrics, &Judged)> = Vec::new();
    let mut latencies = Vec::new();
    for j in judged {
        let started = Instant::now();
        let search = match ranking {
            Ranking::Default => Engine::search,
            Ranking::Bm25 => Engine::search_bm25,
        };
        let result = search(
            engine,
            &Query {
                text: j.query.clone(),
                filters: Filters::default(),
                limit: 10,
            },
        )?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let mut ranked: Vec<String> = Vec::new();
        for hit in result.results {
            let name = engine
                .canonical_name(&hit.name)
                .unwrap_or(&hit.name)
                .to_string();
            if !ranked.contains(&name) {
                ranked.push(name);
            }
        }
        ranked.truncate(10);
        let mut grades: HashMap<String, u8> = HashMap::new();
        for (name, &grade) in &j.relevant {
            let canonical = engine.canonical_name(name).unwrap_or(name).to_string();
            let slot = grades.entry(canonical).or_default();
            *slot = (*slot).max(grade);
        }
        let m = score(&ranked, &grades);
        per_query.push(PerQuery {
            id: j.id.clone(),
            hit_rank: ranked
                .iter()
                .position(|n| grades.contains_key(n))
                .map(|p| p + 1),
            ranked,
        });
        scored.push((m, j));
    }
    let overall = mean(scored.iter().map(|(m, _)| m));
    let mut tags: BTreeMap<String, Vec<&Metrics>> = BTreeMap::new();
    for (m, j) in &scored {
        for tag in &j.tags {
            tags.entry(tag.clone()).or_default().push(m);
        }
    }
    let by_tag = tags
        .into_iter()
        .map(|(t, ms)| (t, mean(ms.into_iter())))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Report {
        queries: judged.len(),
        overall,
        by_tag,
        latency_ms: Latency {
            p50: pick(0.5),
            p95: pick(0.95),
            max: latencies.last().copied().unwrap_or(0.0),
        },
        per_query,
    })
}

/// The metrics of one ranked list against graded judgments (`relevance.md`).
fn score(ranked: &[String], grades: &HashMap<String, u8>) -> Metrics {
    let grade = |n: &String| grades.get(n).copied().unwrap_or(0);
    let first = ranked.iter().position(|n| grade(n) >= 1);
    let gain = |g: u8| f64::from((1u32 << g) - 1);
    let dcg: f64 = ranked
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, n)| gain(grade(n)) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u8> = grades.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, &g)| gain(g) / ((i + 2) as f64).log2())
        .sum();
    Metrics {
        r1: f64::from(u8::from(first == Some(0))),
        r5: f64::from(u8::from(first.is_some_and(|p| p < 5))),
        mrr10: first.map_or(0.0, |p| 1.0 / (p + 1) as f64),
        ndcg5: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        ideal1: f64::from(u8::from(ranked.first().is_some_and(|n| grade(n) == 2))),
        no_result: usize::from(ranked.is_empty()),
        queries: 1,
    }
}

fn mean<'a>(ms: impl Iterator<Item = &'a Metrics>) -> Metrics {
    let mut sum = Metrics::default();
    let mut n = 0.0;
    for m in ms {
        sum.r1 += m.r1;
        sum.r5 += m.r5;
        sum.mrr10 += m.mrr10;
        sum.ndcg5 += m.ndcg5;
        sum.ideal1 += m.ideal1;
        sum.no_result += m.no_result;
        sum.queries += m.queries;
        n += 1.0;
    }
    if n > 0.0 {
        for v in [
            &mut sum.r1,
            &mut sum.r5,
            &mut sum.mrr10,
            &mut sum.ndcg5,
            &mut sum.ideal1,
        ] {
            *v = (*v / n * 1000.0).round() / 1000.0;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_the_definitions() {
        let ranked: Vec<String> = ["x", "a", "b"].iter().map(|s| s.to_string()).collect();
        let grades = HashMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        let m = score(&ranked, &grades);
        assert_eq!((m.r1, m.r5, m.mrr10, m.ideal1), (0.0, 1.0, 0.5, 0.0));
        let dcg = 3.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let idcg = 3.0 + 1.0 / 3f64.log2();
        assert!((m.ndcg5 - dcg / idcg).abs() < 1e-9);
    }

    #[test]
    fn parse_reports_lines() {
        let errors = parse("{\"id\":\"a\",\"query\":\"q\",\"relevant\":{\"x\":2}}\n{\"id\":\"a\",\"query\":\"q\",\"relevant\":{\"x\":3}}\nnot json\n").unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(errors[0].starts_with("line 2: id `a`"));
        assert!(errors[2].starts_with("line 3:"));
    }
}
