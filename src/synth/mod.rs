//! Synthetic libraries for benchmarks: thousands of agent definitions that read like real ones.
//!
//! A benchmark over random letters says little: every query term would be rare, posting lists
//! short, and typo correction would never find a neighbour. So the vocabulary is taken, at synth
//! time, from a real library (the shipped one by default; `vocabulary.rs`). Each
//! synthetic definition picks one of its files as its topic and draws every word half from the
//! topic and half from the whole stream, which gives a skewed, Zipf-like term distribution and
//! documents that cluster by subject, as real collections do.
//!
//! Output is a pure function of the source library, the seed and the count: every random draw
//! comes from a generator seeded by `(seed, index)`, so the same seed writes byte-identical
//! files, and the first 1,000 definitions of a 100,000 library are the 1,000-definition library.
//!
//! Real collections also hold identical copies under other names and files that do not parse;
//! about 1% and 0.5% of the output are such files, so the benchmark pays for them too.

mod vocabulary;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use vocabulary::Topic;
pub use vocabulary::Vocabulary;

/// The seed used when none is given, so two people running `orchestr8 bench` compare the same
/// library.
pub const DEFAULT_SEED: u64 = 42;

/// About one file in 200 is broken (0.5%).
const BROKEN_PER_MILLE: u64 = 5;
/// About one file in 100 is an identical copy of an earlier one under another name (1%).
const COPY_PER_MILLE: u64 = 10;
/// Names exist for at least this many indices, so the first definitions of a tiny library can
/// name fallbacks without depending on the count (a fallback that was not written is simply
/// not installed, which the engine handles).
const MIN_NAMES: usize = 64;
/// The first definitions, which have too few predecessors to fall back to, fall back among
/// themselves.
const FALLBACK_CORE: usize = 4;

/// Independent random streams per definition: changing how one part is drawn must not shift
/// the others.
const STREAM_PLAN: u64 = 1;
const STREAM_CONTENT: u64 = 2;
const STREAM_POOLS: u64 = 3;

const MODELS: &[(&str, u64)] = &[("sonnet", 55), ("opus", 20), ("haiku", 15), ("inherit", 10)];
const TOOLS: &[&str] = &[
    "Read",
    "Grep",
    "Glob",
    "Bash",
    "Edit",
    "Write",
    "WebFetch",
    "WebSearch",
];

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("vocabulary source {path}: {problem}")]
    Source { path: PathBuf, problem: String },
    #[error(
        "no definitions with text under {roots}; synth needs a real library to draw words from"
    )]
    NoVocabulary { roots: String },
    #[error(
        "output directory {0} exists and is not empty; synth only writes into a new or empty directory"
    )]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// splitmix64 over `(seed, index, stream)`: independent, well-mixed seeds for each part of each
/// definition.
fn mix(seed: u64, index: u64, stream: u64) -> u64 {
    let mut z = seed
        ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for one part of one definition.
pub fn rng_for(seed: u64, index: u64, stream: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(mix(seed, index, stream))
}

/// How a broken file is broken: the three failures seen most in collections people share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// `---` opens the frontmatter and nothing closes it: an error, no definition.
    Unclosed,
    /// An unquoted `: ` in the description: strict YAML fails, the lenient reading serves the
    /// definition with a warning.
    Colon,
    /// A byte that is not UTF-8 in the body: an error, no definition.
    InvalidUtf8,
}

/// What file `i` is: its name, whose content it carries (its own, or an earlier definition's
/// when it is a copy), and whether it is broken.
struct Slot {
    source: usize,
    broken: Option<Broken>,
}

