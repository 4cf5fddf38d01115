//! The words of a real library, from which synthetic definitions and benchmark requests are
//! drawn: every word of its descriptions, use-when lines and bodies, kept as a token stream so
//! frequent words stay frequent, each source file a topic, and the pools (roles, categories,
//! capabilities) it declares, filled up to a realistic size with its own words.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::{STREAM_POOLS, SynthError, mix};
use crate::library::formats::Location;
use crate::library::{parse_file, scan};

/// Roles and categories in a synthetic library: enough that a role filter keeps about 2% of it.
pub(super) const ROLES: usize = 50;
const CATEGORIES: usize = 20;

/// English words too common to carry meaning; kept in prose, never used for names or keyword
/// queries.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "but", "by", "can", "do", "does", "each", "for", "from", "has", "have", "how", "if",
    "in", "into", "is", "it", "its", "may", "more", "must", "no", "not", "of", "on", "one", "only",
    "or", "other", "our", "out", "over", "should", "so", "some", "such", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "to", "up", "use", "used",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "will", "with", "you",
    "your",
];

/// Draws from a ranked list with weight 1/(rank+1), in integers so the draws are identical on
/// every platform.
#[derive(Clone, Debug)]
pub(super) struct Zipf {
    cumulative: Vec<u64>,
}

