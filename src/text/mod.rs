//! The ranked side: a tantivy index over name, description, capabilities and tags, use-when
//! text, headings and body, each a field with its own boost, all through one English analyzer
//! (stop words dropped, stems kept) so a 70-word brief is decided by its content words.
//!
//! Typos: a query stem that occurs nowhere in the index is compared with the vocabulary of the
//! short fields (name, description, tags, use-when) and replaced by its nearest terms within a
//! small edit distance; those terms are then scored by BM25 like any other, at a discount.

mod matched;
mod max_score;
mod spelling;
mod stem_memo;
mod workers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use quick_cache::sync::Cache;
use tantivy::InvertedIndexReader;
use tantivy::merge_policy::NoMergePolicy;
use tantivy::postings::TermInfo;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    TextAnalyzerBuilder, Tokenizer,
};
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, SegmentMeta, TantivyDocument, Term,
};

use crate::library::{BodyText, Definition, KeySet};
pub(crate) use matched::{Wanted, routing_stems};
use max_score::Clause;
use spelling::AmericanSpelling;
use stem_memo::MemoStemmer;

const ANALYZER: &str = "en";
/// The u64 field holding each document's definition key, indexed for deletes and fast for hits.
const KEY: &str = "key";
/// Whole words, unstemmed: for names, where "going" must not match `go-expert`.
const WORDS: &str = "words";

/// How much each field counts. Tuned on the judged sets in `tests/relevance/`.
const BOOSTS: [(FieldName, f32); 7] = [
    (FieldName::NameWords, 3.0),
    (FieldName::Name, 1.0),
    (FieldName::Tags, 2.0),
    (FieldName::Description, 2.0),
    (FieldName::UseWhen, 1.5),
    (FieldName::Headings, 1.0),
    (FieldName::Body, 1.0),
];

/// Memory tantivy's writer may fill before it flushes a segment. A 100k build's peak RSS was
/// about 472,000 KiB with 256 MB and 400,000 KiB with 64 MB, in the same time, and its queries
/// as fast (the segments are merged either way); 32 MB was no lower (407,000-418,000 KiB).
const WRITER_BUDGET: usize = 64 << 20;

/// Stems a request may have before a match in a name counts for less (`name_weight`).
const NAME_IN_FULL_UP_TO: usize = 2;

/// How much the name fields' boosts count in a request of `stems` stems: in full up to
/// `NAME_IN_FULL_UP_TO`, then sqrt(2 / stems). A word of a long request that is also in a name
/// is weaker evidence than the same word as half of a two-word query: "Go through our web app
/// before the pentest" does not ask for go-developer, nor "PDF exports come out blank since
/// last week's release" for release-manager, yet the two name fields' boosts (3 + 1) let that
/// one word outweigh the rest of the request. On the three judged sets (fused R@1 / nDCG@5):
/// shipped library 0.890 / 0.860 -> 0.890 / 0.858, held-out 0.775 / 0.779 -> 0.825 / 0.801,
/// rshah515 0.803 / 0.762 -> 0.859 / 0.781; BM25 alone 0.866 / 0.825 -> 0.878 / 0.834, 0.675 /
/// 0.725 -> 0.800 / 0.752, 0.746 / 0.697 -> 0.732 / 0.699. Any full count up to 1-3 stems and
/// exponent 0.35-0.75 did about as well; shrinking only the whole-word name field, or the
/// tags field too, lost on one set or another.
fn name_weight(stems: usize) -> f32 {
    let in_full = NAME_IN_FULL_UP_TO as f32;
    (in_full / stems.max(1) as f32).min(1.0).sqrt()
}

/// At most this many distinct stems of a query are searched for: a 70-word brief has about 50,
/// and every extra term costs a posting-list walk.
const MAX_QUERY_TERMS: usize = 64;

/// At most this many unknown words are corrected per query; each costs a vocabulary scan.
const MAX_CORRECTIONS: usize = 8;

/// The shortest stem corrected. At this length only a stem with a single neighbour is: a
/// four-letter word the library lacks is as often a real word as a typo, and then it has
/// several ("prod": pod, prop; "wont": font, want, went; "yell": tell, well), each a guess
/// that pulls in unrelated definitions, while a plural acronym the stemmer keeps ("vpcs") has
/// one ("vpc").
const CORRECTED_FROM: usize = 4;

/// A corrected term scores this share of an exact one: the user may have meant something else.
const CORRECTION_WEIGHT: f32 = 0.7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldName {
    NameWords,
    Name,
    Description,
    Tags,
    UseWhen,
    Headings,
    Body,
}

