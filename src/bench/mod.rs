//! `orchestr8 bench`: the engine's figures at 1k to 100k definitions, measured in one run on one
//! machine, so anyone can check the latency and memory claims on their own hardware.
//!
//! Per size it writes a synthetic library (`synth`), builds the persisted index from scratch,
//! reopens it as a new process would, and times every query class the faces send, definition
//! loads, and a naive linear scan as the baseline the engine must beat. Queries come from the
//! same real vocabulary as the library, so their terms are as common or as rare as real ones.
//! Then it starts `orchestr8 serve` on the library and times `discover_agents` over stdio,
//! which is what an MCP client actually waits for, and last it edits one definition and times
//! the refresh that follows. With the embedding model, a size up to `Options::semantic_max` is
//! also measured with semantic fusion on, the model loaded for that pass alone.

mod mcp_client;
mod render;

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use mcp_client::McpClient;
pub use render::render;

use crate::embed::{EmbedError, Embedder};
use crate::synth::{self, SynthError, SynthReport, Vocabulary};
use crate::{Config, Engine, EngineError, Filters, Query};

/// Results per query, as the CLI's `search` shows by default.
const LIMIT: usize = 10;
/// Naive-baseline queries: a linear scan is slow enough at 100k that 100 give a stable median.
const NAIVE_QUERIES: usize = 100;
/// `discover_agents` calls timed per size, after a few untimed ones.
pub const MCP_CALLS: usize = 200;
const MCP_WARMUP: usize = 10;
/// Query generators are seeded apart from the library's own streams.
const QUERY_STREAM: u64 = 0x5155_4552_5900;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("MCP round trip: {0}")]
    Mcp(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// The query classes the targets name, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Two keywords.
    Kw2,
    /// A one-sentence request of about 12 words.
    Sentence,
    /// A 70-word brief, as orchestrators paste them.
    Brief70,
    /// Two keywords, one with two letters swapped.
    Typo,
    /// No text, a role filter: "every agent for this role".
    RoleFilter,
    /// A capability filter plus four words.
    #[serde(rename = "capability+text")]
    CapabilityText,
    /// `Engine::resolve_role`: a role's primary and its fallback chain.
    RoleChain,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Kw2,
        Class::Sentence,
        Class::Brief70,
        Class::Typo,
        Class::RoleFilter,
        Class::CapabilityText,
        Class::RoleChain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Kw2 => "kw2",
            Class::Sentence => "sentence",
            Class::Brief70 => "brief70",
            Class::Typo => "typo",
            Class::RoleFilter => "role-filter",
            Class::CapabilityText => "capability+text",
            Class::RoleChain => "role-chain",
        }
    }
}

/// One request of a class, ready to run against an engine.
#[derive(Clone, Debug)]
pub enum Probe {
    Search(Query),
    Role(String),
}

impl Probe {
    /// Runs the request; returns how many results came back (so the work cannot be optimised
    /// away, and a class that always answers nothing is visible).
    pub fn run(&self, engine: &Engine) -> Result<usize, EngineError> {
        match self {
            Probe::Search(query) => match engine.search(query) {
                Ok(found) => Ok(found.results.len()),
                // A small library may declare none of a rarely drawn capability: the request
                // found nothing, and is counted among the empty ones.
                Err(EngineError::UnknownFilter { .. }) => Ok(0),
                Err(error) => Err(error),
            },
            Probe::Role(role) => Ok(engine.resolve_role(role, LIMIT)?.agents.len()),
        }
    }

    /// The request's words (the role for a role chain).
    pub fn text(&self) -> &str {
        match self {
            Probe::Search(query) => &query.text,
            Probe::Role(role) => role,
        }
    }
}