/// Names and slots, decided in index order so each depends only on earlier ones (names must be
/// unique, copies copy earlier files): that is what makes a small library a prefix of a large
/// one.
fn plan(vocabulary: &Vocabulary, count: usize, seed: u64) -> (Vec<String>, Vec<Slot>) {
    let mut names = Vec::with_capacity(count.max(MIN_NAMES));
    let mut taken = HashSet::new();
    let mut slots = Vec::with_capacity(count);
    let mut broken_so_far = 0usize;
    for i in 0..count.max(MIN_NAMES) {
        let mut rng = rng_for(seed, i as u64, STREAM_PLAN);
        let mut name = String::new();
        for _ in 0..16 {
            name = make_name(vocabulary, &mut rng);
            if !taken.contains(&name) {
                break;
            }
        }
        if taken.contains(&name) {
            name = format!("{name}-{i}");
        }
        taken.insert(name.clone());
        names.push(name);
        let roll = rng.u64(..1000);
        if i >= count {
            continue;
        }
        let slot = if roll < BROKEN_PER_MILLE {
            let kind = [Broken::Unclosed, Broken::Colon, Broken::InvalidUtf8][broken_so_far % 3];
            broken_so_far += 1;
            Slot {
                source: i,
                broken: Some(kind),
            }
        } else if roll < BROKEN_PER_MILLE + COPY_PER_MILLE && i > 0 {
            let j = rng.usize(..i);
            let source: usize = slots.get(j).map_or(j, |s: &Slot| s.source);
            Slot {
                source,
                broken: None,
            }
        } else {
            Slot {
                source: i,
                broken: None,
            }
        };
        slots.push(slot);
    }
    (names, slots)
}

/// 2 or 3 parts joined by `-`: 60% the parts of real agent names (`cloud`, `cost`, `analyst`),
/// the rest content words, so names look like names and still vary.
fn make_name(vocabulary: &Vocabulary, rng: &mut fastrand::Rng) -> String {
    let parts = if rng.u8(..10) < 6 { 2 } else { 3 };
    let mut picked: Vec<&str> = Vec::with_capacity(parts);
    while picked.len() < parts {
        let part = if rng.u8(..10) < 6 && !vocabulary.name_parts.is_empty() {
            vocabulary.name_parts[rng.usize(..vocabulary.name_parts.len())].as_str()
        } else {
            vocabulary.content_word(rng)
        };
        if !picked.contains(&part) {
            picked.push(part);
        }
    }
    picked.join("-")
}

/// The frontmatter fields and body of one synthetic definition, before it gets a name.
struct Content {
    description: String,
    role: usize,
    category: usize,
    capabilities: Vec<usize>,
    fallbacks: Vec<usize>,
    use_when: Vec<String>,
    model: &'static str,
    tools: Vec<&'static str>,
    body: String,
}

fn content(vocabulary: &Vocabulary, seed: u64, index: usize) -> Content {
    let mut rng = rng_for(seed, index as u64, STREAM_CONTENT);
    let topic = &vocabulary.topics[rng.usize(..vocabulary.topics.len())];

    let description_words = rng.usize(25..=60);
    let mut description = String::new();
    prose(
        vocabulary,
        &mut rng,
        topic,
        description_words,
        &mut description,
    );

    // 70% of agents take their topic's role (roles follow subject matter), the rest any role.
    let role = if rng.u8(..10) < 7 {
        topic.role
    } else {
        rng.usize(..vocabulary.roles.len())
    };
    let category = if rng.u8(..10) < 8 {
        topic.category
    } else {
        rng.usize(..vocabulary.categories.len())
    };
    let mut capabilities = Vec::new();
    let wanted = rng.usize(3..=6);
    for _ in 0..wanted * 4 {
        if capabilities.len() == wanted {
            break;
        }
        let c = if rng.bool() && !topic.capabilities.is_empty() {
            topic.capabilities[rng.usize(..topic.capabilities.len())]
        } else {
            vocabulary.capability_zipf.sample(&mut rng)
        };
        if !capabilities.contains(&c) {
            capabilities.push(c);
        }
    }
    // Fallbacks lead from specialists to more general agents, as in real libraries
    // (`cloud-cost-analyst` -> `cloud-architect`): here to earlier definitions, the earliest
    // most often (a log-uniform draw), so chains are short and end in a shared core instead of
    // spanning the library, and never depend on the count. The first few point among
    // themselves.
    let mut fallbacks = Vec::new();
    let span = index.max(FALLBACK_CORE);
    let wanted = rng.usize(2..=3);
    for _ in 0..wanted * 8 {
        if fallbacks.len() == wanted {
            break;
        }
        let scale = rng.u32(..=usize::BITS - span.leading_zeros());
        let f = rng.usize(..1usize.checked_shl(scale).unwrap_or(span).clamp(1, span));
        if f != index && !fallbacks.contains(&f) {
            fallbacks.push(f);
        }
    }
    let use_when = (0..rng.usize(2..=4))
        .map(|_| {
            let n = rng.usize(6..=14);
            let mut line = String::new();
            words(vocabulary, &mut rng, topic, n, &mut line);
            capitalise(&mut line);
            line
        })
        .collect();
    let total: u64 = MODELS.iter().map(|m| m.1).sum();
    let mut roll = rng.u64(..total);
    let model = MODELS
        .iter()
        .find(|m| {
            if roll < m.1 {
                true
            } else {
                roll -= m.1;
                false
            }
        })
        .map_or("sonnet", |m| m.0);
    let mut tools: Vec<&'static str> = TOOLS.iter().copied().filter(|_| rng.bool()).collect();
    if tools.is_empty() {
        tools.push("Read");
    }

    // Body length: 200 to 3,000 words, most of them short (a cube of a uniform draw, mean
    // about 900 words), as real system prompts are.
    let x = rng.u64(..=65_535);
    let body_words = 200 + (2_800 * x * x * x / (65_535u64 * 65_535 * 65_535)) as usize;
    let body = body(vocabulary, &mut rng, topic, body_words);
    Content {
        description,
        role,
        category,
        capabilities,
        fallbacks,
        use_when,
        model,
        tools,
        body,
    }
}

