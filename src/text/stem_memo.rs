//! The English stemmer for indexing, remembering the stems it has made (of each word's American
//! spelling, `spelling.rs`, which is remembered with it).
//!
//! Stemming was about 30% of a 100k build's CPU time (Snowball's suffix tables searched for every
//! word of every body), while the words of a library repeat: most of a body's words are among a
//! few thousand. Each clone of the analyzer (tantivy gives every indexing thread its own, per
//! field) keeps a table from word to stem, filled until it holds `REMEMBERED` words, so the
//! frequent words, which come first, are stemmed once per thread. Requests keep tantivy's own
//! stemmer: their analyzer is cloned per request, so a table would only add its inserts. The
//! stems are the same Snowball English stems either way (a test holds the two analyzers to the
//! same tokens).

use frostem::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

use super::spelling;

/// Words an analyzer clone remembers the stem of: the synthetic 100k library uses about 9,700
/// distinct words, the shipped library a similar number; a full table holds a few hundred KB.
const REMEMBERED: usize = 1 << 13;

/// A [`TokenFilter`] giving each (lowercased) token the Snowball English stem of its American
/// spelling, as `spelling::AmericanSpelling` followed by tantivy's
/// `Stemmer::new(Language::English)` does.
#[derive(Clone, Copy)]
pub(super) struct MemoStemmer;

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter {
            inner,
            stems: FxHashMap::default(),
        }
    }
}

#[derive(Clone)]
pub(super) struct MemoStemmerFilter<T> {
    inner: T,
    stems: FxHashMap<Box<str>, Box<str>>,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoStemmerStream {
            tail: self.inner.token_stream(text),
            stems: &mut self.stems,
            stemmer: Stemmer::new(Algorithm::English),
        }
    }
}

pub(super) struct MemoStemmerStream<'a, S> {
    tail: S,
    stems: &'a mut FxHashMap<Box<str>, Box<str>>,
    stemmer: Stemmer,
}

impl<S: TokenStream> TokenStream for MemoStemmerStream<'_, S> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let text = &mut self.tail.token_mut().text;
        if let Some(stem) = self.stems.get(text.as_str()) {
            text.clear();
            text.push_str(stem);
            return true;
        }
        let stem = self.stemmer.stem(&spelling::american(text)).into_owned();
        if self.stems.len() < REMEMBERED {
            self.stems
                .insert(text.as_str().into(), stem.as_str().into());
        }
        *text = stem;
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tantivy::tokenizer::TextAnalyzer;

    use super::super::{analyzer, indexing_analyzer};

    fn all_tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        analyzer
            .token_stream(text)
            .process(&mut |token| out.push(token.text.clone()));
        out
    }

    /// Every word of the shipped library, stemmed while the table fills and again once it has
    /// them, gets the stem tantivy's stemmer gives it.
    #[test]
    fn remembered_stems_are_the_stemmers_own() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in ["agents", "skills", "commands"] {
            for entry in ignore::Walk::new(root.join(dir)).flatten() {
                if entry.path().extension().is_some_and(|e| e == "md") {
                    texts.push(std::fs::read_to_string(entry.path()).expect("library file"));
                }
            }
        }
        assert!(
            texts.len() > 100,
            "the shipped library has {} files",
            texts.len()
        );
        let (mut plain, mut remembering) = (analyzer(), indexing_analyzer());
        for _ in 0..2 {
            for text in &texts {
                assert_eq!(
                    all_tokens(&mut remembering, text),
                    all_tokens(&mut plain, text)
                );
            }
        }
    }
}