/// `n` requests of `class`, deterministic for a seed.
pub fn probes(vocabulary: &Vocabulary, class: Class, n: usize, seed: u64) -> Vec<Probe> {
    let position = Class::ALL.iter().position(|&c| c == class).unwrap_or(0) as u64;
    let mut rng = synth::rng_for(seed, position, QUERY_STREAM);
    let search = |text: String, filters: Filters| {
        Probe::Search(Query {
            text,
            filters,
            limit: LIMIT,
        })
    };
    (0..n)
        .map(|_| match class {
            Class::Kw2 => search(vocabulary.keywords(&mut rng, 2), Filters::default()),
            Class::Sentence => search(vocabulary.passage(&mut rng, 12), Filters::default()),
            Class::Brief70 => search(vocabulary.passage(&mut rng, 70), Filters::default()),
            Class::Typo => search(vocabulary.typo(&mut rng), Filters::default()),
            Class::RoleFilter => search(
                String::new(),
                Filters {
                    role: Some(vocabulary.role(&mut rng).to_string()),
                    ..Default::default()
                },
            ),
            Class::CapabilityText => {
                let capability = vocabulary.capability(&mut rng).to_string();
                search(
                    vocabulary.keywords(&mut rng, 4),
                    Filters {
                        capability: Some(capability),
                        ..Default::default()
                    },
                )
            }
            Class::RoleChain => Probe::Role(vocabulary.role(&mut rng).to_string()),
        })
        .collect()
}