/// `n` words, space-separated, no punctuation.
fn words(
    vocabulary: &Vocabulary,
    rng: &mut fastrand::Rng,
    topic: &Topic,
    n: usize,
    out: &mut String,
) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(vocabulary.word(rng, topic));
    }
}

/// `n` words as sentences of 6 to 22 words, with a comma now and then.
fn prose(
    vocabulary: &Vocabulary,
    rng: &mut fastrand::Rng,
    topic: &Topic,
    n: usize,
    out: &mut String,
) {
    let mut left = n;
    while left > 0 {
        let len = rng.usize(6..=22).min(left);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        let start = out.len();
        for i in 0..len {
            if i > 0 {
                out.push_str(if rng.u8(..20) == 0 { ", " } else { " " });
            }
            out.push_str(vocabulary.word(rng, topic));
        }
        capitalise_from(out, start);
        out.push('.');
        left -= len;
    }
}

/// A markdown body: an opening paragraph, then `##` sections of paragraphs or bullet lists.
fn body(vocabulary: &Vocabulary, rng: &mut fastrand::Rng, topic: &Topic, n: usize) -> String {
    let mut out = String::with_capacity(n * 7);
    let mut left = n;
    let opening = rng.usize(40..=100).min(left);
    prose(vocabulary, rng, topic, opening, &mut out);
    out.push('\n');
    left -= opening;
    while left > 0 {
        out.push_str("\n## ");
        let heading = rng.usize(2..=5);
        let start = out.len();
        for i in 0..heading {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(vocabulary.topic_content_word(rng, topic));
        }
        capitalise_from(&mut out, start);
        out.push_str("\n\n");
        if rng.u8(..4) == 0 {
            for _ in 0..rng.usize(3..=6) {
                if left == 0 {
                    break;
                }
                let len = rng.usize(5..=14).min(left);
                out.push_str("- ");
                let start = out.len();
                words(vocabulary, rng, topic, len, &mut out);
                capitalise_from(&mut out, start);
                out.push_str(".\n");
                left -= len;
            }
        } else {
            for p in 0..rng.usize(2..=4) {
                if left == 0 {
                    break;
                }
                if p > 0 {
                    out.push('\n');
                }
                let len = rng.usize(60..=160).min(left);
                let mut paragraph = String::new();
                prose(vocabulary, rng, topic, len, &mut paragraph);
                out.push_str(&paragraph);
                out.push('\n');
                left -= len;
            }
        }
    }
    out
}

fn capitalise(s: &mut String) {
    capitalise_from(s, 0);
}

fn capitalise_from(s: &mut String, start: usize) {
    if let Some(first) = s[start..].chars().next()
        && first.is_ascii_lowercase()
    {
        s.replace_range(start..start + 1, &first.to_ascii_uppercase().to_string());
    }
}