impl Zipf {
    fn new(len: usize) -> Zipf {
        let mut total = 0;
        let cumulative = (0..len)
            .map(|r| {
                total += 1_000_000 / (r as u64 + 1);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    pub(super) fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let r = rng.u64(..total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// One source file: its words in order, and what it says about itself.
#[derive(Clone, Debug)]
pub(super) struct Topic {
    tokens: Vec<u32>,
    pub(super) capabilities: Vec<usize>,
    pub(super) role: usize,
    pub(super) category: usize,
}

/// Words and pools drawn from a real library, from which synthetic definitions and benchmark
/// queries are made.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    /// Distinct words as written (case kept: prose looks like prose).
    words: Vec<Box<str>>,
    /// Per word, its lowercase form when it is a content word (ASCII letters, 3 to 14 of them,
    /// not a stop word).
    content_form: Vec<Option<Box<str>>>,
    pub(super) topics: Vec<Topic>,
    /// Every token of every topic: a draw from it is a draw by corpus frequency.
    stream: Vec<u32>,
    /// The content-word tokens of `stream`, for names and keyword queries.
    content_stream: Vec<u32>,
    pub(super) name_parts: Vec<String>,
    pub(super) capabilities: Vec<String>,
    pub(super) capability_zipf: Zipf,
    pub(super) roles: Vec<String>,
    pub(super) categories: Vec<String>,
}

impl Vocabulary {
    /// Reads every definition under `roots` (agents, skills and workflows alike) and keeps its
    /// words. The pools (roles, categories, capabilities) come from the same files, filled up to
    /// a realistic size with the library's own words when it declares fewer.
    pub fn from_roots(roots: &[PathBuf]) -> Result<Vocabulary, SynthError> {
        let mut canonical = Vec::new();
        for root in roots {
            let path = std::fs::canonicalize(root).map_err(|e| SynthError::Source {
                path: root.clone(),
                problem: e.to_string(),
            })?;
            if !path.is_dir() {
                return Err(SynthError::Source {
                    path: root.clone(),
                    problem: "is not a directory".into(),
                });
            }
            canonical.push(path);
        }
        let (mut found, _) = scan::walk(&canonical);
        scan::sort(&mut found);
        let mut builder = Builder::default();
        for file in &found {
            // A source file that cannot be read or parsed contributes nothing; the vocabulary
            // is a sample, not an audit.
            let Ok(bytes) = std::fs::read(&file.path) else {
                continue;
            };
            let location = Location {
                root: file.root,
                path: &file.path,
                relative: &file.relative,
            };
            if let Some((definition, body)) = parse_file(&location, &bytes).definition {
                builder.add(&definition, &body.text);
            }
        }
        let vocabulary = builder.finish();
        if vocabulary.topics.is_empty() || vocabulary.content_stream.is_empty() {
            let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            return Err(SynthError::NoVocabulary {
                roots: roots.join(", "),
            });
        }
        Ok(vocabulary)
    }

    /// Distinct words seen in the source library.
    pub fn distinct_words(&self) -> usize {
        self.words.len()
    }

    /// Words in the source library, all topics together.
    pub fn tokens(&self) -> usize {
        self.stream.len()
    }

    /// The roles synthetic agents declare.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The capabilities synthetic agents declare, most used first.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// `n` distinct content words, drawn by corpus frequency: a keyword query.
    pub fn keywords(&self, rng: &mut fastrand::Rng, n: usize) -> String {
        let mut picked: Vec<&str> = Vec::with_capacity(n);
        for _ in 0..n * 20 {
            if picked.len() == n {
                break;
            }
            let word = self.content_word(rng);
            if !picked.contains(&word) {
                picked.push(word);
            }
        }
        picked.join(" ")
    }

    /// `n` consecutive words of one source file, stop words and all: a request in someone's
    /// own words (a sentence for about 12, a brief for about 70).
    pub fn passage(&self, rng: &mut fastrand::Rng, n: usize) -> String {
        let long: Vec<&Topic> = self.topics.iter().filter(|t| t.tokens.len() > n).collect();
        let tokens: &[u32] = match long.is_empty() {
            true => &self.stream,
            false => &long[rng.usize(..long.len())].tokens,
        };
        let start = rng.usize(..=tokens.len().saturating_sub(n));
        let end = (start + n).min(tokens.len());
        tokens[start..end]
            .iter()
            .map(|&t| &*self.words[t as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Two content words, one of 5+ letters with two adjacent letters swapped, as a hurried
    /// typist writes them.
    pub fn typo(&self, rng: &mut fastrand::Rng) -> String {
        let mut long = None;
        for _ in 0..200 {
            let word = self.content_word(rng);
            if word.len() >= 5 && swappable(word).is_some() {
                long = Some(word);
                break;
            }
        }
        let other = self.content_word(rng);
        let Some(word) = long else {
            return format!("{other} {}", self.content_word(rng));
        };
        let positions = swappable(word).unwrap_or_default();
        let at = positions[rng.usize(..positions.len())];
        let mut bytes = word.as_bytes().to_vec();
        bytes.swap(at, at + 1);
        let typo = String::from_utf8(bytes).unwrap_or_else(|_| word.to_string());
        if rng.bool() {
            format!("{typo} {other}")
        } else {
            format!("{other} {typo}")
        }
    }

    /// A role, uniformly: every role is asked for.
    pub fn role(&self, rng: &mut fastrand::Rng) -> &str {
        &self.roles[rng.usize(..self.roles.len())]
    }

    /// A capability, drawn the way synthetic agents declare them (popular ones more often).
    pub fn capability(&self, rng: &mut fastrand::Rng) -> &str {
        &self.capabilities[self.capability_zipf.sample(rng)]
    }

    pub(super) fn content_word(&self, rng: &mut fastrand::Rng) -> &str {
        let id = self.content_stream[rng.usize(..self.content_stream.len())];
        self.content_form[id as usize].as_deref().unwrap_or("")
    }

    /// A word for `topic`'s document: half the time from the topic, otherwise from the stream.
    pub(super) fn word(&self, rng: &mut fastrand::Rng, topic: &Topic) -> &str {
        let tokens = if rng.bool() && !topic.tokens.is_empty() {
            &topic.tokens
        } else {
            &self.stream
        };
        &self.words[tokens[rng.usize(..tokens.len())] as usize]
    }

    pub(super) fn topic_content_word(&self, rng: &mut fastrand::Rng, topic: &Topic) -> &str {
        for _ in 0..20 {
            let id = if rng.bool() && !topic.tokens.is_empty() {
                topic.tokens[rng.usize(..topic.tokens.len())]
            } else {
                self.stream[rng.usize(..self.stream.len())]
            };
            if let Some(form) = &self.content_form[id as usize] {
                return form;
            }
        }
        self.content_word(rng)
    }
}

/// Positions `i` where swapping bytes `i` and `i + 1` (not the first letter, as people rarely
/// mistype that) changes the word.
fn swappable(word: &str) -> Option<Vec<usize>> {
    let b = word.as_bytes();
    let positions: Vec<usize> = (1..b.len().saturating_sub(1))
        .filter(|&i| b[i] != b[i + 1])
        .collect();
    (!positions.is_empty()).then_some(positions)
}

#[derive(Default)]
struct Builder {
    ids: std::collections::HashMap<String, u32>,
    words: Vec<Box<str>>,
    topics: Vec<Topic>,
    /// Per topic, what it declares, resolved to pool indices in `finish`.
    declared: Vec<(Vec<String>, Option<String>, Option<String>)>,
    name_parts: std::collections::BTreeSet<String>,
}

impl Builder {
    fn add(&mut self, d: &crate::library::Definition, body: &str) {
        let mut text = d.description.clone();
        for line in &d.use_when {
            text.push('\n');
            text.push_str(line);
        }
        text.push('\n');
        text.push_str(body);
        let tokens: Vec<u32> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| keep_token(t))
            .map(|t| self.id(t))
            .collect();
        if tokens.is_empty() {
            return;
        }
        for part in d.name.split(['-', '_']) {
            if part.len() >= 2 && part.bytes().all(|b| b.is_ascii_lowercase()) {
                self.name_parts.insert(part.to_string());
            }
        }
        let capabilities = d
            .capabilities
            .iter()
            .chain(&d.tags)
            .filter_map(|c| slug(c))
            .collect();
        self.declared.push((
            capabilities,
            d.role.as_deref().and_then(slug),
            d.category.as_deref().and_then(slug),
        ));
        self.topics.push(Topic {
            tokens,
            capabilities: Vec::new(),
            role: 0,
            category: 0,
        });
    }

    fn id(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(token.into());
        self.ids.insert(token.to_string(), id);
        id
    }

    fn finish(self) -> Vocabulary {
        let stop: HashSet<&str> = STOP_WORDS.iter().copied().collect();
        let content_form: Vec<Option<Box<str>>> = self
            .words
            .iter()
            .map(|w| {
                let lower = w.to_ascii_lowercase();
                let is_content = (3..=14).contains(&lower.len())
                    && lower.bytes().all(|b| b.is_ascii_lowercase())
                    && !stop.contains(lower.as_str());
                is_content.then(|| lower.into_boxed_str())
            })
            .collect();
        let stream: Vec<u32> = self
            .topics
            .iter()
            .flat_map(|t| t.tokens.iter().copied())
            .collect();
        let content_stream: Vec<u32> = stream
            .iter()
            .copied()
            .filter(|&t| content_form[t as usize].is_some())
            .collect();
        let mut pool_rng = fastrand::Rng::with_seed(mix(0, 0, STREAM_POOLS));
        let draw_word = |rng: &mut fastrand::Rng| -> String {
            if content_stream.is_empty() {
                return "general".into();
            }
            let id = content_stream[rng.usize(..content_stream.len())];
            content_form[id as usize]
                .as_deref()
                .unwrap_or("general")
                .to_string()
        };

        // Capabilities: every declared one, in a fixed shuffled order so the popular head of
        // the Zipf draw is not simply the alphabet's start.
        let mut capabilities: Vec<String> = self
            .declared
            .iter()
            .flat_map(|(c, _, _)| c.iter().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        while capabilities.len() < 200 && !content_stream.is_empty() {
            let made = format!("{}-{}", draw_word(&mut pool_rng), draw_word(&mut pool_rng));
            if !capabilities.contains(&made) {
                capabilities.push(made);
            }
        }
        pool_rng.shuffle(&mut capabilities);
        let capability_index: BTreeMap<&str, usize> = capabilities
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();

        let roles = ranked_pool(
            self.declared.iter().filter_map(|(_, r, _)| r.clone()),
            ROLES,
            || format!("{}-{}", draw_word(&mut pool_rng), draw_word(&mut pool_rng)),
        );
        let categories = ranked_pool(
            self.declared.iter().filter_map(|(_, _, c)| c.clone()),
            CATEGORIES,
            || draw_word(&mut pool_rng),
        );
        let mut topics = self.topics;
        for (i, (topic, (caps, role, category))) in
            topics.iter_mut().zip(&self.declared).enumerate()
        {
            topic.capabilities = caps
                .iter()
                .filter_map(|c| capability_index.get(c.as_str()).copied())
                .collect();
            topic.role = role
                .as_ref()
                .and_then(|r| roles.iter().position(|x| x == r))
                .unwrap_or((i * 7 + 3) % roles.len());
            topic.category = category
                .as_ref()
                .and_then(|c| categories.iter().position(|x| x == c))
                .unwrap_or((i * 3 + 1) % categories.len());
        }
        Vocabulary {
            words: self.words,
            content_form,
            topics,
            stream,
            content_stream,
            name_parts: self.name_parts.into_iter().collect(),
            capability_zipf: Zipf::new(capabilities.len()),
            capabilities,
            roles,
            categories,
        }
    }
}

/// The `size` most declared values (ties by name), filled up with made-up ones.
fn ranked_pool(
    declared: impl Iterator<Item = String>,
    size: usize,
    mut make: impl FnMut() -> String,
) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for value in declared {
        *counts.entry(value).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut pool: Vec<String> = ranked.into_iter().take(size).map(|(v, _)| v).collect();
    for _ in 0..size * 50 {
        if pool.len() >= size {
            break;
        }
        let made = make();
        if !pool.contains(&made) {
            pool.push(made);
        }
    }
    if pool.is_empty() {
        pool.push("general".into());
    }
    pool
}

/// Lowercase `[a-z0-9-]` form of a declared value, or nothing when it has other characters
/// (which would need quoting in YAML and make poor filter values).
fn slug(value: &str) -> Option<String> {
    let lower = value.trim().to_lowercase().replace([' ', '_'], "-");
    let ok = !lower.is_empty()
        && lower.len() <= 40
        && lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(lower)
}

fn keep_token(token: &str) -> bool {
    let chars = token.chars().count();
    (2..=24).contains(&chars) || token == "a"
}