/// A latency distribution; the unit is in the name of the field that holds it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples`, scaled (1e3 for ms, 1e6 for us).
    pub fn of(samples: &mut [Duration], scale: f64) -> Latency {
        samples.sort_unstable();
        let n = samples.len();
        let at = |q: f64| {
            if n == 0 {
                return 0.0;
            }
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            samples[rank - 1].as_secs_f64() * scale
        };
        Latency {
            n,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassLatency {
    pub class: Class,
    /// How many of the timed requests returned no result at all.
    pub empty: usize,
    /// Requests sent back to back.
    #[serde(flatten)]
    pub ms: Latency,
    /// The same requests, each sent after the process has idled `IDLE`, as a served request
    /// usually arrives: threads asleep, CPUs idle.
    pub after_idle_ms: Latency,
}

/// The pause before each request of the second timing of a class.
const IDLE: Duration = Duration::from_millis(2);

/// Everything measured at one library size.
#[derive(Clone, Debug, Serialize)]
pub struct SizeReport {
    pub count: usize,
    pub synth: SynthReport,
    /// Definitions served and diagnostics reported after the build.
    pub definitions: usize,
    pub diagnostics: usize,
    /// `Engine::open` on an empty index directory: walk, parse, both indexes, catalog.
    pub build_s: f64,
    pub files_per_s: f64,
    /// `Engine::open` on the unchanged library plus one sentence query: what a new CLI process
    /// or MCP server pays before its first answer (page cache warm).
    pub reopen_ms: f64,
    /// Files the reopen read again; anything but 0 means the manifest did not hold.
    pub reopen_parsed: usize,
    /// `Engine::open` after a line was appended to one served definition, at the end of the
    /// run: what a live server's reload or the next process pays after an edit (the text index
    /// is rewritten into one segment; see `TextWriter::commit`). `None` when nothing was served.
    pub refresh_ms: Option<f64>,
    /// Files that refresh read again; anything but 1 means it missed the edit or read more.
    pub refresh_parsed: Option<usize>,
    pub queries_ms: Vec<ClassLatency>,
    /// First `Engine::load` of each of n distinct names after the reopen (the engine's cache is
    /// empty; the OS page cache is warm, as the files were just written).
    pub load_cold_us: Latency,
    /// The same names loaded again, three times over.
    pub load_cached_us: Latency,
    /// VmHWM of this process over the build and measurements of this size (the larger of the
    /// two below); `None` off Linux.
    pub peak_rss_mb: Option<f64>,
    /// The peak during the build alone: parsing, tantivy's writer, DuckDB's bulk load.
    pub peak_rss_build_mb: Option<f64>,
    /// The peak from the reopen to the end of the loads and queries: what a serving process
    /// needs (mapped index pages it touched included).
    pub peak_rss_serve_mb: Option<f64>,
    /// Whether the peak could be reset before the build and again before the reopen (else the
    /// figures include earlier sizes and the synth step).
    pub peak_rss_reset: bool,
    /// Bytes under the index directory (DuckDB file, tantivy segments, anything else kept).
    pub index_mb: f64,
    /// The baseline: a linear scan over every description counting query-word occurrences,
    /// over the sentence-class requests.
    pub naive_sentence_ms: Latency,
    /// The naive scan's p50 over the engine's sentence p50.
    pub speedup_sentence: f64,
    /// `tools/call discover_agents` over stdio to a `serve` child, one after another.
    pub mcp_round_trip_ms: Option<Latency>,
    /// The same calls, each sent after `IDLE`.
    pub mcp_round_trip_after_idle_ms: Option<Latency>,
    /// The `serve` child's own peak RSS after those calls: a real serving process, without the
    /// heap this process kept from the build.
    pub mcp_server_peak_rss_mb: Option<f64>,
    /// The same text classes with semantic fusion on, when the model is installed and the
    /// size is at most `Report::semantic_max`.
    pub semantic: Option<SemanticReport>,
}

/// Semantic fusion at one size: what embedding the library costs, and the text query classes
/// again with it on. Each timed request is new to the query-vector cache (the warm-up pass uses
/// other requests), so every one pays for embedding its text.
#[derive(Clone, Debug, Serialize)]
pub struct SemanticReport {
    /// Loading the embedding model (tokenizer, config, weights): what every process with
    /// semantic search pays at start.
    pub model_load_ms: f64,
    /// `Engine::open` on the built index with the model: embedding every definition.
    pub embed_build_s: f64,
    pub queries_ms: Vec<ClassLatency>,
}

/// One `orchestr8 bench` run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Whether the embedding model is installed (and `--no-semantic` was not given).
    pub model: bool,
    /// The largest size measured with semantic fusion on.
    pub semantic_max: usize,
    pub seed: u64,
    pub queries_per_class: usize,
    pub threads: usize,
    pub vocabulary_words: usize,
    pub vocabulary_tokens: usize,
    pub sizes: Vec<SizeReport>,
}

pub struct Options {
    pub counts: Vec<usize>,
    pub seed: u64,
    /// Requests timed per class (after one untimed pass over the same requests).
    pub queries: usize,
    /// The real library the vocabulary comes from.
    pub sources: Vec<PathBuf>,
    /// The orchestr8 binary to start as an MCP server; `None` skips the round trip.
    pub binary: Option<PathBuf>,
    /// The embedding model's folder: with it, every size up to `semantic_max` is also measured
    /// with semantic fusion on, the model loaded for that pass only, so that no size's other
    /// figures (peak RSS above all: the weights are some 90 MB) carry it.
    pub model: Option<PathBuf>,
    /// The largest size measured with semantic fusion on: embedding a library takes 30-40 ms a
    /// definition on two cores, about an hour at 100k.
    pub semantic_max: usize,
}

/// `Options::semantic_max` unless told otherwise: a 10k library embeds in about six minutes.
pub const SEMANTIC_MAX: usize = 10_000;

/// A scratch directory under the system's temp dir, removed when dropped (also on error), as a
/// 100k library is 600 MB.
struct Scratch(PathBuf);

impl Scratch {
    fn new(count: usize) -> Result<Scratch, BenchError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "orchestr8-bench-{}-{count}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).map_err(io(format!("create {}", path.display())))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove the bench directory");
        }
    }
}

/// Runs every size in `options.counts`; `progress` hears what is happening (for stderr).
pub fn run(options: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    let vocabulary = Vocabulary::from_roots(&options.sources)?;
    let mut sizes = Vec::new();
    for &count in &options.counts {
        sizes.push(run_size(options, &vocabulary, count, progress)?);
    }
    Ok(Report {
        model: options.model.is_some(),
        semantic_max: options.semantic_max,
        seed: options.seed,
        queries_per_class: options.queries,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        vocabulary_words: vocabulary.distinct_words(),
        vocabulary_tokens: vocabulary.tokens(),
        sizes,
    })
}