/// The file's bytes: Claude Code subagent frontmatter plus the orchestr8 fields, then the body.
fn render(
    vocabulary: &Vocabulary,
    content: &Content,
    name: &str,
    names: &[String],
    broken: Option<Broken>,
) -> Vec<u8> {
    let mut description = content.description.clone();
    if broken == Some(Broken::Colon) {
        // "Use this agent when: ..." written without quotes, as people do.
        let cut = description
            .char_indices()
            .filter(|&(_, c)| c == ' ')
            .nth(3)
            .map_or(description.len(), |(i, _)| i);
        description.insert(cut, ':');
    }
    let list = |items: Vec<&str>| items.join(", ");
    let mut out = String::with_capacity(content.body.len() + 1024);
    out.push_str("---\n");
    out.push_str(&format!("name: {name}\n"));
    out.push_str(&format!("description: {description}\n"));
    out.push_str(&format!("role: {}\n", vocabulary.roles[content.role]));
    out.push_str(&format!(
        "capabilities: [{}]\n",
        list(
            content
                .capabilities
                .iter()
                .map(|&c| vocabulary.capabilities[c].as_str())
                .collect()
        )
    ));
    out.push_str(&format!(
        "fallbacks: [{}]\n",
        list(
            content
                .fallbacks
                .iter()
                .map(|&f| names[f].as_str())
                .collect()
        )
    ));
    out.push_str("use_when:\n");
    for line in &content.use_when {
        out.push_str(&format!("  - \"{line}\"\n"));
    }
    out.push_str(&format!("model: {}\n", content.model));
    out.push_str(&format!("tools: [{}]\n", list(content.tools.clone())));
    out.push_str(&format!(
        "category: {}\n",
        vocabulary.categories[content.category]
    ));
    if broken != Some(Broken::Unclosed) {
        out.push_str("---\n");
    }
    out.push('\n');
    out.push_str(&content.body);
    let mut bytes = out.into_bytes();
    if broken == Some(Broken::InvalidUtf8) {
        // A Latin-1 byte in the middle of the body, as an editor with the wrong encoding
        // leaves it.
        let at = bytes.len() / 2;
        let at = (at..bytes.len()).find(|&i| bytes[i] == b' ').unwrap_or(at);
        bytes.insert(at, 0xE9);
    }
    bytes
}

/// What `generate` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct SynthReport {
    pub out: PathBuf,
    pub seed: u64,
    pub files: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Identical copies of an earlier definition under another name.
    pub copies: usize,
    /// Broken files by kind: frontmatter never closed, an unquoted `: ` (served, with a
    /// warning), invalid UTF-8.
    pub unclosed: usize,
    pub unquoted_colon: usize,
    pub invalid_utf8: usize,
}

impl SynthReport {
    /// Definitions the engine should serve: every file but those it cannot read.
    pub fn expected_definitions(&self) -> usize {
        self.files - self.unclosed - self.invalid_utf8
    }

    /// Diagnostics the engine should report: one per broken file.
    pub fn expected_diagnostics(&self) -> usize {
        self.unclosed + self.unquoted_colon + self.invalid_utf8
    }
}

impl fmt::Display for SynthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} files, {:.1} MB, in {:.2} s to {} (seed {}; {} copies, {} broken)",
            self.files,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.out.display(),
            self.seed,
            self.copies,
            self.unclosed + self.unquoted_colon + self.invalid_utf8
        )
    }
}