impl FieldName {
    fn as_str(self) -> &'static str {
        match self {
            FieldName::NameWords => "name_words",
            FieldName::Name => "name",
            FieldName::Description => "description",
            FieldName::Tags => "tags",
            FieldName::UseWhen => "use_when",
            FieldName::Headings => "headings",
            FieldName::Body => "body",
        }
    }

    /// The name fields, whose boosts shrink in long requests (`name_weight`).
    fn is_name(self) -> bool {
        matches!(self, FieldName::Name | FieldName::NameWords)
    }

    /// Fields short enough to be a trustworthy vocabulary for typo correction.
    fn is_short(self) -> bool {
        !matches!(self, FieldName::Body | FieldName::Headings)
    }
}

/// The characters of `text` as a set of 64 bits (character code modulo 64). One edit changes
/// at most two bits (a substitution removes one character and adds another, an insertion or
/// deletion one, a transposition none), so a term whose set differs from the query word's in
/// more than two bits per allowed edit is skipped before computing the edit distance, which
/// was a third of a misspelt query's time at 100k definitions.
fn char_bits(text: &str) -> u64 {
    text.chars()
        .fold(0, |bits, c| bits | 1 << (u32::from(c) % 64))
}

/// Pending changes to the text index.
pub(crate) struct TextWriter<'a> {
    text: &'a TextIndex,
    writer: IndexWriter,
    changed: bool,
}

impl TextWriter<'_> {
    pub fn delete(&mut self, key: u64) {
        self.writer
            .delete_term(Term::from_field_u64(self.text.key, key));
        self.changed = true;
    }

    pub fn add(&mut self, definition: &Definition, body: &BodyText) -> Result<(), TextError> {
        self.writer
            .add_document(self.text.document(definition, body))?;
        self.changed = true;
        Ok(())
    }

    /// Commits, and returns whether anything changed. The index is left as one segment with no
    /// deleted documents: BM25's statistics (documents, documents per term, field lengths)
    /// count a deleted document until its segment is rewritten, so a refreshed index ranked
    /// differently from a fresh build of the same files (after an edit of every agent of the
    /// shipped library, a request's best score 79.26 against 77.07), and the difference stayed
    /// until tantivy's merge policy happened to pick that segment.
    pub fn commit(mut self) -> Result<bool, TextError> {
        if self.changed {
            self.writer.commit()?;
            // Only the ids are kept: a `SegmentMeta` alive anywhere keeps its files from being
            // collected.
            let (ids, merge): (Vec<_>, bool) = {
                let segments = self.text.index.searchable_segment_metas()?;
                let merge = segments.len() > 1 || segments.iter().any(SegmentMeta::has_deletes);
                (segments.iter().map(SegmentMeta::id).collect(), merge)
            };
            if merge {
                self.writer.merge(&ids).wait()?;
                // The merged segments' files are collected once no searcher of this index holds
                // them; left to the next commit, a 100k build kept 62 MB of them.
                self.text.reader.reload()?;
                self.writer.garbage_collect_files().wait()?;
            }
        }
        self.writer.wait_merging_threads()?;
        Ok(self.changed)
    }
}

/// A query after analysis: its stems and the corrections made for unknown ones.
#[derive(Clone, Debug, Default)]
pub struct AnalyzedQuery {
    pub stems: Vec<String>,
    /// For each of `stems`, the first word of the request that gave it (lowercased): what a
    /// reader is shown as matched, "services" rather than the stem "servic".
    pub said: Vec<String>,
    /// Unstemmed words, matched against the words of names.
    pub words: Vec<String>,
    /// Unknown stem -> the index terms used in its place.
    pub corrections: Vec<(String, Vec<String>)>,
    /// Words of the request (lowercased, each beginning with a letter) that no field of any
    /// definition holds, by stem or by a near spelling: the ranking rests on the other words.
    /// A request for an Elixir LiveView form otherwise ranks whatever mentions "form" with no
    /// sign that nothing in the library knows Elixir.
    pub unknown: Vec<String>,
    /// Largest document frequency among the query's terms: a lower bound on how many
    /// documents the text side matches, used by the planner.
    pub max_doc_freq: u64,
    /// The index as the request was analysed against it: searched as it was, so that the
    /// entries looked up in its dictionaries (`looked`) are those of its segments even if a
    /// refresh lands in between.
    searcher: Option<Searcher>,
    /// For each of `stems`, what the index's dictionaries say of it; its largest document
    /// frequency in any field is what its name clauses' idf is computed from (see `search`).
    looked: Vec<Arc<Looked>>,
    /// Each of `words`' stem's place in `stems`, if it was kept.
    word_stems: Vec<Option<usize>>,
}

/// What a request's analysis learns of one of its stems from the index's dictionaries.
#[derive(Debug)]
struct Looked {
    /// How it is searched in each field, in `TextIndex::fields`' order.
    in_fields: Vec<InField>,
    /// Its largest document frequency in any field.
    df: u64,
    /// Its largest document frequency in the fields it is searched in.
    searched_df: u64,
}