fn run_size(
    options: &Options,
    vocabulary: &Vocabulary,
    count: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<SizeReport, BenchError> {
    let scratch = Scratch::new(count)?;
    let library = scratch.0.join("library");
    let index = scratch.0.join("index");
    progress(&format!("{count}: writing the synthetic library"));
    let synth = synth::generate(vocabulary, count, &library, options.seed)?;

    let peak_rss_reset = reset_peak_rss();
    let config = Config {
        index_dir: Some(index.clone()),
        ..Config::new(vec![library.clone()])
    };
    progress(&format!("{count}: building the index"));
    let started = Instant::now();
    let engine = Engine::open(&config)?;
    let build = started.elapsed();
    let definitions = engine.stats().definitions;
    let diagnostics = engine.diagnostics().len();
    drop(engine);
    let peak_rss_build_mb = peak_rss_bytes().map(|b| b as f64 / 1e6);
    let peak_rss_reset = peak_rss_reset && reset_peak_rss();

    let sets: Vec<(Class, Vec<Probe>)> = Class::ALL
        .iter()
        .map(|&c| {
            (
                c,
                probes(vocabulary, c, options.queries.max(1), options.seed),
            )
        })
        .collect();
    let sentences = &sets[1].1;

    progress(&format!("{count}: reopening"));
    let started = Instant::now();
    let engine = Engine::open(&config)?;
    std::hint::black_box(sentences[0].run(&engine)?);
    let reopen = started.elapsed();
    let reopen_parsed = engine.stats().parsed;

    progress(&format!("{count}: loading definitions"));
    let mut names: Vec<String> = engine.names().into_iter().map(String::from).collect();
    synth::rng_for(options.seed, count as u64, QUERY_STREAM + 1).shuffle(&mut names);
    names.truncate(options.queries.max(1));
    let mut cold = Vec::with_capacity(names.len());
    for name in &names {
        let started = Instant::now();
        std::hint::black_box(engine.load(name)?);
        cold.push(started.elapsed());
    }
    let mut cached = Vec::with_capacity(names.len() * 3);
    for _ in 0..3 {
        for name in &names {
            let started = Instant::now();
            std::hint::black_box(engine.load(name)?);
            cached.push(started.elapsed());
        }
    }

    let mut queries_ms = Vec::new();
    for (class, set) in &sets {
        progress(&format!("{count}: {} queries", class.name()));
        queries_ms.push(time_class(&engine, *class, set, set, set)?);
    }
    // Read before the semantic pass and the baseline, whose memory is not the engine's.
    let peak_rss_serve_mb = peak_rss_bytes().map(|b| b as f64 / 1e6);

    let semantic = match &options.model {
        Some(model) if count <= options.semantic_max => Some(measure_semantic(
            options, vocabulary, &config, model, count, progress,
        )?),
        _ => None,
    };

    progress(&format!("{count}: naive baseline"));
    let descriptions: Vec<String> = engine
        .definitions()
        .map(|d| d.description.to_lowercase())
        .collect();
    let mut naive = Vec::new();
    for probe in sentences.iter().take(NAIVE_QUERIES) {
        let started = Instant::now();
        std::hint::black_box(naive_scan(&descriptions, probe.text()));
        naive.push(started.elapsed());
    }
    drop(descriptions);
    let naive_sentence_ms = Latency::of(&mut naive, 1e3);
    let engine_sentence = queries_ms[1].ms.p50;
    let peak_rss_mb = match (peak_rss_build_mb, peak_rss_serve_mb) {
        (Some(build), Some(serve)) => Some(build.max(serve)),
        (build, serve) => build.or(serve),
    };
    let index_mb = dir_size(&index) as f64 / 1e6;

    let (mcp_round_trip_ms, mcp_round_trip_after_idle_ms, mcp_server_peak_rss_mb) =
        match &options.binary {
            None => (None, None, None),
            Some(binary) => {
                progress(&format!("{count}: MCP round trips"));
                let mut client = McpClient::spawn(binary, &library, &index)?;
                let texts: Vec<&str> = sentences.iter().map(Probe::text).collect();
                for text in texts.iter().cycle().take(MCP_WARMUP) {
                    client.discover(text)?;
                }
                let mut samples = Vec::with_capacity(MCP_CALLS);
                for text in texts.iter().cycle().take(MCP_CALLS) {
                    samples.push(client.discover(text)?);
                }
                let mut after_idle = Vec::with_capacity(MCP_CALLS);
                for text in texts.iter().cycle().take(MCP_CALLS) {
                    std::thread::sleep(IDLE);
                    after_idle.push(client.discover(text)?);
                }
                let rss = client.peak_rss_bytes().map(|b| b as f64 / 1e6);
                (
                    Some(Latency::of(&mut samples, 1e3)),
                    Some(Latency::of(&mut after_idle, 1e3)),
                    rss,
                )
            }
        };
    let edited = engine.definitions().next().map(|d| d.path);
    drop(engine);

    let refresh = match edited {
        None => None,
        Some(edited) => {
            progress(&format!("{count}: refreshing after one edit"));
            std::fs::OpenOptions::new()
                .append(true)
                .open(&edited)
                .and_then(|mut file| file.write_all(b"\nEdited for the refresh benchmark.\n"))
                .map_err(io(format!("append to {}", edited.display())))?;
            let started = Instant::now();
            let engine = Engine::open(&config)?;
            Some((started.elapsed(), engine.stats().parsed))
        }
    };

    Ok(SizeReport {
        count,
        definitions,
        diagnostics,
        build_s: build.as_secs_f64(),
        files_per_s: synth.files as f64 / build.as_secs_f64().max(1e-9),
        reopen_ms: reopen.as_secs_f64() * 1e3,
        reopen_parsed,
        refresh_ms: refresh.map(|(took, _)| took.as_secs_f64() * 1e3),
        refresh_parsed: refresh.map(|(_, parsed)| parsed),
        queries_ms,
        load_cold_us: Latency::of(&mut cold, 1e6),
        load_cached_us: Latency::of(&mut cached, 1e6),
        peak_rss_mb,
        peak_rss_build_mb,
        peak_rss_serve_mb,
        peak_rss_reset,
        index_mb,
        speedup_sentence: naive_sentence_ms.p50 / engine_sentence.max(1e-9),
        naive_sentence_ms,
        mcp_round_trip_ms,
        mcp_round_trip_after_idle_ms,
        mcp_server_peak_rss_mb,
        semantic,
        synth,
    })
}

/// Runs `warm_up` untimed, then times each request of `set`, counting those that found nothing,
/// and then each of `after_idle`, sent after a pause.
fn time_class(
    engine: &Engine,
    class: Class,
    warm_up: &[Probe],
    set: &[Probe],
    after_idle: &[Probe],
) -> Result<ClassLatency, BenchError> {
    for probe in warm_up {
        std::hint::black_box(probe.run(engine)?);
    }
    let mut samples = Vec::with_capacity(set.len());
    let mut empty = 0;
    for probe in set {
        let started = Instant::now();
        let found = std::hint::black_box(probe.run(engine)?);
        samples.push(started.elapsed());
        empty += usize::from(found == 0);
    }
    let mut idle_samples = Vec::with_capacity(after_idle.len());
    for probe in after_idle {
        std::thread::sleep(IDLE);
        let started = Instant::now();
        std::hint::black_box(probe.run(engine)?);
        idle_samples.push(started.elapsed());
    }
    Ok(ClassLatency {
        class,
        empty,
        ms: Latency::of(&mut samples, 1e3),
        after_idle_ms: Latency::of(&mut idle_samples, 1e3),
    })
}

/// Classes that carry text, where the semantic side runs.
const SEMANTIC_CLASSES: [Class; 5] = [
    Class::Kw2,
    Class::Sentence,
    Class::Brief70,
    Class::Typo,
    Class::CapabilityText,
];

fn measure_semantic(
    options: &Options,
    vocabulary: &Vocabulary,
    config: &Config,
    model: &Path,
    count: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<SemanticReport, BenchError> {
    progress(&format!("{count}: loading the embedding model"));
    // Loaded afresh for each size, so no vector a size before it cached answers its requests.
    let embedder = Arc::new(Embedder::load(model)?);
    progress(&format!("{count}: embedding every definition"));
    let config = Config {
        embedder: Some(Arc::clone(&embedder)),
        embed_limit: usize::MAX,
        ..config.clone()
    };
    let started = Instant::now();
    let engine = Engine::open(&config)?;
    let embed_build_s = started.elapsed().as_secs_f64();
    let mut queries_ms = Vec::new();
    for class in SEMANTIC_CLASSES {
        progress(&format!("{count}: {} queries, semantic", class.name()));
        let n = options.queries.max(1);
        let warm_up = probes(vocabulary, class, n, options.seed ^ WARM_UP_SEED);
        let set = probes(vocabulary, class, n, options.seed);
        let after_idle = probes(vocabulary, class, n, options.seed ^ AFTER_IDLE_SEED);
        queries_ms.push(time_class(&engine, class, &warm_up, &set, &after_idle)?);
    }
    Ok(SemanticReport {
        model_load_ms: embedder.load_time().map_or(0.0, |t| t.as_secs_f64() * 1e3),
        embed_build_s,
        queries_ms,
    })
}

/// Mixed into the seed for the semantic warm-up requests, so the timed ones are not cached.
const WARM_UP_SEED: u64 = 0x5eed;
/// Mixed into the seed for the semantic requests timed after a pause, likewise.
const AFTER_IDLE_SEED: u64 = 0x1d1e;

/// The baseline: what a plain program does without an index. Every description (lowercased
/// once, up front) is split into words and each query word occurrence counts one; the ten
/// highest counts win. Returns how many descriptions matched at all.
pub fn naive_scan(descriptions: &[String], query: &str) -> usize {
    let lower = query.to_lowercase();
    let words: HashSet<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut top: Vec<(usize, usize)> = Vec::with_capacity(LIMIT + 1);
    let mut matched = 0;
    for (i, d) in descriptions.iter().enumerate() {
        let count = d
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| words.contains(w))
            .count();
        if count == 0 {
            continue;
        }
        matched += 1;
        if top.len() < LIMIT || count > top[top.len() - 1].0 {
            let at = top.partition_point(|&(c, _)| c >= count);
            top.insert(at, (count, i));
            top.truncate(LIMIT);
        }
    }
    std::hint::black_box(&top);
    matched
}

/// Makes the kernel forget this process's peak RSS, so each size reports its own. Linux only;
/// false where it is not allowed.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's peak resident set (VmHWM), Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    peak_rss_of("self")
}

