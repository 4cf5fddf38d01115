//! British spellings written the American way, before stemming.
//!
//! The shipped library is written in British English ("behaviour", "optimise", "modelling",
//! "catalogue") and most requests in American ("behavior", "optimize", "modeling", "catalog");
//! the Snowball stemmer keeps such pairs apart ("optimis" and "optim", "modell" and "model"),
//! so "memoize" found nothing in a library that says "memoise". Both indexed text and requests
//! go through the same rewrite, so a word that only looks British ("promise" becomes
//! "promize") is rewritten alike on both sides and still matches itself: what the rules must
//! avoid is two different words meeting, hence the conditions on what precedes each suffix.

use std::borrow::Cow;

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Suffix rewrites, each before any shorter suffix it ends with (the first that matches
/// decides), with the shortest stem they may follow and whether that stem must hold a vowel.
const RULES: &[(&str, &str, usize, Stem)] = &[
    // organisation, optimising, memoised, serialiser: four letters before "is", so "raise",
    // "noise", "cruise" and "advise" stay as they are.
    ("isations", "izations", 4, Stem::Any),
    ("isation", "ization", 4, Stem::Any),
    ("ising", "izing", 4, Stem::Any),
    ("ised", "ized", 4, Stem::Any),
    ("ises", "izes", 4, Stem::Any),
    ("isers", "izers", 4, Stem::Any),
    ("iser", "izer", 4, Stem::Any),
    ("ise", "ize", 4, Stem::Any),
    // analyse, paralysed
    ("ysing", "yzing", 3, Stem::Any),
    ("ysed", "yzed", 3, Stem::Any),
    ("yses", "yzes", 3, Stem::Any),
    ("yse", "yze", 3, Stem::Any),
    // behaviour, colours, favourite, honourable: three letters before "our", so "hours",
    // "yours" and "flour" stay.
    ("ourable", "orable", 3, Stem::Any),
    ("ourites", "orites", 3, Stem::Any),
    ("ourite", "orite", 3, Stem::Any),
    ("ourful", "orful", 3, Stem::Any),
    ("ouring", "oring", 3, Stem::Any),
    ("oured", "ored", 3, Stem::Any),
    ("ours", "ors", 3, Stem::Any),
    ("our", "or", 3, Stem::Any),
    // modelling, labelled, cancelled, signalling: a vowel before the doubled l, so
    // "spelling", "telling", "smaller" and "stalled" (not "stale") stay.
    ("elling", "eling", 2, Stem::HasVowel),
    ("elled", "eled", 2, Stem::HasVowel),
    ("ellers", "elers", 2, Stem::HasVowel),
    ("eller", "eler", 2, Stem::HasVowel),
    ("alling", "aling", 2, Stem::HasVowel),
    ("alled", "aled", 2, Stem::HasVowel),
    // centre, metres
    ("tres", "ters", 2, Stem::Any),
    ("tre", "ter", 2, Stem::Any),
    // catalogue, dialogues
    ("ogues", "ogs", 4, Stem::Any),
    ("ogue", "og", 4, Stem::Any),
    // licence, defence, offence
    ("cences", "censes", 2, Stem::HasVowel),
    ("cence", "cense", 2, Stem::HasVowel),
    ("fences", "fenses", 2, Stem::HasVowel),
    ("fence", "fense", 2, Stem::HasVowel),
];

#[derive(Clone, Copy)]
enum Stem {
    Any,
    HasVowel,
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

/// `word` (lowercased) spelt the American way, or borrowed when no rule applies.
pub(super) fn american(word: &str) -> Cow<'_, str> {
    for &(suffix, replacement, shortest, stem_rule) in RULES {
        let Some(stem) = word.strip_suffix(suffix) else {
            continue;
        };
        if stem.chars().count() < shortest {
            return Cow::Borrowed(word);
        }
        let fits = match stem_rule {
            Stem::Any => true,
            Stem::HasVowel => stem.chars().any(is_vowel),
        };
        return if fits {
            Cow::Owned(format!("{stem}{replacement}"))
        } else {
            Cow::Borrowed(word)
        };
    }
    Cow::Borrowed(word)
}

/// A [`TokenFilter`] giving each (lowercased) token its American spelling (`american`); the
/// indexing analyzer does the same inside its remembering stemmer.
#[derive(Clone, Copy)]
pub(super) struct AmericanSpelling;

impl TokenFilter for AmericanSpelling {
    type Tokenizer<T: Tokenizer> = AmericanSpellingFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> AmericanSpellingFilter<T> {
        AmericanSpellingFilter { inner }
    }
}

#[derive(Clone)]
pub(super) struct AmericanSpellingFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for AmericanSpellingFilter<T> {
    type TokenStream<'a> = AmericanSpellingStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        AmericanSpellingStream {
            tail: self.inner.token_stream(text),
        }
    }
}

pub(super) struct AmericanSpellingStream<S> {
    tail: S,
}

impl<S: TokenStream> TokenStream for AmericanSpellingStream<S> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let text = &mut self.tail.token_mut().text;
        if let Cow::Owned(american) = american(text) {
            *text = american;
        }
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
    use super::american;

    #[test]
    fn british_spellings_become_american() {
        for (british, us) in [
            ("organisation", "organization"),
            ("optimising", "optimizing"),
            ("memoise", "memoize"),
            ("serialisers", "serializers"),
            ("analyse", "analyze"),
            ("behaviour", "behavior"),
            ("colours", "colors"),
            ("favourite", "favorite"),
            ("modelling", "modeling"),
            ("labelled", "labeled"),
            ("signalling", "signaling"),
            ("centre", "center"),
            ("catalogue", "catalog"),
            ("licence", "license"),
            ("defence", "defense"),
        ] {
            assert_eq!(american(british), us, "{british}");
            assert_eq!(american(us), us, "{us} is already American");
        }
    }

    #[test]
    fn words_that_only_end_alike_are_left_alone() {
        for word in [
            "raise", "noise", "cruise", "advise", "hours", "yours", "flour", "spelling", "telling",
            "smaller", "stalled", "rogue", "fence", "wise", "rise",
        ] {
            assert_eq!(american(word), word);
        }
    }
}