/// Stems whose lookups `TextIndex::looked_up` keeps, about a kilobyte each: more than the
/// distinct stems of a session's requests, less than a library's vocabulary.
const LOOKED_UP_STEMS: usize = 4_096;

/// How a stem of a request is searched in one field.
#[derive(Clone, Debug)]
enum InField {
    /// Not at all: the whole-word name field is searched for the request's words, and a long
    /// field not for a stem too many of its documents have (`is_common`).
    Skipped,
    /// Its entry in each segment's dictionary, looked up once for analysis and ranking alike;
    /// `None` if a dictionary could not be read, left for the ranking to look up and report.
    Searched(Option<Vec<Option<TermInfo>>>),
}

/// Fewest documents for `is_common` to leave anything out: below this every posting list is
/// short, so there is nothing to save, and in a handful of files a word most bodies share may
/// be the only match a request has.
const COMMON_FROM_DOCS: u64 = 1_000;

/// Whether a term found in `doc_freq` of `docs` documents' long field (body, headings) is left
/// out of that field's clauses: more than `COMMON_SHARE` of them have it. BM25 gives such a
/// term at most ln(1 + 7/3), about 1.2, of idf there (a rare one about 11 at 100k
/// definitions), yet its postings are the longest a request walks. The term still counts in
/// names, descriptions, tags and use-when text.
fn is_common(doc_freq: u64, docs: u64) -> bool {
    let (share_of, out_of) = COMMON_SHARE;
    docs >= COMMON_FROM_DOCS && doc_freq.saturating_mul(out_of) > docs.saturating_mul(share_of)
}

/// The share of a library's documents (3 in 10) past which a stem is not searched in a long
/// field. Half, at first: at 100k a sentence's p50 1.26-1.57 -> 0.95-1.16 ms and a brief's
/// 6.6-9.5 -> 4.5-5.0 against none left out. Three in ten took a brief's postings from 1.19M
/// to 0.77M (its body clauses' from 690k to 275k) and its text search p50 from 1.27-1.49 to
/// 1.00-1.09 ms, a sentence's 0.40 -> 0.35-0.36 (`eval`, binaries alternated). With no floor,
/// on the nine judged sets (113 to 165 definitions), fused R@1 summed over the sets stayed
/// 7.317 and nDCG@5 6.857 -> 6.859, BM25 alone R@1 6.787 -> 6.793 and nDCG@5 6.541 -> 6.512;
/// no set moved by more than one request's first place either way but BM25 on blind4 (0.833
/// -> 0.883). A quarter lost fused R@1 on blind3 (0.967 -> 0.950) and nDCG@5 (6.845, BM25
/// 6.504); a tenth lost on most sets.
const COMMON_SHARE: (u64, u64) = (3, 10);

pub(crate) struct TextIndex {
    index: Index,
    reader: IndexReader,
    key: Field,
    fields: Vec<(FieldName, Field, f32)>,
    analyzer: TextAnalyzer,
    word_analyzer: TextAnalyzer,
    /// Terms of the short fields, bucketed by length in characters.
    /// Length in characters -> (character set, term), for typo correction.
    vocabulary: BTreeMap<usize, Vec<(u64, String)>>,
    /// What analysis learnt of each stem, by searcher generation and stem: a request's stems
    /// are mostly those of the requests before it, and its dictionary lookups were the
    /// larger part of analysing it.
    looked_up: Cache<(u64, String), Arc<Looked>>,
}

#[derive(Debug, thiserror::Error)]
#[error("text index: {0}")]
pub struct TextError(#[from] tantivy::TantivyError);

macro_rules! text_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for TextError {
            fn from(e: $t) -> Self {
                TextError(e.into())
            }
        }
    )*};
}
text_error_from!(
    tantivy::directory::error::OpenDirectoryError,
    tantivy::directory::error::OpenReadError,
    std::io::Error
);

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_u64_field(KEY, INDEXED | FAST);
    for (name, _) in BOOSTS {
        let tokenizer = if name == FieldName::NameWords {
            WORDS
        } else {
            ANALYZER
        };
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        builder.add_text_field(name.as_str(), options);
    }
    builder.build()
}

fn word_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
        .build()
}

