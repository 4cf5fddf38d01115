//! Which of a request's stems a hit's routing text holds (`Hit::matched`): what tells a reader
//! why a definition was listed. It runs for every hit shown, after the ranking has left the
//! caches cold, so it stems only the words that could produce a wanted stem, one at a time with
//! nothing collected, and stops once every stem is found.
//!
//! The English stemmer rewrites only a word's ending: all of a stem but its last character
//! begins the word, but for three exceptions (`head`; a test holds every word of the shipped
//! library and every exceptional form of the stemmer to that), so a word that begins with no
//! such head is skipped unstemmed. Words are cut as the analyzer's tokenizer cuts them (at every
//! character that is not alphanumeric), and an ASCII word is held to the heads byte by byte,
//! ignoring case, before any analysis: lowercasing and filtering every word cost more than the
//! test (at 100k, `matched` for a two-word query's hits 41 -> 29 us, a sentence's 77 -> 62).
//! What remains is the stemmer itself, on caches the ranking has just filled with postings:
//! a 100k brief's hits still have some 240 words that begin like one of its stems.

use tantivy::tokenizer::TextAnalyzer;

/// Stems of the English (Porter2) stemmer's exceptional forms that do not keep their word's
/// beginning: "dying", "lying" and "tying" become "die", "lie" and "tie". Every other rule, and
/// every other exception, rewrites only a word's ending.
const REWRITTEN: [&str; 3] = ["die", "lie", "tie"];

/// What any word that stems to `stem` begins with: all of it but its last character (two for
/// `REWRITTEN`). A British word is stemmed in its American spelling (`spelling`), which parts
/// from it before the stem's last character in two endings: "favourite" stems to "favorit"
/// and "centre" to "center", so there the head stops before "rit" and "er".
fn head(stem: &str) -> &str {
    let dropped = if REWRITTEN.contains(&stem) || stem.ends_with("ter") {
        2
    } else if stem.ends_with("orit") {
        3
    } else {
        1
    };
    stem.char_indices()
        .rev()
        .nth(dropped - 1)
        .map_or("", |(i, _)| &stem[..i])
}

/// A request's stems, prepared once to be found in the text of each hit it lists.
pub(crate) struct Wanted {
    stems: Vec<String>,
    /// The stems whose heads begin with an ASCII byte, as (place in `stems`, head length),
    /// ordered by that byte lowercased: an ASCII word is held only to the heads that begin as it
    /// does, not to all of a brief's fifty (100k, `present` per request: a brief's 208-217 ->
    /// 172-183 us, a sentence's 71-73 -> 65-66, two words' unchanged).
    heads: Vec<(usize, usize)>,
    /// Where the heads beginning with each byte start in `heads`, and end at the next.
    starts: [usize; 129],
    /// A stem of one character has an empty head, which begins every word.
    every_word: bool,
    analyzer: TextAnalyzer,
}

impl Wanted {
    /// `analyzer` must be the one that made `stems`.
    pub fn new(stems: Vec<String>, analyzer: TextAnalyzer) -> Wanted {
        let mut every_word = false;
        let mut keyed = Vec::with_capacity(stems.len());
        for (i, stem) in stems.iter().enumerate() {
            let head = head(stem);
            match head.as_bytes().first() {
                None => every_word = true,
                Some(&first) if first.is_ascii() => keyed.push((first, i, head.len())),
                // Only a word that is not ASCII can begin so, and such words are always stemmed.
                Some(_) => {}
            }
        }
        keyed.sort_unstable();
        let starts = std::array::from_fn(|byte| keyed.partition_point(|k| usize::from(k.0) < byte));
        Wanted {
            heads: keyed.into_iter().map(|(_, i, len)| (i, len)).collect(),
            stems,
            starts,
            every_word,
            analyzer,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.stems.is_empty()
    }

    /// The places in the stems of those that occur in `texts`, ascending.
    pub fn present<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> Vec<usize> {
        let mut found = vec![false; self.stems.len()];
        let mut missing = self.stems.len();
        let mut stemmer = self.analyzer.clone();
        'texts: for text in texts {
            for word in text.split(|c: char| !c.is_alphanumeric()) {
                if missing == 0 {
                    break 'texts;
                }
                if word.is_empty() || !self.could_stem_to_one(word) {
                    continue;
                }
                let mut stream = stemmer.token_stream(word);
                while stream.advance() {
                    let stem = &stream.token().text;
                    for (wanted, found) in self.stems.iter().zip(found.iter_mut()) {
                        if !*found && wanted == stem {
                            *found = true;
                            missing -= 1;
                        }
                    }
                }
            }
        }
        (0..found.len()).filter(|&i| found[i]).collect()
    }