fn peak_rss_of(process: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Total size of the files under `dir`; unreadable entries count as nothing.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        samples.reverse();
        let l = Latency::of(&mut samples, 1e3);
        assert_eq!(
            (l.n, l.p50, l.p95, l.p99, l.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&mut [], 1e3).n, 0);
    }

    #[test]
    fn naive_scan_counts_descriptions_with_a_query_word() {
        let descriptions = vec![
            "reviews rust code".to_string(),
            "designs kubernetes clusters".to_string(),
            "rust and kubernetes".to_string(),
        ];
        assert_eq!(naive_scan(&descriptions, "Rust"), 2);
        assert_eq!(naive_scan(&descriptions, "terraform"), 0);
    }

    #[test]
    fn probes_are_deterministic_and_of_the_requested_shape() {
        let home = Path::new(env!("CARGO_MANIFEST_DIR"));
        let vocabulary = Vocabulary::from_roots(&[home.join("agents")]).expect("vocabulary");
        for class in Class::ALL {
            let a = probes(&vocabulary, class, 20, 5);
            let b = probes(&vocabulary, class, 20, 5);
            let texts = |p: &[Probe]| p.iter().map(|p| p.text().to_string()).collect::<Vec<_>>();
            assert_eq!(texts(&a), texts(&b), "{class:?}");
            let words = a[0].text().split_whitespace().count();
            match class {
                Class::Kw2 | Class::Typo => assert_eq!(words, 2, "{class:?}"),
                Class::Sentence => assert_eq!(words, 12),
                Class::Brief70 => assert_eq!(words, 70),
                Class::CapabilityText => assert_eq!(words, 4),
                Class::RoleFilter => assert_eq!(words, 0),
                Class::RoleChain => assert_eq!(words, 1),
            }
        }
    }
}