/// The analyzer of the stemmed fields, for requests: British spellings made American
/// (`spelling`), then stemmed.
fn analyzer() -> TextAnalyzer {
    words_to_stems()
        .filter(AmericanSpelling)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The same analyzer for indexing, each word's spelling and stem remembered (`stem_memo`).
fn indexing_analyzer() -> TextAnalyzer {
    words_to_stems().filter(MemoStemmer).build()
}

fn words_to_stems() -> TextAnalyzerBuilder<impl Tokenizer> {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
}

impl TextIndex {
    /// Opens the index in `dir`, creating it when the directory is empty; `None` keeps it in
    /// memory. A directory holding an index with another schema is an error: the caller rebuilds.
    pub fn open(dir: Option<&Path>) -> Result<TextIndex, TextError> {
        let schema = schema();
        let index = match dir {
            None => Index::create_in_ram(schema.clone()),
            Some(dir) => {
                let directory = tantivy::directory::MmapDirectory::open(dir)?;
                if Index::exists(&directory)? {
                    let index = Index::open(directory)?;
                    if index.schema() != schema {
                        return Err(TextError(tantivy::TantivyError::SchemaError(
                            "index was written with another schema".into(),
                        )));
                    }
                    index
                } else {
                    Index::create(directory, schema.clone(), Default::default())?
                }
            }
        };
        index.tokenizers().register(ANALYZER, indexing_analyzer());
        index.tokenizers().register(WORDS, word_analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let key = schema.get_field(KEY)?;
        let fields = BOOSTS
            .iter()
            .map(|&(name, boost)| Ok((name, schema.get_field(name.as_str())?, boost)))
            .collect::<Result<Vec<_>, tantivy::TantivyError>>()?;
        let mut text = TextIndex {
            index,
            reader,
            key,
            fields,
            analyzer: analyzer(),
            word_analyzer: word_analyzer(),
            vocabulary: BTreeMap::new(),
            looked_up: Cache::new(LOOKED_UP_STEMS),
        };
        text.load_vocabulary()?;
        Ok(text)
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// A writer for one refresh: deletes and additions become visible together at `commit`.
    pub fn writer(&self) -> Result<TextWriter<'_>, TextError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        let writer = self.index.writer_with_num_threads(threads, WRITER_BUDGET)?;
        // `commit` merges everything itself; a merge tantivy's policy started in the
        // background could hold a segment that merge needs.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        Ok(TextWriter {
            text: self,
            writer,
            changed: false,
        })
    }

    /// Makes the last commit visible to searches and refreshes the typo vocabulary.
    pub fn reload(&mut self) -> Result<(), TextError> {
        self.reader.reload()?;
        self.load_vocabulary()
    }

    fn document(&self, d: &Definition, body: &BodyText) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.key, d.key);
        for &(name, field, _) in &self.fields {
            let text = match name {
                FieldName::Name | FieldName::NameWords => d.name.replace(['-', '_', ':', '.'], " "),
                FieldName::Description => d.description.clone(),
                FieldName::Tags => {
                    let mut words: Vec<&str> = d
                        .capabilities
                        .iter()
                        .chain(&d.tags)
                        .map(String::as_str)
                        .collect();
                    words.extend(d.role.as_deref());
                    words.extend(d.category.as_deref());
                    words.join(" ").replace('-', " ")
                }
                FieldName::UseWhen => d.use_when.join("\n"),
                FieldName::Headings => body.headings.clone(),
                FieldName::Body => body.text.clone(),
            };
            doc.add_text(field, text);
        }
        doc
    }

    fn load_vocabulary(&mut self) -> Result<(), TextError> {
        let mut seen = HashSet::new();
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            for &(name, field, _) in &self.fields {
                if !name.is_short() {
                    continue;
                }
                let inverted = segment.inverted_index(field)?;
                let mut stream = inverted.terms().stream()?;
                while stream.advance() {
                    if let Ok(term) = std::str::from_utf8(stream.key()) {
                        seen.insert(term.to_string());
                    }
                }
            }
        }
        self.vocabulary.clear();
        for term in seen {
            self.vocabulary
                .entry(term.chars().count())
                .or_default()
                .push((char_bits(&term), term));
        }
        for bucket in self.vocabulary.values_mut() {
            bucket.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        }
        Ok(())
    }

    /// Each distinct stem of `words`, in order, with the first of them that gave it; and each
    /// word's stem, as its place in that list.
    fn stems_of(&self, words: &[String]) -> (Vec<(String, String)>, Vec<Option<usize>>) {
        let mut stemmer = self.analyzer.clone();
        let mut seen = HashMap::new();
        let mut stems = Vec::new();
        let mut word_stems = Vec::with_capacity(words.len());
        for word in words {
            let mut place = None;
            let mut stream = stemmer.token_stream(word);
            while stream.advance() {
                let stem = &stream.token().text;
                place = Some(*seen.entry(stem.clone()).or_insert_with(|| {
                    stems.push((stem.clone(), word.clone()));
                    stems.len() - 1
                }));
            }
            word_stems.push(place);
        }
        (stems, word_stems)
    }
}

/// Whether a word the library lacks is worth telling the caller about: not a number or a code
/// that begins with a digit ("3", "502s") and not a common English word. The analyzer drops
/// only Lucene's 33 stop words (larger lists lost relevance, see benches/README.md), so "my"
/// or "besides" reach this point; the 1,298 words of the ISO English stop list (`stop-words`)
/// are left unsaid.
fn is_telling(word: &str) -> bool {
    word.starts_with(|c: char| c.is_alphabetic())
        && !stop_words::get(stop_words::LANGUAGE::English).contains(&word)
}