    /// Whether `word` (not empty) begins with the head of a wanted stem. The analyzer lowercases
    /// an ASCII word to ASCII; any other word is stemmed to be sure.
    fn could_stem_to_one(&self, word: &str) -> bool {
        let bytes = word.as_bytes();
        let Some(first) = bytes
            .first()
            .filter(|_| word.is_ascii() && !self.every_word)
        else {
            return true;
        };
        let first = usize::from(first.to_ascii_lowercase());
        self.heads[self.starts[first]..self.starts[first + 1]]
            .iter()
            .any(|&(stem, len)| {
                let head = &self.stems[stem].as_bytes()[..len];
                bytes
                    .get(..len)
                    .is_some_and(|start| start.eq_ignore_ascii_case(head))
            })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{TextIndex, tokens};
    use super::*;

    /// What `present` skips words by: a word begins with its stem's head, for every word of the
    /// shipped library and every exceptional form of the English (Porter2) stemmer.
    #[test]
    fn a_word_begins_with_its_stems_head() {
        let text = TextIndex::open(None).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut contents = vec![
            "skis skies dying lying tying idly gently ugly early only singly news howe atlas \
             cosmos bias andes inning outing canning herring earring proceed exceed succeed \
             favourite favourites centre centres metre theatre behaviour catalogue memoise"
                .to_string(),
        ];
        for dir in ["agents", "skills", "commands"] {
            for entry in ignore::Walk::new(root.join(dir)).flatten() {
                contents.extend(std::fs::read_to_string(entry.path()));
            }
        }
        let mut words = 0;
        for content in &contents {
            for word in tokens(&text.word_analyzer, content) {
                for stem in tokens(&text.analyzer, &word) {
                    assert!(word.starts_with(head(&stem)), "{word} -> {stem}");
                    words += 1;
                }
            }
        }
        assert!(words > 10_000, "only {words} words read");
        assert_eq!((head("die"), head("dies"), head("a")), ("d", "die", ""));
    }

    #[test]
    fn present_finds_exactly_what_stemming_everything_finds() {
        let text = TextIndex::open(None).unwrap();
        let routing = [
            "Dying skies, running generously: Ugly early-only builds;",
            "the Kubernetes operators reviewed 3 pull-requests in Zürich",
        ];
        let all = tokens(&text.analyzer, &routing.join(" "));
        let mut stems = all.clone();
        stems.extend(["absent", "kubernet", "run"].map(String::from));
        let expected: Vec<usize> = (0..stems.len())
            .filter(|&i| all.contains(&stems[i]))
            .collect();
        let wanted = text.wanted(stems.clone());
        assert_eq!(wanted.present(routing), expected);
        let found: Vec<&str> = expected.iter().map(|&i| stems[i].as_str()).collect();
        assert!(found.contains(&"die") && found.contains(&"sky"));

        // Without a stem of one character ("3"), whose empty head begins every word, each word
        // is held to the heads that begin as it does; "Kubernetes" to "kuberne", whatever its
        // case, and a stem that is not ASCII is found in the second text.
        let stems = ["die", "sky", "zürich", "absent", "oper", "kubernet"].map(String::from);
        assert_eq!(
            text.wanted(stems.to_vec()).present(routing),
            [0, 1, 2, 4, 5]
        );
        assert!(text.wanted(Vec::new()).is_empty());
    }
}