/// Writes `count` synthetic agents under `out/agents/<category>/<name>.md`. `out` must be new
/// or empty: synth never overwrites or deletes what someone else put there.
pub fn generate(
    vocabulary: &Vocabulary,
    count: usize,
    out: &Path,
    seed: u64,
) -> Result<SynthReport, SynthError> {
    let started = Instant::now();
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(io_error(out))?;
        if entries.next().is_some() {
            return Err(SynthError::NotEmpty(out.to_path_buf()));
        }
    }
    let agents = out.join("agents");
    for category in &vocabulary.categories {
        let dir = agents.join(category);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    }
    let (names, slots) = plan(vocabulary, count, seed);
    let bytes: Vec<u64> = (0..count)
        .into_par_iter()
        .map(|i| {
            let slot = &slots[i];
            let content = content(vocabulary, seed, slot.source);
            let bytes = render(vocabulary, &content, &names[i], &names, slot.broken);
            let path = agents
                .join(&vocabulary.categories[content.category])
                .join(format!("{}.md", names[i]));
            std::fs::write(&path, &bytes).map_err(io_error(&path))?;
            Ok(bytes.len() as u64)
        })
        .collect::<Result<_, SynthError>>()?;
    let count_broken = |kind| slots.iter().filter(|s| s.broken == Some(kind)).count();
    Ok(SynthReport {
        out: out.to_path_buf(),
        seed,
        files: count,
        bytes: bytes.iter().sum(),
        seconds: started.elapsed().as_secs_f64(),
        copies: slots
            .iter()
            .enumerate()
            .filter(|(i, s)| s.source != *i)
            .count(),
        unclosed: count_broken(Broken::Unclosed),
        unquoted_colon: count_broken(Broken::Colon),
        invalid_utf8: count_broken(Broken::InvalidUtf8),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::vocabulary::ROLES;
    use super::*;
    use crate::{Config, Engine, Severity};

    fn shipped() -> Vec<PathBuf> {
        let home = Path::new(env!("CARGO_MANIFEST_DIR"));
        ["agents", "skills", "commands"]
            .iter()
            .map(|d| home.join(d))
            .filter(|p| p.is_dir())
            .collect()
    }

    fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).expect("read");
                    out.insert(
                        path.strip_prefix(root).expect("prefix").to_path_buf(),
                        bytes,
                    );
                }
            }
        }
        out
    }

    #[test]
    fn same_seed_same_bytes_and_small_is_a_prefix_of_large() {
        let vocabulary = Vocabulary::from_roots(&shipped()).expect("vocabulary");
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = generate(&vocabulary, 300, &tmp.path().join("a"), 7).expect("a");
        let b = generate(&vocabulary, 300, &tmp.path().join("b"), 7).expect("b");
        assert_eq!(a.bytes, b.bytes);
        let (fa, fb) = (files(&tmp.path().join("a")), files(&tmp.path().join("b")));
        assert_eq!(fa.len(), 300);
        assert!(fa == fb, "same seed must give byte-identical files");

        let other = generate(&vocabulary, 300, &tmp.path().join("c"), 8).expect("c");
        assert_ne!(other.bytes, a.bytes, "another seed, another library");

        let small = files(&{
            generate(&vocabulary, 120, &tmp.path().join("d"), 7).expect("d");
            tmp.path().join("d")
        });
        assert_eq!(small.len(), 120);
        for (path, bytes) in &small {
            assert_eq!(fa.get(path), Some(bytes), "{} differs", path.display());
        }
    }

    #[test]
    fn refuses_a_directory_that_is_not_empty() {
        let vocabulary = Vocabulary::from_roots(&shipped()).expect("vocabulary");
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("keep.md"), "mine").expect("write");
        assert!(matches!(
            generate(&vocabulary, 5, tmp.path(), 1),
            Err(SynthError::NotEmpty(_))
        ));
    }

    #[test]
    fn the_engine_reads_what_synth_writes() {
        let vocabulary = Vocabulary::from_roots(&shipped()).expect("vocabulary");
        assert!(vocabulary.distinct_words() > 1000, "a real vocabulary");
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("lib");
        // Seed 3 at 1,500 files gives every kind of broken file and some copies.
        let report = generate(&vocabulary, 1500, &out, 3).expect("synth");
        assert_eq!(files(&out).len(), 1500);
        assert!(report.unclosed > 0 && report.unquoted_colon > 0 && report.invalid_utf8 > 0);
        assert!(report.copies > 0);

        let engine = Engine::open(&Config::new(vec![out])).expect("open");
        assert_eq!(engine.stats().files, 1500);
        assert_eq!(engine.stats().definitions, report.expected_definitions());
        let diagnostics = engine.diagnostics();
        assert_eq!(
            diagnostics.len(),
            report.expected_diagnostics(),
            "{diagnostics:#?}"
        );
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        assert_eq!(errors, report.unclosed + report.invalid_utf8);

        // Copies are shown once, with the other names as aliases.
        let copies: usize = engine
            .definitions()
            .filter(|d| engine.canonical_name(&d.name) != Some(d.name.as_str()))
            .count();
        assert!(
            copies > 0 && copies <= report.copies,
            "{copies} shown as aliases"
        );

        // Every role of the pool is declared, and a role resolves to an installed chain.
        let roles = engine.roles();
        assert!(roles.len() >= ROLES / 2, "{} roles", roles.len());
        let chain = engine
            .resolve_role(vocabulary.role(&mut fastrand::Rng::with_seed(1)), 10)
            .expect("resolve");
        assert!(!chain.agents.is_empty());
    }
}