/// The tokens `analyzer` makes of `text`, in order of first appearance, without repeats.
fn tokens(analyzer: &TextAnalyzer, text: &str) -> Vec<String> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    while stream.advance() {
        let t = &stream.token().text;
        if seen.insert(t.clone()) {
            out.push(t.clone());
        }
    }
    out
}

impl TextIndex {
    /// Analyses a query: stems, document frequencies, and corrections for stems the index has
    /// never seen.
    pub fn analyze(&self, text: &str) -> AnalyzedQuery {
        let searcher = self.reader.searcher();
        let mut out = AnalyzedQuery {
            words: tokens(&self.word_analyzer, text),
            ..Default::default()
        };
        if !out.words.is_empty() {
            // The ranking follows the analysis.
            max_score::wake_workers(&searcher);
        }
        let (stems, word_stems) = self.stems_of(&out.words);
        let mut kept = vec![None; stems.len()];
        let mut dictionaries = None;
        for (place, (stem, word)) in stems.into_iter().enumerate().take(MAX_QUERY_TERMS) {
            let key = (searcher.generation().generation_id(), stem);
            let looked = match self.looked_up.get(&key) {
                Some(looked) => looked,
                None => {
                    let dictionaries =
                        dictionaries.get_or_insert_with(|| self.dictionaries(&searcher));
                    let looked = Arc::new(self.look_up(&searcher, dictionaries, &key.1));
                    self.looked_up.insert(key.clone(), Arc::clone(&looked));
                    looked
                }
            };
            let stem = key.1;
            let (df, searched_df) = (looked.df, looked.searched_df);
            if df > 0 {
                out.max_doc_freq = out.max_doc_freq.max(searched_df);
                kept[place] = Some(out.stems.len());
                out.stems.push(stem);
                out.said.push(word);
                out.looked.push(looked);
                continue;
            }
            let near = if out.corrections.len() < MAX_CORRECTIONS {
                self.nearest_terms(&stem)
            } else {
                Vec::new()
            };
            if !near.is_empty() {
                out.corrections.push((stem, near));
            } else if is_telling(&word) {
                out.unknown.push(word);
            }
        }
        out.searcher = Some(searcher);
        out.word_stems = word_stems
            .into_iter()
            .map(|i| i.and_then(|i| kept[i]))
            .collect();
        out
    }

    /// Each field's dictionary in each segment of `searcher`, `None` for a field whose
    /// dictionary could not be read.
    fn dictionaries(&self, searcher: &Searcher) -> Vec<Option<Vec<Arc<InvertedIndexReader>>>> {
        (self.fields.iter())
            .map(|&(_, field, _)| {
                (searcher.segment_readers().iter())
                    .map(|segment| segment.inverted_index(field).ok())
                    .collect()
            })
            .collect()
    }

    /// Looks `stem` up in every analysed field's dictionaries.
    fn look_up(
        &self,
        searcher: &Searcher,
        dictionaries: &[Option<Vec<Arc<InvertedIndexReader>>>],
        stem: &str,
    ) -> Looked {
        let docs = searcher.num_docs();
        let mut looked = Looked {
            in_fields: Vec::with_capacity(self.fields.len()),
            df: 0,
            searched_df: 0,
        };
        for (&(name, field, _), dictionaries) in self.fields.iter().zip(dictionaries) {
            if name == FieldName::NameWords {
                looked.in_fields.push(InField::Skipped);
                continue;
            }
            let term = Term::from_field_text(field, stem);
            let found: Option<Vec<Option<TermInfo>>> = dictionaries.as_ref().and_then(|d| {
                d.iter()
                    .map(|dictionary| dictionary.get_term_info(&term).ok())
                    .collect()
            });
            let field_df = found.as_ref().map_or(0, |found| {
                found.iter().flatten().map(|i| u64::from(i.doc_freq)).sum()
            });
            looked.df = looked.df.max(field_df);
            if !name.is_short() && is_common(field_df, docs) {
                looked.in_fields.push(InField::Skipped);
            } else {
                looked.searched_df = looked.searched_df.max(field_df);
                looked.in_fields.push(InField::Searched(found));
            }
        }
        looked
    }

    /// Index terms within one edit of `stem` (two for long words), transpositions counted as one
    /// edit; at most three, closest first. Stems under `CORRECTED_FROM` letters are not
    /// corrected (too many neighbours), nor one of `CORRECTED_FROM` with more than one.
    fn nearest_terms(&self, stem: &str) -> Vec<String> {
        let len = stem.chars().count();
        if len < CORRECTED_FROM {
            return Vec::new();
        }
        let max = if len >= 8 { 2 } else { 1 };
        let bits = char_bits(stem);
        let mut found: Vec<(usize, &String)> = self
            .vocabulary
            .range(len - max..=len + max)
            .flat_map(|(_, bucket)| bucket)
            .filter(|(term_bits, _)| (term_bits ^ bits).count_ones() as usize <= 2 * max)
            .filter_map(|(_, term)| {
                let d = strsim::osa_distance(stem, term);
                (d <= max).then_some((d, term))
            })
            .collect();
        if len == CORRECTED_FROM && found.len() > 1 {
            return Vec::new();
        }
        found.sort();
        found.into_iter().take(3).map(|(_, t)| t.clone()).collect()
    }

    /// The best `limit` documents for `query`, as (key, score). With `only`, documents outside
    /// those keys are not considered at all.
    pub fn search(
        &self,
        query: &AnalyzedQuery,
        only: Option<&Arc<KeySet>>,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>, TextError> {
        // Stems and corrections go to every analysed field; whole words only to names. A name
        // clause's idf is its stem's in the whole definition (the largest document frequency
        // in any field), not among names alone, where a word most definitions use ("app",
        // "api", "search") is as rare as a technology: "rotate leaked api key" ranked the two
        // api-* agents first. Robertson, Zaragoza and Taylor (2004) make the point for every
        // field; for names it lifted fused R@1 on three judged sets and lowered it on one
        // (README, "Search quality"), for every short field it lost.
        let doc_freq = |stem: Option<usize>| stem.and_then(|i| query.looked.get(i)).map(|l| l.df);
        // A correction is searched in every analysed field, its entries looked up by the
        // ranking.
        let corrected = vec![InField::Searched(None); self.fields.len()];
        let weighted = (query.stems.iter().enumerate())
            .map(|(i, s)| {
                let in_fields = query.looked.get(i).map_or(&corrected, |l| &l.in_fields);
                (s, 1.0, doc_freq(Some(i)), in_fields)
            })
            .chain(query.corrections.iter().flat_map(|(_, near)| {
                near.iter()
                    .map(|t| (t, CORRECTION_WEIGHT, None, &corrected))
            }));
        let name_weight = name_weight(query.stems.len());
        let mut clauses = Vec::new();
        for (term, weight, stem_doc_freq, in_fields) in weighted {
            for (&(name, field, boost), in_field) in self.fields.iter().zip(in_fields) {
                if name == FieldName::NameWords {
                    continue;
                }
                if let InField::Searched(found) = in_field {
                    clauses.push(Clause {
                        term: Term::from_field_text(field, term),
                        boost: boost * weight * if name.is_name() { name_weight } else { 1.0 },
                        doc_freq: stem_doc_freq.filter(|_| name.is_name()),
                        found: found.clone(),
                    });
                }
            }
        }
        for &(name, field, boost) in &self.fields {
            if name == FieldName::NameWords {
                clauses.extend(query.words.iter().enumerate().map(|(i, w)| Clause {
                    term: Term::from_field_text(field, w),
                    boost: boost * name_weight,
                    doc_freq: doc_freq(query.word_stems.get(i).copied().flatten()),
                    found: None,
                }));
            }
        }
        // The searcher the entries in `found` came from.
        let searcher = match &query.searcher {
            Some(searcher) => searcher.clone(),
            None => self.reader.searcher(),
        };
        // `search --limit` is whatever the user typed: never hold room for more hits than there
        // are documents.
        let limit = limit.min(usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX));
        if clauses.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        Ok(max_score::top_keys(
            &searcher,
            &clauses,
            only.map(|o| &**o),
            limit,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn one_edit_changes_at_most_two_character_bits() {
        let within =
            |a: &str, b: &str, edits: u32| (char_bits(a) ^ char_bits(b)).count_ones() <= 2 * edits;
        assert!(within("terraform", "terrafrom", 1)); // transposition
        assert!(within("kubernetes", "kubernetez", 1)); // substitution
        assert!(within("docker", "dockerr", 1)); // insertion
        assert!(within("zürich", "zurich", 1)); // substitution, non-ASCII
        assert!(within("elasticsearch", "elastisearch", 1)); // deletion
        assert!(!within("docker", "python", 1));
    }
    use crate::library::formats::{Location, parse_file};

    /// An in-memory index of agent files, given as (name, file text); their keys in order.
    fn index(files: &[(String, String)]) -> (TextIndex, Vec<u64>) {
        let mut text = TextIndex::open(None).unwrap();
        let mut writer = text.writer().unwrap();
        let mut keys = Vec::new();
        for (name, file) in files {
            let (definition, body) = parsed(name, file);
            keys.push(definition.key);
            writer.add(&definition, &body).unwrap();
        }
        writer.commit().unwrap();
        text.reload().unwrap();
        (text, keys)
    }

    /// The agent file `agents/<name>.md` of a library at `/lib`.
    fn parsed(name: &str, file: &str) -> (Definition, BodyText) {
        let relative = PathBuf::from(format!("agents/{name}.md"));
        let path = Path::new("/lib").join(&relative);
        let location = Location {
            root: 0,
            path: &path,
            relative: &relative,
        };
        parse_file(&location, file.as_bytes())
            .definition
            .expect("a valid agent")
    }

    fn agent(name: &str, description: &str, body: &str) -> (String, String) {
        let file = format!("---\nname: {name}\ndescription: {description}\n---\n{body}\n");
        (name.to_string(), file)
    }

    #[test]
    fn a_name_decides_a_short_query_not_a_long_request() {
        let (text, keys) = index(&[
            agent(
                "go-developer",
                "Writes Go services and command-line tools.",
                "",
            ),
            agent(
                "security-auditor",
                "Checks web applications for weaknesses ahead of a pentest.",
                "",
            ),
        ]);
        let first = |query: &str| text.search(&text.analyze(query), None, 1).unwrap()[0].0;
        assert_eq!(first("go tools"), keys[0]);
        assert_eq!(
            first(
                "Go through our web app before the pentest in three weeks and tell us where we are exposed"
            ),
            keys[1]
        );
        assert_eq!(name_weight(1), 1.0);
        assert_eq!(name_weight(2), 1.0);
        assert_eq!(name_weight(8), 0.5);
    }

    #[test]
    fn a_word_common_in_the_library_counts_in_a_name_as_in_the_text() {
        // "search" is in one name, so rare among names, but most definitions speak of it.
        let (text, keys) = index(&[
            agent(
                "search-engineer",
                "Builds relevance ranking for full-text indexes.",
                "",
            ),
            agent(
                "frontend-developer",
                "Fixes slow search boxes in web pages.",
                "",
            ),
            agent("sql-tuner", "Speeds up slow search queries in SQL.", ""),
            agent("log-keeper", "Keeps logs easy to search.", ""),
            agent("docs-writer", "Writes docs people can search.", ""),
        ]);
        let first = |query: &str| text.search(&text.analyze(query), None, 1).unwrap()[0].0;
        assert_eq!(first("the search box freezes"), keys[1]);
        // A word that is rare everywhere still lets a name decide.
        assert_eq!(first("relevance for the search box"), keys[0]);
    }

    #[test]
    fn a_four_letter_word_is_corrected_only_to_its_single_neighbour() {
        let (text, _) = index(&[
            agent("network-engineer", "Peers VPC networks.", ""),
            agent("font-loader", "Loads a font and a prop.", ""),
            agent("pod-tuner", "Tunes each pod; want it?", ""),
        ]);
        let corrected = |query: &str| text.analyze(query).corrections;
        // The stemmer keeps the plural of an acronym: one neighbour, a likely typo.
        assert_eq!(
            corrected("VPCs"),
            [("vpcs".to_string(), vec!["vpc".to_string()])]
        );
        // A word the library lacks with several neighbours is left alone.
        assert!(corrected("prod").is_empty()); // pod, prop
        assert!(corrected("wont").is_empty()); // font, want
        // Longer words are corrected to their nearest terms.
        assert_eq!(
            corrected("netwrok"),
            [("netwrok".to_string(), vec!["network".to_string()])]
        );
    }

    #[test]
    fn words_no_definition_holds_are_reported_unknown() {
        let (text, _) = index(&[
            agent(
                "form-builder",
                "Builds web forms.",
                "Forms that do not update.",
            ),
            agent("network-engineer", "Peers VPC networks.", ""),
        ]);
        let q = text.analyze("My Elixir LiveView forms not updating on 3 nodes, netwrok 502s");
        assert_eq!(q.unknown, ["elixir", "liveview", "nodes"]);
        // Known words are searched; a near spelling is a correction, not unknown; a common
        // word ("my") or one that begins with a digit is no missing specialist.
        assert_eq!(q.stems, ["form", "updat"]);
        assert_eq!(q.corrections.len(), 1);
    }

    /// An index of `count` agents whose bodies all say "review"; only the first one's
    /// description does.
    fn all_bodies_say_review(count: usize) -> (TextIndex, u64) {
        let files: Vec<_> = (0..count)
            .map(|i| {
                let description = match i {
                    0 => "Reviews pull requests",
                    _ => "Writes documentation",
                };
                agent(&format!("a{i}"), description, "Review it.")
            })
            .collect();
        let (text, keys) = index(&files);
        (text, keys[0])
    }

    #[test]
    fn a_stem_is_common_past_three_documents_in_ten_from_a_thousand_documents() {
        assert!(!is_common(300, 1_000));
        assert!(is_common(301, 1_000));
        assert!(is_common(30_001, 100_000));
        assert!(!is_common(999, 999));
    }

    #[test]
    fn a_stem_in_most_bodies_of_a_large_library_is_searched_in_the_short_fields_only() {
        let (text, first) = all_bodies_say_review(COMMON_FROM_DOCS as usize);
        let query = text.analyze("review");
        let hits = text.search(&query, None, 10).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [first]);

        // Below the floor, the bodies are searched too.
        let (text, first) = all_bodies_say_review(COMMON_FROM_DOCS as usize - 1);
        let query = text.analyze("review");
        let hits = text.search(&query, None, 10).unwrap();
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0].0, first);
    }

    /// An agent edited and refreshed five times ranks as in a fresh build of the final files:
    /// its old versions, deleted, no longer count in the documents a term occurs in (they did,
    /// until tantivy's merge policy happened to rewrite their segment, which sank an agent for
    /// its own rarest words). Field lengths are then tantivy's estimate from the remaining
    /// documents' norms, hence scores within a tenth of a per cent rather than equal.
    #[test]
    fn a_refreshed_index_ranks_as_a_fresh_build_of_the_same_files() {
        let file = |round: usize| {
            agent(
                "stream-tuner",
                &format!("Tunes Kafka consumers, round {round}."),
                "Consumer lag, rebalances and partitions.",
            )
        };
        let others = [
            agent(
                "backend-developer",
                "Builds services.",
                "Kafka producers too.",
            ),
            agent(
                "database-specialist",
                "Tunes databases.",
                "Replication lag.",
            ),
        ];
        let (mut text, _) = index(&[&others[..], &[file(0)]].concat());
        for round in 1..=5 {
            let (name, content) = file(round);
            let (definition, body) = parsed(&name, &content);
            let mut writer = text.writer().unwrap();
            writer.delete(definition.key);
            writer.add(&definition, &body).unwrap();
            writer.commit().unwrap();
            text.reload().unwrap();
        }
        let (fresh, _) = index(&[&others[..], &[file(5)]].concat());
        let segments = text.reader.searcher().segment_readers().to_vec();
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].num_deleted_docs(), 0);
        let ranked = |text: &TextIndex| {
            text.search(&text.analyze("kafka consumer lag"), None, 10)
                .unwrap()
        };
        let (refreshed, fresh) = (ranked(&text), ranked(&fresh));
        assert_eq!(refreshed.len(), 3);
        for (a, b) in refreshed.iter().zip(&fresh) {
            assert_eq!(a.0, b.0);
            assert!(
                (a.1 - b.1).abs() <= b.1 * 1e-3,
                "{refreshed:?} against {fresh:?}"
            );
        }
    }

    /// Analysis remembers what the dictionaries said of each stem, for one searcher: a refresh
    /// must be seen by the next request.
    #[test]
    fn a_request_after_a_refresh_sees_the_refreshed_dictionaries() {
        let (mut text, _) = index(&[agent("stream-tuner", "Tunes Kafka consumers.", "")]);
        let doc_freqs =
            |query: AnalyzedQuery| query.looked.iter().map(|l| l.df).collect::<Vec<_>>();
        assert_eq!(doc_freqs(text.analyze("kafka")), [1]);
        let (name, content) = agent("backend-developer", "Builds Kafka services.", "");
        let (definition, body) = parsed(&name, &content);
        let mut writer = text.writer().unwrap();
        writer.add(&definition, &body).unwrap();
        writer.commit().unwrap();
        text.reload().unwrap();
        assert_eq!(doc_freqs(text.analyze("kafka")), [2]);
        assert_eq!(
            text.search(&text.analyze("kafka"), None, 10).unwrap().len(),
            2
        );
    }

    /// Found while writing the `query` fuzz target (its seed `huge-limit.txt` reproduces it):
    /// `search --limit 18446744073709551615` made tantivy reserve a heap of that many hits and
    /// panic (capacity overflow); `--limit 1000000000000` aborted, out of memory.
    #[test]
    fn a_huge_limit_is_capped_at_the_number_of_documents() {
        let relative = Path::new("agents/quality/code-reviewer.md");
        let path = Path::new("/lib").join(relative);
        let parsed = parse_file(
            &Location {
                root: 0,
                path: &path,
                relative,
            },
            b"---\nname: code-reviewer\ndescription: Reviews pull requests\n---\nReview code.\n",
        );
        let (definition, body) = parsed.definition.expect("a valid agent");
        let mut text = TextIndex::open(None).unwrap();
        let mut writer = text.writer().unwrap();
        writer.add(&definition, &body).unwrap();
        writer.commit().unwrap();
        text.reload().unwrap();
        let query = text.analyze("review pull requests");
        for limit in [usize::MAX, 1 << 40] {
            assert_eq!(text.search(&query, None, limit).unwrap().len(), 1);
            let only = Arc::new(KeySet::from_iter([definition.key]));
            assert_eq!(text.search(&query, Some(&only), limit).unwrap().len(), 1);
            let other = Arc::new(KeySet::from_iter([definition.key + 1]));
            assert!(text.search(&query, Some(&other), limit).unwrap().is_empty());
        }
    }
}
